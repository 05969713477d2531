"""Optuna samplers for the multi-objective growth search: NSGA-II, multivariate TPE, Gaussian process, random."""

from __future__ import annotations

import warnings
from typing import Any

from selfgrow.errors import SelfgrowError

SAMPLERS = ("nsga2", "tpe", "gp", "random")


def make_sampler(name: str, seed: int, n_startup_trials: int = 4, population_size: int = 8) -> Any:
    """The sampler `name` seeded by `seed`.

    nsga2: `NSGAIISampler` (generations of `population_size`); tpe: `TPESampler(multivariate=True)`
    (MOTPE for several objectives); gp: `GPSampler` (log EHVI for several objectives); random:
    `RandomSampler` (the baseline a model-based sampler must beat). TPE and GP sample at random
    for their first `n_startup_trials` trials; enqueued warm-start trials count among them, since
    every finished trial informs the model.
    """
    import optuna

    if name not in SAMPLERS:
        from selfgrow.errors import unknown_name

        raise unknown_name("search sampler", name, SAMPLERS)
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
        return optuna.samplers.GPSampler(seed=seed, n_startup_trials=n_startup_trials)
