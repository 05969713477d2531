"""The `random` grower: L2BG's random-growth control, a uniformly random point of a searched grower's space per task.

Motivation: Learn to Bind and Grow (L2BG) asks whether its conflict model is what makes its growth
work, with a *random growth* experiment on Split-CIFAR-100: whenever a new task arrives it binds
the task to a random existing task, draws the number of layers to expand at random and a random
subset of layers to expand; the network so grown did much worse than the one RSA chose (average
gain down to -20, against positive values with RSA). A search that grows the net earns its keep
only when it beats such a control at the same budget, so this grower draws, before each task, a
point of the *same* space as `searched` (`space: searched`: a widening factor per width group and
a number of identity layers per depth point), `compound` (`space: compound`: φ, and α on a
fitting first task) or `searched-extractor` (the width factor of an expandable net's new
extractor), with that grower's own space options and the same budget (`max_flops`, `max_params`,
and `train_budget`, the stream's training FLOPs, planned as the searched growers plan it with a
search that costs nothing), and grows the net to it without training any candidate (search cost 0). With `retention_space` the
strategies' strengths are drawn too, uniformly from the same choices as a search's (the present
value among them), and set from that task on: the control of a search of growth and retention. With
`prediction_space` the settings that decide only predictions (the replay memory's classifier) are chosen
after each task's training as a searched grower chooses them (`selfgrow.growth.prediction_choice`, on a
validation memory of `val_memory_per_class` per class, counted in `memory_mb`; its scoring is the run's
only search FLOPs and is planned under `train_budget`): the control of a searched grower with the same
choice, so that what differs between the two is the growth search alone.

`pick: largest` replaces the uniform draw by the largest point within the budget
(`growth_points.largest_point`: the largest uniform growth that fits, then each parameter raised
while the point still fits), still untrained: the control that spends the budget on capacity
without a search, so that a search under the capacity rule (which prefers the costliest of the
indistinguishable candidates) shows what its scores add beyond spending the budget. The strengths
of `retention_space` are still drawn uniformly.

How it deviates from L2BG's experiment: there is no binding to an earlier task (our searched
spaces grow one shared net, so there is nothing to bind), and the draw is uniform over the points
of the space *within the budget* (each parameter uniform over its values, by rejection sampling:
up to `max_draws` draws, the first within the budget is kept; when none is, the net does not
grow, while the strengths, which cost nothing, are still drawn). "No growth" is a point of every space, so it is
always possible, with its uniform share.

The draws come from a generator seeded by (`seed`, task index) alone, so runs are reproducible and
a resumed run draws what the uninterrupted one drew. The grower is built by composition: it holds
the `searched` or `compound` grower it draws for and uses its `space`, `ops_for`, `_propose` and
budget; after each draw it tells that grower the choice as its own search would (its `chosen`
hook, with no trained candidate, and its history), so compound's accumulated Φ, base sizes and
base FLOPs follow the random choices exactly as they follow searched ones, and resume with them.
"""

from __future__ import annotations

import json
import math
import random
import typing
from dataclasses import field, fields, make_dataclass
from typing import Any, Optional

from selfgrow.errors import SelfgrowError
from selfgrow.growth.base import GROWERS, Grower, GrowthPlan, register_grower
from selfgrow.growth.compound import CompoundOptions
from selfgrow.growth.extractor_search import ExtractorOptions
from selfgrow.growth.growth_points import RETENTION_PREFIX, largest_point
from selfgrow.growth.prediction_choice import PredictionChoice, check_prediction_space
from selfgrow.growth.searched import SearchedOptions
from selfgrow.growth.searching import SearchGrower, SearchOptions, growth_params, retention_params
from selfgrow.growth.stream_budget import TaskBudget, plan_budget
from selfgrow.options import option
from selfgrow.search import Proposal

# space name -> the declaration of its grower
SPACES = {"searched": SearchedOptions, "compound": CompoundOptions, "searched-extractor": ExtractorOptions}
ORDERED = ("searched", "searched-extractor")  # the spaces whose growth values are discrete (`growth_points`)
PICKS = ("uniform", "largest")  # how a point is picked: drawn uniformly, or the largest within the budget
SHARED = ("max_flops", "max_params", "train_budget", "mode", "seed", "retention_space", "prediction_space",
          "val_memory_per_class")  # taken as the searched growers take them


class _Untrained:
    """The search outcome a draw hands to the drawing grower's `chosen` hook: no candidate was trained."""

    spent_flops = 0.0

    def finished(self) -> list[dict[str, Any]]:
        return []


def space_options(space: str) -> list[str]:
    """The options of grower `space` that shape its space (its own, not the search's)."""
    shared = {f.name for f in fields(SearchOptions)}
    return [f.name for f in fields(SPACES[space]) if f.name not in shared]


def _random_options() -> type:
    """The `random` grower's declaration: its own options, the budget, `mode` and `seed` as the searched growers
    declare them, and every space option of the spaces, typed as there, null meaning that grower's default."""
    searched = {f.name: f for f in fields(SearchOptions)}
    hints = typing.get_type_hints(SearchOptions)
    own = [("space", str, option("searched", choices=tuple(SPACES))), ("pick", str, option("uniform", choices=PICKS)),
           ("max_draws", int, option(64, at_least=1))]
    own += [(name, hints[name], field(default=searched[name].default, metadata=searched[name].metadata))
            for name in SHARED]
    for declaration in SPACES.values():
        space_hints = typing.get_type_hints(declaration)
        own += [(f.name, Optional[space_hints[f.name]], field(default=None))
                for f in fields(declaration) if f.name not in searched and f.name not in {o[0] for o in own}]
    return make_dataclass("RandomOptions", own)


@register_grower("random")
class RandomGrower(Grower):
    """L2BG's random-growth control: a uniform (or, with `pick: largest`, the largest) point of a searched grower's
    space within the budget, untrained.

    Options other than `space`, `pick`, `max_draws`, the budget, `mode` and `seed` are the chosen space's
    own (null: that grower's default); naming another space's option is refused.
    """

    Options = _random_options()

    def __init__(self, **options: Any) -> None:
        super().__init__(**options)
        space = self.space
        given = {name: value for name, value in options.items()
                 if name not in ("space", "pick", "max_draws", *SHARED) and value is not None}
        own = space_options(space)
        for name in given:
            if name not in own:
                other = next(s for s in SPACES if name in space_options(s))
                raise SelfgrowError(f"random option {name!r} belongs to space {other!r}; with space {space!r} "
                                    f"accepted: {', '.join(own)}.")
        try:
            inner = GROWERS[space](**given, **{name: getattr(self, name) for name in SHARED})
        except SelfgrowError as err:
            raise SelfgrowError(f"random grower (space {space!r}): {err}") from err
        if self.pick == "largest" and space not in ORDERED:
            raise SelfgrowError(f"random pick 'largest' needs a space whose points are ordered by size, not {space!r} "
                                f"(its phi is continuous); accepted: space {' or '.join(ORDERED)}.")
        self.space_name = space
        self.inner: SearchGrower = inner

    def plan(self, learner: Any, task: Any) -> GrowthPlan:
        net, inner = learner.net, self.inner
        head = task.index if learner.scenario == "task" else None
        space = inner.search_space(learner, task)
        current = inner._propose(net, head, inner._baseline(learner, space, None)).info
        current = {"flops": current["flops"], "n_params": current["n_params"]}
        outgrown = inner.outgrown_budget(learner, task, head, grower="random")
        picked = "a uniform point" if self.pick == "uniform" else "the largest point"
        reasons: dict[str, Any] = {
            "task": task.index,
            "rule": f"random growth (control): {picked} of the {self.space_name} space within the budget"
                    f"{_budget_text(inner)}, no candidate trained",
            "current": current,
        }
        if not space or outgrown:
            reasons["decision"] = f"no growth: {outgrown or 'empty growth space'}"
            return GrowthPlan(reasons=reasons)
        check_prediction_space(learner.retention, inner.prediction_space)
        budget = None if inner.train_budget is None else plan_budget(
            inner.train_budget, learner, task, adopt=False, scored_per_task=inner.prediction_samples(learner, task))
        if budget is not None:
            reasons["stream_budget"] = budget.describe()
        pick = self._draw if self.pick == "uniform" else self._largest
        point, proposal, draws = pick(learner, head, space, task.index, budget)
        record = {"params": point, "flops": proposal.info["flops"], "n_params": proposal.info["n_params"]}
        reasons["random"] = {"space": self.space_name, "pick": self.pick, "point": dict(point), "flops": record["flops"],
                             "n_params": record["n_params"], "draws": draws, "seed": self.seed}
        within = draws <= self.max_draws and proposal.over_budget is None
        found, missed = ((f"draw {draws}", f"draw of {self.max_draws}") if self.pick == "uniform" else
                         ("the largest within the budget", "growth"))
        reasons["decision"] = (f"random growth (control): {point} ({record['flops']:,} FLOPs, "
                               f"{record['n_params']:,} params, {found})" if within else
                               f"random growth (control): no {missed} within the budget, no growth")
        ops = inner.ops_for(net, growth_params(point))
        inner.chosen(net, record, _Untrained(), reasons)
        inner.history.append({"task": task.index, "chosen": dict(point), "best": dict(point)})
        return GrowthPlan(ops=ops, reasons=reasons, retention=retention_params(point))

    def _draw(self, learner: Any, head: int | None, space: dict[str, Any], task: int,
              budget: TaskBudget | None) -> tuple[dict[str, Any], Proposal, int]:
        """The first of up to `max_draws` uniform points within the budget (`budget`: the stream's, when given):
        (point, its proposal, draws made); when none is, no growth with the strengths drawn uniformly (a uniform
        point among those that surely fit) and draws = max_draws + 1."""
        net = learner.net
        rng = random.Random(f"selfgrow-random-growth:{self.seed}:{task}")
        proposals: dict[str, Proposal] = {}
        for n in range(1, self.max_draws + 1):
            point = {name: draw(distribution, rng) for name, distribution in space.items()}
            key = json.dumps(point, sort_keys=True)
            if key not in proposals:
                proposals[key] = self.inner._propose(net, head, point, None, budget)
            if proposals[key].over_budget is None:
                return point, proposals[key], n
        # no growth, with the strengths drawn: they cost nothing, so each of them fits with no growth
        drawn = {name: draw(distribution, rng) for name, distribution in space.items() if name.startswith(RETENTION_PREFIX)}
        point = {**self.inner._baseline(learner, space, None), **drawn}
        return point, self.inner._propose(net, head, point, None, budget), self.max_draws + 1

    def _largest(self, learner: Any, head: int | None, space: dict[str, Any], task: int,
                 budget: TaskBudget | None) -> tuple[dict[str, Any], Proposal, int]:
        """The largest point within the budget (`growth_points.largest_point`), with the strengths drawn uniformly as
        `_draw` draws them: (point, its proposal, 1); when no growth fits, no growth with draws = max_draws + 1."""
        net, inner = learner.net, self.inner
        rng = random.Random(f"selfgrow-random-growth:{self.seed}:{task}")
        drawn = {name: draw(distribution, rng) for name, distribution in space.items()
                 if name.startswith(RETENTION_PREFIX)}
        baseline = {**inner._baseline(learner, space, None), **drawn}
        point = largest_point(space, baseline, lambda p: inner._propose(net, head, p, None, budget).over_budget is None)
        chosen = point if point is not None else baseline
        return chosen, inner._propose(net, head, chosen, None, budget), 1 if point is not None else self.max_draws + 1

    def choose_predictions(self, learner: Any, task: Any) -> PredictionChoice | None:
        """The `prediction_space`'s settings, chosen on the trained net as the searched growers choose them."""
        return self.inner.choose_predictions(learner, task)

    def memory_bytes(self, learner: Any) -> int:
        """The validation memory the choice after training scores on (none without a `prediction_space`)."""
        return self.inner.memory_bytes(learner) if self.inner.prediction_space else 0

    # ---- state ------------------------------------------------------------------------------

    def state_dict(self) -> dict[str, Any]:
        return {"space": self.space_name, "inner": self.inner.state_dict()}

    def load_state_dict(self, state: dict[str, Any]) -> None:
        if state.get("space", self.space_name) != self.space_name:
            raise SelfgrowError(f"This random grower draws from space {self.space_name!r} but the checkpoint's drew "
                                f"from {state['space']!r}; resume with the space the run was started with.")
        self.inner.load_state_dict(state.get("inner", {}))


def draw(distribution: Any, rng: random.Random) -> Any:
    """A uniform draw from an Optuna distribution: one of its choices or grid points (log scales are
    uniform over the points too), or a uniform (log-uniform) value of a continuous range."""
    from optuna.distributions import CategoricalDistribution, FloatDistribution, IntDistribution

    if isinstance(distribution, CategoricalDistribution):
        return distribution.choices[rng.randrange(len(distribution.choices))]
    if isinstance(distribution, IntDistribution):
        return rng.randrange(distribution.low, distribution.high + 1, distribution.step)
    if isinstance(distribution, FloatDistribution):
        low, high, step = distribution.low, distribution.high, distribution.step
        if step is not None:
            return float(low + step * rng.randint(0, round((high - low) / step)))
        if distribution.log:
            return float(math.exp(rng.uniform(math.log(low), math.log(high))))
        return float(rng.uniform(low, high))
    raise SelfgrowError(f"The random grower cannot draw from {type(distribution).__name__}; "
                        "accepted: categorical, integer and float distributions.")


def _budget_text(grower: SearchGrower) -> str:
    budget = [f"{k} {v:,}" for k, v in (("max_flops", grower.max_flops), ("max_params", grower.max_params)) if v]
    if grower.train_budget:
        budget.append(f"train_budget {grower.train_budget:.3e}")
    return f" ({', '.join(budget)})" if budget else ""
