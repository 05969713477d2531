"""A surrogate of past growth searches: (meta-features, action) -> how a candidate scored against its search.

Fitted before a search on every complete candidate the knowledge base holds for the same grower
(never the run's own): one row per candidate, its task's meta-features (`FEATURES`, a missing
value replaced by the feature's mean over the rows) beside its point transferred to the current
space (`selfgrow.search.meta.transfer`; a categorical value as its number, or its index when it
is not a number; a name the point lacks at its no-growth value). The target is the candidate's
score minus the mean score of its search's complete candidates: searches of easy and hard tasks
differ by more than their candidates do, and within one search only the ranking matters. The
model is a random forest (scikit-learn, `TREES` trees, seeded); the spread of its trees'
predictions is its uncertainty.

It does two things for a new task: `propose(n, feasible)` ranks every point of the space (the grid
when it has at most `GRID` points, else `GRID` seeded random draws) by the predicted score and returns
the `n` best that are `feasible` (within the search's budget), which the search tries first;
`hopeless(params, observed)` screens the sampler's later points, a point whose optimistic prediction
(mean + `Z_SCREEN` tree spreads) falls below the prediction of the best proposal (of the best point
of the pool before any proposal) is not trained. The screen only acts while the surrogate ranks this
search's own complete candidates rightly (Kendall tau > 0 over at least `MIN_OBSERVED` of them), so
a base of unrelated or misleading tasks stops screening as soon as the search contradicts it.
"""

from __future__ import annotations

import math
from collections.abc import Callable, Sequence
from typing import Any

import numpy as np

from selfgrow.search.meta.base import Entry
from selfgrow.search.meta.features import FEATURES
from selfgrow.search.meta.transfer import contains, transfer
from selfgrow.search.points import draw, grid

TREES = 64
GRID = 2048
Z_SCREEN = 1.0
MIN_OBSERVED = 3
MIN_SEARCHES = 2


class Surrogate:
    """A fitted forest over one space; build it with `Surrogate.fit`."""

    def __init__(self, model: Any, space: dict[str, Any], baseline: dict[str, Any], features: dict[str, float],
                 means: np.ndarray, searches: int, rows: int, seed: int) -> None:
        self.model = model
        self.space = space
        self.baseline = baseline
        self.means = means
        self.task_row = _feature_row(features, means)
        self.searches = searches
        self.rows = rows
        self.seed = seed
        self.reference: float | None = None  # the best proposal's prediction, which the screen compares with
        self._pool: tuple[list[dict[str, Any]], np.ndarray, np.ndarray] | None = None

    @classmethod
    def fit(cls, entries: Sequence[Entry], features: dict[str, float], space: dict[str, Any],
            baseline: dict[str, Any], seed: int = 0, sizes: dict[str, float] | None = None) -> Surrogate | None:
        """The forest fitted on `entries`' complete candidates for `space` (transferred with the current `sizes`;
        None with fewer than `MIN_SEARCHES` searches of at least two complete candidates: nothing to learn a
        ranking from)."""
        from sklearn.ensemble import RandomForestRegressor

        relative = relative_scores(entries, space, baseline, sizes)
        searches = len({id(entry) for entry, _, _ in relative})
        if searches < MIN_SEARCHES:
            return None
        rows = [(entry.features, point) for entry, point, _ in relative]
        targets = [score for _, _, score in relative]
        raw = np.array([[float(f.get(n, math.nan)) if _finite(f.get(n)) else math.nan for n in FEATURES]
                        for f, _ in rows])
        means = np.nan_to_num(np.nanmean(np.where(np.isfinite(raw), raw, np.nan), axis=0)) if len(raw) else raw
        x = np.hstack([np.where(np.isfinite(raw), raw, means), np.array([_encode(p, space) for _, p in rows])])
        model = RandomForestRegressor(n_estimators=TREES, min_samples_leaf=2, random_state=seed).fit(x, targets)
        return cls(model, space, baseline, features, means, searches, len(rows), seed)

    def predict(self, points: Sequence[dict[str, Any]]) -> tuple[np.ndarray, np.ndarray]:
        """Predicted score relative to the search's mean, and the spread over the trees, for each point."""
        x = np.array([np.concatenate([self.task_row, _encode({**self.baseline, **p}, self.space)]) for p in points])
        per_tree = np.stack([tree.predict(x) for tree in self.model.estimators_])
        return per_tree.mean(axis=0), per_tree.std(axis=0)

    def propose(self, n: int, feasible: Callable[[dict[str, Any]], bool] | None = None) -> list[dict[str, Any]]:
        """The `n` `feasible` points of the space with the highest predicted score (distinct, best first)."""
        points, mean, _ = self._ranked_pool()
        chosen: list[int] = []
        for i in np.argsort(-mean, kind="stable"):
            if len(chosen) == n:
                break
            if feasible is None or feasible(dict(points[i])):
                chosen.append(int(i))
        if chosen:
            self.reference = float(mean[chosen[0]])
        return [dict(points[i]) for i in chosen]

    def hopeless(self, params: dict[str, Any], observed: Sequence[dict[str, Any]]) -> str | None:
        """Why `params` is not worth training (None: it is, or the screen is off); `observed`: this search's
        records so far, whose complete candidates decide whether the surrogate is trusted."""
        tau = self.agreement(observed)
        if tau is None or tau <= 0:
            return None
        reference = self.reference if self.reference is not None else float(self._ranked_pool()[1].max())
        mean, spread = self.predict([params])
        if mean[0] + Z_SCREEN * spread[0] >= reference:
            return None
        return (f"screened by the surrogate: predicted {mean[0]:+.4f} (spread {spread[0]:.4f}) against the best "
                f"proposal's {reference:+.4f}; it ranks this search's candidates with tau {tau:.2f}")

    def agreement(self, observed: Sequence[dict[str, Any]]) -> float | None:
        """Kendall tau between predicted and measured scores of the distinct complete candidates in `observed`
        (None with fewer than `MIN_OBSERVED`)."""
        from scipy.stats import kendalltau

        done = {}
        for record in observed:
            if record.get("status") == "complete":
                done.setdefault(_point_key(record["params"]), record)
        if len(done) < MIN_OBSERVED:
            return None
        records = list(done.values())
        predicted, _ = self.predict([r["params"] for r in records])
        tau = kendalltau(predicted, [r["accuracy"] for r in records]).statistic
        return float(tau) if math.isfinite(tau) else 0.0

    def describe(self) -> dict[str, Any]:
        """What the surrogate was fitted on, for the plan's reasons."""
        return {"searches": self.searches, "candidates": self.rows, "trees": TREES}

    def _ranked_pool(self) -> tuple[list[dict[str, Any]], np.ndarray, np.ndarray]:
        if self._pool is None:
            points = space_pool(self.space, self.seed)
            mean, spread = self.predict(points)
            self._pool = (points, mean, spread)
        return self._pool


def relative_scores(entries: Sequence[Entry], space: dict[str, Any], baseline: dict[str, Any],
                    sizes: dict[str, float] | None = None) -> list[tuple[Entry, dict[str, Any], float]]:
    """Every complete candidate of the `entries` whose search has at least two: its entry, its point transferred to
    `space` (a name it lacks at `baseline`'s value; with the current `sizes`, as target sizes where the entry
    recorded its own) and its score minus the mean of its search's complete ones."""
    rows = []
    for entry in entries:
        complete = [c for c in entry.candidates if c.get("status") == "complete" and _finite(c.get("accuracy"))]
        if len(complete) < 2:
            continue
        mean = sum(c["accuracy"] for c in complete) / len(complete)
        for candidate in complete:
            moved = transfer(candidate["params"], list(entry.space), space, entry.sizes, sizes)
            point = {**baseline, **_fitting(moved, space)}
            rows.append((entry, point, candidate["accuracy"] - mean))
    return rows


def space_pool(space: dict[str, Any], seed: int) -> list[dict[str, Any]]:
    """Every point of a finite space of at most GRID points, else GRID seeded random draws."""
    generator = np.random.default_rng(seed)
    return grid(space, GRID) or [{name: draw(dist, generator) for name, dist in space.items()} for _ in range(GRID)]


def _encode(point: dict[str, Any], space: dict[str, Any]) -> list[float]:
    """A point of `space` as numbers, one per parameter in the space's order."""
    from optuna.distributions import CategoricalDistribution

    row = []
    for name, dist in space.items():
        value = point.get(name)
        if isinstance(dist, CategoricalDistribution) and not (isinstance(value, (int, float)) and
                                                               not isinstance(value, bool)):
            value = dist.choices.index(value) if value in dist.choices else -1
        row.append(float(value) if value is not None else math.nan)
    return row


def _fitting(point: dict[str, Any], space: dict[str, Any]) -> dict[str, Any]:
    """The entries of `point` whose values `space` holds."""
    return {k: v for k, v in point.items() if k in space and contains(space[k], v)}


def _feature_row(features: dict[str, float], means: np.ndarray) -> np.ndarray:
    raw = np.array([float(features.get(n, math.nan)) if _finite(features.get(n)) else math.nan for n in FEATURES])
    return np.where(np.isfinite(raw), raw, means)


def _point_key(params: dict[str, Any]) -> tuple:
    return tuple(sorted(params.items()))


def _finite(value: Any) -> bool:
    return isinstance(value, (int, float)) and not isinstance(value, bool) and math.isfinite(value)
