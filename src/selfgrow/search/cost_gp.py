"""A Bayesian-optimisation sampler that knows what a point costs before training it: "cost-gp".

A growth point's cost (inference FLOPs or parameters) is known before it is trained (`Proposal.cost`)
and its score rises with it: Kendall tau 0.62 between score and inference FLOPs over the 512-point
table of `benchmarks/sampler_search.py`, 0.45 on Split-CIFAR-10's task 1 (BENCHMARKS.md). Optuna's
samplers learn the cost only as an objective told after training. This one takes it as an input:
once `n_startup_trials` candidates are trained and 2 complete (random points before), each point it proposes is the
one of a pool of untried points within the budget with the highest expected improvement (Jones et
al. 1998) of the first objective, under a Gaussian process over the points' parameters and their
log cost (scikit-learn, ARD RBF kernel plus white noise) fitted on the complete trials. Candidates
pruned by the successive halving count towards the start, as Optuna's TPE counts them, so that in a
search of 8 trials in halving batches of 4 the second batch is the model's. The pool is
`pool_size` uniform draws of the space at the first proposal and a quarter as many more at each later
one (the whole space when it is smaller), each point's cost asked once per search.

A prior from past searches (`prior`: points of this space with their score relative to their search's mean,
from the growth knowledge base's nearest searches, `warm_start: {prior: true}`) makes it a transfer-learning
sampler: a GP fitted on the prior alone gives a mean m(x); this search's complete scores, shifted by their mean
offset from m, join the prior points, which carry `PRIOR_NOISE` more noise (in units of the targets' variance), in
one GP. The prior acts only once the search confirms it: with at least `MIN_AGREEING` complete candidates that m
ranks rightly (Kendall tau > 0), as the knowledge base's surrogate screen does (`selfgrow.search.meta.surrogate`);
then it also ends the random start. A prior the search contradicts is left out, so a misleading base never steers
the search's first trials (it did when the prior acted before any evidence: BENCHMARKS.md). This is in the spirit
of warm-started Bayesian optimisation across tasks (Feurer et al. 2015; the ranking-weighted ensembles of Feurer et
al. 2018 weight each past task by the same kind of pairwise-ranking agreement), reduced to one prior and an on/off
weight. Measured (BENCHMARKS.md, issue 18): no gain over the transferred points alone on real runs; on tables where
scores repeat, a gain in one setting (1.69x against 1.48x fewer trials at the default cut-off, with the transferred
points tried before no growth), a loss once no growth comes first, the grower's order since f59fa7e (1.38x against
1.50x), and a loss of accuracy in another; opt-in.

The default sampler of the growth search since the meta_wide bench ran with it to the end (BENCHMARKS.md, "A
sampler that reads each point's cost"). It was the default once before and was withdrawn: a point's cost was
known by growing its net, and where the widenings compound (an MLP widened 8x per task, a layer inserted at 4,096
units) one search spent over 20 minutes and 9 GB growing such nets in the engine's budget check. A searched
grower's points are now sized on the meta device (`engine.quiet_proposal` reads the propose's `sizing`: shapes
only), so asking a cost builds no weights.
"""

from __future__ import annotations

import json
import math
from collections.abc import Callable, Sequence
from typing import Any

import numpy as np
import optuna

from selfgrow.search.points import draw, finite_values, grid

CostOf = Callable[[dict[str, Any]], "float | None"]
Prior = Sequence[tuple[dict[str, Any], float]]
PRIOR_NOISE = 0.5
MIN_AGREEING = 3
JITTER = 1e-10  # scikit-learn's default alpha: the noise added to the GP's own observations


class CostGPSampler(optuna.samplers.BaseSampler):
    """Optuna sampler: random until `n_startup_trials` candidates are trained (complete, or pruned by the halving
    after a rung: the search's records give them an "accuracy") and 2 are complete, then expected improvement of
    the first objective under a GP over (parameters, log cost) among `pool_size` untried points within the budget.

    `cost_of(params)` is a point's cost, or None when it is over the search's budget (never proposed then);
    `prior`: past searches' points with their relative scores (see the module docstring).
    """

    def __init__(self, cost_of: CostOf, seed: int = 0, n_startup_trials: int = 4, pool_size: int = 256,
                 prior: Prior = ()) -> None:
        self.cost_of, self.n_startup_trials, self.pool_size = cost_of, n_startup_trials, pool_size
        self.prior = [(dict(point), float(score)) for point, score in prior]
        self._rng = np.random.default_rng(seed)
        self._seed = seed
        self._random = optuna.samplers.RandomSampler(seed=seed)
        self._costs: dict[str, float | None] = {}
        self._pools: dict[str, tuple[dict[str, dict[str, Any]], bool]] = {}  # space -> (pool, whole space)

    def infer_relative_search_space(self, study: Any, trial: Any) -> dict[str, Any]:
        """The distributions every finished trial shares (empty before the first)."""
        from optuna.search_space import intersection_search_space

        return intersection_search_space(study.get_trials(deepcopy=False), include_pruned=True)

    def sample_relative(self, study: Any, trial: Any, search_space: dict[str, Any]) -> dict[str, Any]:
        """The pool's point of highest expected improvement; {} (random points) during the start or without one."""
        from optuna.trial import TrialState

        if not search_space:
            return {}
        trials = study.get_trials(deepcopy=False)
        complete = [t for t in trials if t.state == TrialState.COMPLETE and set(search_space) <= set(t.params)]
        trained = len(complete) + sum(t.state == TrialState.PRUNED and "accuracy" in t.user_attrs for t in trials)
        prior = [(p, s) for p, s in self.prior if set(p) == set(search_space) and self._cost(p) is not None]
        start = trained < self.n_startup_trials or len(complete) < 2
        if start and (not prior or len(complete) < MIN_AGREEING):
            return {}
        tried = {_key(t.params) for t in trials if set(search_space) <= set(t.params)}
        pool = [p for p in self._pool(search_space) if _key(p) not in tried and self._cost(p) is not None]
        if not pool:
            return {}
        sign = 1.0 if study.directions[0].name == "MAXIMIZE" else -1.0
        observed = [dict(t.params) for t in complete]
        scores = np.array([sign * t.values[0] for t in complete])
        costs = [float(t.values[1]) for t in complete]  # the search's second objective: the cost
        pending = [dict(t.params) for t in trials if t.state == TrialState.RUNNING and t.number != trial.number
                   and set(search_space) <= set(t.params) and self._cost(dict(t.params)) is not None]
        pool_costs = [self._cost(p) for p in pool]
        prior_costs = [self._cost(p) for p, _ in prior]
        features = _Features(search_space, [*costs, *pool_costs, *prior_costs])
        x = features.of(observed, costs)
        if prior:
            x, scores, noise = _with_prior(x, scores, features.of([p for p, _ in prior], prior_costs),
                                           np.array([s for _, s in prior]), self._seed)
            if noise is None and start:
                return {}  # the search does not confirm the prior: cost-gp's own start
        else:
            noise = None
        gain = _expected_improvement(x, scores, features.of(pool, pool_costs),
                                     features.of(pending, [self._cost(p) for p in pending]), self._seed, noise)
        best = np.flatnonzero(gain >= gain.max() - 1e-12)
        return pool[int(self._rng.choice(best))]

    def sample_independent(self, study: Any, trial: Any, param_name: str, param_distribution: Any) -> Any:
        """A uniform draw (the start, and parameters outside the shared space)."""
        return self._random.sample_independent(study, trial, param_name, param_distribution)

    def before_trial(self, study: Any, trial: Any) -> None:
        """Optuna's hook before a trial, handed to the random sampler of the start."""
        self._random.before_trial(study, trial)

    def after_trial(self, study: Any, trial: Any, state: Any, values: Sequence[float] | None) -> None:
        """Optuna's hook after a trial, handed to the random sampler of the start."""
        self._random.after_trial(study, trial, state, values)

    def reseed_rng(self) -> None:
        """New random streams (Optuna calls it for parallel workers of one process)."""
        self._random.reseed_rng()
        self._rng = np.random.default_rng()

    def _cost(self, params: dict[str, Any]) -> float | None:
        """`cost_of(params)`, asked once per point."""
        key = _key(params)
        if key not in self._costs:
            self._costs[key] = self.cost_of(dict(params))
        return self._costs[key]

    def _pool(self, space: dict[str, Any]) -> list[dict[str, Any]]:
        """Every point of a finite space no larger than `pool_size`; else `pool_size` uniform draws at the first call
        and a quarter as many more at each later one (distinct), so a search asks the cost of few points."""
        name = _key({k: repr(v) for k, v in space.items()})
        if name not in self._pools:
            whole = grid(space, self.pool_size)
            self._pools[name] = ({_key(p): p for p in whole or []}, whole is not None)
            if whole is None:
                self._add_draws(space, self._pools[name][0], self.pool_size)
        elif not self._pools[name][1]:
            self._add_draws(space, self._pools[name][0], max(1, self.pool_size // 4))
        return list(self._pools[name][0].values())

    def _add_draws(self, space: dict[str, Any], pool: dict[str, dict[str, Any]], n: int) -> None:
        """`n` uniform draws added to `pool` (key -> point)."""
        for _ in range(n):
            point = {name: draw(dist, self._rng) for name, dist in space.items()}
            pool.setdefault(_key(point), point)


class _Features:
    """Points as GP inputs in [0, 1]: a numeric categorical or an integer by its rank (log-scaled when its values are
    positive and span a ratio), another categorical one-hot, a float by its position, and the log cost."""

    def __init__(self, space: dict[str, Any], costs: Sequence[float]) -> None:
        self.space = space
        logs = np.log(np.maximum(np.asarray(costs, dtype=float), 1e-12))
        self.cost_low, self.cost_span = float(logs.min()), float(np.ptp(logs)) or 1.0

    def of(self, points: Sequence[dict[str, Any]], costs: Sequence[float]) -> np.ndarray:
        """The GP inputs of `points` whose costs are `costs` (one row each)."""
        columns = [column for name, dist in self.space.items() for column in _encode(dist, [p[name] for p in points])]
        logs = (np.log(np.maximum(np.asarray(costs, dtype=float), 1e-12)) - self.cost_low) / self.cost_span
        return np.column_stack([*columns, logs])


def _encode(dist: Any, values: list[Any]) -> list[np.ndarray]:
    """One parameter's columns for `values` (see `_Features`)."""
    choices = finite_values(dist)
    if choices is not None and all(isinstance(c, (int, float)) and not isinstance(c, bool) for c in choices):
        numbers = np.asarray(values, dtype=float)
        low, high = min(choices), max(choices)
        if low > 0 and high / low > 2:
            numbers, low, high = np.log(numbers), math.log(low), math.log(high)
        return [(numbers - low) / ((high - low) or 1.0)]
    if choices is not None:
        return [np.asarray([v == c for v in values], dtype=float) for c in choices]
    numbers = np.asarray(values, dtype=float)
    low, high = (math.log(dist.low), math.log(dist.high)) if dist.log else (dist.low, dist.high)
    numbers = np.log(numbers) if dist.log else numbers
    return [(numbers - low) / ((high - low) or 1.0)]


def _with_prior(x: np.ndarray, y: np.ndarray, prior_x: np.ndarray, prior_y: np.ndarray,
                seed: int) -> tuple[np.ndarray, np.ndarray, np.ndarray | None]:
    """This search's observations (x, y) joined with the prior's: y shifted by its mean offset from the prior-only
    GP's mean m (the prior's scores are relative to their searches' means), and the extra noise of each row
    (`PRIOR_NOISE` on the prior's); (x, y, None) unless at least `MIN_AGREEING` observations confirm m (tau > 0)."""
    from scipy.stats import kendalltau

    if len(y) < MIN_AGREEING:
        return x, y, None
    expected = _fit(prior_x, prior_y, seed).predict(x)
    if not kendalltau(expected, y).statistic > 0:
        return x, y, None
    y = y - float(np.mean(y - expected))
    noise = np.concatenate([np.full(len(y), JITTER), np.full(len(prior_y), PRIOR_NOISE)])
    return np.vstack([x, prior_x]), np.concatenate([y, prior_y]), noise


def _fit(x: np.ndarray, y: np.ndarray, seed: int, noise: np.ndarray | None = None) -> Any:
    """A GP (constant x ARD RBF + white noise, normalised targets, `noise` added per row) fitted on (x, y)."""
    import warnings

    from sklearn.exceptions import ConvergenceWarning
    from sklearn.gaussian_process import GaussianProcessRegressor
    from sklearn.gaussian_process.kernels import RBF, ConstantKernel, WhiteKernel

    kernel = ConstantKernel(1.0) * RBF(np.ones(x.shape[1]), (1e-2, 1e2)) + WhiteKernel(1e-2, (1e-6, 1.0))
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", ConvergenceWarning)
        return GaussianProcessRegressor(kernel, alpha=JITTER if noise is None else noise, normalize_y=True,
                                        random_state=seed).fit(x, y)


def _expected_improvement(x: np.ndarray, y: np.ndarray, candidates: np.ndarray, pending: np.ndarray,
                          seed: int, noise: np.ndarray | None = None) -> np.ndarray:
    """Expected improvement over the best observation of each candidate under a GP fitted on (x, y) (`noise`: extra
    noise per row, the prior's; the best is then this search's own best), the `pending`
    points (asked, not yet told: the rest of a halving batch) believed at the GP's mean (the kriging believer of
    Ginsbourger et al. 2010), so that a batch spreads instead of asking the same neighbourhood again."""
    from scipy.stats import norm
    from sklearn.gaussian_process import GaussianProcessRegressor

    incumbent = float((y if noise is None else y[noise < PRIOR_NOISE]).max())
    model = _fit(x, y, seed, noise)
    if len(pending):
        believed = np.concatenate([y, model.predict(pending)])
        alpha = JITTER if noise is None else np.concatenate([noise, np.full(len(pending), JITTER)])
        model = GaussianProcessRegressor(model.kernel_, alpha=alpha, normalize_y=True, optimizer=None).fit(
            np.vstack([x, pending]), believed)
    mean, std = model.predict(candidates, return_std=True)
    std = np.maximum(std, 1e-12)
    z = (mean - incumbent) / std
    return (mean - incumbent) * norm.cdf(z) + std * norm.pdf(z)


def _key(params: dict[str, Any]) -> str:
    """A point's identity (its parameters as sorted JSON)."""
    return json.dumps(params, sort_keys=True, default=str)
