"""Points of an Optuna search space: a parameter's finite values, uniform draws, the whole grid of a small space.

Shared by the samplers and surrogates that score many points of a space before asking one
(`selfgrow.search.cost_gp`, `selfgrow.search.meta.surrogate`).
"""

from __future__ import annotations

import itertools
import math
from typing import Any

import numpy as np


def count(dist: Any) -> int | None:
    """How many values a categorical, integer or stepped float distribution holds; None for a continuous float."""
    from optuna.distributions import CategoricalDistribution, IntDistribution

    if isinstance(dist, CategoricalDistribution):
        return len(dist.choices)
    step = getattr(dist, "step", None)
    if isinstance(dist, IntDistribution) or step is not None:
        return int(round((dist.high - dist.low) / step)) + 1
    return None


def value(dist: Any, index: int) -> Any:
    """The `index`-th value of a distribution with finitely many (see `count`)."""
    from optuna.distributions import CategoricalDistribution, IntDistribution

    if isinstance(dist, CategoricalDistribution):
        return dist.choices[index]
    if isinstance(dist, IntDistribution):
        return int(dist.low + dist.step * index)
    return float(dist.low + dist.step * index)


def finite_values(dist: Any) -> list[Any] | None:
    """Every value of a categorical, integer or stepped float distribution, in order; None for a continuous float."""
    n = count(dist)
    return None if n is None else [value(dist, i) for i in range(n)]


def draw(dist: Any, generator: np.random.Generator) -> Any:
    """One uniform value of `dist` (log-uniform for a continuous float on a log scale)."""
    n = count(dist)
    if n is not None:
        return value(dist, int(generator.integers(n)))
    if dist.log:
        return float(math.exp(generator.uniform(math.log(dist.low), math.log(dist.high))))
    return float(generator.uniform(dist.low, dist.high))


def grid(space: dict[str, Any], limit: int) -> list[dict[str, Any]] | None:
    """Every point of `space` (in the product order of its parameters' values) when it is finite and has at most
    `limit` points; None otherwise."""
    sizes = [count(dist) for dist in space.values()]
    if any(n is None for n in sizes) or math.prod(sizes) > limit:
        return None
    values = [finite_values(dist) for dist in space.values()]
    return [dict(zip(space, combo)) for combo in itertools.product(*values)]
