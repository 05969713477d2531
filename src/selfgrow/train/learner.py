"""`Learner`: ties the net, the grower, the retention strategies and the trainer into learning one task at a time.

Heads: nets are built with no task heads (`{"kind": "multi", "classes": []}`) or an empty single
head (`{"kind": "single", "classes": 0}`) and the learner adds what each task needs before growth:
task-IL appends one head per task (`ops.add_head`; head k serves task index k), class-IL appends one
output per new stream-wide class id (`ops.add_classes`, so output j is class id j), domain-IL makes
the shared head cover the task's class ids. A head the net already has (e.g. built for the first
task) is kept when its size matches.

Independent mode (`independent=True`, the "a new net per task" baseline): every task gets a fresh
net built from the initial net's spec with one head of its own; it is trained and evaluated on its
task alone with local labels, i.e. with the task id as an oracle in every scenario. (Each such net
sees its task as task 0, so its batch-order and augmentation seeds are those of task 0; the data
differ, so the runs are still independent draws.)
"""

from __future__ import annotations

import copy
import dataclasses
from collections.abc import Callable, Sequence
from typing import Any

import torch

from selfgrow.errors import SelfgrowError
from selfgrow.growth.base import AdoptedTraining, Grower, GrowthPlan
from selfgrow.retention.base import Retention, overriding
from selfgrow.retention.settings import apply_settings
from selfgrow.streams.task import Task
from selfgrow.train.batches import check_scenario
from selfgrow.train.evaluate import accuracy
from selfgrow.train.records import TaskRecord
from selfgrow.train.trainer import FitResult, OptimizerState, Trainer


def frozen_entries(net: torch.nn.Module, retention: Sequence[Retention]) -> dict[str, list[int]]:
    """Per parameter, [entries kept fixed during the task, entries]: the net's own frozen parameters and the
    largest share any strategy freezes (shares of one tensor from two strategies may overlap, so the larger is kept)."""
    declared = net.frozen_parameter_names() if hasattr(net, "frozen_parameter_names") else set()
    shares = {name: 1.0 for name in declared}
    for strategy in retention:
        for name, share in strategy.frozen_share(net).items():
            shares[name] = max(shares.get(name, 0.0), float(share))
    return {name: [round(shares.get(name, 0.0) * p.numel()), p.numel()] for name, p in net.named_parameters()}


class Learner:
    """Learns a stream task by task: heads, growth plan, retention hooks, training."""

    def __init__(
        self,
        net: torch.nn.Module,
        grower: Grower,
        retention: Sequence[Retention] = (),
        trainer: Trainer | None = None,
        scenario: str = "class",
        independent: bool = False,
        stream_tasks: int | None = None,
    ) -> None:
        self.scenario = check_scenario(scenario)
        if independent and retention:
            raise SelfgrowError(
                "Independent mode trains a fresh net per task, so there is nothing to retain; "
                f"drop the retention strategies ({', '.join(r.name for r in retention)})."
            )
        self.grower = grower
        self.retention = list(retention)
        self.trainer = trainer or Trainer()
        self.independent = independent
        self.stream_tasks = stream_tasks  # the stream's length, for growers that plan over it (None: unknown)
        self.template_spec = copy.deepcopy(net.spec)
        self.net = net
        self.nets: list[torch.nn.Module] = []  # independent mode: the net of task k at position k
        self.seen: list[Task] = []
        self.seen_class_ids: list[int] = []
        self.records: list[TaskRecord] = []  # what each learnt task did, in order
        self.optimizer_state: OptimizerState = {}
        self.retention_settings: dict[str, float] = {}  # strengths chosen by growth searches so far
        self.search_backend: Any = None  # where growth searches run: None in process, else a distributed coordinator
        self.on_step: Callable[[float], None] | None = None  # told each training step's loss (the run's loggers)

    # ---- learning -----------------------------------------------------------------------------

    def learn(self, task: Task) -> TaskRecord:
        """Add heads, grow by the grower's plan, run the retention hooks around training; returns its `TaskRecord`."""
        if self.independent:
            self.net, self.optimizer_state = self._fresh_net(task), {}
        train_task, scenario = self._training_view(task)
        spec_before = copy.deepcopy(self.net.spec)
        head_growths = self._head_growths(self.net, train_task, scenario)
        self._adopt(head_growths)
        plan: GrowthPlan = self.grower.plan(self, task)
        plan.grower = plan.grower or self.grower.name
        growths = plan.apply(self.net)[1]
        self._adopt(growths)
        if plan.weights is not None:
            self.net.load_state_dict(plan.weights)
        if plan.retention:
            apply_settings(self.retention, plan.retention)
            self.retention_settings.update(plan.retention)
        if self.independent:
            self.nets.append(self.net)
        if plan.adopted is not None:
            fit, frozen = self._take_over(plan.adopted)
        else:
            for strategy in self.retention:
                strategy.before_task(self, task)
            frozen = frozen_entries(self.net, self.retention)
            fit = plan.fit or self.trainer.fit(
                self.net, train_task, scenario, self.retention, optimizer_state=self.optimizer_state,
                on_step=self.on_step,
            )
        self.optimizer_state = fit.optimizer_state
        self.seen.append(task)
        self.seen_class_ids = sorted({*self.seen_class_ids, *task.class_ids})
        for strategy in self.retention:
            strategy.after_task(self, task)
        choice = self.grower.choose_predictions(self, task)
        if choice is not None:
            self.retention_settings.update(choice.settings)
            plan.reasons["predictions"] = choice.reasons
            plan.search_flops += choice.flops
        self.grower.after_task(self, task)
        record = TaskRecord.snapshot(
            task=task.index,
            name=task.name,
            plan=plan,
            growth=[g.op for g in head_growths + growths],
            spec=self.net.spec,
            fit=fit,
            spec_before=spec_before,
            frozen=frozen,
        )
        self.records.append(record)
        return record

    def _take_over(self, adopted: AdoptedTraining) -> tuple[FitResult, dict[str, list[int]]]:
        """Make a candidate's training the task's: its net, optimizer state and strategies replace the learner's
        (in place, so the strategies list stays the one others hold); returns its fit and what it kept frozen."""
        if len(adopted.retention) != len(self.retention):
            raise SelfgrowError(f"The adopted training has {len(adopted.retention)} retention strategies; "
                                f"the learner has {len(self.retention)}.")
        self.net = adopted.net
        self.optimizer_state = adopted.optimizer_state
        self.retention[:] = adopted.retention
        return adopted.fit, frozen_entries(self.net, self.retention)

    def _adopt(self, growths: list[Any]) -> None:
        """Make the last grown net current and carry optimizer and retention state through each growth."""
        for growth in growths:
            self.net = growth.net
            self.optimizer_state = remap_optimizer_state(self.optimizer_state, growth)
            for strategy in self.retention:
                strategy.on_growth(growth)

    def _head_growths(self, net: torch.nn.Module, task: Task, scenario: str) -> list[Any]:
        """The head operators `task` needs (none when the head already covers it), applied in order."""
        from selfgrow.nets import ops

        head = net.spec["head"]
        wanted = "multi" if scenario == "task" else "single"
        if head["kind"] != wanted:
            raise SelfgrowError(
                f"Scenario {scenario!r} needs a {wanted!r} head, but the net's head is {head['kind']!r}."
            )
        if scenario == "task":
            have = len(head["classes"])
            if have > task.index:
                if head["classes"][task.index] != task.n_classes:
                    raise SelfgrowError(
                        f"Head {task.index} has {head['classes'][task.index]} outputs but task {task.name!r} "
                        f"has {task.n_classes} classes."
                    )
                return []
            if have < task.index:
                raise SelfgrowError(f"Task index {task.index} arrives but the net has only {have} heads.")
            return [ops.add_head(net, task.n_classes)]
        missing = max(task.class_ids) + 1 - head["classes"]
        return [ops.add_classes(net, missing)] if missing > 0 else []

    def _training_view(self, task: Task) -> tuple[Task, str]:
        """The task and scenario training sees: independent nets learn their task alone with head 0."""
        if self.independent:
            return dataclasses.replace(task, index=0), "task"
        return task, self.scenario

    def _fresh_net(self, task: Task) -> torch.nn.Module:
        """A new net from the initial spec, with no heads, for task `task` (independent mode)."""
        from selfgrow.nets import build

        if task.index != len(self.nets):
            raise SelfgrowError(f"Task index {task.index} arrives but {len(self.nets)} tasks were learnt.")
        return build({**self.template_spec, "head": {**self.template_spec["head"], "kind": "multi", "classes": []}})

    # ---- evaluation ---------------------------------------------------------------------------

    def evaluate(self, tasks: Sequence[Task], split: str = "test") -> list[float]:
        """Accuracy on `split` of each task (the scenario's protocol; independent nets routed by task id)."""
        batch = self.trainer.eval_batch_size
        if self.independent:
            return [
                accuracy(self.nets[t.index], dataclasses.replace(t, index=0), "task", split, batch_size=batch)
                for t in tasks
            ]
        own = overriding(self.retention, "predict")  # e.g. a nearest-mean-of-exemplars classifier
        return [accuracy(self.net, t, self.scenario, split, batch_size=batch, classifiers=own) for t in tasks]

    # ---- state --------------------------------------------------------------------------------

    def state_dict(self) -> dict[str, Any]:
        """Everything needed to continue exactly: specs and weights, optimizer, retention, grower, history."""
        nets = self.nets if self.independent else [self.net]
        return {
            "scenario": self.scenario,
            "independent": self.independent,
            "template_spec": copy.deepcopy(self.template_spec),
            "nets": [{"spec": copy.deepcopy(n.spec), "weights": _cpu_state(n)} for n in nets],
            "optimizer_state": self.optimizer_state,
            "retention": [r.state_dict() for r in self.retention],
            "grower": self.grower.state_dict(),
            "seen": [t.index for t in self.seen],
            "seen_class_ids": list(self.seen_class_ids),
            "records": [r.to_dict() for r in self.records],
            "retention_settings": dict(self.retention_settings),
        }

    def load_state_dict(self, state: dict[str, Any], tasks: Sequence[Task] | None = None) -> None:
        """Restore `state_dict()`; `tasks` (the stream) re-links the seen tasks, which are stored by index."""
        from selfgrow.nets import build

        if state["scenario"] != self.scenario or bool(state["independent"]) != self.independent:
            raise SelfgrowError(
                f"The checkpoint is for scenario {state['scenario']!r} (independent={state['independent']}), "
                f"not {self.scenario!r} (independent={self.independent})."
            )
        if len(state["retention"]) != len(self.retention):
            raise SelfgrowError(
                f"The checkpoint holds {len(state['retention'])} retention strategies; this learner has {len(self.retention)}."
            )
        nets = []
        for entry in state["nets"]:
            net = build(entry["spec"])
            net.load_state_dict(entry["weights"])
            nets.append(net)
        self.template_spec = copy.deepcopy(state["template_spec"])
        self.nets = nets if self.independent else []
        if nets:
            self.net = nets[-1]
        self.optimizer_state = {k: dict(v) for k, v in state["optimizer_state"].items()}
        for strategy, entry in zip(self.retention, state["retention"]):
            strategy.load_state_dict(entry)
        self.retention_settings = dict(state.get("retention_settings", {}))
        apply_settings(self.retention, self.retention_settings)
        self.grower.load_state_dict(state["grower"])
        self.seen = [tasks[i] for i in state["seen"]] if tasks is not None else []
        self.seen_class_ids = list(state["seen_class_ids"])
        self.records = [TaskRecord.from_dict(r) for r in state["records"]]


def remap_optimizer_state(state: OptimizerState, growth: Any) -> OptimizerState:
    """Name-keyed optimizer state moved onto a grown net (see `selfgrow.nets.ops.carry_optimizer_state`).

    Entries shaped like the old parameter are placed at its index in zeros of the new shape; scalar
    entries (Adam's step) are kept. Parameters that are new get no state (they start fresh).
    """
    if not state:
        return {}
    new_params = dict(growth.net.named_parameters())
    out: OptimizerState = {}
    for old_name, entries in state.items():
        if old_name not in growth.param_map:
            continue
        new_name, index = growth.param_map[old_name]
        target = new_params[new_name]
        placed = {}
        for key, value in entries.items():
            if value.dim() == 0:
                placed[key] = value.clone()
            else:
                grown = torch.zeros(target.shape, dtype=value.dtype, device=value.device)
                grown[index] = value
                placed[key] = grown
        out[new_name] = placed
    return out


def _cpu_state(net: torch.nn.Module) -> dict[str, torch.Tensor]:
    """The net's state dict as detached CPU copies."""
    return {k: v.detach().cpu().clone() for k, v in net.state_dict().items()}
