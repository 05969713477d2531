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

State (resume): the single-task baselines and the search history. A task's conflict model is
per-task state: `plan` measures it and passes it to the search's hooks as their `context`, and a
distributed search sends it with the task's job (`context_state`), so a worker rebuilt from the
learner's state poses the same search (the same space, candidates and Δ).

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
from selfgrow.growth.base import GrowthPlan, path_net, register_grower
from selfgrow.growth.bindgrow.gain import GainScored, baseline_error
from selfgrow.growth.bindgrow.nucleus import (
    conflict_distribution,
    least_conflicting,
    nucleus,
    task_conflict,
)
from selfgrow.growth.bindgrow.rsa import layer_conflicts
from selfgrow.growth.searching import SearchGrower, SearchOptions
from selfgrow.nets.jointnet import JointNet
from selfgrow.options import option, with_default


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

    random_layers: list[int] | None = None  # the random-growth control: layers drawn at random, in order of the draw

    def expansion(self, source: int, delta: float) -> tuple[list[float], list[int]]:
        """The conflict distribution over the expandable layers when bound to `source`, and its δ-nucleus (under
        the random control: as many layers as the RSA nucleus holds, the first of `random_layers`)."""
        distribution = conflict_distribution([self.conflicts[source][d] for d in self.layers])
        expand = nucleus(dict(zip(self.layers, distribution)), delta)
        if self.random_layers is not None:
            expand = sorted(self.random_layers[: len(expand)])
        return distribution, expand


@dataclasses.dataclass
class BindGrowOptions(SearchOptions):
    """bindgrow's options (see `BindGrowGrower`) beside the search options, whose defaults differ here."""

    n_trials: int = with_default(SearchOptions, "n_trials", 6)
    sampler: str = with_default(SearchOptions, "sampler", "nsga2")
    objective: str = with_default(SearchOptions, "objective", "params")
    delta: float | None = option(None, at_least=0, at_most=1, note="null: searched")
    delta_range: list[float] = option(factory=lambda: [0.0, 1.0], at_least=0, at_most=1,
                                      note="[low, high] with low <= high")
    delta_step: float = option(0.05, above=0, at_most=1)
    search_binding: bool = False
    layers: list[int] | None = option(None, at_least=0, nonempty=True, note="distinct depths; null: all")
    task_epochs: int | None = option(None, at_least=1, note="null: the trainer's")
    rsa_samples: int = option(200, at_least=3)
    guide: str = option("rsa", choices=("rsa", "random"), note="random: the paper's random-growth control")

    def __post_init__(self) -> None:
        super().__post_init__()
        low, high = self.delta_range if len(self.delta_range) == 2 else (1, 0)
        if low > high:
            raise SelfgrowError(f"bindgrow delta_range={self.delta_range!r} is invalid; accepted: [low, high] with "
                                "0 <= low <= high <= 1.")
        if abs((high - low) / self.delta_step - round((high - low) / self.delta_step)) > 1e-6:
            raise SelfgrowError(
                f"bindgrow delta_range [{low:g}, {high:g}] is not a whole number of delta_step {self.delta_step:g}; "
                "accepted: a range whose width is a multiple of the step."
            )
        if self.layers is not None and len(set(self.layers)) != len(self.layers):
            raise SelfgrowError(f"bindgrow layers={self.layers!r} is invalid; accepted: null (all) or a list of "
                                "distinct depths >= 0.")


@register_grower("bindgrow")
class BindGrowGrower(SearchGrower):
    """Learn to Bind and Grow: RSA binding and δ-nucleus expansion, δ searched (see the module docstring).

    Options: `delta` (a fixed grow coefficient in [0, 1]; null: searched), `delta_range` [low, high]
    and `delta_step` (the searched grid), `search_binding` (also search the bound task; the RSA
    choice is tried first), `layers` (the depths that may be expanded, over which the conflicts are
    normalised; binding still weighs every depth; null: all), `guide` ("rsa", or "random": the paper's
    random-growth control, binding to a random old task and expanding random layers, as many as the
    RSA nucleus of the same δ would: the same number of layers, whose parameters still differ with
    their widths; its reasons keep the conflicts that were measured and not used), `task_epochs` (of
    the independent task-net; null: the trainer's), `rsa_samples` (validation samples for RSA,
    at least 3), and the search options of `SearchGrower` (here n_trials 6, sampler nsga2, objective
    params by default).
    """

    Options = BindGrowOptions

    def __init__(self, **options: Any) -> None:
        super().__init__(**options)
        self.delta = None if self.delta is None else float(self.delta)
        self.delta_range = (float(self.delta_range[0]), float(self.delta_range[1]))
        self.delta_step = float(self.delta_step)
        self.layers = None if self.layers is None else sorted(self.layers)
        self.baselines: dict[int, float] = {}  # task -> single-task baseline error E_φ

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
        plan = self.search_plan(learner, task, context) if self.delta is None else self._fixed_plan(net, task, context)
        self.baselines[task.index] = context.baseline
        self._explain(plan, context, learner)
        return plan

    def _fixed_plan(self, net: JointNet, task: Any, context: BindContext) -> GrowthPlan:
        """Algorithm 1 with the given δ: no search."""
        ops = self.ops_for(net, {"delta": self.delta}, context)
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
            "guide": self.guide,
            "rsa_binding": context.rsa_binding,  # under guide "random": the drawn binding
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

    def space(self, learner: Any, task: Any, context: BindContext | None = None) -> dict[str, Any]:
        from optuna.distributions import CategoricalDistribution, FloatDistribution

        conflicts = _required(context).conflicts
        low, high = self.delta_range
        space: dict[str, Any] = {"delta": FloatDistribution(low, high, step=self.delta_step)}
        if self.search_binding and len(conflicts) > 1:
            space["bind"] = CategoricalDistribution(sorted(conflicts))
        return space

    def no_growth(self, space: dict[str, Any], context: BindContext | None = None) -> dict[str, Any]:
        """The least growth: the RSA binding at the lowest δ (no expansion when the range starts at 0)."""
        point: dict[str, Any] = {"delta": self.delta_range[0]}
        if "bind" in space:
            point["bind"] = _required(context).rsa_binding
        return point

    def ops_for(self, net: Any, params: dict[str, Any], context: BindContext | None = None) -> list[dict[str, Any]]:
        context = _required(context)
        source = int(params.get("bind", context.rsa_binding))
        expand = context.expansion(source, float(params["delta"]))[1]
        return [{"op": "bind_task", "kwargs": {"task": context.task, "source": source, "expand": expand}}]

    def problem(self, learner: Any, task: Any, context: BindContext | None = None) -> tuple[Any, Any]:
        """`SearchGrower`'s candidates, scored by the multi-task gain Δ instead of the mean accuracy."""
        propose, evaluate = super().problem(learner, task, context)
        baselines = {**self.baselines, task.index: _required(context).baseline}
        return propose, lambda params: GainScored(evaluate(params), baselines)

    def context_state(self, context: BindContext) -> dict[str, Any]:
        return context.to_state()

    def context_from_state(self, state: dict[str, Any]) -> BindContext:
        return BindContext.from_state(state)

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
        binding, random_layers = least_conflicting(conflicts), None
        if self.guide == "random":  # L2BG's control: a random old task, random layers (as many as RSA's nucleus)
            draw = torch.Generator().manual_seed(self.seed * 1_000_003 + task.index + 700_001)
            binding = sorted(conflicts)[int(torch.randint(len(conflicts), (1,), generator=draw))]
            random_layers = [layers[i] for i in torch.randperm(len(layers), generator=draw).tolist()]
        return BindContext(
            task=task.index,
            layers=layers,
            conflicts=conflicts,
            rsa_binding=binding,
            random_layers=random_layers,
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
        """Search history and baselines (a task's conflict model travels with its search job, `context_state`)."""
        return {**super().state_dict(), "baselines": {str(t): e for t, e in self.baselines.items()}}

    def load_state_dict(self, state: dict[str, Any]) -> None:
        super().load_state_dict(state)
        self.baselines = {int(t): float(e) for t, e in state.get("baselines", {}).items()}


def _joint_net(learner: Any) -> JointNet:
    """The learner's net, checked to be a shared JointNet learning task-incrementally."""
    return path_net(learner, JointNet, "bindgrow", "JointNet (net spec kind 'jointnet')")


def _required(context: BindContext | None) -> BindContext:
    """The task's conflict model, which every search hook of bindgrow needs."""
    if context is None:
        raise SelfgrowError("bindgrow's search space needs the task's conflict model; call plan, which measures it "
                            "and passes it as `context`.")
    return context


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
