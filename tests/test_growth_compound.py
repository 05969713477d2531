"""`compound` grower: EfficientNet scaling formula, zero growth = fixed, FLOPs budget, coefficient fit, resume, end to end."""

from __future__ import annotations

import json
import math
from types import SimpleNamespace

import pytest
import torch
from search_fixtures import QUICK, digits_run, learn, learner_for, same_net
from trainer_fixtures import make_net, make_tasks

from selfgrow.errors import SelfgrowError
from selfgrow.growth import GrowthPlan, build_grower
from selfgrow.nets import build, cost, ops, preset
from selfgrow.train import load_latest, restore, save_checkpoint


@pytest.mark.parametrize("options", [{"max_phi": 0}, {"n_trials": 0}, {**QUICK, "tolerance": 1.0}],
                         ids=["max_phi-0", "n_trials-0", "search-picks-no-growth"])
def test_zero_growth_gives_exactly_the_fixed_net(options):
    fixed, _ = learn("fixed")
    grown, records = learn("compound", options)
    assert same_net(grown.net, fixed.net)
    assert all(r["plan"]["ops"] == [] for r in records)
    searched = options.get("n_trials", 6) > 0 and options.get("max_phi", 2) > 0
    assert all((r["plan"]["reasons"]["search_train_flops"] > 0) == searched for r in records)


def test_growth_follows_the_compound_formula():
    grower = build_grower("compound", alpha=1.2)  # beta = sqrt(2 / 1.2) = 1.2910
    net = ops.add_classes(make_net("class", hidden=[16]), 2).net
    grower.space(SimpleNamespace(net=net), None)
    deepen = {"op": "deepen", "kwargs": {"at": "hidden.0"}}
    # phi 1: width ceil(16 * 1.2910) = 21, depth ceil(1 * 1.2) = 2 layers; phi 2: ceil(26.67) = 27, ceil(1.44) = 2
    assert grower.ops_for(net, {"phi": 1.0}) == [{"op": "widen", "kwargs": {"layer": "hidden.0", "by": 5, "mode": "zero"}}, deepen]
    assert grower.ops_for(net, {"phi": 2.0}) == [{"op": "widen", "kwargs": {"layer": "hidden.0", "by": 11, "mode": "zero"}}, deepen]
    assert grower.ops_for(net, {"phi": 0.0}) == []
    grown = GrowthPlan(ops=grower.ops_for(net, {"phi": 1.0})).apply(net)[0]  # hidden [21, 21], Phi = 1
    grower.phi_total = 1.0
    grower.space(SimpleNamespace(net=grown), None)  # the inserted layer copies hidden.0, so shares its base 16
    assert grower.ops_for(grown, {"phi": 1.0}) == [  # Phi = 2: both layers ceil(16 * 1.6667) = 27, ceil(1.44) = 2 layers
        {"op": "widen", "kwargs": {"layer": f"hidden.{i}", "by": 6, "mode": "zero"}} for i in (0, 1)]

    resnet = build(preset("resnet-tiny", (3, 8, 8), {"kind": "single", "classes": 3}))
    grower = build_grower("compound", alpha=1.2, mode="split")
    grower.space(SimpleNamespace(net=resnet), None)
    plan = GrowthPlan(ops=grower.ops_for(resnet, {"phi": 2.0}))
    grown = plan.apply(resnet)[0]  # every width 8 -> ceil(8 * 1.6667) = 14; 1 -> ceil(1.44) = 2 blocks per stage
    assert [s["width"] for s in grown.spec["stages"]] == [14, 14] and [s["blocks"] for s in grown.spec["stages"]] == [2, 2]
    assert [s["hidden"] for s in grown.spec["stages"]] == [[14, 14], [14, 14]]
    x = torch.rand(4, 3, 8, 8)
    resnet.eval(), grown.eval()
    with torch.no_grad():
        torch.testing.assert_close(grown(x), resnet(x), atol=1e-5, rtol=1e-5)


def test_a_flops_budget_is_never_exceeded_by_the_chosen_point():
    net = ops.add_classes(make_net("class", hidden=[8]), 2).net
    budget = 1.5 * cost.inference_flops(net)
    learner, records = learn("compound", {**QUICK, "n_trials": 4, "max_phi": 3, "max_flops": budget})
    for record in records:
        candidates, chosen = record["plan"]["candidates"], record["plan"]["chosen"]
        assert candidates[chosen]["flops"] <= budget and candidates[chosen]["status"] == "complete"
        assert all(c["flops"] <= budget for c in candidates if c["status"] != "over_budget")
        assert all("accuracy" not in c for c in candidates if c["status"] == "over_budget")
    assert any(c["status"] == "over_budget" for r in records for c in r["plan"]["candidates"])
    assert cost.inference_flops(learner.net) <= budget


def test_a_budget_below_the_current_net_stops_with_one_sentence():
    with pytest.raises(SelfgrowError, match=r"budget is smaller than the current net .*max_flops >= [\d,]+"):
        learn("compound", {**QUICK, "max_flops": 10}, n_tasks=1)


def test_coefficients_are_fitted_on_the_first_task():
    grower = build_grower("compound", **{**QUICK, "n_trials": 4}, fit_coefficients=True, alpha_grid=[1.0, 1.5])
    learner = learner_for("fixed")
    learner.grower = grower
    record = learner.learn(make_tasks(1)[0])
    assert {"phi", "alpha"} <= set(record["plan"]["candidates"][1]["params"])
    assert grower.alpha in (1.0, 1.5) and grower.alpha * grower.beta**2 == pytest.approx(2.0)
    assert record["plan"]["reasons"]["compound"]["alpha_beta2"] == pytest.approx(2.0)
    assert "alpha" not in grower.space(learner, None)  # later tasks search phi only


def test_resume_keeps_the_warm_start_state(tmp_path):
    options = {**QUICK, "warm_start": 1}
    learner, _ = learn("compound", options, n_tasks=2)
    save_checkpoint(tmp_path, 1, learner, {})
    resumed = learner_for("compound", options)
    tasks = make_tasks(3)
    restore(resumed, load_latest(tmp_path)[1], tasks)
    assert resumed.grower.state_dict() == learner.grower.state_dict()
    assert json.loads(json.dumps(learner.grower.state_dict())) == learner.grower.state_dict()
    previous = learner.grower.history[-1]["chosen"]
    rng = torch.get_rng_state()  # restore() set the global RNG to the saved one; both continue from it
    plan = learner.learn(tasks[2])["plan"]
    assert plan["reasons"]["warm_start"] == [previous] and plan["candidates"][0]["params"] == previous
    torch.set_rng_state(rng)
    assert resumed.learn(tasks[2])["plan"] == plan  # the same search, candidate for candidate


def test_bad_options_are_refused():
    with pytest.raises(SelfgrowError, match="max_phi=-1.*>= 0"):
        build_grower("compound", max_phi=-1)
    with pytest.raises(SelfgrowError, match="alpha 2.5.*\\[1, 2\\]"):
        build_grower("compound", alpha=2.5)
    with pytest.raises(SelfgrowError, match="objective='time'.*flops, params"):
        build_grower("compound", objective="time")
    with pytest.raises(SelfgrowError, match="Unknown option 'alpha_depth'"):
        build_grower("compound", alpha_depth=1.2)


def test_compound_runs_end_to_end_and_explains_its_choices(tmp_path):
    run_dir, growth = digits_run(tmp_path, "compound", {"n_trials": 3, "epochs": [1, 2], "max_phi": 2})
    results = json.loads((run_dir / "results.json").read_text())
    for task, plan in enumerate(growth):
        assert len(plan["candidates"]) == 3 and plan["chosen"] is not None
        statuses = {c["status"] for c in plan["candidates"]}
        assert statuses <= {"complete", "pruned"} and "complete" in statuses
        assert all(set(c["val_accuracy"]) == {str(t) for t in range(task + 1)} for c in plan["candidates"])
        assert plan["reasons"]["pareto_front"] and plan["reasons"]["search_train_flops"] > 0
        assert results["costs"][task]["train_flops"] > plan["reasons"]["search_train_flops"]
    assert growth[1]["reasons"]["warm_start"]
    assert all(1 <= plan["reasons"]["batches_to_chosen"] <= plan["reasons"]["trials_to_chosen"] <= 3 for plan in growth)
    assert (run_dir / "plots" / "pareto_fronts.png").is_file()
    assert (run_dir / "report.html").read_text().count("data:image/png;base64,") == 4
    assert math.isfinite(results["costs"][-1]["params"])
