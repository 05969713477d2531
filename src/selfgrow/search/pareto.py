"""Pareto fronts of (accuracy, cost) points and the rule that picks one point of a search.

Rules (`RULES`):
- "accuracy": the highest validation accuracy among the finished candidates within the budget;
  with `tolerance` > 0, the cheapest candidate whose accuracy is at most `tolerance` below that
  best (parsimony: growth must pay for itself). Ties go to the lower cost, then the earlier trial.
- "knee": the knee of the Pareto front within the budget (Das 1999; Branke et al. 2004): both
  objectives are min-max normalised over the front and the knee is the point farthest above the
  chord joining the cheapest and the most accurate front points. A front of one or two points,
  or one with no point above its chord, has no knee; the rule then falls back to "accuracy".
"""

from __future__ import annotations

import math
from collections.abc import Sequence

from selfgrow.errors import SelfgrowError

RULES = ("accuracy", "knee")


def pareto_front(points: Sequence[tuple[float, float]]) -> list[int]:
    """Indices of the non-dominated (accuracy to maximise, cost to minimise) points, by cost then accuracy.

    A point is dominated when another is at least as accurate and at most as costly, and strictly
    better in one of the two; equal points are all kept.
    """
    front = [
        i for i, (acc, cost) in enumerate(points)
        if not any(a >= acc and c <= cost and (a > acc or c < cost) for a, c in points)
    ]
    return sorted(front, key=lambda i: (points[i][1], -points[i][0], i))


def knee_point(points: Sequence[tuple[float, float]]) -> int | None:
    """Index of the knee of the points' Pareto front (see the module docstring); None when it has none."""
    front = pareto_front(points)
    if len(front) < 3:
        return None
    accs = [points[i][0] for i in front]
    costs = [points[i][1] for i in front]
    a_span, c_span = max(accs) - min(accs), max(costs) - min(costs)
    if a_span <= 0 or c_span <= 0:
        return None
    norm = [((c - min(costs)) / c_span, (a - min(accs)) / a_span) for a, c in zip(accs, costs)]
    (x0, y0), (x1, y1) = norm[0], norm[-1]
    length = math.hypot(x1 - x0, y1 - y0)
    distances = [((x1 - x0) * (y - y0) - (y1 - y0) * (x - x0)) / length for x, y in norm]
    best = max(range(len(front)), key=lambda k: (distances[k], -k))
    return front[best] if distances[best] > 1e-12 else None


def select(points: Sequence[tuple[float, float]], rule: str = "accuracy", tolerance: float = 0.0) -> int:
    """Index of the point `rule` picks among `points` (accuracy, cost), all assumed within budget."""
    if rule not in RULES:
        raise SelfgrowError(f"Unknown selection rule {rule!r}; accepted: {', '.join(RULES)}.")
    if not points:
        raise SelfgrowError("No candidate to select from; every candidate was pruned or over the budget.")
    if rule == "knee":
        knee = knee_point(points)
        if knee is not None:
            return knee
    best = max(acc for acc, _ in points)
    near = [i for i, (acc, _) in enumerate(points) if acc >= best - tolerance]
    return min(near, key=lambda i: (points[i][1], -points[i][0], i))
