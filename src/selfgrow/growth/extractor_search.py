"""The `searched-extractor` grower: the size of each new extractor of an expandable (DER-style) net, searched per task.

An expandable net (`selfgrow.nets.expandable`, the simple DER of Yan et al. 2021) adds a fresh
extractor for every class-IL task and freezes the older ones, so what its growth can decide is how
large the new extractor is. Before each task this grower searches a width factor f for the newest
extractor: every width group of the net's template extractor (`extractor` in its spec) goes to
ceil(w·f), at least one unit; the point is scored like every searched grower's (`SearchGrower`:
candidates trained briefly with the run's strategies, scored on the new task and the validation
memory of the older ones, cost = inference FLOPs or parameters) and the chosen size is given to the
newest extractor with `ops.set_new_extractor`. Factor 1 (the template, what a plain expansion adds)
is the no-growth point. `width_factors` may hold factors below 1: under the parsimony rule the
smallest extractor whose score cannot be told from the best one's wins, so a task that the features
already learnt serve well gets a small extractor, and a hard one a large extractor.

How it deviates from DER: DER gives every extractor the same size and then prunes each new one
with learned channel masks under a sparsity loss (its parameter savings come after training);
here the size is chosen before training by the search, from a few sizes, and nothing is pruned.
DER's auxiliary classifier is not used (as in the `expandable-rep` baseline).
"""

from __future__ import annotations

import json
import math
from dataclasses import dataclass
from typing import Any

from selfgrow.errors import SelfgrowError
from selfgrow.growth.base import register_grower
from selfgrow.growth.searching import SearchGrower, SearchOptions
from selfgrow.nets.ops.growth import set_path
from selfgrow.options import option

FACTOR = "extractor:width"


@dataclass
class ExtractorOptions(SearchOptions):
    """The `searched-extractor` grower's space (width factors of the new extractor) beside the search options."""

    width_factors: list[float] = option(factory=lambda: [0.25, 0.5, 1.0, 2.0], above=0, nonempty=True)


@register_grower("searched-extractor")
class ExtractorGrower(SearchGrower):
    """Searches how large the extractor an expandable net adds for each task is (see the module docstring)."""

    Options = ExtractorOptions

    def __init__(self, **options: Any) -> None:
        super().__init__(**options)
        self.width_factors = sorted({float(f) for f in self.width_factors} | {1.0})

    def space(self, learner: Any, task: Any, context: Any = None) -> dict[str, Any]:
        from optuna.distributions import CategoricalDistribution

        _require_expandable(learner.net)
        return {FACTOR: CategoricalDistribution(self.width_factors)} if len(self.width_factors) > 1 else {}

    def cheapest_cost(self, net: Any, head: int | None) -> dict[str, Any]:
        """The net with the smallest new extractor: this space can shrink the template an expansion added.
        (Built under a forked RNG: its initialisation leaves the run's random stream untouched.)"""
        import torch

        _require_expandable(net)
        with torch.random.fork_rng(devices=[]):
            info = self._propose(net, head, {FACTOR: self.width_factors[0]}).info
        return {"flops": info["flops"], "n_params": info["n_params"]}

    def no_growth(self, space: dict[str, Any], context: Any = None) -> dict[str, Any]:
        return {FACTOR: 1.0} if space else {}

    def ops_for(self, net: Any, params: dict[str, Any], context: Any = None) -> list[dict[str, Any]]:
        factor = float(params.get(FACTOR, 1.0))
        if factor == 1.0:
            return []
        return [{"op": "set_new_extractor", "kwargs": {"extractor": scaled_extractor(net, factor)}}]


def _require_expandable(net: Any) -> None:
    if net.spec.get("kind") != "expandable":
        raise SelfgrowError(f"The searched-extractor grower sizes the new extractor of an expandable net; got net "
                            f"kind {net.spec.get('kind')!r} (use the expandable-rep method's net).")


def scaled_extractor(net: Any, factor: float) -> dict[str, Any]:
    """The expandable net's template extractor with every width group at ceil(width x `factor`), at least 1."""
    from selfgrow.nets.base import build
    from selfgrow.nets.expandable import EXTRACTOR_HEAD

    template = net.spec["extractor"]
    groups = build({**template, "input_shape": net.spec["input_shape"], "head": EXTRACTOR_HEAD}).width_groups()
    spec = json.loads(json.dumps(template))
    for group in groups.values():
        spec = set_path(spec, group.spec_path, max(1, math.ceil(group.width * factor)))
    return spec
