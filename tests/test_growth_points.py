"""Points of a growth space by size: values in order, smallest steps, the largest point within a budget."""

from __future__ import annotations

from optuna.distributions import CategoricalDistribution, FloatDistribution, IntDistribution

from selfgrow.growth.growth_points import growth_values, largest_point, smallest_steps

SPACE = {"widen:a": CategoricalDistribution([2.0, 1.0, 4.0]), "widen:b": CategoricalDistribution([1.0, 2.0]),
         "deepen:c": IntDistribution(0, 2), "retention:lwf.alpha": CategoricalDistribution([1.0, 4.0])}
BASE = {"widen:a": 1.0, "widen:b": 1.0, "deepen:c": 0, "retention:lwf.alpha": 1.0}


def cost(point):
    return point["widen:a"] * 10 + point["widen:b"] * 5 + point["deepen:c"] * 3


def test_values_are_sorted_per_growth_parameter_and_retention_strengths_are_not_growth():
    assert growth_values(SPACE) == {"widen:a": [1.0, 2.0, 4.0], "widen:b": [1.0, 2.0], "deepen:c": [0, 1, 2]}
    assert growth_values({"phi": FloatDistribution(0.0, 2.0)}) == {"phi": None}


def test_the_smallest_steps_raise_one_parameter_to_its_next_value():
    assert smallest_steps(SPACE, {**BASE, "widen:b": 2.0}) == [
        {**BASE, "widen:a": 2.0, "widen:b": 2.0}, {**BASE, "widen:b": 2.0, "deepen:c": 1}]
    assert smallest_steps({"phi": FloatDistribution(0.0, 2.0)}, {"phi": 0.0}) is None


def test_the_largest_point_is_the_largest_uniform_growth_then_each_parameter_raised_while_it_fits():
    # uniform level 1 (2, 2, 1) costs 33 and fits 45; level 2 (4, 2, 2) costs 56 and does not; then a cannot
    # reach 4 (53), b is at its largest, c goes to 2 (36) -> no single parameter can grow further within 45
    point = largest_point(SPACE, BASE, lambda p: cost(p) <= 45)
    assert point == {**BASE, "widen:a": 2.0, "widen:b": 2.0, "deepen:c": 2}
    assert all(cost(step) > 45 for step in smallest_steps(SPACE, point))
    assert largest_point(SPACE, BASE, lambda p: cost(p) <= cost(BASE)) is None  # no growth fits
    grown = {**BASE, "widen:a": 4.0}  # a baseline above level 1 of a parameter is never lowered
    assert largest_point(SPACE, grown, lambda p: True) == {**grown, "widen:b": 2.0, "deepen:c": 2}
