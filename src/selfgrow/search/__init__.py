"""The AutoML engine: multi-objective Optuna studies, storage, successive halving, warm start, Pareto selection.

Distributed search (`selfgrow.search.distributed`: the coordinator, `selfgrow.search.worker`: the workers)
shares the studies through a journal file or a database; see docs/distributed.md.
"""

from selfgrow.search.engine import (
    Evaluation,
    Proposal,
    SearchOutcome,
    RungHistory,
    SearchSettings,
    race_batch,
    run_search,
)
from selfgrow.search.objectives import candidate_objectives, proportion_variance
from selfgrow.search.pareto import DEFAULT_RULE, MNAS_EXPONENT, RULES, indistinguishable, knee_point, pareto_front, select
from selfgrow.search.samplers import SAMPLERS, make_sampler
from selfgrow.search.storage import is_shared, make_storage

__all__ = [
    "DEFAULT_RULE",
    "MNAS_EXPONENT",
    "RULES",
    "SAMPLERS",
    "Evaluation",
    "RungHistory",
    "Proposal",
    "SearchOutcome",
    "SearchSettings",
    "candidate_objectives",
    "indistinguishable",
    "is_shared",
    "knee_point",
    "make_sampler",
    "make_storage",
    "pareto_front",
    "proportion_variance",
    "race_batch",
    "run_search",
    "select",
]
