"""The growth knowledge base and meta-learned warm start across runs (`base`, `features`, `transfer`)."""

from selfgrow.meta.base import Entry, KnowledgeBase, resolve
from selfgrow.meta.features import FEATURES, task_features
from selfgrow.meta.transfer import nearest, transfer

__all__ = ["FEATURES", "Entry", "KnowledgeBase", "nearest", "resolve", "task_features", "transfer"]
