"""The `searched` grower: a multi-objective search over the growth-operator space of one backbone.

Before each task the search chooses, for every width group, a widening factor from
`width_factors` (new width ceil(w·f); 1 keeps it) and, for every depth point, how many identity
layers to insert (0..`max_deepen`). Each choice is a parameter of the Optuna study
("widen:<group>", "deepen:<point>"), so the samplers learn which layer or stage is worth
growing, and by how much, for the data seen so far. Widening comes first (`widen` in `mode`),
then deepening, so inserted layers take the widened sizes. `layers` and `depth_points` restrict
the search to some groups and points; names that a net does not have (yet) are ignored. Designed
for class-incremental learning with one backbone and one growing head (any scenario with a
shared net works).
"""

from __future__ import annotations

import math
from dataclasses import dataclass
from typing import Any

from selfgrow.growth.base import register_grower
from selfgrow.growth.searching import SearchGrower, SearchOptions, deepen_ops, widen_ops, widenable_groups
from selfgrow.options import option

WIDEN = "widen:"
DEEPEN = "deepen:"


@dataclass
class SearchedOptions(SearchOptions):
    """The `searched` grower's space (see the module docstring) beside the search options."""

    width_factors: list[float] = option(factory=lambda: [1.0, 1.5, 2.0], at_least=1, nonempty=True)
    max_deepen: int = option(1, at_least=0, note="0: never deepen")
    layers: list[str] | None = None
    depth_points: list[str] | None = None


@register_grower("searched")
class SearchedGrower(SearchGrower):
    """Searches which width groups to widen and which depth points to deepen, and by how much, per task."""

    Options = SearchedOptions

    def __init__(self, **options: Any) -> None:
        super().__init__(**options)
        self.width_factors = sorted({float(f) for f in self.width_factors} | {1.0})
        self.layers = None if self.layers is None else list(self.layers)
        self.depth_points = None if self.depth_points is None else list(self.depth_points)

    def space(self, learner: Any, task: Any, context: Any = None) -> dict[str, Any]:
        from optuna.distributions import CategoricalDistribution, IntDistribution

        net = learner.net
        space: dict[str, Any] = {}
        if len(self.width_factors) > 1:
            for name in widenable_groups(net):
                if self.layers is None or name in self.layers:
                    space[WIDEN + name] = CategoricalDistribution(self.width_factors)
        if self.max_deepen > 0:
            for point in net.depth_points():
                if self.depth_points is None or point.name in self.depth_points:
                    space[DEEPEN + point.name] = IntDistribution(0, self.max_deepen)
        return space

    def no_growth(self, space: dict[str, Any], context: Any = None) -> dict[str, Any]:
        return {name: 1.0 if name.startswith(WIDEN) else 0 for name in space}

    def sizes(self, net: Any, space: dict[str, Any]) -> dict[str, float]:
        """Each widening factor's group width: a past run's factor is carried as the width it grew to."""
        groups = widenable_groups(net)
        return {name: float(groups[name[len(WIDEN):]]) for name in space if name.startswith(WIDEN)}

    def ops_for(self, net: Any, params: dict[str, Any], context: Any = None) -> list[dict[str, Any]]:
        groups = widenable_groups(net)
        widths = {name[len(WIDEN):]: math.ceil(groups[name[len(WIDEN):]] * float(f))
                  for name, f in params.items() if name.startswith(WIDEN)}
        counts = {name[len(DEEPEN):]: int(k) for name, k in params.items() if name.startswith(DEEPEN)}
        return widen_ops(net, widths, self.mode) + deepen_ops(net, counts)
