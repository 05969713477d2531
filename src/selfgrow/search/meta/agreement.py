"""Models of past tasks' scores over the current space: the warm start's `similar: scores` and `consensus: n`.

Meta-features pick past tasks that rank a new task's points barely better than chance (BENCHMARKS.md, "Do the
nearest past tasks rank points as the new one does?": mean Kendall tau 0.10 against 0.09 for any past task), while
the past tasks that agree best with the new task on 4 of its points rank all of them at 0.25. So, as the
ranking-weighted ensembles of past surrogates (RGPE, Feurer et al. 2018) weight past tasks, each past task gets a
model of its scores over the current space, a Gaussian process fitted on its searches' complete candidates (every
search of that task within the warm start's distance; each candidate transferred to the space, its score relative
to its search's mean, `surrogate.relative_scores`), and is scored by the Kendall tau between what the model predicts
at this search's first trained points and what they scored (their first rung's scores, which every trained
candidate has). The `k` past tasks that agree best, and only those that agree (tau > 0: a past task that ranks the
first points the other way proposes nothing, so a misleading base costs nothing but the consultation), propose their
nearest search's chosen and best points, as the features' warm start does.

Measured without a gain where the scores repeat (BENCHMARKS.md, "Past tasks chosen by the search's first scores":
1.07x fewer trials to the cold search's best, against 1.50x for the features' points tried first), so it is opt-in.

The same models give the consensus (`consensus`): the points predicted best on average over every past task within
the distance, whichever the new task resembles, as learnt initialisations of hyperparameter searches are chosen
across datasets (Wistuba et al. 2015). Measured level with the nearest tasks' points (1.52x against 1.50x; an oracle
choice of past tasks reads 1.44x): what the base teaches is which growth tends to pay, not which past task is alike.

The pooled warm start's guard (`guard: agreement`, or `true`) asks the same of the pool's mean prediction
(`pool_agreement`) before it enqueues the pooled points past the first trials; measured without a gain (BENCHMARKS.md,
"A guard for pooled points": a misleading base's points still beat no growth there, so 4 first scores do not tell it
from a good one). `guard: sampler` asks instead whether the pool's first point scored above every other growth of the
first batch, the sampler's (`first_point_lead`): a pool trusted once it beats an alternative, not no growth.

Deviation from RGPE: it weights an ensemble of the past GPs inside the acquisition function; here the agreeing past
tasks' points are enqueued after the first trials instead, so the two ways of choosing past tasks compare on the same
footing, and any sampler keeps working.
"""

from __future__ import annotations

import math
import warnings
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from typing import Any

import numpy as np

from selfgrow.search.meta.base import Entry
from selfgrow.search.meta.surrogate import relative_scores, space_pool

MIN_OBSERVED = 3  # distinct trained points before past tasks are compared (fewer: no ranking to agree with)


@dataclass
class PastTask:
    """One past task: its searches (nearest first) and a model of its relative scores over the current space."""

    key: str
    entries: list[Entry]
    distance: float
    model: Any

    def agreement(self, points: Sequence[dict[str, Any]], scores: Sequence[float], space: dict[str, Any],
                  baseline: dict[str, Any]) -> float:
        """Kendall tau between this task's predicted scores of `points` and their measured `scores` (0 when either
        side is constant)."""
        return _tau(self.model.predict(np.array([unit_encode({**baseline, **p}, space) for p in points])), scores)


def past_tasks(within: Sequence[tuple[Entry, float]], space: dict[str, Any], baseline: dict[str, Any],
               seed: int, sizes: dict[str, float] | None = None) -> list[PastTask]:
    """Each past task of `within` (searches with their feature distances, nearest first) that has at least two
    complete candidates, with its model (its candidates transferred with the current `sizes`); in the order of its
    nearest search's distance."""
    from sklearn.exceptions import ConvergenceWarning

    grouped: dict[str, list[tuple[Entry, float]]] = {}
    for entry, distance in within:
        grouped.setdefault(entry.task_key or entry.key, []).append((entry, distance))
    tasks = []
    for key, searches in grouped.items():
        rows = relative_scores([e for e, _ in searches], space, baseline, sizes)
        if len(rows) < 2:
            continue
        x = np.array([unit_encode(point, space) for _, point, _ in rows])
        with warnings.catch_warnings():  # a length scale at its bound on a few points is expected, not news
            warnings.simplefilter("ignore", ConvergenceWarning)
            model = _gaussian_process(seed).fit(x, [score for _, _, score in rows])
        tasks.append(PastTask(key, [e for e, _ in searches], searches[0][1], model))
    return tasks


def first_scores(records: Sequence[dict[str, Any]]) -> tuple[list[dict[str, Any]], list[float]]:
    """The distinct trained points of a search's `records` and their first rung's scores, in trial order."""
    points, scores = [], []
    for record in records:
        rungs = record.get("rung_scores") or []
        if rungs and math.isfinite(rungs[0]) and record["params"] not in points:
            points.append(dict(record["params"]))
            scores.append(float(rungs[0]))
    return points, scores


def agreements(tasks: Sequence[PastTask], records: Sequence[dict[str, Any]], space: dict[str, Any],
               baseline: dict[str, Any]) -> list[tuple[PastTask, float]] | None:
    """Every past task with the Kendall tau between its predictions and the search's first scores, best first
    (ties: the nearer by meta-features); None with fewer than `MIN_OBSERVED` distinct trained points to compare on.
    The warm start consults the first `k` of those with tau > 0."""
    points, scores = first_scores(records)
    if len(points) < MIN_OBSERVED:
        return None
    rated = [(task, task.agreement(points, scores, space, baseline)) for task in tasks]
    return sorted(rated, key=lambda pair: (-pair[1], pair[0].distance, pair[0].key))


def pool_agreement(tasks: Sequence[PastTask], records: Sequence[dict[str, Any]], space: dict[str, Any],
                   baseline: dict[str, Any]) -> float | None:
    """Kendall tau between the past `tasks`' mean prediction (what the pooled warm start ranks by) and the search's
    first scores; None with fewer than `MIN_OBSERVED` distinct trained points."""
    points, scores = first_scores(records)
    if len(points) < MIN_OBSERVED:
        return None
    x = np.array([unit_encode({**baseline, **p}, space) for p in points])
    return _tau(np.mean([task.model.predict(x) for task in tasks], axis=0), scores)


def first_point_lead(records: Sequence[dict[str, Any]], point: dict[str, Any],
                     baseline: dict[str, Any]) -> tuple[float, float] | None:
    """The first score of `point` (the pool's first) and the best first score of every other growth among the
    search's `records` (not the no-growth `baseline`); None until both exist."""
    mine, start = {**baseline, **point}, dict(baseline)
    scored = [({**baseline, **p}, score) for p, score in zip(*first_scores(records))]
    own = [score for p, score in scored if p == mine]
    others = [score for p, score in scored if p not in (mine, start)]
    if not own or not others:
        return None
    return own[0], max(others)


def consensus(tasks: Sequence[PastTask], space: dict[str, Any], baseline: dict[str, Any], n: int, seed: int,
              feasible: Callable[[dict[str, Any]], bool] | None = None) -> list[dict[str, Any]]:
    """The `n` `feasible` points of the space (not the no-growth `baseline`) with the highest mean predicted relative
    score over the past `tasks`, best first: what scored well across past tasks, whichever the new one resembles."""
    if not tasks:
        return []
    points = [p for p in space_pool(space, seed) if {**baseline, **p} != baseline]
    x = np.array([unit_encode({**baseline, **p}, space) for p in points])
    mean = np.mean([task.model.predict(x) for task in tasks], axis=0)
    chosen: list[dict[str, Any]] = []
    for i in np.argsort(-mean, kind="stable"):
        if len(chosen) == n:
            break
        if feasible is None or feasible(dict(points[i])):
            chosen.append(dict(points[i]))
    return chosen


def unit_encode(point: dict[str, Any], space: dict[str, Any]) -> list[float]:
    """A point of `space` as numbers in [0, 1], one per parameter: a categorical value's position among the choices
    (widening factors 1/2/4/8 are evenly spaced, as their logarithms are), a number's position in its range (on a log
    scale where the distribution has one)."""
    from optuna.distributions import CategoricalDistribution

    row = []
    for name, dist in space.items():
        value = point.get(name)
        if isinstance(dist, CategoricalDistribution):
            position = dist.choices.index(value) if value in dist.choices else 0
            row.append(position / max(len(dist.choices) - 1, 1))
            continue
        low, high, value = float(dist.low), float(dist.high), float(value if value is not None else dist.low)
        if getattr(dist, "log", False):
            low, high, value = math.log(low), math.log(high), math.log(value)
        row.append((value - low) / (high - low) if high > low else 0.0)
    return row


def _tau(predicted: Sequence[float], scores: Sequence[float]) -> float:
    """Kendall tau between predicted and measured scores (0 when either side is constant)."""
    from scipy.stats import kendalltau

    tau = kendalltau(predicted, scores).statistic
    return float(tau) if math.isfinite(tau) else 0.0


def _gaussian_process(seed: int) -> Any:
    """A GP with one Matérn kernel over the unit-scaled parameters and a noise term (scores repeat only up to
    training noise)."""
    from sklearn.gaussian_process import GaussianProcessRegressor
    from sklearn.gaussian_process.kernels import ConstantKernel, Matern, WhiteKernel

    kernel = ConstantKernel(1.0, (1e-3, 1e3)) * Matern(0.5, (0.05, 20.0), nu=2.5) + WhiteKernel(0.1, (1e-4, 1.0))
    return GaussianProcessRegressor(kernel, normalize_y=True, random_state=seed)
