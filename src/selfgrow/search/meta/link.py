"""`KnowledgeLink`: what a searched grower does with the knowledge base before, after and once past each search.

Before a search it measures the task's meta-features (when it records or consults) and, with a source base and `own`
on, proposes the points its own earlier runs of this very task predict best, all their searches pooled, when the base
holds any from a net of about the current one's size (`own: alone`; with `own: first`, followed by the other tasks'
points); otherwise (by default) the transferred best points of the `k` most similar past tasks (each by its nearest
search, `selfgrow.search.meta.transfer`, with `by: outcome` by the search whose run ended best, or, with `propose:
pooled`, the points predicted best over all their searches, with a `guard` those past the search's first `after`
trials, or past the first point, held back until the first trials' scores agree with the pool, or until its first
point leads the sampler's): by meta-features before the search, or, with `similar: scores`, by how they rank the
search's first `after` trials, whose points are then enqueued (`selfgrow.search.meta.agreement`); with `consensus: n`,
the `n` points predicted best on average over every past task within `max_distance`; with `surrogate: n`, the `n` best
points of a surrogate fitted on every past search within `max_distance` (`selfgrow.search.meta.surrogate`), which also
screens the sampler's points, and, with `prior: true`, every complete candidate of those `k` searches with its score
relative to its search's mean, the cost-gp sampler's prior (`selfgrow.search.cost_gp`); after the search it records
the entry (`selfgrow.search.meta.base`); after the task's training it writes the outcome, the mean validation accuracy
over the seen tasks, into this task's entry (`after_task`) and into the run's earlier entries (`latest`). Its run id
and the keys it wrote are state, so a resumed run keeps writing the same entries.
"""

from __future__ import annotations

import math
import uuid
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any

from selfgrow.errors import SelfgrowError
from selfgrow.search.engine import Later
from selfgrow.search.meta.agreement import (MIN_OBSERVED, PastTask, agreements, consensus, first_point_lead, past_tasks,
                                           pool_agreement)
from selfgrow.search.meta.base import CANDIDATE_KEYS, Entry, KnowledgeBase, resolve
from selfgrow.search.meta.features import task_features, task_identity
from selfgrow.search.meta.surrogate import Surrogate, relative_scores
from selfgrow.search.meta.transfer import nearest, one_per_task, same_net, transfer


GUARDS = ("off", "agreement", "sampler")  # how the pooled points of other tasks wait for the first trials
GUARD_ALIASES = {True: "agreement", False: "off"}  # `guard: true` as it was first measured
OWNS = ("alone", "first", "off")  # how a task's own earlier runs are consulted beside the other past tasks
OWN_ALIASES = {True: "alone", False: "off"}  # `own: true` / `false` as they were first measured


@dataclass(frozen=True)
class WarmStart:
    """A searched grower's `warm_start`: the last `within` tasks of its run, and the `k` nearest past tasks (each by its
    nearest search) of the base `source` (None: none) no farther than `max_distance` (see
    `selfgrow.search.meta.transfer`); `surrogate` > 0: that many proposals of a surrogate over those past searches,
    and its screen; `prior`: the `k` consulted searches' candidates as the cost-gp sampler's prior; `similar`:
    "features" (past tasks by meta-features, their points tried first) or "scores" (by how they rank the search's
    first `after` trials, their points tried next); `consensus` > 0: that many points predicted best on average over
    every past task within `max_distance` (`agreement.consensus`), tried right after no growth; `propose`: what the
    tasks chosen by features offer, "chosen" (each its nearest search's chosen and best points) or "pooled" (the 2k
    points predicted best on average over those tasks, each task's model fitted on all its searches); `own`: earlier
    runs of this very task (`features.task_identity`) from a net of about the current one's size
    (`transfer.same_net`), when the base holds any within `max_distance`, are consulted pooled, whatever `propose`
    says (with `similar: features`), "alone" (or true) instead of the other past tasks, "first" ahead of the `k`
    nearest other tasks' points, or "off" (false) not told apart from other tasks; `transfer`: past points carried as
    "relative" actions or, where the past search recorded the sizes its factors acted on, as the "target" sizes they
    grew to (then its earlier runs from any net are the task's own; `selfgrow.search.meta.transfer`); `guard`: with
    `propose: pooled` over other tasks, "agreement" (or true): only the pooled points that fill the search's first
    `after` trials beside no growth are enqueued up front, the rest once those trials' first scores agree with the
    pool's predictions (Kendall tau > 0), so a base that ranks this task's points the other way costs those trials,
    not all 2k; "sampler": only the pool's first point is, the sampler fills the rest of the first batch, and the rest
    of the pool follows only if that point scored above every other growth there ("off" or false: all up front);
    `by`: which search of each past task chosen by features proposes, "distance" (the nearest) or "outcome" (the one
    whose run ended best, `transfer.run_outcome`: what the whole stream made of its growth, which a search's own
    scores cannot see); `follow`: the search takes the base's first proposed point (never pruned) unless another
    candidate scores more than the rule's `z` standard errors above it, the prior a cheap proxy cannot overrule by
    noise alone (`SearchGrower`)."""

    within: int = 2
    source: str | None = None
    k: int = 3
    max_distance: float = 1.5  # measured: BENCHMARKS.md, "The distance of a task whose feature only it has"
    surrogate: int = 0
    prior: bool = False
    similar: str = "features"  # "scores": measured without a gain (BENCHMARKS.md, "Past tasks chosen by ...")
    after: int = 4
    consensus: int = 0
    propose: str = "chosen"  # "pooled": measured in BENCHMARKS.md, "Earlier runs of the same stream"
    own: str = "off"  # "alone" (the default until 2026-12-07) and "first": BENCHMARKS.md, "`own` over six runs"
    transfer: str = "relative"  # "target": measured without a gain (BENCHMARKS.md, "Past points as target widths")
    guard: str = "off"  # both measured, neither enough for a default (BENCHMARKS.md, "A guard for pooled points")
    by: str = "distance"  # "outcome": BENCHMARKS.md, "Following the past run that ended best"
    follow: bool = False

    def __post_init__(self) -> None:
        """`own` and `guard` given as true or false (as they were first measured) stored as the names they mean."""
        object.__setattr__(self, "own", OWN_ALIASES.get(self.own, self.own))
        object.__setattr__(self, "guard", GUARD_ALIASES.get(self.guard, self.guard))

    @classmethod
    def parse(cls, value: int | dict[str, Any]) -> WarmStart:
        """From an integer (`within`) or a mapping {from, k, max_distance, within, surrogate, prior, similar, after,
        consensus, propose, own, transfer, guard, by, follow}; SelfgrowError otherwise."""
        if not isinstance(value, dict):
            return cls(within=value)
        numbers = {"k": (int, 0), "within": (int, 0), "max_distance": ((int, float), 0), "surrogate": (int, 0),
                   "after": (int, 1), "consensus": (int, 0)}
        similar, propose = value.get("similar", cls.similar), value.get("propose", cls.propose)
        guard = value.get("guard", cls.guard)
        guard = GUARD_ALIASES.get(guard, guard) if isinstance(guard, (bool, str)) else None
        own = value.get("own", cls.own)
        own = OWN_ALIASES.get(own, own) if isinstance(own, (bool, str)) else None
        if not (isinstance(value.get("from"), str)
                and set(value) <= {"from", "prior", "similar", "propose", "own", "transfer", "guard", "by", "follow",
                                   *numbers}
                and value.get("transfer", cls.transfer) in ("relative", "target")
                and all(isinstance(value.get(key, False), bool) for key in ("prior", "follow"))
                and value.get("by", cls.by) in ("distance", "outcome")
                and not ((value.get("by") == "outcome" or value.get("follow")) and similar == "scores")
                and not (value.get("by") == "outcome" and propose == "pooled")
                and guard in GUARDS and own in OWNS
                and similar in ("features", "scores")
                and propose in ("chosen", "pooled") and not (similar == "scores" and "propose" in value)
                and not (similar == "scores" and value.get("prior"))
                and not (guard != "off" and propose != "pooled") and all(
                isinstance(value[key], kind) and not isinstance(value[key], bool) and value[key] >= low
                for key, (kind, low) in numbers.items() if key in value)):
            raise SelfgrowError(f"growth warm_start={value!r} is invalid; accepted: an integer >= 0 or a mapping with "
                                "'from' (a knowledge base: journal:PATH, a URL or a PATH), 'k' (an integer >= 0), "
                                "'max_distance' (a number >= 0), 'within' (an integer >= 0), 'surrogate' (an "
                                "integer >= 0: the surrogate's proposals, 0: no surrogate), 'prior' (true or "
                                "false: the nearest searches' candidates as the cost-gp sampler's prior, with "
                                "'similar: features' only), 'similar' ('features' or 'scores': past tasks by "
                                "meta-features, or by how they rank the search's first trials), 'after' (an "
                                "integer >= 1: those first trials), 'consensus' (an integer >= 0: the points "
                                "predicted best over every past task, 0: none), 'propose' ('chosen' or 'pooled': "
                                "what the past tasks chosen by features offer, with 'similar: features' only), "
                                "'own' ('alone', 'first' or 'off', or true or false: this task's earlier runs "
                                "consulted alone when the base holds them, ahead of the other tasks', or as any "
                                "other task) and 'transfer' ('relative' or 'target': past widening factors as they "
                                "were, "
                                "or as the widths they grew to), 'guard' ('off', 'agreement' or 'sampler', or "
                                "true or false: pooled points past the first 'after' trials held back until those "
                                "trials agree with the pool, or past its first point until that point scores above "
                                "the sampler's, with 'propose: pooled' only), 'by' ('distance' or 'outcome': each "
                                "past task's nearest search proposes, or the one whose run ended best, not with "
                                "'propose: pooled') and 'follow' (true or false: the base's first point taken unless "
                                "another scores more than z standard errors above it), both with 'similar: "
                                "features' only.")
        return cls(within=value.get("within", cls.within), source=value["from"], k=value.get("k", cls.k),
                   max_distance=float(value.get("max_distance", cls.max_distance)),
                   surrogate=value.get("surrogate", cls.surrogate), prior=value.get("prior", cls.prior),
                   similar=similar, after=value.get("after", cls.after),
                   consensus=value.get("consensus", cls.consensus), propose=propose,
                   own=own, transfer=value.get("transfer", cls.transfer),
                   guard=guard, by=value.get("by", cls.by), follow=value.get("follow", cls.follow))

    def first_check(self) -> int | None:
        """How many trials must be scored before this warm start checks them (`similar: scores`, a guard), None when
        it never does: a search asks at the end of the first batch that holds that many."""
        if self.similar == "scores" or self.guard == "agreement":
            return self.after
        return 1 if self.guard == "sampler" else None


@dataclass
class Consultation:
    """What the knowledge base offers one search: the surrogate's proposals (tried first), the nearest past
    searches' transferred points, the surrogate itself (its screen), what was consulted (None: no base), the
    cost-gp sampler's prior (points of the space with relative scores; empty: none), and, with `similar: scores`,
    the points chosen after the first trials (`later`, which also fills the reasons' "consulted"), and the points
    predicted best over every past task (`consensus`, tried right after no growth)."""

    proposed: list[dict[str, Any]]
    nearest: list[dict[str, Any]]
    surrogate: Surrogate | None
    reasons: dict[str, Any] | None
    prior: list[tuple[dict[str, Any], float]] = field(default_factory=list)
    later: Later | None = None
    consensus: list[dict[str, Any]] = field(default_factory=list)


class KnowledgeLink:
    """Records into `record` (a base location, or None) and consults what `warm` names for grower `grower`."""

    def __init__(self, grower: str, record: str | None, warm: WarmStart, seed: int) -> None:
        self.grower = grower
        self.record_to = resolve(record)
        self.source = resolve(warm.source) if warm.source is not None else None
        self.k = warm.k
        self.max_distance = warm.max_distance
        self.proposals = warm.surrogate
        self.prior = warm.prior
        self.similar = warm.similar
        self.after = warm.after
        self.consensus = warm.consensus
        self.propose = warm.propose
        self.own = warm.own
        self.transfer = warm.transfer
        self.guard = warm.guard
        self.by = warm.by
        self.seed = seed
        self.run = uuid.uuid4().hex[:12]  # not from torch's generator: recording never moves the run's numbers
        self.recorded: dict[int, str] = {}  # task index -> key of its entry in `record_to`
        self._bases: dict[str, KnowledgeBase] = {}

    @property
    def active(self) -> bool:
        """Whether the searches need the meta-features (they are recorded or consulted)."""
        return self.record_to is not None or self.source is not None

    def features(self, learner: Any, task: Any) -> tuple[dict[str, float] | None, float]:
        """The task's meta-features and the probe's FLOPs (None and 0 when nothing records or consults)."""
        if not self.active:
            return None, 0.0
        return task_features(learner, task, self.seed)

    def consult(self, space: dict[str, Any], features: dict[str, float] | None, baseline: dict[str, Any],
                feasible: Callable[[dict[str, Any]], bool] | None = None, task_key: str = "",
                sizes: dict[str, float] | None = None) -> Consultation:
        """What the base offers a search over `space` whose no-growth point is `baseline`, before the task
        `task_key` (`features.task_identity`): the points this task's own earlier runs predict best (`own`, when the
        base holds any), else the nearest past searches' chosen, then most accurate points, transferred (with
        `transfer: target`, as target sizes where the past search recorded its own and `sizes`, what the space's
        scaling parameters act on now, are given; or, `propose: pooled`, the points their tasks' models predict
        best); with `surrogate`, its
        proposals (`feasible` ones: within the search's budget) and screen; with `prior`, the nearest searches'
        candidates."""
        if self.source is None or features is None:
            return Consultation([], [], None, None)
        from selfgrow.search.storage import redact

        sizes = sizes if self.transfer == "target" else None

        ranked = nearest(self._base(self.source).entries(), features, self.grower, exclude_run=self.run)
        within = [pair for pair in ranked if pair[1] <= self.max_distance]
        reasons = {"base": redact(self.source), "k": self.k, "max_distance": self.max_distance, "consulted": [],
                   "searches": len(ranked), "nearest": round(ranked[0][1], 4) if ranked else None,
                   "similar": self.similar, "propose": self.propose, "task_key": task_key, "transfer": self.transfer,
                   "by": self.by}
        # with `own` on, this very task's earlier runs, when the base holds them, are consulted pooled, alone or ahead
        # of the other tasks'; only those that grew a net of about this size, whose relative actions mean what they
        # mean here, or (with `transfer: target`) that recorded the sizes their actions grew, carried as target sizes
        own = self._own_tasks(within, space, baseline, features, task_key, sizes, reasons)
        others = within if not own else [] if self.own == "alone" else [
            pair for pair in within if pair[0].task_key != task_key]
        # by features, the k nearest past tasks' searches propose their points (and make the prior); by scores, the
        # past tasks that rank the first trials alike do, once those are trained
        chosen = one_per_task(others, self.by)[:self.k] if self.similar == "features" else []
        pools_others = self.propose == "pooled" and bool(others)
        tasks = (past_tasks(within, space, baseline, self.seed, sizes)  # every past task: consensus, by scores
                 if self.similar == "scores" or self.consensus else [])
        later: Later | None = None
        other_tasks: list[PastTask] = []
        if pools_others:  # the other tasks' models: those of `tasks` (this task's own left out) when fitted already
            other_tasks = ([task for task in tasks if not own or task.key != task_key] if tasks
                           else past_tasks(others, space, baseline, self.seed, sizes))
        if other_tasks:
            pooled = other_tasks[:self.k]
            chosen = [(entry, task.distance) for task in pooled for entry in task.entries]
            points = self._pooled(pooled, space, baseline, feasible, reasons, same_task=False)
            if self.guard != "off":
                points, later = self._guarded(pooled, points, space, baseline, reasons["pooled"])
        else:
            points = _proposals(chosen, space, reasons["consulted"], sizes)
        if own:
            own_points = self._pooled(own, space, baseline, feasible, reasons, same_task=True,
                                      key="own" if others else "pooled")
            chosen = [(entry, task.distance) for task in own for entry in task.entries] + chosen
            points = own_points + [point for point in points if point not in own_points]
        shared = []
        if self.consensus:
            shared = consensus(tasks, space, baseline, self.consensus, self.seed, feasible)
            reasons["consensus"] = {"tasks": len(tasks), "proposed": shared}
        if self.similar == "scores":
            later = self._by_scores(tasks, space, baseline, reasons, sizes)
        surrogate = None
        if self.proposals:
            surrogate = Surrogate.fit([e for e, _ in within], features, space, baseline, self.seed, sizes)
            reasons["surrogate"] = surrogate.describe() if surrogate else {"searches": 0}
        proposed = surrogate.propose(self.proposals, feasible) if surrogate else []
        if proposed:
            reasons["surrogate"]["proposed"] = proposed
        prior = []
        if self.prior:
            prior = [(point, score)
                     for _, point, score in relative_scores([e for e, _ in chosen], space, baseline, sizes)]
            reasons["prior"] = {"candidates": len(prior)}
        return Consultation(proposed, points, surrogate, reasons, prior, later, shared)

    def _own_tasks(self, within: list[tuple[Entry, float]], space: dict[str, Any], baseline: dict[str, Any],
                   features: dict[str, float], task_key: str, sizes: dict[str, float] | None,
                   reasons: dict[str, Any]) -> list[PastTask]:
        """This task's earlier runs among `within` (`own` on, `similar: features`), those from a net of about the
        current one's size or carried as target sizes, as one past task (empty when the base holds none)."""
        if self.own == "off" or not self.k or not task_key or self.similar != "features":
            return []
        earlier = [pair for pair in within if pair[0].task_key == task_key]
        same = [pair for pair in earlier if same_net(pair[0].features, features) or (pair[0].sizes and sizes)]
        if len(same) < len(earlier):
            reasons["earlier runs from another net"] = len(earlier) - len(same)
        return past_tasks(same, space, baseline, self.seed, sizes)

    def _pooled(self, tasks: list[PastTask], space: dict[str, Any], baseline: dict[str, Any],
                feasible: Callable[[dict[str, Any]], bool] | None, reasons: dict[str, Any],
                same_task: bool, key: str = "pooled") -> list[dict[str, Any]]:
        """The 2k `feasible` points predicted best on average over `tasks` (each task's model fitted on every
        candidate of its searches; `same_task`: they are this task's earlier runs); each task's row put first in the
        reasons' "consulted" when they are this task's, appended otherwise, and what they proposed under `key`."""
        points = consensus(tasks, space, baseline, 2 * self.k, self.seed, feasible)
        rows = [{**_consulted_row(task.entries[0], task.distance), "searches": len(task.entries)} for task in tasks]
        reasons["consulted"] = rows + reasons["consulted"] if same_task else reasons["consulted"] + rows
        reasons[key] = {"tasks": len(tasks), "same task": same_task, "proposed": points}
        return points

    def _guarded(self, tasks: list[PastTask], points: list[dict[str, Any]], space: dict[str, Any],
                 baseline: dict[str, Any], pooled: dict[str, Any]) -> tuple[list[dict[str, Any]], Later | None]:
        """The pooled `points` enqueued up front (those that fill the search's first `after` trials beside no growth,
        or, guarding against the sampler, the first alone), and the rest as a `Later` that enqueues them once the first
        `after` trials' first scores agree with the pool's mean prediction (tau > 0), or once the first point has
        scored above every other growth of the batches so far, else nothing; what it found goes into the reasons'
        `pooled` ("guard")."""
        up_front = 1 if self.guard == "sampler" else max(self.after - 1, 0)
        first, rest = points[:up_front], points[up_front:]
        if not rest:
            return first, None
        guard = pooled["guard"] = {"against": self.guard, "held back": rest}
        if self.guard == "agreement":
            guard["after"] = self.after

        def agrees(records: list[dict[str, Any]]) -> list[dict[str, Any]] | None:
            tau = pool_agreement(tasks, records, space, baseline)
            if tau is None:  # repeats among the first trials: asked again after the next batch
                guard["tau"] = f"fewer than {MIN_OBSERVED} distinct trained points: asked again after the next batch"
                return None
            guard.update(tau=round(tau, 4), enqueued=tau > 0)
            return rest if tau > 0 else []

        def leads(records: list[dict[str, Any]]) -> list[dict[str, Any]] | None:
            lead = first_point_lead(records, first[0], baseline)
            if lead is None:  # the first point, or any other growth, not trained yet: asked again after the next batch
                guard["lead"] = "the pool's first point or any other growth not trained yet: asked again"
                return None
            guard.update(lead=[round(score, 4) for score in lead], enqueued=lead[0] > lead[1])
            return rest if lead[0] > lead[1] else []

        # against the sampler: asked after every batch until the first point and another growth are scored
        return first, Later(1, leads) if self.guard == "sampler" else Later(self.after, agrees)

    def _by_scores(self, tasks: list[PastTask], space: dict[str, Any], baseline: dict[str, Any],
                   reasons: dict[str, Any], sizes: dict[str, float] | None) -> Later:
        """The points of the `k` past tasks that rank the search's first `after` trials best, chosen once they are
        trained (and hold `MIN_OBSERVED` distinct points: until then, after each batch, None); what was compared goes
        into `reasons` ("agreement": every past task's tau; "consulted")."""
        reasons["after"] = self.after

        def points(records: list[dict[str, Any]]) -> list[dict[str, Any]] | None:
            rated = agreements(tasks, records, space, baseline)
            if rated is None:  # repeats among the first trials: asked again after the next batch
                reasons["agreement"] = f"fewer than {MIN_OBSERVED} distinct trained points: no past task compared"
                return None
            reasons["agreement"] = {task.key: round(tau, 4) for task, tau in rated}
            agreeing = [(task, tau) for task, tau in rated if tau > 0][:self.k]
            reasons["consulted"] = []
            proposed = _proposals([(task.entries[0], task.distance) for task, _ in agreeing], space,
                                  reasons["consulted"], sizes)
            for row, (_, tau) in zip(reasons["consulted"], agreeing):
                row["tau"] = round(tau, 4)
            return proposed

        return Later(self.after, points)

    def record(self, task: Any, space: dict[str, Any], records: list[dict[str, Any]], chosen: dict[str, Any],
               best: dict[str, Any], features: dict[str, float] | None, sizes: dict[str, float] | None = None) -> None:
        """Store the finished search before `task`, with the `sizes` its scaling parameters acted on (nothing when
        recording is off)."""
        if self.record_to is None or features is None:
            return
        from optuna.distributions import distribution_to_json

        entry = Entry(run=self.run, task=task.index, grower=self.grower, features=features,
                      space={k: distribution_to_json(d) for k, d in space.items()},
                      candidates=[{"params": dict(r["params"]), **{k: r.get(k) for k in CANDIDATE_KEYS}}
                                  for r in records],
                      chosen=dict(chosen), best=dict(best), task_key=task_identity(task), sizes=dict(sizes or {}))
        self._base(self.record_to).record(entry)
        self.recorded[task.index] = entry.key

    def after_task(self, learner: Any, task: Any) -> None:
        """Write the outcome of the trained task into its entry and the run's earlier ones."""
        if self.record_to is None or not self.recorded:
            return
        scores = [a for a in learner.evaluate(learner.seen, "val") if math.isfinite(a)]
        if not scores:
            return
        score = sum(scores) / len(scores)
        base = self._base(self.record_to)
        for index, key in self.recorded.items():
            outcome = {"latest": score, "latest_task": task.index}
            base.set_outcome(key, {**outcome, "after_task": score} if index == task.index else outcome)

    def _base(self, location: str) -> KnowledgeBase:
        if location not in self._bases:
            self._bases[location] = KnowledgeBase(location)
        return self._bases[location]

    def state_dict(self) -> dict[str, Any]:
        return {"run": self.run, "recorded": {str(t): k for t, k in self.recorded.items()}}

    def load_state_dict(self, state: dict[str, Any]) -> None:
        self.run = state.get("run", self.run)
        self.recorded = {int(t): k for t, k in state.get("recorded", {}).items()}


def _proposals(chosen: list[tuple[Entry, float]], space: dict[str, Any], consulted: list[dict[str, Any]],
               sizes: dict[str, float] | None = None) -> list[dict[str, Any]]:
    """The chosen and best points of the `chosen` searches, transferred to `space` (with the current `sizes`); each
    search's row appended to `consulted` (the plan's reasons)."""
    points = []
    for entry, distance in chosen:
        proposed = [transfer(p, list(entry.space), space, entry.sizes, sizes) for p in (entry.chosen, entry.best)]
        points += proposed
        consulted.append({**_consulted_row(entry, distance), "proposed": proposed})
    return points


def _consulted_row(entry: Entry, distance: float) -> dict[str, Any]:
    """A consulted past search as the plan's reasons list it: its key, task, distance, features and outcome."""
    return {"entry": entry.key, "task": entry.task, "task_key": entry.task_key, "distance": round(distance, 4),
            "features": entry.features, "outcome": entry.outcome}
