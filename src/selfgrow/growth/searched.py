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
from typing import Any

from selfgrow.errors import SelfgrowError
from selfgrow.growth.base import register_grower
from selfgrow.growth.searching import SearchGrower, deepen_ops, widen_ops, widenable_groups

WIDEN = "widen:"
DEEPEN = "deepen:"


@register_grower("searched")
class SearchedGrower(SearchGrower):
    """Searches which width groups to widen and which depth points to deepen, and by how much, per task.

    `search_options` are those of `SearchGrower` (n_trials defaults to 8 here).
    """

    def __init__(
        self,
        width_factors: list[float] | None = None,
        max_deepen: int = 1,
        layers: list[str] | None = None,
        depth_points: list[str] | None = None,
        **search_options: Any,
    ) -> None:
        super().__init__(**{"n_trials": 8, **search_options})
        factors = [1.0, 1.5, 2.0] if width_factors is None else list(width_factors)
        if not factors or any(not isinstance(f, (int, float)) or f < 1 for f in factors):
            raise SelfgrowError(f"searched width_factors={width_factors!r} is invalid; accepted: a non-empty list of numbers >= 1.")
        if not isinstance(max_deepen, int) or max_deepen < 0:
            raise SelfgrowError(f"searched max_deepen={max_deepen!r} is invalid; accepted: an integer >= 0 (0: never deepen).")
        self.width_factors = sorted({float(f) for f in factors} | {1.0})
        self.max_deepen = max_deepen
        self.layers = None if layers is None else list(layers)
        self.depth_points = None if depth_points is None else list(depth_points)

    def space(self, learner: Any, task: Any) -> dict[str, Any]:
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

    def no_growth(self, space: dict[str, Any]) -> dict[str, Any]:
        return {name: 1.0 if name.startswith(WIDEN) else 0 for name in space}

    def ops_for(self, net: Any, params: dict[str, Any]) -> list[dict[str, Any]]:
        groups = widenable_groups(net)
        widths = {name[len(WIDEN):]: math.ceil(groups[name[len(WIDEN):]] * float(f))
                  for name, f in params.items() if name.startswith(WIDEN)}
        counts = {name[len(DEEPEN):]: int(k) for name, k in params.items() if name.startswith(DEEPEN)}
        return widen_ops(net, widths, self.mode) + deepen_ops(net, counts)
