"""Pareto fronts of (accuracy, cost) points and the one rule that picks the point a search grows to.

A point is a candidate's search score (`accuracy`: the mean validation accuracy over the seen
tasks and the new one, see `selfgrow.search.objectives`) and its cost (inference FLOPs,
parameters or training FLOPs), with the score's standard error when the caller knows it.

Rules (`RULES`; `DEFAULT_RULE` is "parsimony"):
- "parsimony": the cheapest candidate whose score is not distinguishable from the best one's:
  score_i >= score_best - z * sqrt(se_i^2 + se_best^2) - tolerance (a one-sided test at `z`
  standard errors; z = 1 by default). With 100 validation images per class most short-trained
  candidates are within noise of each other; then the cheaper one wins, so growth must show it
  pays for itself. Without standard errors this is the "accuracy" rule with `tolerance`.
- "accuracy": the highest score; with `tolerance` > 0, the cheapest candidate at most `tolerance`
  below it. Ties go to the lower cost, then the earlier trial.
- "mnas": the highest score x (cost / reference)^w, MnasNet's soft-constrained objective (Tan et
  al. 2019, eq. 2 with alpha = beta = w = -0.07): a net of twice the reference cost must score
  2^0.07 = 1.05 times higher to be chosen. `reference` is the cost of the net before growth (the
  search passes it), so doubling the FLOPs must buy 5% relative accuracy.
- "knee": the knee of the Pareto front (Das 1999; Branke et al. 2004): both objectives min-max
  normalised over the front, the point farthest above the chord joining the cheapest and the most
  accurate front points. A front of one or two points, or one with no point above its chord, has
  no knee; the rule then falls back to "parsimony".
- "capacity": the costliest candidate whose score is not distinguishable from the best one's (the
  same test as parsimony's). It is the rule for a cost that is already paid: under a stream's
  training budget (`train_budget` of the searched growers) every candidate offered fits the
  budget, so being cheaper buys nothing, and in a class-incremental stream capacity added late
  learns the old classes from a replay memory only (BENCHMARKS.md: on Split-CIFAR-10 the nets that
  were large from the first task won). Differences the scores resolve still decide.

Family-wise (`familywise`, parsimony and capacity): the best of m candidates is the maximum of m noisy scores, so
with m - 1 comparisons against it a candidate as good as the others falls more than z standard errors behind it far
more often than one comparison would (at z = 1: 16% for one comparison, up to 3 x 16% for three). With it, z is the
one-comparison level and each of the m - 1 comparisons is made at the Šidák-Bonferroni margin
z_m = Φ⁻¹(1 - (1 - Φ(z)) / (m - 1)) (1.41, 1.62, 1.75, 2.00 standard errors for m = 3, 4, 5, 8 at z = 1), so the
chance that any equal candidate is declared worse stays about 1 - Φ(z).
"""

from __future__ import annotations

import math
from collections.abc import Sequence

from selfgrow.errors import SelfgrowError

RULES = ("parsimony", "accuracy", "mnas", "knee", "capacity")
DEFAULT_RULE = "parsimony"
MNAS_EXPONENT = -0.07


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


def indistinguishable(points: Sequence[tuple[float, float]], errors: Sequence[float] | None = None,
                      z: float = 1.0, tolerance: float = 0.0) -> list[int]:
    """Indices of the points whose score is within `z` combined standard errors (plus `tolerance`) of the best."""
    errors = list(errors) if errors is not None else [0.0] * len(points)
    if len(errors) != len(points):
        raise SelfgrowError(f"{len(errors)} standard errors were given for {len(points)} points; give one per point.")
    best = max(range(len(points)), key=lambda i: (points[i][0], -points[i][1], -i))
    top, top_se = points[best][0], errors[best]
    return [i for i, (acc, _) in enumerate(points)
            if acc >= top - z * math.sqrt(errors[i] ** 2 + top_se ** 2) - tolerance - 1e-12]


def familywise_z(z: float, points: int) -> float:
    """The margin, in standard errors, of each of the `points` - 1 comparisons with the best score so that any of
    them errs about as often as one comparison at `z` does (see the module docstring)."""
    from statistics import NormalDist

    if points <= 2:
        return z
    normal = NormalDist()
    return normal.inv_cdf(1.0 - (1.0 - normal.cdf(z)) / (points - 1))


def select(points: Sequence[tuple[float, float]], rule: str = "accuracy", tolerance: float = 0.0,
           errors: Sequence[float] | None = None, z: float = 1.0, reference: float | None = None,
           familywise: bool = False) -> int:
    """Index of the point `rule` picks among `points` (accuracy, cost), all assumed within budget.

    `errors` are the points' standard errors (parsimony; none: exact scores), `z` how many of them
    make a difference (`familywise`: per family of comparisons with the best, see the module docstring),
    `reference` the cost the mnas rule divides by (default: the cheapest point's).
    """
    if rule not in RULES:
        raise SelfgrowError(f"Unknown selection rule {rule!r}; accepted: {', '.join(RULES)}.")
    if not points:
        raise SelfgrowError("No candidate to select from; every candidate was pruned or over the budget.")
    if not isinstance(z, (int, float)) or z < 0:
        raise SelfgrowError(f"Selection z={z!r} is invalid; accepted: a number >= 0 (standard errors).")
    if rule == "knee":
        knee = knee_point(points)
        if knee is not None:
            return knee
        rule = "parsimony"
    if rule == "mnas":
        ref = reference if reference is not None and reference > 0 else min(c for _, c in points)
        value = [acc * (max(cost, 1e-12) / max(ref, 1e-12)) ** MNAS_EXPONENT for acc, cost in points]
        return max(range(len(points)), key=lambda i: (value[i], -points[i][1], -i))
    margin = familywise_z(z, len(points)) if familywise else z
    near = indistinguishable(points, errors if rule in ("parsimony", "capacity") else None, margin, tolerance)
    if rule == "capacity":
        return max(near, key=lambda i: (points[i][1], points[i][0], -i))
    return min(near, key=lambda i: (points[i][1], -points[i][0], i))


__all__ = ["DEFAULT_RULE", "MNAS_EXPONENT", "RULES", "familywise_z", "indistinguishable", "knee_point", "pareto_front",
           "select"]
