"""Points of a search space: finite values of each kind of distribution, the grid of a small space, uniform draws."""

from __future__ import annotations

import numpy as np
from optuna.distributions import CategoricalDistribution, FloatDistribution, IntDistribution

from selfgrow.search.meta.transfer import contains
from selfgrow.search.points import count, draw, finite_values, grid

PHI = FloatDistribution(0.0, 1.0, step=0.25)  # compound's phi: a stepped float
SPACE = {"widen": CategoricalDistribution([1.0, 2.0]), "deepen": IntDistribution(0, 4, step=2), "phi": PHI}


def test_each_kind_of_distribution_lists_its_values_in_order():
    assert finite_values(SPACE["widen"]) == [1.0, 2.0]
    assert finite_values(SPACE["deepen"]) == [0, 2, 4]
    assert finite_values(PHI) == [0.0, 0.25, 0.5, 0.75, 1.0]
    assert count(FloatDistribution(0.1, 10.0, log=True)) is None and finite_values(FloatDistribution(0.0, 1.0)) is None


def test_a_small_space_is_its_grid_and_a_larger_or_continuous_one_has_none():
    points = grid(SPACE, 30)
    assert len(points) == 2 * 3 * 5 == len({tuple(p.items()) for p in points})
    assert points[:2] == [{"widen": 1.0, "deepen": 0, "phi": 0.0}, {"widen": 1.0, "deepen": 0, "phi": 0.25}]
    assert grid(SPACE, 29) is None
    assert grid({**SPACE, "alpha": FloatDistribution(0.0, 1.0)}, 10**6) is None


def test_draws_are_values_of_their_distribution():
    generator = np.random.default_rng(0)
    space = {**SPACE, "alpha": FloatDistribution(0.1, 10.0, log=True)}
    for _ in range(200):
        for name, dist in space.items():
            assert contains(dist, draw(dist, generator)), name
    phis = {draw(PHI, generator) for _ in range(200)}
    assert phis == set(finite_values(PHI))  # on the step grid, every step reached
