"""Points of a growth space by size: each parameter's values in order, the smallest steps, the largest point that fits.

A searched grower's space maps names to Optuna distributions; the growth parameters (names
without the retention prefix) of the searched spaces grow the net as their value increases (a
widening factor, a number of inserted layers, phi), so "the next value" is the smallest growth of
one parameter and raising values one at a time walks towards the largest nets. The helpers here
assume that order; spaces with a continuous growth parameter have no next value and are left to
the search.
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

RETENTION_PREFIX = "retention:"  # the prefix of the strategies' strengths in a searched space (not growth)


def growth_values(space: dict[str, Any]) -> dict[str, list[Any] | None]:
    """The sorted values of each growth parameter of `space` (None for a continuous one)."""
    from optuna.distributions import CategoricalDistribution, IntDistribution

    values: dict[str, list[Any] | None] = {}
    for name, distribution in space.items():
        if name.startswith(RETENTION_PREFIX):
            continue
        if isinstance(distribution, CategoricalDistribution):
            values[name] = sorted(distribution.choices)
        elif isinstance(distribution, IntDistribution):
            values[name] = list(range(distribution.low, distribution.high + 1, distribution.step))
        else:
            values[name] = None
    return values


def smallest_steps(space: dict[str, Any], baseline: dict[str, Any]) -> list[dict[str, Any]] | None:
    """The points that raise one growth parameter of `baseline` to its next value (none at its largest); None when a
    growth parameter is continuous."""
    steps = []
    for name, values in growth_values(space).items():
        if values is None:
            return None
        above = [v for v in values if v > baseline[name]]
        if above:
            steps.append({**baseline, name: above[0]})
    return steps


def largest_point(space: dict[str, Any], baseline: dict[str, Any], fits: Callable[[dict[str, Any]], bool]) -> dict[str, Any] | None:
    """A largest growth of `baseline` that `fits`: the largest uniform growth that does (each growth parameter at its
    k-th smallest value, its largest when it has fewer, never below the baseline's), then each parameter in the
    space's order raised value by value while the point still fits, so that no single parameter can grow further.
    None when no growth fits or a growth parameter is continuous."""
    levels = growth_values(space)
    if any(values is None for values in levels.values()):
        return None
    point = dict(baseline)
    for k in range(1, max((len(v) for v in levels.values() if v), default=1)):
        uniform = {**baseline, **{name: max(values[min(k, len(values) - 1)], baseline[name])
                                  for name, values in levels.items() if values}}
        if not fits(uniform):
            break
        point = uniform
    for name, values in levels.items():
        for value in (v for v in values or [] if v > point[name]):
            if not fits({**point, name: value}):
                break
            point = {**point, name: value}
    return point if point != baseline else None


__all__ = ["RETENTION_PREFIX", "growth_values", "largest_point", "smallest_steps"]
