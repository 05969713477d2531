"""The growth knowledge base and meta-learned warm start across runs (`base`, `features`, `transfer`, `surrogate`,
`agreement`)."""

from selfgrow.search.meta.base import Entry, KnowledgeBase, resolve
from selfgrow.search.meta.features import FEATURES, task_features
from selfgrow.search.meta.surrogate import Surrogate
from selfgrow.search.meta.transfer import nearest, transfer

__all__ = ["FEATURES", "Entry", "KnowledgeBase", "Surrogate", "nearest", "resolve", "task_features", "transfer"]
