"""Settings that decide only predictions (the replay memory's classifier), chosen after each task's training."""

from __future__ import annotations

import copy
from dataclasses import dataclass

import pytest
import torch
from search_fixtures import QUICK, learn, learner_for, same_net
from trainer_fixtures import make_tasks

from selfgrow.errors import SelfgrowError
from selfgrow.growth import build_grower
from selfgrow.growth.prediction_choice import choose_predictions, prediction_points, scored_samples
from selfgrow.growth.validation_memory import memory_view
from selfgrow.nets import ops
from selfgrow.nets.cost import inference_flops, training_flops_per_class, training_flops_per_sample
from selfgrow.options import option
from selfgrow.retention import build_retention
from selfgrow.retention.base import Retention

CLASSIFIER = {"replay.classifier": ["head", "nme"]}
OPTIONS = {**QUICK, "width_factors": [1.0, 2.0], "max_deepen": 0, "val_memory_per_class": 3}


def replay_of(learner):
    return next(s for s in learner.retention if s.name == "replay")


def test_after_each_task_the_classifier_with_the_highest_validation_score_is_the_learners():
    learner, records = learn("searched", {**OPTIONS, "prediction_space": CLASSIFIER})
    for record in records:
        choice = record.plan.reasons["predictions"]
        scores = {s["settings"]["replay.classifier"]: s["accuracy"] for s in choice["scores"]}
        assert set(scores) == {"head", "nme"}
        assert scores[choice["chosen"]["replay.classifier"]] == max(scores.values())
    # after the first task the nearest means keep the old classes, which the head forgets on this fixture
    for record in records[1:]:
        scores = {s["settings"]["replay.classifier"]: s["accuracy"] for s in record.plan.reasons["predictions"]["scores"]}
        assert scores["nme"] > scores["head"] and record.plan.reasons["predictions"]["chosen"]["replay.classifier"] == "nme"
    # the present value is scored first: the head after task 0 (a tie there, so it stayed), the nearest means after 1
    assert [r.plan.reasons["predictions"]["scores"][0]["settings"]["replay.classifier"] for r in records] == \
        ["head", "head", "nme"]
    assert replay_of(learner).classifier == "nme" and learner.retention_settings == {"replay.classifier": "nme"}
    # the recorded score of each classifier is the learner's own: the mean validation accuracy of the seen tasks
    # (the old ones on the validation memory of 3 per class), the same samples for both
    tasks = make_tasks(3)
    memory = [memory_view(t, 3) for t in tasks[:2]] + [tasks[2]]
    replay = replay_of(learner)
    for point in records[-1].plan.reasons["predictions"]["scores"]:
        replay.classifier = point["settings"]["replay.classifier"]
        replay.prepare_predictions(learner, tasks[2])
        assert sum(learner.evaluate(memory, "val")) / 3 == point["accuracy"]
    assert records[-1].plan.reasons["predictions"]["samples"] == sum(len(t.y_val) for t in memory)


def test_the_choice_costs_its_forward_passes_in_the_tasks_search_flops():
    """Task 0's search is the same with and without the choice (candidates predict by the head either way), so the
    difference is the choice's scoring: both classifiers on the new task's validation split."""
    with_choice, records = learn("searched", {**OPTIONS, "prediction_space": CLASSIFIER}, n_tasks=1)
    _, without = learn("searched", OPTIONS, n_tasks=1)
    assert records[0].plan.candidates == without[0].plan.candidates
    scoring = 2 * float(inference_flops(with_choice.net, None, sub_network=False)) * len(make_tasks(1)[0].y_val)
    assert records[0].plan.search_flops - without[0].plan.search_flops == pytest.approx(scoring, rel=1e-12)


@dataclass
class VoteOptions:
    mode: str = option("a", choices=("a", "b"))


class Vote(Retention):
    """A strategy whose prediction setting changes nothing: both values predict by the head."""

    Options = VoteOptions
    name = "vote"
    prediction_settings = ("mode",)


def test_on_a_tie_the_present_value_stays():
    learner = learner_for("searched", {**OPTIONS, "prediction_space": {"vote.mode": ["a", "b"]}})
    learner.retention.append(Vote(mode="b"))
    first = make_tasks(1)[0]
    learner.learn(first)
    scores = learner.records[0].plan.reasons["predictions"]["scores"]
    assert [s["settings"]["vote.mode"] for s in scores] == ["b", "a"]  # the present value first
    assert scores[0]["accuracy"] == scores[1]["accuracy"]
    assert learner.retention[-1].mode == "b" and learner.retention_settings == {"vote.mode": "b"}
    assert prediction_points({"vote.mode": "b"}, {"vote.mode": ["a", "b", "a"]}) == [{"vote.mode": "b"},
                                                                                     {"vote.mode": "a"}]


def test_switching_to_the_nearest_means_after_a_task_gives_the_prototypes_of_a_memory_that_had_them_from_the_start():
    learner, _ = learn("fixed", n_tasks=2)
    nme = copy.deepcopy(learner)
    replay = replay_of(nme)
    assert len(replay.mean_ids) == 0  # the head classified: no prototypes were computed
    replay.classifier = "nme"
    replay.prepare_predictions(nme, make_tasks(2)[1])
    torch.manual_seed(0)
    from_start = learner_for("fixed")
    from_start.retention[0] = build_retention("replay", budget=12, classifier="nme")
    for task in make_tasks(2):
        from_start.learn(task)
    assert same_net(nme.net, from_start.net)  # the classifier changes nothing in training
    assert torch.equal(replay.means, replay_of(from_start).means)
    assert torch.equal(replay.mean_ids, replay_of(from_start).mean_ids)
    assert replay.mean_basis == replay_of(from_start).mean_basis


def test_under_a_train_budget_the_choices_scoring_is_planned_and_the_stream_stays_within_it():
    from selfgrow.growth.stream_budget import plan_budget

    tasks = make_tasks(3)
    options = {**OPTIONS, "width_factors": [1.0, 2.0, 4.0], "prediction_space": CLASSIFIER}
    torch.manual_seed(0)
    probe = learner_for("searched", options)
    probe.stream_tasks = 3
    scored = scored_samples(probe, tasks[0], CLASSIFIER, 3)
    assert scored == 3 * (len(tasks[0].y_val) + 2 * len(memory_view(tasks[0], 3).y_val))  # head, nme, the present
    plain, planned = plan_budget(1e12, probe, tasks[0], False), plan_budget(1e12, probe, tasks[0], False, 0.0, None, scored)
    assert planned.samples_now == plain.samples_now + scored and planned.samples_later == plain.samples_later + scored
    probe.net = ops.add_classes(probe.net, 2).net
    total = planned.projected(3 * float(training_flops_per_sample(probe.net, None)), training_flops_per_class(probe.net))
    learner = learner_for("searched", {**options, "train_budget": total})
    learner.stream_tasks = 3
    records = [learner.learn(t) for t in tasks]
    assert all("predictions" in r.plan.reasons for r in records)
    # the budget leaves no room for a search at the second task, yet its classifier is chosen after training
    assert not records[1].plan.candidates and records[1].plan.reasons["decision"].startswith("no growth: no room")
    assert records[1].plan.reasons["predictions"]["chosen"] == {"replay.classifier": "nme"}
    assert sum(r.fit.train_flops + r.plan.search_flops for r in records) <= total


@pytest.mark.parametrize("grower, options", [
    ("searched", {**OPTIONS, "prediction_space": CLASSIFIER}),
    ("random", {"space": "searched", "prediction_space": CLASSIFIER, "val_memory_per_class": 3}),  # its control
])
def test_a_run_with_the_choice_resumes_as_the_uninterrupted_one(tmp_path, grower, options):
    from search_fixtures import resumed_pair

    learner, resumed, tasks = resumed_pair(tmp_path, grower, options)
    assert replay_of(resumed).classifier == replay_of(learner).classifier == "nme"
    assert torch.equal(replay_of(resumed).means, replay_of(learner).means)
    torch.manual_seed(1)
    last = learner.learn(tasks[2])
    torch.manual_seed(1)
    again = resumed.learn(tasks[2])
    assert again.plan.reasons["predictions"] == last.plan.reasons["predictions"]
    assert same_net(resumed.net, learner.net)


def test_settings_that_decide_training_or_values_outside_the_choices_are_refused_in_one_sentence():
    with pytest.raises(SelfgrowError, match="'lwf.alpha' changes how lwf trains.*accepted: none of its settings"):
        learn("searched", {**OPTIONS, "prediction_space": {"lwf.alpha": [0.5]}}, n_tasks=1)
    with pytest.raises(SelfgrowError, match="'replay.classifier' cannot take 'knn'; accepted: one of head, nme"):
        learn("searched", {**OPTIONS, "prediction_space": {"replay.classifier": ["knn"]}}, n_tasks=1)
    with pytest.raises(SelfgrowError, match="'replay.classifier' is in both retention_space and prediction_space"):
        build_grower("searched", retention_space=CLASSIFIER, prediction_space=CLASSIFIER)
    with pytest.raises(SelfgrowError, match="growth prediction_space=.*is invalid"):
        build_grower("searched", prediction_space={"replay.classifier": []})
    with pytest.raises(SelfgrowError, match="prediction_space=.*is invalid"):
        build_grower("searched", prediction_space=["replay.classifier"])


def test_choose_predictions_leaves_the_strategies_set_to_the_winner_with_its_predictions_ready():
    learner, _ = learn("fixed", n_tasks=2)
    task = make_tasks(2)[1]
    choice = choose_predictions(learner, task, CLASSIFIER, None)
    replay = replay_of(learner)
    assert choice.settings == {"replay.classifier": "nme"} and replay.classifier == "nme"
    assert len(replay.mean_ids) == 4 and not replay.means_stale
    scores = {s["settings"]["replay.classifier"]: s["accuracy"] for s in choice.reasons["scores"]}
    assert sum(learner.evaluate(make_tasks(2), "val")) / 2 == scores["nme"]
    assert choice.reasons["samples"] == sum(len(t.y_val) for t in make_tasks(2))  # each task scored once
    both = 2 * float(inference_flops(learner.net, None, sub_network=False)) * choice.reasons["samples"]
    assert choice.flops == pytest.approx(both, rel=1e-12)  # head and nme
