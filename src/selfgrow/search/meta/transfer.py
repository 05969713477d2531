"""Meta-learned warm start: the past tasks most like the new one, and their best points carried to its space.

Similarity is the root-mean-square distance between meta-features (`selfgrow.search.meta.features`), each
divided by the standard deviation of the distinct values it takes over the past tasks and the new one (a feature
constant over them counts for nothing; a feature missing on either side, e.g. a probe without validation data, is
left out of that distance), so 1 means a typical spread apart on every feature. Distinct values, because a base
holds many runs of the same tasks: with every repeat counted, a feature on which only the new task differs (digits'
8x8 pixels against a base of 28x28 searches) would get a spread that shrinks as the base grows, and the new task's
distance would grow with it (digits lay at 2.5 from a base of one run per MNIST-sized task, at 4.1 from three).
Past searches farther than the warm start's `max_distance` (1.5 by default) are not consulted, so a base of
unrelated tasks proposes nothing (leave-one-stream-out benches in BENCHMARKS.md: MNIST and Fashion-MNIST tasks lie
0.3-0.7 from each other in the 32-unit MLP bench and 0.5-1.5 in meta_wide's, digits 1.0-1.7 from both, Split-
CIFAR-10's ResNet tasks about 2 from the MLP tasks and 1.8-2.0 from ResNet searches of MNIST and Fashion-MNIST,
mostly by their inputs: channels, image size, mean pixel, probe). Only searches of the same grower are
consulted, never those of the run itself (its own earlier tasks are the within-run warm start's), and of several
searches of one past task (runs of the same stream) only the nearest (`one_per_task`; with the warm start's `by:
outcome`, the one whose run ended best), so `k` counts past tasks.

A past point is transferred as relative actions: a parameter the new space has under the same
name keeps its value (a widening factor, a number of inserted layers, φ, δ are relative to the
net they grow); a parameter the new space lacks maps to the parameter of the same kind
("widen", "deepen", ...) at the same position in the space's order, so a point of one net's
layers applies to another net's. Where both searches recorded the sizes their scaling parameters act on
(`sizes`: a widening factor's group width, `SearchGrower.sizes`), a factor is carried as the target size it
grew to instead: the past width times its factor, over the current width, rounded to the nearest factor the
new space offers (on a log scale), so a past run that widened 16 units to 32 proposes 4x to a net of 8 units.
Values outside the new space are dropped, missing names take their no-growth value (the search's
`_fitting_points`).
"""

from __future__ import annotations

import math
from typing import Any

from selfgrow.search.meta.base import Entry
from selfgrow.search.meta.features import FEATURES


def nearest(entries: list[Entry], features: dict[str, float], grower: str,
            exclude_run: str | None = None) -> list[tuple[Entry, float]]:
    """The entries of `grower` (not of run `exclude_run`) with their distances to `features`, nearest first (ties by
    key); the warm start keeps those within its `max_distance` (`selfgrow.search.meta.link`)."""
    pool = [e for e in entries if e.grower == grower and e.run != exclude_run]
    if not pool:
        return []
    rows = [e.features for e in pool] + [features]
    scale = {name: _spread({r[name] for r in rows if _finite(r.get(name))}) for name in FEATURES}

    def distance(other: dict[str, float]) -> float:
        terms = [((other[n] - features[n]) / scale[n]) ** 2 for n in FEATURES
                 if scale[n] > 0 and _finite(other.get(n)) and _finite(features.get(n))]
        return math.sqrt(sum(terms) / len(terms)) if terms else 0.0

    return sorted(((e, distance(e.features)) for e in pool), key=lambda pair: (pair[1], pair[0].key))


def one_per_task(ranked: list[tuple[Entry, float]], by: str = "distance") -> list[tuple[Entry, float]]:
    """One of `ranked`'s searches per past task (`Entry.task_key`; an entry without one, recorded before keys were,
    is a task of its own), the tasks in the order of their nearest search: a base that holds several runs of a stream
    holds several searches of each of its tasks, and the warm start's `k` counts tasks, not repeats of one. `by`:
    "distance" keeps each task's nearest search, "outcome" the search whose run ended best (`run_outcome`; the
    nearest among equals)."""
    tasks: dict[str, list[tuple[Entry, float]]] = {}
    for entry, distance in ranked:
        tasks.setdefault(entry.task_key or entry.key, []).append((entry, distance))
    if by == "outcome":
        return [max(searches, key=lambda pair: run_outcome(pair[0])) for searches in tasks.values()]
    return [searches[0] for searches in tasks.values()]


def run_outcome(entry: Entry) -> tuple[int, float]:
    """How far the search's run got and how it ended there: (`latest_task`, `latest`, the mean validation accuracy
    over the seen tasks after it), (-1, -inf) before any outcome; a run that went further ranks above, so a killed
    run's early score never outranks finished runs."""
    latest = entry.outcome.get("latest")
    if latest is None or not math.isfinite(latest):
        return -1, -math.inf
    return int(entry.outcome.get("latest_task", -1)), float(latest)


SAME_NET_RATIO = 1.5  # measured: BENCHMARKS.md, "Earlier runs of the same stream from another net"


def same_net(past: dict[str, float], now: dict[str, float]) -> bool:
    """Whether a past search grew a net within `SAME_NET_RATIO` of the current one's parameters (its `log_params`
    meta-feature; true where either lacks it): only then does a relative action (a widening factor) mean there what
    it means here, so that the search's scores speak for this net's points."""
    if not (_finite(past.get("log_params")) and _finite(now.get("log_params"))):
        return True
    return abs(past["log_params"] - now["log_params"]) <= math.log(SAME_NET_RATIO)


def transfer(params: dict[str, Any], source_space: list[str], space: dict[str, Any],
             source_sizes: dict[str, float] | None = None, sizes: dict[str, float] | None = None) -> dict[str, Any]:
    """`params` (a point of a space whose parameters were `source_space`, in order) as a point of `space`; a
    parameter both `source_sizes` (the sizes it acted on then) and `sizes` (now) name is carried as its target
    size."""
    target = list(space)
    point: dict[str, Any] = {}
    for name, value in params.items():
        if name in space:
            point[name] = _to_target(value, name, name, space, source_sizes, sizes)
            continue
        kind = _kind(name)
        position = [n for n in source_space if _kind(n) == kind].index(name) if name in source_space else None
        same_kind = [n for n in target if _kind(n) == kind]
        if position is not None and position < len(same_kind) and same_kind[position] not in params:
            point.setdefault(same_kind[position], _to_target(value, name, same_kind[position], space,
                                                              source_sizes, sizes))
    return point


def _to_target(value: Any, source: str, name: str, space: dict[str, Any], source_sizes: dict[str, float] | None,
               sizes: dict[str, float] | None) -> Any:
    """The factor of parameter `name` that takes its size now where `value` took `source`'s size then (the nearest
    of the space's numeric choices on a log scale); `value` itself where either size is unknown."""
    then, now = (source_sizes or {}).get(source), (sizes or {}).get(name)
    if not (_finite(then) and _finite(now) and then > 0 and now > 0 and _finite(value) and value > 0):
        return value
    from optuna.distributions import CategoricalDistribution

    wanted = math.log(value * then / now)
    dist = space.get(name)
    if isinstance(dist, CategoricalDistribution):
        factors = [c for c in dist.choices if _finite(c) and c > 0]
        return min(factors, key=lambda c: (abs(math.log(c) - wanted), c)) if factors else value
    return math.exp(wanted)


def contains(distribution: Any, value: Any) -> bool:
    """Whether `value` is a point of the Optuna `distribution`."""
    try:
        return bool(distribution._contains(distribution.to_internal_repr(value)))
    except (ValueError, TypeError, IndexError):
        return False


def _spread(values: set[float]) -> float:
    """Standard deviation of the distinct `values` (0 for none): a value's repeats (runs of the same task) do
    not narrow it, so a feature on which only the new task differs keeps its distance as the base grows."""
    if not values:
        return 0.0
    mean = sum(values) / len(values)
    return math.sqrt(sum((v - mean) ** 2 for v in values) / len(values))


def _kind(name: str) -> str:
    """"widen:stage.0" -> "widen"; a name without a kind is its own kind."""
    return name.split(":", 1)[0] if ":" in name else name


def _finite(value: Any) -> bool:
    return isinstance(value, (int, float)) and math.isfinite(value)
