"""The `bindgrow` grower: Learn to Bind and Grow (L2BG, seed 001) on a JointNet (`selfgrow.nets.jointnet`).

Before each task t after the first (Algorithm 1, the Bind-Grow step):
1. train the independent task-net G_t↓ (the JointNet's module templates, one path, one head) on
   t alone for `task_epochs` epochs; its validation error is t's single-task baseline E_φ,t;
2. feed `rsa_samples` validation samples of t to G_t↓ and to every old task b's current path G_b
   and score each depth's conflict C_t,b(l) = (1 − RSA) / 2 (`rsa.py`);
3. bind t to the old task of least task conflict ‖C_t,b‖ (`nucleus.least_conflicting`);
4. normalise C_t,b into a distribution over the expandable `layers` and expand the nucleus: the
   fewest most-conflicting layers whose cumulative mass reaches the grow coefficient δ_t; the
   op `bind_task` gives t b's path with new copies of b's modules at the nucleus depths.
The learner then trains t's task-net inside the JointNet with the run's retention.
The first task has nothing to bind to: it trains the JointNet's initial path alone, so the joint
net after it is its independent task-net and gives its baseline.

δ_t (and, with `search_binding`, b_t) come from the multi-objective search of `SearchGrower` (Optuna,
NSGA-II by default as in the paper) over grid points of `delta_range` in steps of `delta_step`
(the paper's U{0, 1} in steps of 0.05): candidates are the grown JointNet trained briefly and scored
by (average multi-task gain Δ over the seen tasks and t, `gain.py`; parameter count). Every
candidate, the Pareto front and the rule's choice are in the plan; a fixed `delta` skips the search
(and with it the search's budgets `max_params` / `max_flops`, which bound searched candidates only).

Retention: L2BG trains layers shared with earlier tasks with a slow learning rate. The JointNet
freezes nothing itself, so this is the run's `slow_lr` retention (its `factor` is the slow-lr
factor; the copies made by `bind_task` are new weights and learn at the full rate); `freeze` gives
the paper's frozen variant and no retention its "no change in lr" one (its Fig. 3).

State (resume): the single-task baselines and the search history; while a task is planned, also
its conflict model, so a distributed search worker rebuilt from the learner's state poses the
same search (the same space, candidates and Δ).

Deviations from the paper, and why:
- Grow sequences are searched one task at a time (streaming: each task's training data is seen
  only then, the paper's scenario (a)), not as whole sequences re-run from the first task; with
  the `warm_start` of `SearchGrower` the last tasks' δ are tried first, close to the paper's shared
  δ. Candidates train for the search's short `epochs` (a CPU budget), not to convergence.
- Δ is the mean of (E_φ − E) / E_φ (a gain, see `gain.py`); baselines of 0 error count one mistake.
- The nucleus "reaches" δ (cumulative mass >= δ) instead of "exceeds" it, so δ = 0 means no
  expansion, as the paper says δ ~ 0 should.
- RSA runs on a seeded sample of the validation set (quadratic memory in the sample count).
- Layers are the JointNet's modules (one per depth; a residual stage counts as one layer).
"""

from __future__ import annotations

import contextlib
import dataclasses
from collections.abc import Iterator
from typing import Any

import torch

from selfgrow.errors import SelfgrowError
from selfgrow.growth.base import GrowthPlan, register_grower
from selfgrow.growth.bindgrow.gain import GainScored, baseline_error
from selfgrow.growth.bindgrow.nucleus import (
    conflict_distribution,
    least_conflicting,
    nucleus,
    task_conflict,
)
from selfgrow.growth.bindgrow.rsa import layer_conflicts
from selfgrow.growth.searching import SearchGrower
from selfgrow.nets.jointnet import JointNet


@dataclasses.dataclass
class BindContext:
    """What the conflict model found for one task, shared by the search's candidates and the plan's reasons."""

    task: int
    layers: list[int]
    conflicts: dict[int, list[float]]  # old task -> conflict per depth
    rsa_binding: int
    baseline: float
    independent: dict[str, Any]
    rsa_samples: int
    flops: float  # independent training and RSA forward passes

    def to_state(self) -> dict[str, Any]:
        """Plain data (JSON keys are text)."""
        return {**dataclasses.asdict(self), "conflicts": {str(b): c for b, c in self.conflicts.items()}}

    @classmethod
    def from_state(cls, state: dict[str, Any]) -> BindContext:
        return cls(**{**state, "conflicts": {int(b): list(c) for b, c in state["conflicts"].items()}})

    def expansion(self, source: int, delta: float) -> tuple[list[float], list[int]]:
        """The conflict distribution over the expandable layers when bound to `source`, and its δ-nucleus."""
        distribution = conflict_distribution([self.conflicts[source][d] for d in self.layers])
        return distribution, nucleus(dict(zip(self.layers, distribution)), delta)


@register_grower("bindgrow")
class BindGrowGrower(SearchGrower):
    """Learn to Bind and Grow: RSA binding and δ-nucleus expansion, δ searched (see the module docstring).

    Options: `delta` (a fixed grow coefficient in [0, 1]; null: searched), `delta_range` [low, high]
    and `delta_step` (the searched grid), `search_binding` (also search the bound task; the RSA
    choice is tried first), `layers` (the depths that may be expanded, over which the conflicts are
    normalised; binding still weighs every depth; null: all), `task_epochs` (of
    the independent task-net; null: the trainer's), `rsa_samples` (validation samples for RSA,
    at least 3), and the search options of `SearchGrower` (here n_trials 6, sampler nsga2, objective
    params by default).
    """

    def __init__(
        self,
        delta: float | None = None,
        delta_range: list[float] | None = None,
        delta_step: float = 0.05,
        search_binding: bool = False,
        layers: list[int] | None = None,
        task_epochs: int | None = None,
        rsa_samples: int = 200,
        **search_options: Any,
    ) -> None:
        n_trials = search_options.get("n_trials", 6)
        if delta is None and isinstance(n_trials, int) and not isinstance(n_trials, bool) and n_trials < 1:
            raise SelfgrowError(f"bindgrow n_trials={n_trials} leaves δ unchosen; accepted: an integer >= 1.")
        super().__init__(**{"n_trials": 6, "sampler": "nsga2", "objective": "params", **search_options})
        low, high = _delta_range(delta_range)
        if not _is_number(delta_step) or not 0 < delta_step <= 1:
            raise SelfgrowError(f"bindgrow delta_step={delta_step!r} is invalid; accepted: a number in (0, 1].")
        if abs((high - low) / delta_step - round((high - low) / delta_step)) > 1e-6:
            raise SelfgrowError(
                f"bindgrow delta_range [{low:g}, {high:g}] is not a whole number of delta_step {delta_step:g}; "
                "accepted: a range whose width is a multiple of the step."
            )
        if delta is not None and (not _is_number(delta) or not 0 <= delta <= 1):
            raise SelfgrowError(f"bindgrow delta={delta!r} is invalid; accepted: null (searched) or a number in [0, 1].")
        if not isinstance(search_binding, bool):
            raise SelfgrowError(f"bindgrow search_binding={search_binding!r} is invalid; accepted: true or false.")
        if layers is not None and (not isinstance(layers, list) or not layers or len(set(layers)) != len(layers)
                                   or not all(isinstance(d, int) and not isinstance(d, bool) and d >= 0 for d in layers)):
            raise SelfgrowError(f"bindgrow layers={layers!r} is invalid; accepted: null (all) or a list of distinct depths >= 0.")
        if task_epochs is not None and (not isinstance(task_epochs, int) or task_epochs < 1):
            raise SelfgrowError(f"bindgrow task_epochs={task_epochs!r} is invalid; accepted: null (the trainer's) or an integer >= 1.")
        if not isinstance(rsa_samples, int) or rsa_samples < 3:
            raise SelfgrowError(f"bindgrow rsa_samples={rsa_samples!r} is invalid; accepted: an integer >= 3.")
        self.delta = None if delta is None else float(delta)
        self.delta_range = (low, high)
        self.delta_step = float(delta_step)
        self.search_binding = search_binding
        self.layers = None if layers is None else sorted(layers)
        self.task_epochs = task_epochs
        self.rsa_samples = rsa_samples
        self.baselines: dict[int, float] = {}  # task -> single-task baseline error E_φ
        self._context: BindContext | None = None

    # ---- the plan ---------------------------------------------------------------------------

    def plan(self, learner: Any, task: Any) -> GrowthPlan:
        net = _joint_net(learner)
        if not learner.seen:
            return GrowthPlan(reasons={
                "task": task.index,
                "decision": "first task: nothing to bind to; it trains the JointNet's initial path alone",
            })
        self._measure_missing_baselines(learner)
        context = self._bind_context(learner, net, task)
        self._context = context
        try:
            plan = super().plan(learner, task) if self.delta is None else self._fixed_plan(net, task)
        finally:
            self._context = None
        self.baselines[task.index] = context.baseline
        self._explain(plan, context, learner)
        return plan

    def _fixed_plan(self, net: JointNet, task: Any) -> GrowthPlan:
        """Algorithm 1 with the given δ: no search."""
        ops = self.ops_for(net, {"delta": self.delta})
        return GrowthPlan(ops=ops, reasons={"task": task.index, "rule": f"fixed delta {self.delta:g}",
                                            "decision": f"fixed delta {self.delta:g}"})

    def _explain(self, plan: GrowthPlan, context: BindContext, learner: Any) -> None:
        """Add the conflict model, the binding, δ and the nucleus to the plan's reasons."""
        kwargs = plan.ops[0]["kwargs"]
        delta = self._chosen_delta(plan)
        distribution, expand = context.expansion(kwargs["source"], delta)
        old = sorted(context.conflicts)
        reasons = plan.reasons
        if self.delta is None:
            reasons["objectives"] = [
                "maximise the average multi-task gain Δ over the seen tasks and the new one (candidates' 'accuracy')",
                f"minimise {'inference FLOPs' if self.objective == 'flops' else 'parameters'}",
            ]
            reasons["score_label"] = "multi-task gain Δ"
        reasons.update({
            "independent": context.independent,
            "baselines": {str(t): e for t, e in sorted(self.baselines.items())},
            "rsa_samples": context.rsa_samples,
            "old_tasks": old,
            "conflicts": [context.conflicts[b] for b in old],
            "task_conflicts": [task_conflict(context.conflicts[b]) for b in old],
            "rsa_binding": context.rsa_binding,
            "binding": kwargs["source"],
            "layers": context.layers,
            "distribution": distribution,
            "delta": delta,
            "nucleus": expand,
            "retention": [r.name for r in learner.retention],
        })
        plan.search_flops += context.flops

    def _chosen_delta(self, plan: GrowthPlan) -> float:
        if self.delta is not None:
            return self.delta
        return round(float(plan.candidates[plan.chosen]["params"]["delta"]), 9)  # Optuna's grid floats, e.g. 0.6000000000000001

    # ---- the search space (SearchGrower) ------------------------------------------------------

    def space(self, learner: Any, task: Any) -> dict[str, Any]:
        from optuna.distributions import CategoricalDistribution, FloatDistribution

        low, high = self.delta_range
        space: dict[str, Any] = {"delta": FloatDistribution(low, high, step=self.delta_step)}
        if self.search_binding and len(self._current.conflicts) > 1:
            space["bind"] = CategoricalDistribution(sorted(self._current.conflicts))
        return space

    def no_growth(self, space: dict[str, Any]) -> dict[str, Any]:
        """The least growth: the RSA binding at the lowest δ (no expansion when the range starts at 0)."""
        point: dict[str, Any] = {"delta": self.delta_range[0]}
        if "bind" in space:
            point["bind"] = self._current.rsa_binding
        return point

    def ops_for(self, net: Any, params: dict[str, Any]) -> list[dict[str, Any]]:
        context = self._current
        source = int(params.get("bind", context.rsa_binding))
        expand = context.expansion(source, float(params["delta"]))[1]
        return [{"op": "bind_task", "kwargs": {"task": context.task, "source": source, "expand": expand}}]

    def problem(self, learner: Any, task: Any) -> tuple[Any, Any]:
        """`SearchGrower`'s candidates, scored by the multi-task gain Δ instead of the mean accuracy."""
        propose, evaluate = super().problem(learner, task)
        baselines = {**self.baselines, task.index: self._current.baseline}
        return propose, lambda params: GainScored(evaluate(params), baselines)

    @property
    def _current(self) -> BindContext:
        if self._context is None:
            raise SelfgrowError("bindgrow's search space exists only while it plans a task (call plan).")
        return self._context

    # ---- the conflict model -------------------------------------------------------------------

    def _bind_context(self, learner: Any, net: JointNet, task: Any) -> BindContext:
        """Train the independent task-net, then score every old task's layers against it by RSA."""
        from selfgrow.nets.cost import inference_flops

        layers = self._expandable(net)
        n_val = len(task.y_val)
        if n_val < 3:
            raise SelfgrowError(
                f"Task {task.name!r} has {n_val} validation samples; bindgrow's RSA needs at least 3 "
                "(raise stream.val_fraction or the per-class validation counts)."
            )
        with _forked_rng(self.seed * 1_000_003 + task.index + 500_009):
            independent, fit, accuracy = self._independent(learner, net, task)
            order = torch.randperm(n_val)[: min(self.rsa_samples, n_val)]
        x = _inputs(task, order, next(net.parameters()).device)
        with _evaluating(independent), _evaluating(net), torch.no_grad():
            theirs = independent.layer_outputs(x.to(next(independent.parameters()).device), 0)
            conflicts = {b.index: layer_conflicts([a.cpu() for a in net.layer_outputs(x, b.index)],
                                                  [a.cpu() for a in theirs]) for b in learner.seen}
        forward = inference_flops(independent, 0) + sum(inference_flops(net, b.index) for b in learner.seen)
        return BindContext(
            task=task.index,
            layers=layers,
            conflicts=conflicts,
            rsa_binding=least_conflicting(conflicts),
            baseline=baseline_error(accuracy, n_val),
            independent={"val_accuracy": accuracy, "epochs": fit.epochs, "train_flops": fit.train_flops},
            rsa_samples=len(order),
            flops=float(fit.train_flops) + float(forward) * len(order),
        )

    def _independent(self, learner: Any, net: JointNet, task: Any) -> tuple[JointNet, Any, float]:
        """G_t↓: the JointNet's module templates on one path with one head, trained on `task` alone."""
        from selfgrow.nets import build
        from selfgrow.train import accuracy

        depth = len(net.spec["modules"])
        independent = build({**net.spec, "library": [1] * depth, "paths": [],
                             "head": {**net.spec["head"], "classes": [task.n_classes]}})
        alone = dataclasses.replace(task, index=0)
        trainer = dataclasses.replace(learner.trainer, epochs=self.task_epochs or learner.trainer.epochs,
                                      progress=False, curve_batches=0)
        fit = trainer.fit(independent, alone, "task")
        return independent, fit, accuracy(independent, alone, "task", "val", batch_size=trainer.eval_batch_size)

    def _measure_missing_baselines(self, learner: Any) -> None:
        """Baselines of seen tasks that have none: the first task's, from the joint net that learnt it alone."""
        from selfgrow.train import accuracy

        for seen in learner.seen:
            if seen.index not in self.baselines:
                acc = accuracy(learner.net, seen, "task", "val", batch_size=learner.trainer.eval_batch_size)
                self.baselines[seen.index] = baseline_error(acc, len(seen.y_val))

    def _expandable(self, net: JointNet) -> list[int]:
        """The depths that may be expanded (`layers`, checked against the net's depth)."""
        depth = len(net.spec["modules"])
        if self.layers is None:
            return list(range(depth))
        if max(self.layers) >= depth:
            raise SelfgrowError(f"bindgrow layers={self.layers} name depths the JointNet lacks; accepted: depths 0..{depth - 1}.")
        return list(self.layers)

    # ---- state ------------------------------------------------------------------------------

    def state_dict(self) -> dict[str, Any]:
        """Search history, baselines and, while a task is being planned, its conflict model (what a
        distributed search worker, rebuilt from the learner's state, needs to pose the same problem)."""
        return {**super().state_dict(), "baselines": {str(t): e for t, e in self.baselines.items()},
                "context": None if self._context is None else self._context.to_state()}

    def load_state_dict(self, state: dict[str, Any]) -> None:
        super().load_state_dict(state)
        self.baselines = {int(t): float(e) for t, e in state.get("baselines", {}).items()}
        context = state.get("context")
        self._context = None if context is None else BindContext.from_state(context)


def _joint_net(learner: Any) -> JointNet:
    """The learner's net, checked to be a shared JointNet learning task-incrementally."""
    if learner.scenario != "task":
        raise SelfgrowError(f"bindgrow is task-incremental (one head and path per task); got scenario {learner.scenario!r}.")
    if learner.independent or not isinstance(learner.net, JointNet):
        kind = "independent mode" if learner.independent else f"net kind {learner.net.kind!r}"
        raise SelfgrowError(f"bindgrow grows one shared JointNet (net spec kind 'jointnet', mode shared); got {kind}.")
    return learner.net


def _delta_range(value: Any) -> tuple[float, float]:
    """[low, high] within [0, 1] (default [0, 1])."""
    if value is None:
        return 0.0, 1.0
    if (not isinstance(value, (list, tuple)) or len(value) != 2 or not all(_is_number(v) for v in value)
            or not 0 <= value[0] <= value[1] <= 1):
        raise SelfgrowError(f"bindgrow delta_range={value!r} is invalid; accepted: [low, high] with 0 <= low <= high <= 1.")
    return float(value[0]), float(value[1])


def _is_number(value: Any) -> bool:
    return isinstance(value, (int, float)) and not isinstance(value, bool)


def _inputs(task: Any, order: torch.Tensor, device: torch.device) -> torch.Tensor:
    """Validation samples `order` of `task`, normalised as the trainer does (no augmentation)."""
    from selfgrow.train.batches import to_input

    return to_input(task.x_val[order].to(device), task)


@contextlib.contextmanager
def _forked_rng(seed: int) -> Iterator[None]:
    """The global torch RNG forked and seeded, so the grower's draws leave the run's random stream untouched."""
    devices = list(range(torch.cuda.device_count())) if torch.cuda.is_available() else []
    with torch.random.fork_rng(devices=devices):
        torch.manual_seed(seed)
        yield


@contextlib.contextmanager
def _evaluating(net: torch.nn.Module) -> Iterator[None]:
    """Eval mode inside, the net's own mode restored after."""
    was_training = net.training
    net.eval()
    try:
        yield
    finally:
        net.train(was_training)


__all__ = ["BindContext", "BindGrowGrower"]
