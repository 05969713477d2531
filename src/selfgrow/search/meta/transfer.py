"""Meta-learned warm start: the past tasks most like the new one, and their best points carried to its space.

Similarity is the root-mean-square distance between meta-features (`selfgrow.search.meta.features`), each
standardised over the past tasks and the new one (a feature constant over them counts for nothing;
a feature missing on either side, e.g. a probe without validation data, is left out of that
distance), so 1 means a typical spread apart on every feature; past searches farther than the
warm start's `max_distance` (1 by default) are not consulted, so a base of unrelated tasks
proposes nothing (in the leave-one-stream-out bench, CIFAR-10 tasks lie about 3 from MLP digit
tasks, MNIST and Fashion-MNIST tasks 0.3-0.7 from each other). Only searches of the same grower are
consulted, never those of the run itself (its own earlier tasks are the within-run warm start's).

A past point is transferred as relative actions: a parameter the new space has under the same
name keeps its value (a widening factor, a number of inserted layers, φ, δ are relative to the
net they grow); a parameter the new space lacks maps to the parameter of the same kind
("widen", "deepen", ...) at the same position in the space's order, so a point of one net's
layers applies to another net's. Values outside the new space are dropped, missing names take
their no-growth value (the search's `_fitting_points`).
"""

from __future__ import annotations

import math
from typing import Any

from selfgrow.search.meta.base import Entry
from selfgrow.search.meta.features import FEATURES


def nearest(entries: list[Entry], features: dict[str, float], grower: str, k: int | None,
            exclude_run: str | None = None, max_distance: float = math.inf) -> list[tuple[Entry, float]]:
    """The `k` entries of `grower` (None: all) closest to `features` (ties by key) and no farther than
    `max_distance`, with their distances."""
    pool = [e for e in entries if e.grower == grower and e.run != exclude_run]
    if not pool:
        return []
    rows = [e.features for e in pool] + [features]
    scale = {}
    for name in FEATURES:
        values = [r[name] for r in rows if _finite(r.get(name))]
        mean = sum(values) / len(values) if values else 0.0
        spread = math.sqrt(sum((v - mean) ** 2 for v in values) / len(values)) if values else 0.0
        scale[name] = (mean, spread)

    def distance(other: dict[str, float]) -> float:
        terms = [((other[n] - features[n]) / scale[n][1]) ** 2 for n in FEATURES
                 if scale[n][1] > 0 and _finite(other.get(n)) and _finite(features.get(n))]
        return math.sqrt(sum(terms) / len(terms)) if terms else 0.0

    ranked = sorted(((e, distance(e.features)) for e in pool), key=lambda pair: (pair[1], pair[0].key))
    return [pair for pair in ranked if pair[1] <= max_distance][:k]


def transfer(params: dict[str, Any], source_space: list[str], space: dict[str, Any]) -> dict[str, Any]:
    """`params` (a point of a space whose parameters were `source_space`, in order) as a point of `space`."""
    target = list(space)
    point: dict[str, Any] = {}
    for name, value in params.items():
        if name in space:
            point[name] = value
            continue
        kind = _kind(name)
        position = [n for n in source_space if _kind(n) == kind].index(name) if name in source_space else None
        same_kind = [n for n in target if _kind(n) == kind]
        if position is not None and position < len(same_kind) and same_kind[position] not in params:
            point.setdefault(same_kind[position], value)
    return point


def contains(distribution: Any, value: Any) -> bool:
    """Whether `value` is a point of the Optuna `distribution`."""
    try:
        return bool(distribution._contains(distribution.to_internal_repr(value)))
    except (ValueError, TypeError, IndexError):
        return False


def _kind(name: str) -> str:
    """"widen:stage.0" -> "widen"; a name without a kind is its own kind."""
    return name.split(":", 1)[0] if ":" in name else name


def _finite(value: Any) -> bool:
    return isinstance(value, (int, float)) and math.isfinite(value)
