"""The `fixed` grower: the backbone never grows (heads are still added by the learner)."""

from __future__ import annotations

from typing import Any

from selfgrow.growth.base import Grower, GrowthPlan, register_grower


@register_grower("fixed")
class FixedGrower(Grower):
    """Keeps the architecture as built; the reference point every growing method is compared with."""

    def plan(self, learner: Any, task: Any) -> GrowthPlan:
        return GrowthPlan(reasons={"rule": "fixed: the backbone never grows"})
