"""Growers: registry and plan data, `fixed` never grows, `schedule` grows at the stated points keeping the function."""

from __future__ import annotations

import json

import pytest
import torch
from trainer_fixtures import make_net, make_tasks

from selfgrow.errors import SelfgrowError
from selfgrow.growth import GROWERS, Grower, GrowthPlan, build_grower, register_grower
from selfgrow.nets import ops
from selfgrow.train import Learner, Trainer


class _Spy(Learner):
    """A learner that checks function preservation of every growth plan before training."""

    def __init__(self, *args, **kwargs) -> None:
        super().__init__(*args, **kwargs)
        self.plans: list[dict] = []

    def learn(self, task):
        grower_plan = self.grower.plan

        def checked_plan(learner, task):
            plan = grower_plan(learner, task)
            x = torch.rand(5, 1, 4, 4)
            grown, growths = plan.apply(learner.net)
            with torch.no_grad():
                torch.testing.assert_close(grown(x), learner.net(x), atol=1e-5, rtol=1e-5)
            self.plans.append(plan.explain())
            return plan

        self.grower.plan = checked_plan
        try:
            return super().learn(task)
        finally:
            del self.grower.plan


def _run(grower, n_tasks=4, scenario="class"):
    trainer = Trainer(optimizer="sgd", epochs=1, batch_size=16, lr=0.05, device="cpu", curve_batches=0)
    learner = _Spy(make_net(scenario), grower, [], trainer, scenario)
    for task in make_tasks(n_tasks, scenario=scenario):
        learner.learn(task)
    return learner


def test_registry_builds_by_name_and_rejects_unknown_names_and_options():
    assert {"fixed", "schedule"} <= set(GROWERS)
    with pytest.raises(SelfgrowError, match="Did you mean 'fixed'"):
        build_grower("fixd")
    with pytest.raises(SelfgrowError, match="every_task.*accepted: every_tasks"):
        build_grower("schedule", every_task=2)
    with pytest.raises(SelfgrowError, match="width_factor or width_per_class"):
        build_grower("schedule", width_factor=2.0, width_per_class=1)

    @register_grower("test-only")
    class Custom(Grower):
        def plan(self, learner, task):
            return GrowthPlan()

    try:
        assert isinstance(build_grower("test-only"), Custom) and Custom.name == "test-only"
    finally:
        del GROWERS["test-only"]


def test_plan_applies_named_operators_and_explains_itself():
    net = ops.add_classes(make_net("class", hidden=[4]), 2).net
    plan = GrowthPlan(ops=[{"op": "widen", "kwargs": {"layer": "hidden.0", "by": 3}}, {"op": "deepen", "kwargs": {"at": "hidden.0"}}],
                      reasons={"why": "test"}, candidates=[{"score": 1.0}], chosen=0, search_flops=12.5,
                      grower="test")
    grown, growths = plan.apply(net)
    assert grown.spec["hidden"] == [7, 7] and net.spec["hidden"] == [4]
    assert [g.op["op"] for g in growths] == ["widen", "deepen"]
    assert json.loads(json.dumps(plan.explain())) == {"grower": "test", "search_flops": 12.5, "ops": plan.ops,
                                                      "reasons": {"why": "test"}, "candidates": [{"score": 1.0}],
                                                      "chosen": 0, "retention": {}}
    with pytest.raises(SelfgrowError, match="growth operator 'widn'.*Did you mean 'widen'"):
        GrowthPlan(ops=[{"op": "widn", "kwargs": {}}]).apply(net)


def test_fixed_never_grows_the_backbone():
    learner = _run(build_grower("fixed"), n_tasks=3)
    assert learner.net.spec["hidden"] == [16]
    assert all(p["ops"] == [] for p in learner.plans)


def test_schedule_widens_by_new_classes_and_deepens_on_its_period():
    grower = build_grower("schedule", every_tasks=1, width_per_class=3, deepen_every=2, max_width=25)
    learner = _run(grower, n_tasks=4)
    widths = [p["reasons"].get("widths") for p in learner.plans]
    assert widths == [None, {"hidden.0": [16, 22]}, {"hidden.0": [22, 25]}, {}]  # +3 per new class, capped at 25
    assert [p["reasons"].get("deepen_at") for p in learner.plans] == [None, None, "hidden.0", None]
    assert learner.net.spec["hidden"] == [25, 25]
    assert learner.plans[1]["reasons"]["new_classes_since_last_growth"] == 2


def test_schedule_width_factor_every_other_task():
    learner = _run(build_grower("schedule", every_tasks=2, width_factor=1.5), n_tasks=4)
    assert [len(p["ops"]) for p in learner.plans] == [0, 0, 1, 0]
    assert learner.net.spec["hidden"] == [24]


def test_schedule_state_round_trips():
    grower = build_grower("schedule", every_tasks=2, width_per_class=1)
    learner = _run(grower, n_tasks=2)
    copy = build_grower("schedule", every_tasks=2, width_per_class=1)
    copy.load_state_dict(json.loads(json.dumps(grower.state_dict())))
    assert copy.classes_at_last_growth == 2 and learner.net.spec["hidden"] == [16]
