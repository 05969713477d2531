"""`random` grower (L2BG's random-growth control): seeded uniform draws within the budget, resume, state, CLI."""

from __future__ import annotations

import json
from collections import Counter
from types import SimpleNamespace

import pytest
import torch
from search_fixtures import learner_for, resumed_pair
from trainer_fixtures import make_tasks, run_config_file

from selfgrow.errors import SelfgrowError
from selfgrow.growth import RandomGrower, build_grower
from selfgrow.growth.compound import FLOPS_TOLERANCE
from selfgrow.growth.random_growth import space_options
from selfgrow.nets import build, cost, preset
from selfgrow.registry import accepted_options
from selfgrow.retention import build_retention

HEAD = {"kind": "single", "classes": 4}


def mlp(hidden: int = 16):
    torch.manual_seed(0)
    return build(preset("mlp-tiny", (1, 8, 8), HEAD) | {"hidden": [hidden]})


def plans(grower, net, n_tasks: int = 4, grow: bool = True):
    """The grower's plans for tasks 0..n_tasks-1 (no training), the net growing by each plan unless not `grow`."""
    learner = SimpleNamespace(net=net, scenario="class", retention=[])
    made = []
    for index in range(n_tasks):
        plan = grower.plan(learner, SimpleNamespace(index=index))
        if grow:
            learner.net = plan.apply(learner.net)[0]
        made.append(plan)
    return made, learner.net


def points(made):
    return [plan.reasons["random"]["point"] for plan in made]


@pytest.mark.parametrize("space", ["searched", "compound"])
def test_the_same_seed_draws_the_same_points_and_other_seeds_differ(space):
    drawn = {seed: points(plans(build_grower("random", space=space, seed=seed), mlp(), 3)[0]) for seed in range(6)}
    assert points(plans(build_grower("random", space=space, seed=0), mlp(), 3)[0]) == drawn[0]
    assert any(drawn[seed] != drawn[0] for seed in range(1, 6))


def test_draws_are_uniform_over_the_points_within_the_budget():
    net = mlp()  # searched space: widen hidden.0 by 1, 1.5, 2 x deepen hidden.0 by 0, 1: six points
    budget = cost.inference_flops(build(net.spec | {"hidden": [24, 24]}))  # leaves out width 32 with a layer
    grower = build_grower("random", space="searched", max_flops=budget)
    made, _ = plans(grower, net, n_tasks=300, grow=False)
    counts = Counter(json.dumps(p, sort_keys=True) for p in points(made))
    within = [{"widen:hidden.0": f, "deepen:hidden.0": d} for f in (1.0, 1.5, 2.0) for d in (0, 1)
              if (f, d) != (2.0, 1)]
    assert set(counts) == {json.dumps(p, sort_keys=True) for p in within}
    assert all(30 <= n <= 90 for n in counts.values())  # 60 expected each
    assert all(plan.reasons["random"]["flops"] <= budget for plan in made)


@pytest.mark.parametrize("space", ["searched", "compound"])
def test_every_choice_is_within_the_budget_and_trains_nothing(space):
    budget = 3 * cost.inference_flops(mlp())
    options = {"width_factors": [1, 2, 4], "max_deepen": 2} if space == "searched" else {"max_phi": 3}
    for seed in range(3):
        made, net = plans(build_grower("random", space=space, seed=seed, max_flops=budget, **options), mlp(), 3)
        assert cost.inference_flops(net) <= budget
        for plan in made:
            assert plan.reasons["random"]["flops"] <= budget and plan.search_flops == 0.0
            assert plan.reasons["rule"].startswith("random growth (control)") and plan.candidates == []


def test_retention_strengths_are_drawn_uniformly_with_the_growth_and_set_on_the_learner():
    grower = build_grower("random", space="searched", retention_space={"lwf.alpha": [0.0, 4.0]})
    learner = SimpleNamespace(net=mlp(), scenario="class", retention=[build_retention("lwf")])
    made = [grower.plan(learner, SimpleNamespace(index=index)) for index in range(300)]
    counts = Counter(plan.retention["lwf.alpha"] for plan in made)
    assert set(counts) == {0.0, 1.0, 4.0}  # 1.0, the present value, joins the choices as in a search
    assert all(70 <= n <= 130 for n in counts.values())  # 100 expected each
    assert all(plan.retention["lwf.alpha"] == plan.reasons["random"]["point"]["retention:lwf.alpha"] for plan in made)
    torch.manual_seed(0)
    trained = learner_for("random", {"space": "searched", "retention_space": {"lwf.alpha": [0.0, 4.0]}})
    records = [trained.learn(task) for task in make_tasks(2)]
    lwf = next(s for s in trained.retention if s.name == "lwf")
    assert lwf.alpha == records[-1].plan.retention["lwf.alpha"]
    assert trained.retention_settings == {"lwf.alpha": lwf.alpha}


def test_a_retention_choice_is_drawn_uniformly_among_its_declared_choices():
    grower = build_grower("random", space="searched", retention_space={"replay.classifier": ["nme"]})
    learner = SimpleNamespace(net=mlp(), scenario="class", retention=[build_retention("replay")])
    made = [grower.plan(learner, SimpleNamespace(index=index)) for index in range(200)]
    counts = Counter(plan.retention["replay.classifier"] for plan in made)
    assert set(counts) == {"head", "nme"} and all(70 <= n <= 130 for n in counts.values())  # "head": the present one


def test_with_no_draw_within_the_budget_the_net_does_not_grow():
    net = mlp()
    decisions = []
    for seed in range(8):  # only "no growth" fits; one draw finds it one time in six
        made, _ = plans(build_grower("random", seed=seed, max_draws=1, max_flops=cost.inference_flops(net)), net, 1)
        assert made[0].ops == []
        decisions.append(made[0].reasons["decision"])
    assert any("no draw of 1 within the budget, no growth" in d for d in decisions)


def test_with_no_draw_within_the_budget_the_retention_choice_is_still_drawn_uniformly():
    """Under a budget only "no growth" fits, with either classifier: the control keeps drawing the classifier."""
    net = mlp()
    grower = build_grower("random", max_draws=1, max_flops=cost.inference_flops(net), width_factors=[2.0],
                          retention_space={"replay.classifier": ["nme"]})
    learner = SimpleNamespace(net=net, scenario="class", retention=[build_retention("replay")])
    made = [grower.plan(learner, SimpleNamespace(index=index)) for index in range(300)]
    assert all(plan.ops == [] for plan in made)
    missed = [plan for plan in made if "no draw of 1 within the budget" in plan.reasons["decision"]]
    assert len(missed) >= 150  # the one draw widened the net: over the budget
    counts = Counter(plan.retention["replay.classifier"] for plan in missed)
    assert set(counts) == {"head", "nme"} and all(0.35 <= n / len(missed) <= 0.65 for n in counts.values())


def test_a_budget_below_the_current_net_stops_with_one_sentence():
    with pytest.raises(SelfgrowError, match=r"random grower's budget is smaller than the cheapest net it can choose before task 0"):
        plans(build_grower("random", max_params=10), mlp(), 1)


@pytest.mark.parametrize("grower", ["random", "searched"])
def test_a_net_over_its_budget_after_the_first_task_is_not_grown_and_the_run_goes_on(grower):
    # a class-IL head grows with each task's classes: a net chosen within max_params may exceed it at the next task
    from selfgrow.nets.cost import count_params

    net = mlp()
    learner = SimpleNamespace(net=net, scenario="class", retention=[])
    plan = build_grower(grower, max_params=count_params(net) - 1).plan(learner, SimpleNamespace(index=1))
    assert plan.ops == [] and plan.reasons["decision"].startswith("no growth: the net exceeds the budget (")
    assert "since its head grew with this task's classes" in plan.reasons["decision"]


def test_the_compound_space_keeps_the_compound_state_as_compound_does():
    grower = build_grower("random", space="compound", seed=3, max_phi=2)
    made, net = plans(grower, mlp(), n_tasks=3)
    compound, current = build_grower("compound", max_phi=2), mlp()
    for plan, point in zip(made, points(made)):  # the compound grower told the same choices
        compound.space(SimpleNamespace(net=current), None)
        assert compound.ops_for(current, point) == plan.ops
        compound.chosen(current, {"params": point}, None, (reasons := {}))
        compound.history.append({"task": plan.reasons["task"], "chosen": point, "best": point})
        assert plan.reasons["compound"] == reasons["compound"]
        current = plan.apply(current)[0]
    without_run_id = lambda state: {k: v for k, v in state.items() if k != "knowledge"}  # each grower's own id
    assert without_run_id(grower.inner.state_dict()) == without_run_id(compound.state_dict())
    phi_total = sum(p["phi"] for p in points(made))
    assert grower.inner.phi_total == phi_total > 0
    assert cost.inference_flops(net) == pytest.approx(cost.inference_flops(mlp()) * 2**phi_total, rel=FLOPS_TOLERANCE)


def test_a_fitting_first_task_draws_alpha_then_keeps_it():
    grower = build_grower("random", space="compound", fit_coefficients=True, alpha_grid=[1.0, 1.5], seed=1)
    made, _ = plans(grower, mlp(), n_tasks=2)
    first, second = points(made)
    assert set(first) == {"phi", "alpha"} and set(second) == {"phi"}
    assert grower.inner.alpha == (first["alpha"] if first["phi"] > 0 else 1.2)


def test_a_resumed_grower_draws_what_the_uninterrupted_one_draws(tmp_path):
    learner, resumed, tasks = resumed_pair(tmp_path, "random", {"space": "compound", "seed": 5})
    rng = torch.get_rng_state()
    plan = learner.learn(tasks[2]).plan.explain()
    torch.set_rng_state(rng)
    assert resumed.learn(tasks[2]).plan.explain() == plan
    with pytest.raises(SelfgrowError, match="draws from space 'searched' but the checkpoint's drew from 'compound'"):
        build_grower("random").load_state_dict(learner.grower.state_dict())


def test_bad_options_are_refused_in_one_sentence():
    cases = [
        ({"space": "nas"}, r"grower 'random' option space='nas' is invalid; accepted: one of searched, compound, searched-extractor\."),
        ({"max_phi": 2}, r"random option 'max_phi' belongs to space 'compound'; with space 'searched' accepted: "
                         r"width_factors, max_deepen, layers, depth_points\."),
        ({"space": "compound", "width_factors": [2]}, r"'width_factors' belongs to space 'searched'"),
        ({"max_draws": 0}, r"grower 'random' option max_draws=0 is invalid; accepted: an integer >= 1\."),
        ({"space": "compound", "alpha": 3}, r"random grower \(space 'compound'\): grower 'compound' option alpha=3 is invalid"),
        ({"max_flops": -1}, r"grower 'random' option max_flops=-1 is invalid; accepted: null or a finite number > 0\."),
        ({"n_trials": 4}, r"Unknown option 'n_trials' for grower 'random'"),
    ]
    for options, message in cases:
        with pytest.raises(SelfgrowError, match=message):
            build_grower("random", **options)


def test_its_space_options_are_exactly_those_of_the_spaces():
    own = {"space", "pick", "max_draws", "max_flops", "max_params", "train_budget", "mode", "seed", "retention_space",
           "prediction_space", "val_memory_per_class"}
    spaces = ("searched", "compound", "searched-extractor")
    assert set(accepted_options(RandomGrower)) - own == set().union(*(space_options(s) for s in spaces))


@pytest.mark.parametrize("space, scenario", [("compound", "class"), ("searched", "task")])
def test_random_growth_runs_end_to_end_through_the_cli(tmp_path, space, scenario):
    config = {
        "name": f"random-{space}", "seed": 0, "output": str(tmp_path / "runs"),
        "stream": {"name": "split", "dataset": "digits", "scenario": scenario, "n_tasks": 2},
        "net": {"preset": "mlp-tiny"},
        "growth": {"name": "random", "options": {"space": space, "seed": 1, "max_flops": 20000}},
        "retention": [{"name": "replay", "options": {"budget": 40}}],
        "trainer": {"epochs": 1, "batch_size": 64, "optimizer": "adam", "lr": 0.003, "progress": False},
    }
    run_dir, growth = run_config_file(tmp_path, config)
    results = json.loads((run_dir / "results.json").read_text())
    assert len(growth) == 2 and all(plan["reasons"]["random"]["space"] == space for plan in growth)
    assert all(plan["search_flops"] == 0.0 and plan["grower"] == "random" and plan["candidates"] == [] for plan in growth)
    assert all(c["inference_flops"] <= 20000 for c in results["costs"])
    assert (space == "compound") == all("compound" in plan["reasons"] for plan in growth)
    assert (run_dir / "report.html").is_file()


CLASSIFIER = {"replay.classifier": ["head", "nme"]}


def test_with_a_prediction_space_the_classifier_is_chosen_after_training_as_a_search_chooses_it():
    """The control of a searched grower that chooses the classifier after training: the same choice, on the same
    validation memory (counted in memory), its scoring the only search FLOPs; without the space, nothing is kept."""
    from search_fixtures import learn

    from selfgrow.growth.validation_memory import memory_bytes

    options = {"space": "searched", "prediction_space": CLASSIFIER, "val_memory_per_class": 3}
    learner, records = learn("random", options)
    for record in records:
        choice = record.plan.reasons["predictions"]
        scores = {s["settings"]["replay.classifier"]: s["accuracy"] for s in choice["scores"]}
        assert set(scores) == {"head", "nme"} and scores[choice["chosen"]["replay.classifier"]] == max(scores.values())
        assert record.plan.search_flops > 0 and record.plan.candidates == []
    # on this fixture the head forgets the old classes and the nearest means keep them, as for the searched grower
    assert [r.plan.reasons["predictions"]["chosen"]["replay.classifier"] for r in records[1:]] == ["nme", "nme"]
    assert learner.retention_settings == {"replay.classifier": "nme"}
    assert learner.grower.memory_bytes(learner) == memory_bytes(learner.seen, 3) > 0
    plain, plain_records = learn("random", {"space": "searched"})
    assert plain.grower.memory_bytes(plain) == 0
    assert all("predictions" not in r.plan.reasons and r.plan.search_flops == 0 for r in plain_records)
    # the growth draws do not depend on the choice
    assert [r.plan.reasons["random"]["point"] for r in records] == [r.plan.reasons["random"]["point"]
                                                                    for r in plain_records]


def test_under_a_train_budget_the_controls_plan_counts_the_choices_scoring():
    from search_fixtures import learner_for

    from selfgrow.growth.prediction_choice import scored_samples
    from selfgrow.growth.stream_budget import plan_budget

    tasks = make_tasks(3)
    options = {"space": "searched", "prediction_space": CLASSIFIER, "val_memory_per_class": 3, "train_budget": 1e12}
    torch.manual_seed(0)
    learner = learner_for("random", options)
    learner.stream_tasks = 3
    plan = learner.grower.plan(learner, tasks[0])
    plain = plan_budget(1e12, learner, tasks[0], False)
    scored = scored_samples(learner, tasks[0], CLASSIFIER, 3)
    assert scored > 0
    assert plan.reasons["stream_budget"]["samples_now"] == plain.samples_now + scored
    assert plan.reasons["stream_budget"]["samples_later"] == plain.samples_later + scored


def test_pick_largest_takes_a_point_within_the_budget_that_no_single_parameter_can_grow_from():
    """The no-search control of the capacity rule: the same largest point whatever the seed, within the budget, and
    every one-parameter raise of it over the budget; the strengths are still drawn; nothing is trained."""
    net = mlp()
    budget = cost.inference_flops(build(net.spec | {"hidden": [32]}))
    options = {"width_factors": [1, 1.5, 2, 4], "max_deepen": 2, "max_flops": budget}
    chosen = {json.dumps(points(plans(build_grower("random", pick="largest", seed=seed, **options), net, 1,
                                      grow=False)[0])[0], sort_keys=True) for seed in range(4)}
    assert len(chosen) == 1
    point = json.loads(chosen.pop())
    grower = build_grower("random", pick="largest", **options)
    plan = grower.plan(SimpleNamespace(net=net, scenario="class", retention=[]), SimpleNamespace(index=0))
    assert plan.reasons["random"]["pick"] == "largest" and plan.search_flops == 0.0 and plan.candidates == []
    assert plan.reasons["rule"].startswith("random growth (control): the largest point of the searched space")
    assert point != {"widen:hidden.0": 1.0, "deepen:hidden.0": 0}
    assert cost.inference_flops(plan.apply(net)[0]) <= budget
    inner = grower.inner
    values = {"widen:hidden.0": [1, 1.5, 2, 4], "deepen:hidden.0": [0, 1, 2]}
    raises = [{**point, name: v} for name, vs in values.items() for v in vs if v > point[name]]
    assert raises and all(inner._propose(net, None, p).over_budget is not None for p in raises)
    learner = SimpleNamespace(net=mlp(), scenario="class", retention=[build_retention("lwf")])
    drawn = build_grower("random", pick="largest", retention_space={"lwf.alpha": [0.0, 4.0]}, **options)
    alphas = {drawn.plan(learner, SimpleNamespace(index=index)).retention["lwf.alpha"] for index in range(30)}
    assert alphas == {0.0, 1.0, 4.0}


def test_pick_largest_with_nothing_within_the_budget_does_not_grow_and_refuses_the_compound_space():
    net = mlp()
    made, _ = plans(build_grower("random", pick="largest", max_flops=cost.inference_flops(net)), net, 1)
    assert made[0].ops == [] and "no growth within the budget, no growth" in made[0].reasons["decision"]
    with pytest.raises(SelfgrowError, match=r"random pick 'largest' needs a space whose points are ordered by size, "
                                            r"not 'compound' \(its phi is continuous\); accepted: space searched or "
                                            r"searched-extractor\."):
        build_grower("random", space="compound", pick="largest")


def test_pick_largest_under_a_train_budget_takes_the_largest_widening_that_fits_the_stream():
    """Under the stream's budget the largest point whose training to the end fits is taken (here 2x, where 4x does not
    fit), with no search; the stream never spends more than the budget."""
    from search_fixtures import learner_for

    from selfgrow.nets import ops
    from selfgrow.nets.cost import training_flops_per_sample

    tasks = make_tasks(3)
    probe = learner_for("fixed")
    probe.net = ops.add_classes(probe.net, 2).net
    n = int(tasks[0].y_train.numel())
    remaining = probe.trainer.planned_samples(n) + 2 * probe.trainer.planned_samples(n, replaying=1)
    total = 3 * float(training_flops_per_sample(probe.net, None)) * remaining  # affords 2x the start, not 4x
    torch.manual_seed(0)
    learner = learner_for("random", {"space": "searched", "pick": "largest", "width_factors": [1, 2, 4],
                                     "max_deepen": 0, "train_budget": total})
    learner.stream_tasks = 3
    records = [learner.learn(task) for task in tasks]
    assert [r.plan.reasons["random"]["point"]["widen:hidden.0"] for r in records] == [2.0, 1.0, 1.0]
    assert all(r.plan.search_flops == 0.0 for r in records)
    assert sum(r.fit.train_flops for r in records) <= total
