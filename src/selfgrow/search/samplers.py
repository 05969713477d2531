"""Samplers for the multi-objective growth search: NSGA-II, multivariate TPE, Gaussian process, random (Optuna's) and
cost-gp (ours: a GP that takes each point's cost, known before training, as an input)."""

from __future__ import annotations

import warnings
from collections.abc import Callable, Sequence
from typing import Any

from selfgrow.errors import SelfgrowError

SAMPLERS = ("nsga2", "tpe", "gp", "random", "cost-gp")


def make_sampler(name: str, seed: int, n_startup_trials: int = 4, population_size: int = 8,
                 cost_of: Callable[[dict[str, Any]], float | None] | None = None,
                 prior: Sequence[tuple[dict[str, Any], float]] = ()) -> Any:
    """The sampler `name` seeded by `seed`.

    nsga2: `NSGAIISampler` (generations of `population_size`); tpe: `TPESampler(multivariate=True)`
    (MOTPE for several objectives); gp: `GPSampler` (log EHVI for several objectives); random:
    `RandomSampler` (the baseline a model-based sampler must beat); cost-gp: `CostGPSampler`
    (`selfgrow.search.cost_gp`), which needs `cost_of(params)`, a point's cost or None over the budget, and alone
    takes a `prior` (past searches' points and relative scores).
    TPE, GP and cost-gp sample at random for their first `n_startup_trials` trials; enqueued
    warm-start trials count among them, since every finished trial informs the model.
    """
    import optuna

    if name not in SAMPLERS:
        from selfgrow.errors import unknown_name

        raise unknown_name("search sampler", name, SAMPLERS)
    if prior and name != "cost-gp":
        raise SelfgrowError(f"search sampler {name!r} takes no prior from past searches; accepted: the prior "
                            "(warm_start prior: true) with sampler cost-gp.")
    if not isinstance(n_startup_trials, int) or n_startup_trials < 0:
        raise SelfgrowError(f"search n_startup_trials={n_startup_trials!r} is invalid; accepted: an integer >= 0.")
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", optuna.exceptions.ExperimentalWarning)
        if name == "nsga2":
            return optuna.samplers.NSGAIISampler(seed=seed, population_size=max(2, population_size))
        if name == "tpe":
            return optuna.samplers.TPESampler(seed=seed, multivariate=True, n_startup_trials=n_startup_trials)
        if name == "random":
            return optuna.samplers.RandomSampler(seed=seed)
        if name == "cost-gp":
            if cost_of is None:
                raise SelfgrowError("search sampler 'cost-gp' needs the points' costs and was given none; accepted: "
                                    "cost-gp within a growth search (which gives them), or another sampler.")
            from selfgrow.search.cost_gp import CostGPSampler

            return CostGPSampler(cost_of, seed=seed, n_startup_trials=n_startup_trials, prior=prior)
        return optuna.samplers.GPSampler(seed=seed, n_startup_trials=n_startup_trials)
