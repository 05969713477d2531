"""The `schedule` grower: widens and deepens the backbone by a fixed rule, no search.

Rule: before every `every_tasks`-th task (never before the first), each chosen width group grows
by `width_factor` (new width = ceil(width * factor)) or by `width_per_class` units for every class
id first seen since the last widening (so capacity follows the number of classes; in domain-IL no
class is new and only deepening applies); independently, before every `deepen_every`-th task an
identity layer is inserted at `deepen_at` (default: the last depth point, next to the head). `max_width` caps each
group. Widening uses `selfgrow.nets.ops.widen` in `mode` ("zero" or "split"), deepening
`ops.deepen`; both keep the function, so growth itself costs no accuracy.
"""

from __future__ import annotations

import math
from dataclasses import dataclass
from typing import Any

from selfgrow.errors import SelfgrowError
from selfgrow.growth.base import WIDEN_MODES, Grower, GrowthPlan, register_grower
from selfgrow.options import option


@dataclass
class ScheduleOptions:
    """The `schedule` grower's rule (see the module docstring)."""

    every_tasks: int = option(1, at_least=1)
    width_factor: float | None = option(None, above=1)
    width_per_class: int | None = option(None, at_least=1)
    deepen_every: int | None = option(None, at_least=1)
    deepen_at: str | None = None
    max_width: int | None = option(None, at_least=1)
    layers: list[str] | None = None
    mode: str = option("zero", choices=WIDEN_MODES)

    def __post_init__(self) -> None:
        if self.width_factor is not None and self.width_per_class is not None:
            raise SelfgrowError("schedule takes width_factor or width_per_class, not both; set one to null.")


@register_grower("schedule")
class ScheduleGrower(Grower):
    """Grows width and/or depth at fixed task intervals by a stated rule."""

    Options = ScheduleOptions

    def __init__(self, **options: Any) -> None:
        super().__init__(**options)
        self.layers = list(self.layers) if self.layers is not None else None
        self.classes_at_last_growth: int | None = None

    def plan(self, learner: Any, task: Any) -> GrowthPlan:
        classes_seen = len({*learner.seen_class_ids, *task.class_ids})
        if self.classes_at_last_growth is None:
            self.classes_at_last_growth = classes_seen
        reasons: dict[str, Any] = {"rule": self._rule(), "task": task.index, "classes_seen": classes_seen}
        ops: list[dict[str, Any]] = []
        if task.index > 0 and task.index % self.every_tasks == 0:
            new_classes = classes_seen - self.classes_at_last_growth
            self.classes_at_last_growth = classes_seen
            reasons["new_classes_since_last_growth"] = new_classes
            ops += self._widen_ops(learner.net, new_classes, reasons)
        if task.index > 0 and self.deepen_every and task.index % self.deepen_every == 0:
            ops.append(self._deepen_op(learner.net, reasons))
        reasons["decision"] = f"{len(ops)} operator(s)" if ops else "no growth at this task"
        return GrowthPlan(ops=ops, reasons=reasons)

    def _widen_ops(self, net: Any, new_classes: int, reasons: dict[str, Any]) -> list[dict[str, Any]]:
        """One widen call per chosen width group, sized by the rule and capped by `max_width`."""
        points = {p.name: p for p in net.growth_points() if p.kind == "width"}
        names = self.layers if self.layers is not None else list(points)
        unknown = [n for n in names if n not in points]
        if unknown:
            raise SelfgrowError(f"schedule layers {unknown!r} are not width groups of this net; accepted: {', '.join(points)}.")
        ops, widths = [], {}
        for name in names:
            width = points[name].size
            if self.width_factor is not None:
                target = math.ceil(width * self.width_factor)
            elif self.width_per_class is not None:
                target = width + self.width_per_class * new_classes
            else:
                continue
            if self.max_width is not None:
                target = min(target, self.max_width)
            if target > width:
                ops.append({"op": "widen", "kwargs": {"layer": name, "by": target - width, "mode": self.mode}})
                widths[name] = [width, target]
        reasons["widths"] = widths
        return ops

    def _deepen_op(self, net: Any, reasons: dict[str, Any]) -> dict[str, Any]:
        """The deepen call at `deepen_at` (default: the last depth point)."""
        points = [p.name for p in net.growth_points() if p.kind == "depth"]
        if not points:
            raise SelfgrowError("schedule deepen_every is set but this net has no depth points; set deepen_every to null.")
        at = self.deepen_at or points[-1]
        if at not in points:
            raise SelfgrowError(f"schedule deepen_at={at!r} is not a depth point; accepted: {', '.join(points)}.")
        reasons["deepen_at"] = at
        return {"op": "deepen", "kwargs": {"at": at}}

    def _rule(self) -> str:
        parts = []
        if self.width_factor is not None:
            parts.append(f"width x{self.width_factor}")
        if self.width_per_class is not None:
            parts.append(f"+{self.width_per_class} units per new class")
        if self.deepen_every:
            parts.append(f"one layer every {self.deepen_every} tasks")
        cap = f", max width {self.max_width}" if self.max_width else ""
        return f"every {self.every_tasks} task(s): " + (", ".join(parts) or "nothing") + cap

    def state_dict(self) -> dict[str, Any]:
        return {"classes_at_last_growth": self.classes_at_last_growth}

    def load_state_dict(self, state: dict[str, Any]) -> None:
        self.classes_at_last_growth = state.get("classes_at_last_growth")
