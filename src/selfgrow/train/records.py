"""`TaskRecord`: what `Learner.learn` did on one task, typed, with the plain-JSON form the logs and checkpoints hold."""

from __future__ import annotations

import copy
import dataclasses
from dataclasses import dataclass
from typing import Any

from selfgrow.growth.base import GrowthPlan
from selfgrow.train.trainer import FitResult


@dataclass
class TaskRecord:
    """One learnt task (plan, operators applied, resulting spec, fit), typed for code and `to_dict` for JSON.

    `plan` is kept without its handed-over `weights` and `fit`, and `fit` without its optimizer
    state, so a learner's history holds no tensors or trained models. `growth` lists the `op` records
    of the head and growth operators applied, in order. `spec_before` is the net's spec before them;
    `frozen` maps each parameter of the trained net to [entries kept fixed while the task trained,
    entries], as the net and the retention strategies declared them (what the report marks frozen).
    """

    task: int
    name: str
    plan: GrowthPlan
    growth: list[dict[str, Any]]
    spec: dict[str, Any]
    fit: FitResult
    spec_before: dict[str, Any] = dataclasses.field(default_factory=dict)
    frozen: dict[str, list[int]] = dataclasses.field(default_factory=dict)

    @classmethod
    def snapshot(cls, task: int, name: str, plan: GrowthPlan, growth: list[dict[str, Any]], spec: dict[str, Any],
                 fit: FitResult, spec_before: dict[str, Any] | None = None,
                 frozen: dict[str, list[int]] | None = None) -> TaskRecord:
        """A record holding snapshots (deep copies) of the arguments, with the plan's and fit's tensors left out."""
        return cls(
            task=task,
            name=name,
            plan=copy.deepcopy(dataclasses.replace(plan, weights=None, fit=None, adopted=None)),
            growth=copy.deepcopy(growth),
            spec=copy.deepcopy(spec),
            fit=copy.deepcopy(dataclasses.replace(fit, optimizer_state={})),
            spec_before=copy.deepcopy(spec_before or {}),
            frozen=copy.deepcopy(frozen or {}),
        )

    def to_dict(self) -> dict[str, Any]:
        """The JSON-ready form logged and checkpointed: `plan.explain()`, `fit.to_dict()`, copies of the rest."""
        return {
            "task": self.task,
            "name": self.name,
            "plan": self.plan.explain(),
            "growth": copy.deepcopy(self.growth),
            "spec": copy.deepcopy(self.spec),
            "fit": self.fit.to_dict(),
            "spec_before": copy.deepcopy(self.spec_before),
            "frozen": copy.deepcopy(self.frozen),
        }

    @classmethod
    def from_dict(cls, data: dict[str, Any]) -> TaskRecord:
        """Rebuild a record from `to_dict()` (e.g. a checkpoint's history); `from_dict(d).to_dict() == d`."""
        return cls(
            task=data["task"],
            name=data["name"],
            plan=GrowthPlan.from_dict(data["plan"]),
            growth=copy.deepcopy(data["growth"]),
            spec=copy.deepcopy(data["spec"]),
            fit=FitResult.from_dict(data["fit"]),
            spec_before=copy.deepcopy(data.get("spec_before", {})),  # absent in checkpoints of earlier versions
            frozen=copy.deepcopy(data.get("frozen", {})),
        )

