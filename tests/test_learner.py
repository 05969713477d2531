"""Learner: heads per scenario, hook order, evaluation, independent nets, optimizer state through growth."""

from __future__ import annotations

import copy
import json

import pytest
import torch
from trainer_fixtures import Recorder, make_net, make_tasks

from selfgrow.errors import SelfgrowError
from selfgrow.growth import Grower, GrowthPlan, build_grower
from selfgrow.nets import ops
from selfgrow.train import Learner, TaskRecord, Trainer, remap_optimizer_state


def _trainer(**options) -> Trainer:
    return Trainer(**{"epochs": 6, "batch_size": 16, "optimizer": "sgd", "lr": 0.1, "device": "cpu", "curve_batches": 0,
                      **options})


@pytest.mark.parametrize(
    ("scenario", "head"),
    [("task", {"kind": "multi", "classes": [2, 2, 2]}), ("class", {"kind": "single", "classes": 6}),
     ("domain", {"kind": "single", "classes": 2})],
)
def test_heads_follow_the_scenario(scenario, head):
    tasks = make_tasks(3, scenario=scenario)
    learner = Learner(make_net(scenario), build_grower("fixed"), [], _trainer(epochs=1), scenario)
    for task in tasks:
        learner.learn(task)
    assert {k: learner.net.spec["head"][k] for k in head} == head
    assert learner.seen_class_ids == sorted({c for t in tasks for c in t.class_ids})


def test_task_il_learns_every_task_and_evaluates_by_head():
    tasks = make_tasks(3, scenario="task")
    learner = Learner(make_net("task"), build_grower("fixed"), [], _trainer(), "task")
    for task in tasks:
        record = learner.learn(task)
    assert record.task == 2 and record.growth == [{"op": "add_head", "n_classes": 2}]
    assert min(learner.evaluate(tasks)) >= 0.9
    assert len(learner.evaluate(tasks, split="val")) == 3


def test_hooks_run_in_order_and_see_every_growth():
    tasks = make_tasks(2, scenario="class")
    recorder = Recorder()
    learner = Learner(make_net("class"), build_grower("schedule", width_per_class=2), [recorder], _trainer(epochs=1), "class")
    for task in tasks:
        learner.learn(task)
    assert recorder.calls == [
        "on_growth add_classes", "before_task 0", "after_task 0",
        "on_growth add_classes", "on_growth widen", "before_task 1", "after_task 1",
    ]


def test_independent_mode_trains_a_fresh_net_per_task():
    tasks = make_tasks(3, scenario="class")
    learner = Learner(make_net("class"), build_grower("fixed"), [], _trainer(), "class", independent=True)
    for task in tasks:
        learner.learn(task)
    assert len(learner.nets) == 3 and learner.net is learner.nets[-1]
    assert all(n.spec["head"] == {"kind": "multi", "classes": [2], "cosine": False} for n in learner.nets)
    assert not torch.equal(learner.nets[0].layers[0].weight, learner.nets[1].layers[0].weight)
    assert min(learner.evaluate(tasks)) >= 0.9


def test_a_mismatched_head_kind_is_a_clear_error():
    learner = Learner(make_net("task"), build_grower("fixed"), [], _trainer(epochs=1), "class")
    with pytest.raises(SelfgrowError, match="single"):
        learner.learn(make_tasks(1)[0])


def test_carried_optimizer_state_follows_growth():
    net = ops.add_classes(make_net("class", hidden=[3]), 2).net
    state = {"layers.0.weight": {"exp_avg": torch.ones(3, 16), "step": torch.tensor(7.0)}}
    growth = ops.widen(net, "hidden.0", 2)
    moved = remap_optimizer_state(state, growth)
    assert moved["layers.0.weight"]["exp_avg"].shape == (5, 16)
    assert moved["layers.0.weight"]["exp_avg"][:3].eq(1).all() and moved["layers.0.weight"]["exp_avg"][3:].eq(0).all()
    assert moved["layers.0.weight"]["step"] == 7.0


def test_optimizer_state_is_kept_between_tasks_when_asked():
    tasks = make_tasks(2, scenario="class")
    learner = Learner(make_net("class"), build_grower("schedule", width_per_class=1), [],
                      _trainer(epochs=1, optimizer="adam", lr=0.01, reset_optimizer=False), "class")
    learner.learn(tasks[0])
    steps_after_first = learner.optimizer_state["layers.0.weight"]["step"].item()
    learner.learn(tasks[1])
    assert learner.optimizer_state["layers.0.weight"]["exp_avg"].shape == (18, 16)
    assert learner.optimizer_state["layers.0.weight"]["step"].item() == 2 * steps_after_first


def test_independent_mode_refuses_retention():
    with pytest.raises(SelfgrowError, match="nothing to retain"):
        Learner(make_net("class"), build_grower("fixed"), [Recorder()], _trainer(), "class", independent=True)


class _HandOver(Grower):
    """Grows nothing, but hands over weights it 'trained' and, when asked, the fit that trained them."""

    def __init__(self, with_fit: bool) -> None:
        self.with_fit = with_fit

    def plan(self, learner, task) -> GrowthPlan:
        weights = {k: torch.full_like(v, 0.5) for k, v in learner.net.state_dict().items()}
        fit = Trainer(optimizer="sgd", lr=0.01, epochs=3, device="cpu", curve_batches=0).fit(copy.deepcopy(learner.net), task, "class", []) if self.with_fit else None
        return GrowthPlan(weights=weights, fit=fit)


def test_a_plan_hands_over_trained_weights_and_its_fit():
    task = make_tasks(1, scenario="class")[0]
    learner = Learner(make_net("class"), _HandOver(with_fit=True), [], _trainer(), "class")
    record = learner.learn(task)
    assert all(torch.equal(v, torch.full_like(v, 0.5)) for v in learner.net.state_dict().values())
    assert record.fit.epochs == 3  # the handed-over fit, not the learner's 6 epochs
    learner = Learner(make_net("class"), _HandOver(with_fit=False), [], _trainer(epochs=1), "class")
    record = learner.learn(task)
    assert record.fit.epochs == 1
    assert not torch.equal(learner.net.layers[0].weight, torch.full_like(learner.net.layers[0].weight, 0.5))


def test_a_task_record_round_trips_through_its_dict_and_holds_no_tensors():
    tasks = make_tasks(2, scenario="class")
    learner = Learner(make_net("class"), build_grower("schedule", width_per_class=1), [],
                      _trainer(epochs=1, optimizer="adam", lr=0.01, reset_optimizer=False), "class")
    records = [learner.learn(task) for task in tasks]
    assert learner.records == records and isinstance(records[-1], TaskRecord)
    for record in records:
        saved = record.to_dict()
        assert list(saved) == ["task", "name", "plan", "growth", "spec", "fit", "spec_before", "frozen"]
        assert saved["plan"] == record.plan.explain() and saved["fit"] == record.fit.to_dict()
        assert TaskRecord.from_dict(json.loads(json.dumps(saved))).to_dict() == saved
    assert [g["op"] for g in records[1].growth] == ["add_classes", "widen"] and records[1].plan.ops
    assert learner.optimizer_state and all(r.fit.optimizer_state == {} for r in records)  # carried, but not kept per task
    learner.net.spec["hidden"].append(99)  # the record is a snapshot, not a view of the live net
    assert records[1].spec["hidden"][-1] != 99


def test_a_task_record_keeps_no_handed_over_weights_or_fit():
    task = make_tasks(1, scenario="class")[0]
    learner = Learner(make_net("class"), _HandOver(with_fit=True), [], _trainer(), "class")
    record = learner.learn(task)
    assert record.plan.weights is None and record.plan.fit is None
    assert record.fit.epochs == 3  # the handed-over fit is still the record's fit, without its optimizer state
    assert TaskRecord.from_dict(record.to_dict()).to_dict() == record.to_dict()
