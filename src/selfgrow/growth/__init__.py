"""Growers: decide before each task how the network grows, returning a `GrowthPlan` (operator calls + reasons)."""

from selfgrow.growth.base import (
    GROWERS,
    Grower,
    GrowthPlan,
    build_grower,
    operator,
    operators,
    register_grower,
)
from selfgrow.growth.bindgrow import BindGrowGrower
from selfgrow.growth.compound import CompoundGrower
from selfgrow.growth.den import DENGrower
from selfgrow.growth.extractor_search import ExtractorGrower
from selfgrow.growth.firefly import FireflyGrower
from selfgrow.growth.fixed import FixedGrower
from selfgrow.growth.learn_to_grow import LearnToGrowGrower
from selfgrow.growth.mntdp import MNTDPGrower
from selfgrow.growth.prediction_choice import PredictionChoice
from selfgrow.growth.random_growth import RandomGrower
from selfgrow.growth.schedule import ScheduleGrower
from selfgrow.growth.searched import SearchedGrower
from selfgrow.growth.searching import SearchGrower
from selfgrow.growth.zero_cost import naswot

__all__ = [
    "GROWERS",
    "BindGrowGrower",
    "CompoundGrower",
    "DENGrower",
    "ExtractorGrower",
    "FireflyGrower",
    "FixedGrower",
    "Grower",
    "GrowthPlan",
    "LearnToGrowGrower",
    "MNTDPGrower",
    "PredictionChoice",
    "RandomGrower",
    "ScheduleGrower",
    "SearchGrower",
    "SearchedGrower",
    "build_grower",
    "naswot",
    "operator",
    "operators",
    "register_grower",
]
