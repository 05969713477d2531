"""`searched` grower: operator-space choices, zero growth = fixed, parameter budget, end to end with the knee rule."""

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
from selfgrow.retention.base import Retention


@pytest.mark.parametrize("options", [{"width_factors": [1.0], "max_deepen": 0}, {**QUICK, "tolerance": 1.0}],
                         ids=["nothing-to-grow", "search-picks-no-growth"])
def test_zero_growth_gives_exactly_the_fixed_net(options):
    fixed, _ = learn("fixed")
    grown, records = learn("searched", options)
    assert same_net(grown.net, fixed.net)
    assert all(r.plan.ops == [] for r in records)


def test_the_space_names_every_growth_point_and_points_become_function_preserving_operators():
    net = build(preset("resnet-tiny", (3, 8, 8), {"kind": "single", "classes": 3}))
    grower = build_grower("searched", width_factors=[2.0], max_deepen=2, layers=["stage.0", "stage.1.block.0"], mode="split")
    space = grower.space(SimpleNamespace(net=net), None)
    assert sorted(space) == ["deepen:stage.0", "deepen:stage.1", "widen:stage.0", "widen:stage.1.block.0"]
    assert space["widen:stage.0"].choices == (1.0, 2.0) and (space["deepen:stage.1"].low, space["deepen:stage.1"].high) == (0, 2)
    assert grower.no_growth(space) == {"deepen:stage.0": 0, "deepen:stage.1": 0, "widen:stage.0": 1.0, "widen:stage.1.block.0": 1.0}
    params = {"widen:stage.0": 2.0, "widen:stage.1.block.0": 2.0, "deepen:stage.0": 1, "deepen:stage.1": 2}
    calls = grower.ops_for(net, params)
    assert calls == [
        {"op": "widen", "kwargs": {"layer": "stage.0", "by": 8, "mode": "split"}},
        {"op": "widen", "kwargs": {"layer": "stage.1.block.0", "by": 8, "mode": "split"}},
        {"op": "deepen", "kwargs": {"at": "stage.1"}}, {"op": "deepen", "kwargs": {"at": "stage.1"}},
        {"op": "deepen", "kwargs": {"at": "stage.0"}},
    ]
    grown = GrowthPlan(ops=calls).apply(net)[0]
    assert [(s["width"], s["blocks"], s["hidden"]) for s in grown.spec["stages"]] == [(16, 2, [8, 16]), (8, 3, [16, 8, 8])]
    x = torch.rand(4, 3, 8, 8)
    net.eval(), grown.eval()
    with torch.no_grad():
        torch.testing.assert_close(grown(x), net(x), atol=1e-5, rtol=1e-5)


def test_deepening_several_layers_of_an_mlp_keeps_the_names_valid():
    net = ops.add_classes(make_net("class", hidden=[4, 6]), 2).net
    grower = build_grower("searched", width_factors=[1.5], max_deepen=2)
    params = {"widen:hidden.0": 1.5, "widen:hidden.1": 1.0, "deepen:hidden.0": 2, "deepen:hidden.1": 1}
    grown = GrowthPlan(ops=grower.ops_for(net, params)).apply(net)[0]
    assert grown.spec["hidden"] == [6, 6, 6, 6, 6]
    x = torch.rand(5, 1, 4, 4)
    with torch.no_grad():
        torch.testing.assert_close(grown(x), net(x), atol=1e-5, rtol=1e-5)


def test_a_parameter_budget_is_never_exceeded_and_the_points_over_it_take_no_trial():
    net = ops.add_classes(make_net("class", hidden=[8]), 2).net
    budget = int(1.6 * cost.count_params(net))
    options = {**QUICK, "n_trials": 5, "width_factors": [1.0, 1.5, 3.0], "objective": "params", "max_params": budget}
    learner, records = learn("searched", options)
    for record in records:
        candidates, chosen = record.plan.candidates, record.plan.chosen
        assert candidates[chosen]["n_params"] <= budget and candidates[chosen]["cost"] == candidates[chosen]["n_params"]
        assert all(c["n_params"] <= budget for c in candidates if c["status"] != "over_budget")
        counted = [c for c in candidates if c.get("counted", True)]
        turned = [c for c in candidates if not c.get("counted", True)]
        assert len(counted) == 5  # the points over the budget were turned away without taking a trial ...
        assert all(c["status"] == "over_budget" and c["spent_flops"] == 0.0 for c in turned)
        if any(c["status"] == "over_budget" for c in counted):  # ... until the search had turned 4 x 5 away
            assert len(turned) == 4 * 5
        first = candidates[chosen].get("same_as", candidates[chosen]["trial"])
        assert record.plan.reasons["trials_to_chosen"] == sum(c["trial"] <= first for c in counted)
    assert any(not c.get("counted", True) for r in records for c in r.plan.candidates)
    assert cost.count_params(learner.net) <= budget


def test_bad_options_are_refused():
    with pytest.raises(SelfgrowError, match="width_factors=\\[0.5\\].*>= 1"):
        build_grower("searched", width_factors=[0.5])
    with pytest.raises(SelfgrowError, match="max_deepen=-1"):
        build_grower("searched", max_deepen=-1)
    with pytest.raises(SelfgrowError, match="rule='pareto'.*parsimony, accuracy, mnas, knee"):
        build_grower("searched", rule="pareto")
    with pytest.raises(SelfgrowError, match="z=-0.5.*>= 0"):
        build_grower("searched", z=-0.5)
    with pytest.raises(SelfgrowError, match="val_memory_per_class=0.*integer >= 1"):
        build_grower("searched", val_memory_per_class=0)
    with pytest.raises(SelfgrowError, match="repeats=0 is invalid.*integer >= 1"):
        build_grower("searched", repeats=0)
    with pytest.raises(SelfgrowError, match="sampler='cmaes' is invalid; accepted: one of nsga2, tpe, gp, random, cost-gp\\."):
        build_grower("searched", sampler="cmaes")
    with pytest.raises(SelfgrowError, match="proxy_schedule='linear' is invalid; accepted: null or one of none, cosine, "
                                            "cosine_steps, step \\("):
        build_grower("searched", proxy_schedule="linear")


def test_searched_runs_end_to_end_with_the_knee_rule(tmp_path):
    options = {"n_trials": 4, "epochs": 1, "sampler": "nsga2", "rule": "knee", "width_factors": [1.0, 2.0]}
    run_dir, growth = digits_run(tmp_path, "searched", options)
    for plan in growth:
        assert len(plan["candidates"]) == 4 and plan["reasons"]["rule"] == "knee of the Pareto front"
        chosen = plan["candidates"][plan["chosen"]]
        assert chosen["status"] == "complete" and chosen["trial"] == plan["reasons"]["chosen_trial"]
        assert set(plan["reasons"]["pareto_front"]) <= {c["trial"] for c in plan["candidates"]}
        assert all(c["params"] for c in plan["candidates"])
    assert (run_dir / "plots" / "pareto_fronts.png").is_file()


def test_candidates_can_train_on_a_stratified_fraction_of_the_task():
    from search_fixtures import learner_for
    from trainer_fixtures import make_tasks

    from selfgrow.growth.candidates import CandidateTraining

    learner = learner_for("fixed")
    task = make_tasks(1)[0]
    learner.net = ops.add_classes(learner.net, 2).net
    candidate = CandidateTraining(learner, task, [], data_fraction=0.5)
    counts = torch.bincount(candidate.train_task.y_train).tolist()
    full = torch.bincount(task.y_train).tolist()
    assert counts == [round(n * 0.5) for n in full]  # per class, as stratified_split rounds
    assert candidate.train_task.x_val is task.x_val  # scored on the full validation split
    with pytest.raises(SelfgrowError, match="data_fraction=0"):
        build_grower("searched", data_fraction=0)


class _PoisonWide(Retention):
    """A NaN penalty whenever the net is wider than it started: every grown candidate diverges."""

    def __init__(self, width: int) -> None:
        self.width = width

    def penalty(self, net, batch, logits):
        return logits.sum() * float("nan") if net.spec["hidden"][0] > self.width else None


def test_diverging_candidates_fail_and_are_never_chosen():
    learner = learner_for("searched", {**QUICK, "width_factors": [1.0, 2.0], "max_deepen": 0})
    learner.retention = [_PoisonWide(width=8)]
    record = learner.learn(make_tasks(1)[0])
    candidates = record.plan.candidates
    grown = [c for c in candidates if c["ops"]]
    assert grown and all(c["status"] == "failed" and "diverged" in c["reason"] for c in grown)
    assert candidates[record.plan.chosen]["ops"] == [] and learner.net.spec["hidden"] == [8]


def test_candidates_carry_their_named_objectives_and_old_tasks_are_scored_on_the_validation_memory():
    learner, records = learn("searched", {**QUICK, "val_memory_per_class": 3})
    tasks = make_tasks(3)
    for record in records[1:]:
        for candidate in record.plan.candidates:
            if candidate["status"] not in ("complete", "pruned"):
                continue
            new = str(record.task)
            sizes = candidate["val_sizes"]
            assert sizes[new] == len(tasks[record.task].y_val)  # the new task: its whole split
            assert all(n == 3 * 2 for k, n in sizes.items() if k != new)  # earlier tasks: 3 per class, 2 classes
            assert candidate["plasticity"] == candidate["val_accuracy"][new]
            assert -1.0 <= candidate["stability"] <= 1.0 and candidate["se"] > 0
            assert candidate["accuracy"] == pytest.approx(sum(candidate["val_accuracy"].values()) / len(sizes))
    assert all("stability" in text for text in [" ".join(records[1].plan.reasons["objectives"])])
    # the memory is counted: 3 per class of each of the 3 seen tasks' 2 classes, 1x4x4 float images + labels
    sample = tasks[0].x_val[0].numel() * tasks[0].x_val.element_size() + tasks[0].y_val.element_size()
    assert learner.grower.memory_bytes(learner) == 3 * 6 * sample


def test_the_default_rule_is_parsimony_and_picks_the_cheapest_candidate_not_distinguishable_from_the_best():
    learner, records = learn("searched", {**QUICK, "width_factors": [1.0, 2.0, 4.0]})
    for record in records:
        plan = record.plan.explain()
        assert plan["reasons"]["rule"].endswith("(parsimony)")
        done = [c for c in plan["candidates"] if c["status"] == "complete"]
        best = max(done, key=lambda c: c["accuracy"])
        near = [c for c in done if c["accuracy"] >= best["accuracy"] - (c["se"] ** 2 + best["se"] ** 2) ** 0.5 - 1e-12]
        assert plan["candidates"][plan["chosen"]]["cost"] == min(c["cost"] for c in near)


def test_retention_strengths_are_searched_with_the_growth_applied_to_the_learner_and_kept_on_resume():
    options = {**QUICK, "n_trials": 4, "halving_batch": 4, "width_factors": [1.0, 2.0], "max_deepen": 0,
               "retention_space": {"lwf.alpha": [0.0, 4.0]}}
    learner, records = learn("searched", options)
    lwf = next(s for s in learner.retention if s.name == "lwf")
    for record in records:
        plan = record.plan.explain()
        params = [c["params"] for c in plan["candidates"]]
        assert all(p["retention:lwf.alpha"] in (0.0, 1.0, 4.0) for p in params)  # 1.0: the present value joins
        chosen = plan["candidates"][plan["chosen"]]["params"]["retention:lwf.alpha"]
        assert plan["retention"] == {"lwf.alpha": chosen}
    assert lwf.alpha == records[-1].plan.retention["lwf.alpha"]
    assert learner.retention_settings == {"lwf.alpha": lwf.alpha}
    # the same growth with two strengths is two candidates, each with its own result
    keys = {(json.dumps(c["ops"]), c["params"]["retention:lwf.alpha"]) for c in records[0].plan.candidates}
    assert len(keys) == len({c["trial"] for c in records[0].plan.candidates if "same_as" not in c})
    # a learner restored from the state gets the chosen strength although its config says 1.0
    fresh = learner_for("searched", options)
    fresh.load_state_dict(learner.state_dict(), make_tasks(3))
    assert next(s for s in fresh.retention if s.name == "lwf").alpha == lwf.alpha


def test_retention_settings_that_name_nothing_are_refused_in_one_sentence():
    with pytest.raises(SelfgrowError, match="retention_space=.*mapping"):
        build_grower("searched", retention_space={"lwf.alpha": []})
    with pytest.raises(SelfgrowError, match="'ewc.lam' names no single strategy.*replay, lwf"):
        learn("searched", {**QUICK, "retention_space": {"ewc.lam": [10.0]}})
    with pytest.raises(SelfgrowError, match="'lwf.teacher' is not a numeric attribute of lwf.*alpha"):
        learn("searched", {**QUICK, "retention_space": {"lwf.teacher": [1.0]}})
    with pytest.raises(SelfgrowError, match="'replay.classifier' cannot take 'knn'; accepted: one of head, nme"):
        learn("searched", {**QUICK, "retention_space": {"replay.classifier": ["nme", "knn"]}})
    with pytest.raises(SelfgrowError, match="'lwf.alpha' cannot take 'high'; accepted: numbers"):
        learn("searched", {**QUICK, "retention_space": {"lwf.alpha": ["high"]}})
    with pytest.raises(SelfgrowError, match="retention_space=.*numbers, or of the option's choices"):
        build_grower("searched", retention_space={"replay.classifier": ["nme", 1.0]})


def test_a_retention_choice_is_searched_with_the_growth_and_the_learner_predicts_by_the_chosen_classifier():
    """A string option with declared choices (the replay memory's classifier) is a searched setting like a strength:
    candidates predict by their classifier when scored, the chosen one is the learner's."""
    from selfgrow.retention.settings import settable

    options = {**QUICK, "n_trials": 4, "halving_batch": 4, "width_factors": [1.0, 2.0], "max_deepen": 0,
               "retention_space": {"replay.classifier": ["nme"]},
               "initial_points": [{"widen:hidden.0": 2.0, "retention:replay.classifier": "nme"}]}
    learner, records = learn("searched", options)
    replay = next(s for s in learner.retention if s.name == "replay")
    assert settable(replay)["classifier"] == ["head", "nme"] and settable(replay)["budget"] is None
    for record in records:
        candidates = record.plan.explain()["candidates"]
        assert {c["params"]["retention:replay.classifier"] for c in candidates} <= {"head", "nme"}
        assert any(c["params"]["retention:replay.classifier"] == "nme" and c["status"] == "complete"
                   for c in candidates)  # the enqueued nme point, its feature layer widened, was scored
    # after the first task the nearest means keep the old classes (the head forgets them here): nme is chosen
    second = records[1].plan.explain()["candidates"]
    scores = {k: [c["accuracy"] for c in second if c["params"]["retention:replay.classifier"] == k] for k in ("head", "nme")}
    assert min(scores["nme"]) > max(scores["head"]) and records[1].plan.retention == {"replay.classifier": "nme"}
    assert replay.classifier == records[-1].plan.retention["replay.classifier"] == "nme"
    assert learner.retention_settings == {"replay.classifier": "nme"}
    assert len(replay.mean_ids) == 6  # the learner predicts by the means of the 3 tasks' classes


def test_repeats_combine_into_the_mean_with_the_spread_in_the_standard_error():
    from selfgrow.growth.candidates import combine_repeats

    runs = [{"accuracy": 0.8, "plasticity": 0.9, "stability": -0.1, "se": 0.03, "val_accuracy": {"0": 0.7, "1": 0.9},
             "val_sizes": {"0": 10, "1": 20}},
            {"accuracy": 0.6, "plasticity": 0.5, "stability": -0.3, "se": 0.05, "val_accuracy": {"0": 0.7, "1": 0.5},
             "val_sizes": {"0": 10, "1": 20}}]
    combined = combine_repeats(runs)
    assert combined["accuracy"] == pytest.approx(0.7) and combined["plasticity"] == pytest.approx(0.7)
    assert combined["stability"] == pytest.approx(-0.2)
    assert combined["val_accuracy"] == pytest.approx({"0": 0.7, "1": 0.7})
    # sample variance of (0.8, 0.6) is 0.02; mean validation variance (0.0009 + 0.0025) / 2 = 0.0017
    assert combined["se"] == pytest.approx((0.0017 + 0.02 / 2) ** 0.5)
    assert combined["repeat_scores"] == [0.8, 0.6]
    assert combine_repeats(runs[:1])["se"] == pytest.approx(0.03)  # one run: the validation error alone


def test_repeated_candidates_train_each_repeat_on_its_own_stream_and_score_their_mean():
    options = {**QUICK, "width_factors": [1.0, 2.0], "max_deepen": 0}
    _, single = learn("searched", options, n_tasks=3)
    _, repeated = learn("searched", {**options, "repeats": 3}, n_tasks=3)
    # task 0 starts from the same net in both runs: its no-growth candidate is the same candidate
    first_single, first = (next(c for c in r[0].plan.candidates if c["ops"] == []) for r in (single, repeated))
    scores = first["repeat_scores"]
    assert len(scores) == 3 and first["accuracy"] == pytest.approx(sum(scores) / 3)
    assert scores[0] == pytest.approx(first_single["accuracy"], abs=1e-6)  # repeat 0 is the single run
    assert first["spent_flops"] == pytest.approx(3 * first_single["spent_flops"], rel=1e-9)
    trained = [c for r in repeated for c in r.plan.candidates if c["status"] == "complete"]
    assert all(len(c["repeat_scores"]) == 3 for c in trained)
    assert any(len(set(c["repeat_scores"])) > 1 for c in trained)  # the repeats differ (batch order, growth draws)


@pytest.mark.parametrize("deciding", ["bic", "bias_correction", "nme"])
def test_candidates_are_scored_as_the_learner_evaluates_after_the_task(deciding):
    """An after-task step that decides predictions (BiC's correction, weight aligning) counts in a candidate's score,
    run on copies: the candidate's net and strategies stay as trained."""
    from selfgrow.growth.candidates import CandidateTraining
    from selfgrow.retention import build_retention
    from selfgrow.train import accuracy

    torch.manual_seed(0)
    learner = learner_for("fixed")
    if deciding == "nme":  # the nearest-mean classifier: the new classes' means come from the memory update
        learner.retention = [build_retention("lwf"), build_retention("replay", budget=12, classifier="nme")]
    else:
        options = {"per_class": 4, "steps": 100} if deciding == "bic" else {}
        learner.retention = [build_retention("replay", budget=12), build_retention(deciding, **options)]
    tasks = make_tasks(2, per_class=40)
    learner.learn(tasks[0])
    learner.net = ops.add_classes(learner.net, 2).net
    candidate = CandidateTraining(learner, tasks[1], [])
    scored = candidate.train_to(3)["val_accuracy"]["1"]
    trained = candidate.state_dict()
    state = json.dumps(candidate.retention[1].state_dict(), default=str)
    assert candidate.score()["val_accuracy"]["1"] == scored  # scoring again: the copies start anew
    assert all(torch.equal(v, trained[k]) for k, v in candidate.net.state_dict().items())
    assert json.dumps(candidate.retention[1].state_dict(), default=str) == state
    raw = accuracy(candidate.net, tasks[1], "class", "val")
    learner.net.load_state_dict(candidate.state_dict())  # the learner, trained as the candidate was
    learner.retention = candidate.retention
    learner.seen.append(tasks[1])
    for strategy in learner.retention:
        strategy.after_task(learner, tasks[1])
    assert learner.evaluate([tasks[1]], "val")[0] == scored != raw


def test_a_search_widens_the_feature_layer_under_the_nearest_mean_classifier():
    """Candidates whose features grow are scored by the nearest means of their own features (the replay memory's
    prototypes follow the growth), and the learner predicts by the grown net's means."""
    from selfgrow.retention import build_retention

    torch.manual_seed(0)
    widened = {"widen:hidden.0": 2.0}
    learner = learner_for("searched", {**QUICK, "width_factors": [1.0, 2.0], "max_deepen": 0,
                                       "initial_points": [widened]})
    learner.retention = [build_retention("lwf"), build_retention("replay", budget=12, classifier="nme")]
    records = [learner.learn(t) for t in make_tasks(2)]
    scored = [c for c in records[1].plan.candidates if c["params"] == widened]
    assert scored and scored[0]["status"] == "complete"
    replay = learner.retention[1]
    assert replay.means.shape == (4, learner.net.spec["hidden"][-1])


@pytest.mark.parametrize("schedule", ["cosine_steps", None])
def test_proxy_schedule_anneals_every_rung_of_the_candidates_and_restarts_at_the_next(monkeypatch, schedule):
    """With `proxy_schedule: cosine_steps` each rung's steps run at lr (1 + cos(pi k / K)) / 2 (K: the rung's steps),
    the next rung starting again at the trainer's lr; null keeps the trainer's (here constant) lr."""
    from selfgrow.growth.candidates import CandidateTraining

    rungs: list[list[float]] = []
    training = []
    step, train_to = torch.optim.Adam.step, CandidateTraining.train_to

    def recording_step(self, *args, **kwargs):
        if training:
            rungs[-1].append(self.param_groups[0]["lr"])
        return step(self, *args, **kwargs)

    def recording_train_to(self, epochs):
        rungs.append([])
        training.append(True)
        try:
            return train_to(self, epochs)
        finally:
            training.pop()

    monkeypatch.setattr(torch.optim.Adam, "step", recording_step)
    monkeypatch.setattr(CandidateTraining, "train_to", recording_train_to)
    options = {"n_trials": 3, "epochs": [1, 2], "halving_batch": 3, "width_factors": [1.0, 2.0], "max_deepen": 0,
               "proxy_schedule": schedule}
    learn("searched", options, n_tasks=2)
    trained = [lrs for lrs in rungs if lrs]
    assert len(trained) >= 4 and any(len(lrs) > 1 for lrs in trained)
    for lrs in trained:
        if schedule is None:
            assert lrs == [0.01] * len(lrs)
        else:
            assert lrs == pytest.approx([0.01 * (1 + math.cos(math.pi * k / len(lrs))) / 2 for k in range(len(lrs))])
