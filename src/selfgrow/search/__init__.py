"""The AutoML engine: multi-objective Optuna studies, storage, successive halving, warm start, Pareto selection."""

from selfgrow.search.engine import Evaluation, Proposal, SearchOutcome, SearchSettings, run_search
from selfgrow.search.pareto import RULES, knee_point, pareto_front, select
from selfgrow.search.samplers import SAMPLERS, make_sampler
from selfgrow.search.storage import make_storage

__all__ = [
    "RULES",
    "SAMPLERS",
    "Evaluation",
    "Proposal",
    "SearchOutcome",
    "SearchSettings",
    "knee_point",
    "make_sampler",
    "make_storage",
    "pareto_front",
    "run_search",
    "select",
]
