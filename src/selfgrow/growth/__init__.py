"""Growers: decide before each task how the network grows, returning a `GrowthPlan` (operator calls + reasons)."""

from selfgrow.growth.base import GROWERS, Grower, GrowthPlan, build_grower, operator, operators, register_grower
from selfgrow.growth.fixed import FixedGrower
from selfgrow.growth.schedule import ScheduleGrower

__all__ = [
    "GROWERS",
    "FixedGrower",
    "Grower",
    "GrowthPlan",
    "ScheduleGrower",
    "build_grower",
    "operator",
    "operators",
    "register_grower",
]
