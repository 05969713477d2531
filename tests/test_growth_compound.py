"""`compound` grower: EfficientNet scaling formula, zero growth = fixed, FLOPs budget, coefficient fit, resume, end to end."""

from __future__ import annotations

import json
import math
from types import SimpleNamespace

import pytest
import torch
from search_fixtures import QUICK, digits_run, learn, learner_for, resumed_pair, same_net
from trainer_fixtures import make_net, make_tasks

from selfgrow.errors import SelfgrowError
from selfgrow.growth import GrowthPlan, build_grower
from selfgrow.growth.compound import FLOPS_TOLERANCE
from selfgrow.nets import PRESETS, build, cost, ops, preset


@pytest.mark.parametrize("options", [{"max_phi": 0}, {**QUICK, "tolerance": 1.0}],
                         ids=["max_phi-0", "search-picks-no-growth"])  # n_trials 0 is refused (RELIABILITY.md)
def test_zero_growth_gives_exactly_the_fixed_net(options):
    fixed, _ = learn("fixed")
    grown, records = learn("compound", options)
    assert same_net(grown.net, fixed.net)
    assert all(r.plan.ops == [] for r in records)
    searched = options.get("n_trials", 6) > 0 and options.get("max_phi", 2) > 0
    assert all((r.plan.search_flops > 0) == searched for r in records)


# Small inputs keep every preset quick; the convnet needs 19x19 for its three conv + pool layers.
SHAPES = {"mlp": (1, 8, 8), "resnet": (3, 8, 8), "convnet": (3, 19, 19)}
HEAD = {"kind": "single", "classes": 10}


def grown(grower, net, phi):
    """`net` grown by `grower` at `phi` (the grower sees `net` first, as its search would)."""
    grower.space(SimpleNamespace(net=net), None)
    return GrowthPlan(ops=grower.ops_for(net, {"phi": phi})).apply(net)[0]


def assert_same_function(old, new, shape):
    x = torch.rand(4, *shape)
    old.eval(), new.eval()
    with torch.no_grad():
        torch.testing.assert_close(new(x), old(x))


@pytest.mark.parametrize("name", sorted(PRESETS))
def test_measured_flops_follow_two_to_the_phi_on_every_preset(name):
    torch.manual_seed(0)
    kind = PRESETS[name]["kind"]
    if kind not in SHAPES:  # modular nets (MNTDP's), one head per task path
        net = build(preset(name, (3, 8, 8), {"kind": "multi", "classes": [10]}))
        with pytest.raises(SelfgrowError, match=f"compound scales mlp, convnet and resnet nets; this net is '{kind}'"):
            build_grower("compound").space(SimpleNamespace(net=net), None)
        return
    net = build(preset(name, SHAPES[kind], HEAD))
    base = cost.inference_flops(net)
    for phi in (1.0, 2.0):
        big = grown(build_grower("compound"), net, phi)
        assert cost.inference_flops(big) == pytest.approx(base * 2**phi, rel=FLOPS_TOLERANCE)
        assert_same_function(net, big, SHAPES[kind])


def test_accumulated_phi_compounds_on_the_first_nets_flops():
    for name, shape in (("mlp-tiny", (1, 8, 8)), ("resnet-tiny", (3, 8, 8))):
        net = build(preset(name, shape, HEAD))
        base, grower = cost.inference_flops(net), build_grower("compound")
        reasons = {}
        once = grown(grower, net, 1.0)
        grower.chosen(net, {"params": {"phi": 1.0}}, None, reasons)  # task 0 picks phi 1
        assert reasons["compound"]["flops"] == cost.inference_flops(once) and reasons["compound"]["target_flops"] == 2 * base
        twice = grown(grower, once, 1.0)  # task 1 picks phi 1: Phi' = 2, the target is 4x the first net's
        grower.chosen(once, {"params": {"phi": 1.0}}, None, reasons)
        assert grower.phi_total == 2.0 and grower.base_flops == base
        assert cost.inference_flops(twice) == pytest.approx(4 * base, rel=FLOPS_TOLERANCE)
        assert reasons["compound"]["flops_ratio"] == pytest.approx(cost.inference_flops(twice) / base)
        assert reasons["compound"]["target_ratio"] == 4.0
        assert_same_function(net, twice, shape)


def test_depth_rounds_to_nearest_and_one_multiplier_scales_every_width():
    resnet = build(preset("resnet18-reduced", (3, 8, 8), HEAD))  # 4 stages x 2 blocks at 64
    grower = build_grower("compound", alpha=1.2)
    assert [s["blocks"] for s in grown(grower, resnet, 1.0).spec["stages"]] == [2] * 4  # round(2 x 1.2) = 2
    deep = grown(grower, resnet, 2.0)  # round(2 x 1.44) = 3
    assert [s["blocks"] for s in deep.spec["stages"]] == [3] * 4
    assert len({s["width"] for s in deep.spec["stages"]} | {h for s in deep.spec["stages"] for h in s["hidden"]}) == 1
    tiny = build(preset("resnet-tiny", (3, 8, 8), HEAD))  # one block per stage: ceil(1.2) would double it
    assert [s["blocks"] for s in grown(build_grower("compound"), tiny, 2.0).spec["stages"]] == [1, 1]
    mlp = build(preset("mlp-tiny", (1, 8, 8), HEAD))
    deeper = build_grower("compound", alpha=1.8)  # round(1.8) = 2 layers: widen first, the copy takes the new width
    hidden = grown(deeper, mlp, 1.0).spec["hidden"]
    assert len(hidden) == 2 and hidden[0] == hidden[1] > 16
    assert [op["op"] for op in deeper.ops_for(mlp, {"phi": 1.0})] == ["widen", "deepen"]


def test_a_phi_whose_target_the_net_already_meets_grows_nothing():
    net = build(preset("mlp-tiny", (1, 8, 8), HEAD))
    grower = build_grower("compound")
    grower.load_state_dict({"base_flops": cost.inference_flops(net) / 4})  # as if the net were 4x its base already
    grower.space(SimpleNamespace(net=net), None)
    assert grower.ops_for(net, {"phi": 1.0}) == []  # target 2x base < the net's FLOPs
    assert grower.ops_for(net, {"phi": 2.0}) == []  # target 4x base = the net's FLOPs
    assert grower.ops_for(net, {"phi": 3.0})  # target 8x base
    assert grower.ops_for(net, {"phi": 0.0}) == []


def test_base_flops_and_scale_survive_a_resume():
    net = build(preset("resnet-tiny", (3, 8, 8), HEAD))
    grower = build_grower("compound")
    once = grown(grower, net, 1.0)
    grower.chosen(net, {"params": {"phi": 1.0}}, None, {})
    state = json.loads(json.dumps(grower.state_dict()))
    assert state["base_flops"] == cost.inference_flops(net)
    resumed = build_grower("compound")
    resumed.load_state_dict(state)
    resumed.space(SimpleNamespace(net=once), None)
    assert resumed.ops_for(once, {"phi": 1.0}) == grower.ops_for(once, {"phi": 1.0})
    assert resumed.state_dict() == grower.state_dict()


def test_a_flops_budget_caps_the_target_and_is_never_exceeded():
    net = ops.add_classes(make_net("class", hidden=[8]), 2).net
    budget = 1.5 * cost.inference_flops(net)
    learner, records = learn("compound", {**QUICK, "n_trials": 4, "max_phi": 3, "max_flops": budget}, n_tasks=1)
    candidates, chosen = records[0].plan.candidates, records[0].plan.chosen
    assert candidates[chosen]["flops"] <= budget and candidates[chosen]["status"] == "complete"
    growing = [c for c in candidates if c["params"]["phi"] > 0]
    assert growing and all(cost.inference_flops(net) < c["flops"] <= budget for c in growing)  # 2^phi capped to the budget
    assert all(c["status"] != "over_budget" for c in candidates)
    assert cost.inference_flops(learner.net) <= budget


def test_points_over_a_params_budget_are_never_trained():
    net = ops.add_classes(make_net("class", hidden=[8]), 2).net
    budget = cost.count_params(net) + 10  # phi >= 1 grows more than 10 parameters
    learner, records = learn("compound", {**QUICK, "n_trials": 4, "max_phi": 2, "max_params": budget}, n_tasks=1)
    candidates = records[0].plan.candidates
    over = [c for c in candidates if c["status"] == "over_budget"]
    assert over and all(c["params"]["phi"] > 0 and "accuracy" not in c for c in over)
    assert cost.count_params(learner.net) <= budget


def test_a_budget_below_the_current_net_stops_with_one_sentence():
    with pytest.raises(SelfgrowError, match=r"budget is smaller than the cheapest net .*max_flops >= [\d,]+"):
        learn("compound", {**QUICK, "max_flops": 10}, n_tasks=1)


def test_coefficients_are_fitted_on_the_first_task():
    grower = build_grower("compound", **{**QUICK, "n_trials": 4}, fit_coefficients=True, alpha_grid=[1.0, 1.5])
    learner = learner_for("fixed")
    learner.grower = grower
    record = learner.learn(make_tasks(1)[0])
    assert {"phi", "alpha"} <= set(record.plan.candidates[1]["params"])
    assert grower.alpha in (1.0, 1.5) and grower.alpha * grower.beta**2 == pytest.approx(2.0)
    assert record.plan.reasons["compound"]["alpha_beta2"] == pytest.approx(2.0)
    assert "alpha" not in grower.space(learner, None)  # later tasks search phi only


def test_resume_keeps_the_warm_start_state(tmp_path):
    learner, resumed, tasks = resumed_pair(tmp_path, "compound", {**QUICK, "warm_start": 1})
    previous = learner.grower.history[-1]  # the last task's chosen point, then its most accurate one if another
    expected = [previous["chosen"]] + ([previous["best"]] if previous["best"] != previous["chosen"] else [])
    rng = torch.get_rng_state()  # restore() set the global RNG to the saved one; both continue from it
    plan = learner.learn(tasks[2]).plan.explain()
    assert plan["reasons"]["warm_start"] == expected and plan["candidates"][0]["params"] == previous["chosen"]
    torch.set_rng_state(rng)
    assert resumed.learn(tasks[2]).plan.explain() == plan  # the same search, candidate for candidate


def test_bad_options_are_refused():
    with pytest.raises(SelfgrowError, match="max_phi=-1.*>= 0"):
        build_grower("compound", max_phi=-1)
    with pytest.raises(SelfgrowError, match="alpha=2.5 is invalid; accepted: a finite number in \\[1, 2\\]"):
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
        assert plan["reasons"]["pareto_front"] and plan["search_flops"] > 0
        assert results["costs"][task]["train_flops"] > plan["search_flops"]
    assert growth[1]["reasons"]["warm_start"]
    assert all(1 <= plan["reasons"]["batches_to_chosen"] <= plan["reasons"]["trials_to_chosen"] <= 3 for plan in growth)
    assert (run_dir / "plots" / "pareto_fronts.png").is_file()
    assert (run_dir / "report.html").read_text().count("data:image/png;base64,") == 5  # with the architecture drawing
    for plan in growth:  # the reasons hold the FLOP target and the measured ratio to the first net
        scaled = plan["reasons"]["compound"]
        assert scaled["flops_ratio"] == pytest.approx(scaled["flops"] / scaled["base_flops"])
        assert scaled["phi"] == 0 or scaled["flops"] <= scaled["target_flops"] * (1 + FLOPS_TOLERANCE)
    assert math.isfinite(results["costs"][-1]["params"])
