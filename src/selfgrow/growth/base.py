"""`GrowthPlan` (a grower's decision for one task, as data) and the `Grower` base class with its registry."""

from __future__ import annotations

import copy
import inspect
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Any

import torch

from selfgrow.errors import SelfgrowError, unknown_name
from selfgrow.options import Configurable
from selfgrow.registry import Registry

if TYPE_CHECKING:  # pragma: no cover - imports for type hints only
    from selfgrow.growth.prediction_choice import PredictionChoice
    from selfgrow.nets.ops import Growth
    from selfgrow.streams.task import Task
    from selfgrow.train.trainer import FitResult


WIDEN_MODES = ("zero", "split")  # the `ops.widen` modes a grower's `mode` option takes ("gated" is Firefly's own)


@dataclass
class AdoptedTraining:
    """A candidate's training that becomes the task's: its trained net, optimizer state and retention strategies
    (which ran `before_task` and trained with it, so their in-training state, e.g. a replay draw's position, is the
    training's), and
    its `FitResult` (whose compute the plan's `search_flops` already holds)."""

    net: torch.nn.Module
    optimizer_state: dict[str, dict[str, torch.Tensor]]
    retention: list[Any]
    fit: "FitResult"


@dataclass
class GrowthPlan:
    """Operator calls to apply before a task, with the reasons, the candidates weighed and the one chosen.

    `ops` are `{"op": name, "kwargs": {...}}` naming functions of `selfgrow.nets.ops`; an empty list
    means "keep the architecture". Everything logged is plain data so the plan can be replayed.
    A grower that already trained its chosen candidate hands it over instead of having it trained
    again: `weights` (a state dict of the grown net, loaded after the operators) and, when that
    candidate was trained in full on the task, `fit` (its `FitResult`; the learner then skips its own
    training). Neither is logged: `explain` holds what a person reads. `retention` sets the strengths
    of the run's strategies ("<strategy>.<attribute>" -> value, `selfgrow.retention.settings`) from
    this task on, when the grower searched them together with the growth. `search_flops`: the compute
    the grower spent deciding (candidate training and scoring, probes), which the run adds to the
    task's training FLOPs. `grower`: the registered name of the grower that made the plan (the
    learner fills it in). `adopted`: the chosen candidate's whole training taken over as the task's
    (`AdoptedTraining`); the learner then neither runs the strategies' `before_task` nor trains.
    """

    ops: list[dict[str, Any]] = field(default_factory=list)
    reasons: dict[str, Any] = field(default_factory=dict)
    candidates: list[Any] = field(default_factory=list)
    chosen: int | None = None
    weights: dict[str, torch.Tensor] | None = None
    fit: "FitResult | None" = None
    retention: dict[str, float] = field(default_factory=dict)
    search_flops: float = 0.0
    grower: str = ""
    adopted: "AdoptedTraining | None" = None

    def apply(self, net: torch.nn.Module) -> tuple[torch.nn.Module, list["Growth"]]:
        """Run the operators in order; returns the grown net and each operator's `Growth` (input net untouched)."""
        growths = []
        for call in self.ops:
            growth = operator(call.get("op", ""))(net, **call.get("kwargs", {}))
            growths.append(growth)
            net = growth.net
        return net, growths

    def explain(self) -> dict[str, Any]:
        """JSON-ready description: the operator calls, the reasons, the candidates and the choice."""
        return {
            "grower": self.grower,
            "search_flops": float(self.search_flops),
            "ops": copy.deepcopy(self.ops),
            "reasons": copy.deepcopy(self.reasons),
            "candidates": copy.deepcopy(self.candidates),
            "chosen": self.chosen,
            "retention": dict(self.retention),
        }

    @classmethod
    def from_dict(cls, data: dict[str, Any]) -> "GrowthPlan":
        """The plan `explain` described (without `weights` and `fit`, which it leaves out)."""
        return cls(ops=copy.deepcopy(data["ops"]), reasons=copy.deepcopy(data["reasons"]),
                   candidates=copy.deepcopy(data["candidates"]), chosen=data["chosen"],
                   retention=dict(data["retention"]), search_flops=data["search_flops"], grower=data["grower"])


def operators() -> dict[str, Callable[..., "Growth"]]:
    """The growth operators of `selfgrow.nets.ops`: its public functions of the form `op(net, ...)`."""
    from selfgrow.nets import ops

    found = {}
    for name in ops.__all__:
        fn = getattr(ops, name)
        if inspect.isfunction(fn) and next(iter(inspect.signature(fn).parameters), None) == "net":
            found[name] = fn
    return found


def operator(name: str) -> Callable[..., "Growth"]:
    """The growth operator called `name`; unknown names raise the usual did-you-mean error."""
    available = operators()
    if name not in available:
        raise unknown_name("growth operator", name, available)
    return available[name]


class Grower(Configurable):
    """Decides how the network grows before each task; subclasses implement `plan` and declare `Options`."""

    component = "grower"
    name = "grower"

    def plan(self, learner: Any, task: "Task") -> GrowthPlan:
        """The growth to apply before training on `task` (the learner gives the net and what was seen)."""
        raise NotImplementedError

    def choose_predictions(self, learner: Any, task: "Task") -> "PredictionChoice | None":
        """Called once `task` is trained (after the strategies' `after_task`, before the grower's): the retention
        settings that decide only predictions, chosen on the trained net and left set on the strategies
        (`selfgrow.growth.prediction_choice`); None: this grower chooses none."""
        return None

    def after_task(self, learner: Any, task: "Task") -> None:
        """Called once `task` is trained (after the strategies' `after_task`): what the grower learns from the result."""

    def state_dict(self) -> dict[str, Any]:
        """Plain data (and tensors) needed to resume decisions after a restart."""
        return {}

    def load_state_dict(self, state: dict[str, Any]) -> None:
        """Restore what `state_dict` returned."""

    def memory_bytes(self, learner: Any) -> int:
        """Bytes of data the grower keeps for later decisions (e.g. a validation memory), counted in `memory_mb`."""
        return 0


GROWERS = Registry("grower")
register_grower = GROWERS.register
build_grower = GROWERS.build


def path_net(learner: Any, kind: type, grower: str, example: str) -> Any:
    """The learner's net for a grower of task paths (bindgrow, learn-to-grow): one shared net of class `kind`,
    learning task-incrementally; otherwise a one-sentence error naming `example`, a net that fits."""
    if learner.scenario != "task":
        raise SelfgrowError(f"{grower} is task-incremental (a path and head per task id); got scenario {learner.scenario!r}.")
    if learner.independent or not isinstance(learner.net, kind):
        found = "independent mode" if learner.independent else f"net kind {learner.net.kind!r}"
        raise SelfgrowError(f"{grower} grows one shared {example} in mode shared; got {found}.")
    return learner.net
