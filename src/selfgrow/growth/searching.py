"""`SearchGrower`: the shared machinery of growers whose plan is chosen by a multi-objective search.

Before each task the subclass states a search space (`space`) and how a point becomes operator
calls (`ops_for`); this class runs the search (`selfgrow.search.run_search`) with candidates
trained by `CandidateTraining`, picks a point by the selection rule within the budget, and
records everything in the plan: every candidate (parameters, operator calls, per-task
validation accuracy, FLOPs, parameters, status complete / pruned / over_budget), the Pareto
front, the rule and the choice. The compute of the search (candidate training and scoring) is
the plan's `search_flops`, which the run adds to the task's training FLOPs.

Candidates train for the rungs of `epochs` (successive halving with `eta`, rungs shared across
the study's batches of `halving_batch` trials), on a `data_fraction` of the task's training data.
`proxy_schedule` sets their learning-rate schedule within each rung (null: the trainer's):
"cosine_steps" anneals every rung to 0 over its optimizer steps and restarts at the next (SGDR,
Loshchilov & Hutter 2017), so each rung's score is taken in a minimum rather than wherever the
last constant-lr step left the weights (the proxy-fidelity bench measured that noise; BENCHMARKS.md).
`zero_cost: naswot` scores every point the sampler proposes by NASWOT on its grown, untrained net before any
training (`selfgrow.growth.zero_cost`: one forward pass of 128 of the task's images, counted in `search_flops`) and
screens it, untrained and uncounted against `n_trials`, when it scores below the median of the points scored before it
in the search (the enqueued points are scored first and never screened); the plan's reasons hold what it did
("zero_cost"). It needs the search in this process. Off by default: it ranks the candidates as full training does on
Split-CIFAR-10 at full size, not in the bench's reduced setting (BENCHMARKS.md, "The proxy target at full size"),
where it changed no choice under a stream budget and did not help without one ("NASWOT as the search's first
filter").

Objectives (`selfgrow.search.objectives`): the score (mean validation accuracy over the seen tasks
and the new one, with its standard error), plasticity and stability are recorded per candidate;
the study maximises the score and minimises `objective` ("flops": inference FLOPs of one input, or
"params"); `rule` (with `z` and `tolerance`) picks the point (`selfgrow.search.pareto`): by default
"parsimony", or "capacity" when the run has a `train_budget`. `train_budget`: the training FLOPs the
whole stream may spend, search included (`selfgrow.growth.stream_budget`): before each task, a
point whose training to the end of the stream would not fit is over budget, the choice is among
the candidates that fit with the search's measured cost (no growth, never pruned, when none
does), and no search runs when the current net and the search's estimate leave no room or no
growth step fits: that task grows, under the capacity rule, to the largest growth that fits without a
search (none scored, so the costliest; the budget goes to capacity, not unspent), else not at all.
Earlier tasks are scored on at most `val_memory_per_class` validation samples per class, counted in
the learner's memory (`memory_bytes`). `repeats` > 1 trains every candidate that many times from
streams of its own and scores their mean, with a standard error that includes their spread
(`RepeatedTraining`; repeats x the search's compute). `retention_space` adds the strengths of the
run's strategies to the space, and their options with declared choices (the replay memory's
classifier; `selfgrow.retention.settings`); the chosen ones go into the plan. `prediction_space`
holds settings that decide only predictions (the replay memory's classifier): no candidate is
trained per value, they are chosen after each task's training on the validation data
(`selfgrow.growth.prediction_choice`; its scoring counts in the task's search FLOPs and, under
`train_budget`, in the stream's projection). Budget: `max_flops` and `max_params` bound the grown
net; points over them are never trained nor chosen (turned away as they are asked, without counting
against `n_trials`: `selfgrow.search.engine`). A budget the current net already exceeds is a
user error (growth cannot shrink a net): it stops the run with one sentence. Candidates whose
training diverges (non-finite losses or weights) are failed trials, never chosen.
The point "no growth" is always enqueued, so the current net is always a candidate. `reasons` also
hold the Pareto front (trial numbers), the chosen trial, `trials_to_chosen` and `batches_to_chosen`
(the trials that count against `n_trials` up to the first that evaluated the chosen candidate, and
1 + the number of its halving batch: how fast the search found it, the measures by which warm start
is judged; trials of one batch are trained together, so the batch count is the one that reflects
compute).

Warm start within a run: the chosen and the most accurate parameters of the last `warm_start` tasks are enqueued
first in the new study (0 turns it off); they live in the grower's state, so a resumed run warm-starts as the
uninterrupted one does. Across runs (the growth knowledge base, `selfgrow.search.meta`): every finished search is
recorded, with the task's meta-features, into `record` ("default": `$SELFGROW_META`, else a journal file under
~/.cache/selfgrow; null: off), and the outcome once the task is trained; `warm_start: {from: BASE, k: 3,
max_distance: 1.5, within: 2}` also enqueues, after this run's points and no growth, the transferred chosen and
best points of the `k` past searches of the same grower whose tasks are most similar, one per past task (the
nearest of the runs of one stream), none farther than `max_distance` (`selfgrow.search.meta.transfer`); with
`similar: scores` the past tasks are instead those whose scores rank this search's first `after` (4) trained points
as they scored, and their points are enqueued once those are trained (`selfgrow.search.meta.agreement`); with
`consensus: n` the `n` points predicted best on average over every past task within `max_distance` are enqueued
right after no growth; earlier runs of this very task (the same stream position and classes) that grew a net within
1.5x of the current one's parameters, when the base holds any within `max_distance`, are consulted alone, every one
of their searches pooled into a model whose 2k best points are enqueued (`own: alone`, or `first` ahead of the other
tasks'; off by default, BENCHMARKS.md, "`own` over six runs"); with `by: outcome` each past task proposes through the
search whose run ended best rather than the nearest, and with `follow: true` the search takes the base's first point,
tried first and never pruned, unless another candidate scores more than `z` standard errors above it (a prior on
growth from whole runs' outcomes, which the proxy's scores cannot see; BENCHMARKS.md, "Following the past run that
ended best"); past points are carried as relative actions, or with `transfer: target` as the widths they grew to
(`sizes`: then earlier runs of the task from any net are its own); with `propose: pooled` the past tasks chosen by
features offer, instead of their nearest searches' chosen and best points, the 2k points
predicted best on average over them, each task's model fitted on every one of its searches (with `guard: agreement`
those past the first `after` trials are held back until those trials' scores agree with the pool, measured without a
gain; with `guard: sampler` all but the first until that one scores above every other growth of the first batch,
the sampler's; these checks come at the end of a batch, and one that would leave no trial to act on is refused); with
`surrogate: n` a random forest fitted on every such past search within `max_distance`
(`selfgrow.search.meta.surrogate`) proposes the `n` points it ranks best, tried before all others, and screens the
sampler's points it finds hopeless (untrained, status "screened", not counted in `n_trials`) while it ranks this
search's candidates rightly; with `prior: true` (sampler cost-gp) every complete candidate of those `k` searches,
transferred, with its score relative to its search's mean, is the sampler's prior (`selfgrow.search.cost_gp`); the
plan's reasons say, under "knowledge", which were consulted and what they proposed. The meta-feature probe's
forward passes count in `search_flops`. `initial_points` (points known to be worth trying, e.g. from an earlier
study) are enqueued after them and the no-growth point; names a space lacks are dropped, missing names take their
no-growth value.

`keep_winner`: the learner starts the task's training from the chosen candidate's trained
weights (`GrowthPlan.weights`) instead of from the freshly grown net; it then trains the task
as usual. Off by default: the learner's training then does not depend on the search's.
`adopt_winner`: the chosen candidate's training is the task's training (`GrowthPlan.adopted`): the
learner takes its trained net, optimizer state and retention strategies and does not train the
task again, which saves one training per task and keeps the training the score was measured on
(keep_winner trains the task a second time on top, so the old classes forget more). It needs
candidates trained as the task would be, so `data_fraction` 1 and a last rung of the trainer's
epochs, and a search in this process (workers hand back weights only); candidates train without
the trainer's lr/wd grid and early stopping, so an adopted task's training has neither.

The search runs under a forked torch RNG (the global random stream of the run is untouched) and
every candidate draws from a stream of its own, seeded from (`seed`, task index, its operator
calls): its numbers do not depend on the order of training or on the process training it. A
space with no growth (e.g. compound `max_phi: 0`) runs no search at all, so the run equals the
`fixed` grower's; `n_trials` < 1, a search that would never search, is refused.

Distributed search: with the learner's `search_backend` set to a coordinator
(`selfgrow.search.distributed.coordinating(...)`, which `selfgrow run --storage URL --workers N`
sets up and hands to the learner) the study is shared and worker processes train the
candidates (`selfgrow.search.worker`); the choice, the records and the plan are the same.
"""

from __future__ import annotations

import dataclasses
import json
from dataclasses import dataclass
from typing import Any

import torch

from selfgrow.config import SCHEDULES
from selfgrow.errors import SelfgrowError
from selfgrow.growth import prediction_choice
from selfgrow.growth.base import WIDEN_MODES, Grower, GrowthPlan
from selfgrow.growth.candidates import CandidateTraining, RepeatedTraining, candidate_seed
from selfgrow.growth.growth_points import RETENTION_PREFIX, largest_point, smallest_steps
from selfgrow.growth.stream_budget import TaskBudget, plan_budget, search_samples
from selfgrow.growth.validation_memory import memory_bytes
from selfgrow.growth.zero_cost import ZERO_COST_SCORES, NaswotFilter, naswot_batch
from selfgrow.nets.cost import training_flops_per_sample
from selfgrow.search.meta.features import task_identity
from selfgrow.search.meta.link import KnowledgeLink, WarmStart
from selfgrow.search.meta.transfer import contains
from selfgrow.options import option
from selfgrow.retention.settings import setting_value
from selfgrow.search import (
    DEFAULT_RULE,
    MNAS_EXPONENT,
    RULES,
    Evaluation,
    Proposal,
    SearchOutcome,
    SearchSettings,
    run_search,
)
from selfgrow.search.engine import Later, counts
from selfgrow.search.pareto import familywise_z, indistinguishable
from selfgrow.search.samplers import SAMPLERS

OBJECTIVES = ("flops", "params")
OBJECTIVES_TEXT = [
    "score: mean validation accuracy over the earlier tasks and the new one (chosen by the rule)",
    "plasticity: validation accuracy on the new task",
    "stability: earlier tasks' accuracy after minus before the candidate's training, on the validation memory",
]

ZERO_COST_TEXT = ("first filter: NASWOT without training, a sampled point scoring below the median of those scored "
                  "before it screened untrained")


@dataclass
class SearchOptions:
    """The options every searched grower takes (see the module docstring); subclasses add their space's."""

    n_trials: int = option(8, at_least=1, note="for no growth, use the fixed grower")
    epochs: int | list[int] = 2
    sampler: str = option("cost-gp", choices=lambda: SAMPLERS)
    storage: str | None = None
    study_name: str = "selfgrow"
    eta: int = 2
    halving_batch: int = 4
    n_startup_trials: int = 4
    objective: str = option("flops", choices=OBJECTIVES)
    max_flops: float | None = option(None, above=0)
    max_params: int | None = option(None, above=0)
    train_budget: float | None = option(None, above=0, note="training FLOPs of the whole stream, search included")
    rule: str | None = option(None, choices=lambda: [*RULES, None],
                              note=f"null: capacity with a train_budget, else {DEFAULT_RULE}")
    tolerance: float = option(0.0, at_least=0)
    z: float = option(1.0, at_least=0, note="standard errors")
    familywise: bool = option(False, note="z per family of comparisons with the best (Šidák-Bonferroni)")
    val_memory_per_class: int | None = option(None, at_least=1, note="null keeps every validation sample")
    population_size: int = 8
    warm_start: int | dict[str, Any] = option(
        2, at_least=0, note="the last tasks of this run, 0: off; or a mapping {from: knowledge base, k: past "
        "tasks consulted, each by its nearest search (3), max_distance: farthest meta-feature distance consulted "
        "(1.5), within: the last tasks of this run (2), surrogate: proposals of a surrogate over the past searches, "
        "which also screens hopeless points (0: off; measured without a reliable gain), prior: their candidates as the "
        "cost-gp sampler's prior (false; measured without a reliable gain, BENCHMARKS.md), propose: chosen (each "
        "past task's nearest search's chosen and best points) or pooled (the points predicted best over all their "
        "searches), own: this very task's earlier runs pooled, alone, first or off (off), by: distance or outcome "
        "(each past task's nearest search proposes, or the one whose run ended best), follow: the base's first point "
        "taken unless another scores more than z standard errors above it (false), transfer: "
        "relative (past widening factors as they were) or target (as the widths they grew to; measured without a "
        "gain), guard: off, agreement or sampler (pooled points held back until the first trials agree with the pool, "
        "or until its first point scores above the sampler's)}")
    record: str | None = option("default", note="the knowledge base each search is recorded into; null: none")
    mode: str = option("zero", choices=WIDEN_MODES)
    data_fraction: float = option(1.0, above=0, at_most=1)
    initial_points: list[dict[str, Any]] | None = option(
        None, note="mappings from parameter names to values")
    keep_winner: bool = False
    adopt_winner: bool = False
    retention_space: dict[str, list[float | str]] | None = option(
        None, note="a mapping from '<strategy>.<attribute>' to a non-empty list of numbers (or of an option's choices)")
    prediction_space: dict[str, list[float | str]] | None = option(
        None, note="a mapping from '<strategy>.<attribute>' that decides only predictions to a non-empty list of "
        "its values, chosen after each task's training")
    repeats: int = option(1, at_least=1, note="trainings per candidate, their mean is the score")
    zero_cost: str | None = option(
        None, choices=lambda: [*ZERO_COST_SCORES, None],
        note="a score without training as the search's first filter: a sampled point scoring below the median of "
        "those scored before it is screened untrained (naswot; null: off)")
    proxy_schedule: str | None = option(
        None, choices=lambda: [*SCHEDULES, None],
        note="the candidates' learning-rate schedule within each rung; null: the trainer's; "
        "cosine_steps: every rung anneals to 0")
    seed: int = 0

    def __post_init__(self) -> None:
        warm = WarmStart.parse(self.warm_start)  # refuses a bad mapping now
        if warm.prior and self.sampler != "cost-gp":
            raise SelfgrowError(f"growth warm_start prior: true needs the cost-gp sampler, not {self.sampler!r}; "
                                "accepted: sampler cost-gp, or prior: false.")
        check = warm.first_check()
        # the check comes at the end of the batch holding its first trials: refused when no trial is left to act on
        asked = -(-check // self.halving_batch) * self.halving_batch if check and self.halving_batch >= 1 else None
        if asked is not None and asked >= self.n_trials:
            raise SelfgrowError(f"growth warm_start checks the search's first trials (similar: scores, or a guard) at "
                                f"the end of the batch that holds the first {check}, trial {asked} in batches of "
                                f"{self.halving_batch}, which leaves none of n_trials={self.n_trials} to act on; "
                                f"accepted: n_trials above {asked}, a smaller halving_batch, or a smaller 'after'.")
        if self.adopt_winner and self.keep_winner:
            raise SelfgrowError("growth keep_winner and adopt_winner are both true; accepted: at most one of them "
                                "(adopt_winner already takes the winner's weights, and its training).")
        if self.adopt_winner and float(self.data_fraction) < 1:
            raise SelfgrowError(f"growth adopt_winner needs candidates trained on all of the task, not "
                                f"data_fraction={self.data_fraction}; accepted: data_fraction 1.")
        for name in ("retention_space", "prediction_space"):
            space = getattr(self, name)
            if space is not None and not (isinstance(space, dict) and all(isinstance(v, list) and v and (
                    all(isinstance(x, (int, float)) and not isinstance(x, bool) for x in v)
                    or all(isinstance(x, str) for x in v)) for v in space.values())):
                raise SelfgrowError(f"growth {name}={space!r} is invalid; accepted: null or a mapping from "
                                    "'<strategy>.<attribute>' to a non-empty list of numbers, or of the option's "
                                    "choices (strings).")
        both = sorted(set(self.retention_space or {}) & set(self.prediction_space or {}))
        if both:
            raise SelfgrowError(f"growth setting {both[0]!r} is in both retention_space and prediction_space; "
                                "accepted: each setting in one of them (searched with the growth, or chosen after "
                                "training).")


class SearchGrower(Grower):
    """Base of searched growers; subclasses implement `space`, `ops_for` and `no_growth` (see the module docstring)."""

    Options = SearchOptions

    def __init__(self, **options: Any) -> None:
        from selfgrow.search import make_sampler

        super().__init__(**options)
        self.settings = SearchSettings(n_trials=self.n_trials, sampler=self.sampler, storage=self.storage,
                                       epochs=self.epochs, eta=self.eta, halving_batch=self.halving_batch,
                                       n_startup_trials=self.n_startup_trials, seed=self.seed,
                                       population_size=self.population_size)
        # checks its options now (the costs come with each search)
        make_sampler(self.sampler, self.seed, self.n_startup_trials, self.population_size, cost_of=lambda params: 0.0)
        self.retention_space = {str(k): [setting_value(x) for x in v] for k, v in (self.retention_space or {}).items()}
        self.prediction_space = {str(k): [setting_value(x) for x in v] for k, v in (self.prediction_space or {}).items()}
        self.data_fraction = float(self.data_fraction)
        self.initial_points = [dict(p) for p in self.initial_points or []]
        self.tolerance = float(self.tolerance)
        self.z = float(self.z)
        self.rule = self.rule or ("capacity" if self.train_budget else DEFAULT_RULE)
        self.history: list[dict[str, Any]] = []  # per task: the chosen and the most accurate parameters
        warm = WarmStart.parse(self.warm_start)
        self.within = warm.within
        self.follow = warm.follow
        self.knowledge = KnowledgeLink(self.name, self.record, warm, self.seed)

    # ---- what subclasses define -------------------------------------------------------------

    def space(self, learner: Any, task: Any, context: Any = None) -> dict[str, Any]:
        """The search space before `task`: parameter name -> Optuna distribution (empty: nothing to grow).

        `context` (here and in `no_growth`, `ops_for`, `problem`) is what the subclass learnt about the
        task before its search and handed to `search_plan` (bindgrow's conflict model; None for the others).
        """
        raise NotImplementedError

    def no_growth(self, space: dict[str, Any], context: Any = None) -> dict[str, Any]:
        """The point of `space` that keeps the net as it is."""
        raise NotImplementedError

    def ops_for(self, net: Any, params: dict[str, Any], context: Any = None) -> list[dict[str, Any]]:
        """The operator calls that grow `net` to the point `params`."""
        raise NotImplementedError

    def sizes(self, net: Any, space: dict[str, Any]) -> dict[str, float]:
        """The size each scaling parameter of `space` acts on in `net` (a widening factor's group width), so the
        knowledge base carries past factors as target sizes (`selfgrow.search.meta.transfer`); none here."""
        return {}

    def context_state(self, context: Any) -> Any:
        """`context` as plain data, sent with a distributed search's job to the workers (identity here)."""
        return context

    def context_from_state(self, state: Any) -> Any:
        """The context a worker rebuilds from `context_state`'s data."""
        return state

    def cheapest_cost(self, net: Any, head: int | None) -> dict[str, Any]:
        """The cost of the cheapest net the space can give before a task: the current net, as growth never
        shrinks a net (a subclass whose space can, like the new extractor's size, says otherwise)."""
        return _cost(net, head)

    def chosen(self, net: Any, record: dict[str, Any], outcome: Any, reasons: dict[str, Any]) -> None:
        """Hook called with the chosen candidate before the plan is returned (subclass state updates)."""

    # ---- the plan ---------------------------------------------------------------------------

    def plan(self, learner: Any, task: Any) -> GrowthPlan:
        return self.search_plan(learner, task)

    def search_plan(self, learner: Any, task: Any, context: Any = None) -> GrowthPlan:
        """The plan chosen by the search before `task`; `context` is passed to the subclass's hooks."""
        net = learner.net
        head = task.index if learner.scenario == "task" else None
        reasons: dict[str, Any] = {
            "task": task.index,
            "rule": self._rule_text(),
            "objectives": OBJECTIVES_TEXT + [f"cost: {'inference FLOPs' if self.objective == 'flops' else 'parameters'}"]
            + ([ZERO_COST_TEXT] if self.zero_cost else []),
            "current": _cost(net, head),
        }
        outgrown = self.outgrown_budget(learner, task, head)
        if outgrown:
            reasons["decision"] = f"no growth: {outgrown}"
            return GrowthPlan(reasons=reasons)
        self._check_adoptable(learner)
        prediction_choice.check_prediction_space(learner.retention, self.prediction_space)
        space = self.search_space(learner, task, context)
        if not space:
            reasons["decision"] = "no growth: zero growth budget (empty search space), no search"
            return GrowthPlan(reasons=reasons)
        baseline = self._baseline(learner, space, context)
        budget = self._task_budget(learner, task, context)
        if budget is not None:
            reasons["stream_budget"] = budget.describe()
            no_room = (self._no_room_to_search(learner, task, budget)
                       or self._no_growth_fits(net, head, space, baseline, context, budget))
            if no_room:
                reasons["decision"] = no_room
                return self._unsearched_growth(net, head, space, baseline, context, budget, reasons)
        features, probe_flops = self.knowledge.features(learner, task)
        sizes = self.sizes(net, space)
        reasons["warm_start"] = self._warm_start_points(space, learner, context)
        consultation = self.knowledge.consult(
            space, features, baseline,
            lambda point: self._propose(net, head, {**baseline, **point}, context, budget).over_budget is None,
            task_identity(task), sizes)
        if consultation.reasons is not None:
            reasons["knowledge"] = consultation.reasons
        largest = self._largest_growth(net, head, space, baseline, context, budget)
        followed = self._fitting_points(space, consultation.nearest[:1], learner, context) if self.follow else []
        # no growth before the past searches' points: it is often the best on real runs and always the cheapest
        # (BENCHMARKS.md, "No growth before the past searches' points"); the point `follow` would take comes first, so
        # that however many points are enqueued it is trained
        enqueue = [*followed, *self._fitting_points(space, consultation.proposed, learner, context),
                   *reasons["warm_start"], baseline,
                   *self._fitting_points(space, consultation.consensus, learner, context),
                   *self._fitting_points(space, consultation.nearest, learner, context), *largest,
                   *self._fitting_points(space, self.initial_points, learner, context)]
        zero_cost = self._zero_cost_filter(learner, task, enqueue, context)
        screen = _first_of([consultation.surrogate.hopeless if consultation.surrogate is not None else None,
                            zero_cost])
        # under a stream budget no growth is the fallback when the search's cost leaves no candidate room: never pruned
        # the point `follow` would take is never pruned, as the capacity rule's largest: the rule compares finished ones
        protected = largest + followed + ([baseline] if budget is not None else [])
        later = None
        if consultation.later is not None:
            chosen_later = consultation.later.points
            later = Later(consultation.later.after, lambda records: None if (points := chosen_later(records)) is None
                          else self._fitting_points(space, points, learner, context))
        outcome = self._search(learner, task, space, enqueue, context, screen, protected=protected,
                               prior=consultation.prior, later=later)
        records = outcome.records
        if consultation.surrogate is not None:
            reasons["knowledge"]["surrogate"]["screened"] = (sum(r["status"] == "screened" for r in records)
                                                             - (zero_cost.screened if zero_cost is not None else 0))
        if zero_cost is not None:
            reasons["zero_cost"] = zero_cost.describe()
        reasons["pareto_front"] = outcome.front()
        reference = reasons["current"]["flops" if self.objective == "flops" else "n_params"]
        search_flops = outcome.spent_flops + probe_flops + (zero_cost.flops if zero_cost is not None else 0.0)
        among = self._affordable(outcome.finished(), budget, search_flops, reasons, baseline)
        choice = outcome.choose(self.rule, self.tolerance, self.z, float(reference), familywise=self.familywise,
                                among=among)
        if followed:
            choice = self._followed(choice, followed[0], among, reasons)
        best = max(outcome.finished(), key=lambda r: (r["accuracy"], -r["cost"]))
        reasons["chosen_trial"] = choice["trial"]
        first = next(r for r in records if r["trial"] == choice.get("same_as", choice["trial"]))
        reasons["trials_to_chosen"] = sum(counts(r) for r in records if r["trial"] <= first["trial"])
        reasons["batches_to_chosen"] = first["batch"] + 1
        reasons["decision"] = f"trial {choice['trial']}: {choice['params']} ({_describe(choice)})"
        if followed and reasons["knowledge"]["follow"]["followed"]:
            reasons["decision"] += "; the knowledge base's point, none scoring distinguishably above it"
        weights = adopted = None
        if self.keep_winner:
            weights = outcome.weights(choice)
            reasons["decision"] += "; training starts from its trained weights"
        if self.adopt_winner:
            adopted = outcome.adopted(choice)
            reasons["decision"] += "; its training is the task's (adopted, not trained again)"
        ops = self.ops_for(net, growth_params(choice["params"]), context)
        settings = retention_params(choice["params"])
        if settings:
            reasons["retention"] = settings
        self.chosen(net, choice, outcome, reasons)
        self.history.append({"task": task.index, "chosen": dict(choice["params"]), "best": dict(best["params"])})
        self.knowledge.record(task, space, records, choice["params"], best["params"], features, sizes)
        return GrowthPlan(ops=ops, reasons=reasons, candidates=records, chosen=records.index(choice), weights=weights,
                          retention=settings, search_flops=search_flops, adopted=adopted)

    def _followed(self, choice: dict[str, Any], point: dict[str, Any], among: list[dict[str, Any]],
                  reasons: dict[str, Any]) -> dict[str, Any]:
        """With `follow`, the candidate at the knowledge base's first `point` when it finished among those the rule
        may choose (`among`) and no other scores more than `z` standard errors (the rule's margin, family-wise when it
        is) above it; else the rule's `choice`. What was done goes into the reasons' "knowledge" ("follow")."""
        index = next((i for i, r in enumerate(among) if r["params"] == point), None)
        margin = familywise_z(self.z, len(among)) if self.familywise else self.z
        near = indistinguishable([(r["accuracy"], r["cost"]) for r in among], [float(r.get("se", 0.0)) for r in among],
                                 margin, self.tolerance) if among else []
        taken = index is not None and index in near
        reasons["knowledge"]["follow"] = {"point": point, "trial": among[index]["trial"] if index is not None else None,
                                          "followed": taken}
        return among[index] if taken else choice

    def outgrown_budget(self, learner: Any, task: Any, head: int | None, grower: str | None = None) -> str | None:
        """Why the net, chosen within the budget before, is over it now (its head grew with the new task's classes)
        and no point can bring it back, so no growth is the only plan; None within the budget. SelfgrowError,
        naming `grower` (this one by default), when the budget cannot hold the cheapest net before the run's first
        task, or when the space could shrink the net but not enough."""
        net = learner.net
        floor = self.cheapest_cost(net, head)
        exceeded = self._over_budget(floor)
        if not exceeded:
            return None
        if floor == _cost(net, head) and task.index > 0:
            return (f"the net exceeds the budget ({exceeded}) since its head grew with this task's classes, and "
                    "growth never shrinks it")
        raise SelfgrowError(
            f"The {grower or self.name} grower's budget is smaller than the cheapest net it can choose before task "
            f"{task.index} ({exceeded}), so give max_flops >= {floor['flops']:,} and "
            f"max_params >= {floor['n_params']:,}, or no budget."
        )

    def _check_adoptable(self, learner: Any) -> None:
        """With `adopt_winner`, refuse a search whose candidates would not train as the task (see the module docstring)."""
        if not self.adopt_winner:
            return
        last = self.epochs[-1] if isinstance(self.epochs, list) else self.epochs
        if last != learner.trainer.epochs:
            raise SelfgrowError(f"growth adopt_winner needs the last rung to train the trainer's "
                                f"{learner.trainer.epochs} epochs, not {last}; accepted: epochs ending in "
                                f"{learner.trainer.epochs}.")
        if learner.search_backend is not None:
            raise SelfgrowError("growth adopt_winner needs the search in this process (workers hand back weights "
                                "only); accepted: no search workers, or keep_winner instead.")

    def _task_budget(self, learner: Any, task: Any, context: Any = None) -> TaskBudget | None:
        """The stream's training budget before `task` (`selfgrow.growth.stream_budget`); None without `train_budget`.
        The search is bounded by its samples (`stream_budget.search_samples`: every trial through every rung, every
        sample it scores) at the costliest net it may train: a largest growth within `max_flops` and `max_params`
        (`growth_points.largest_point`; the current net when none is found) or what the budget's fixed point allows,
        whichever is smaller."""
        if self.train_budget is None:
            return None
        net, head = learner.net, (task.index if learner.scenario == "task" else None)
        space = self.search_space(learner, task, context)
        baseline = self._baseline(learner, space, context)
        costliest = largest_point(space, baseline, lambda p: self._propose(net, head, p, context).over_budget is None)
        grown = GrowthPlan(ops=self.ops_for(net, growth_params(costliest), context)).apply(net)[0] if costliest else net
        rungs = self.settings.epochs
        samples = search_samples(learner, task, self.n_trials * self.repeats, self.data_fraction, rungs[-1], len(rungs),
                                 self.val_memory_per_class)
        return plan_budget(self.train_budget, learner, task, self.adopt_winner, samples,
                           float(training_flops_per_sample(grown, head)), self.prediction_samples(learner, task))

    def prediction_samples(self, learner: Any, task: Any) -> float:
        """At most how many samples the choice after each task scores (`prediction_choice.scored_samples`; 0 without
        a `prediction_space`), which a stream budget plans with every task's samples."""
        if not self.prediction_space:
            return 0.0
        return prediction_choice.scored_samples(learner, task, self.prediction_space, self.val_memory_per_class)

    def _no_room_to_search(self, learner: Any, task: Any, budget: TaskBudget) -> str | None:
        """Why no search runs before `task` under the stream budget (None: it runs). Before the first task a
        budget that cannot even train the starting net to the end is a user error."""
        head = task.index if learner.scenario == "task" else None
        cost = _cost(learner.net, head, per_sample=True)
        current = (cost["train_flops_per_sample"], cost["train_flops_per_class"])
        if not learner.records and budget.exceeded(*current, search=0.0):
            least = budget.projected(*current, search=0.0)
            raise SelfgrowError(f"The {self.name} grower's train_budget {budget.total:.3e} is smaller than training "
                                f"the starting net to the end of the stream ({least:.3e}); "
                                f"give train_budget >= {least:.3e}, or no train_budget.")
        exceeded = budget.exceeded(*current)
        if exceeded is None:
            return None
        return f"no growth: no room in the stream's budget for a search (with its estimate, {exceeded}), no search"

    def _no_growth_fits(self, net: Any, head: int | None, space: dict[str, Any], baseline: dict[str, Any],
                        context: Any, budget: TaskBudget) -> str | None:
        """Why no growth point can be chosen under the budgets (None: some may): every smallest growth step (one
        growth parameter at its next value) is over them, and so, in a space whose values grow the net as they
        increase, is every growth point. Spaces with continuous parameters are searched."""
        steps = smallest_steps(space, baseline)
        if not steps:
            return None
        reasons = [self._propose(net, head, step, context, budget).over_budget for step in steps]
        if any(reason is None for reason in reasons):
            return None
        return f"no growth: no growth step fits the budgets (e.g. {reasons[0]}), no search"

    def _unsearched_growth(self, net: Any, head: int | None, space: dict[str, Any], baseline: dict[str, Any],
                           context: Any, budget: TaskBudget, reasons: dict[str, Any]) -> GrowthPlan:
        """The plan when the stream's budget leaves no room for a search: under the capacity rule, the largest growth
        that fits without one (no candidate scored, none is distinguishable from the best, so the rule takes the
        costliest: the budget goes to capacity rather than unspent); otherwise, and when none fits, no growth."""
        if self.rule != "capacity":
            return GrowthPlan(reasons=reasons)
        unsearched = dataclasses.replace(budget, search_estimate=0.0)
        point = largest_point(space, baseline,
                              lambda p: self._propose(net, head, p, context, unsearched).over_budget is None)
        if point is None:
            return GrowthPlan(reasons=reasons)
        reasons["stream_budget"] = unsearched.describe()
        why = reasons["decision"].removeprefix("no growth: ").removesuffix(", no search")
        reasons["decision"] = (f"largest growth without a search: {point} ({why}; under the capacity rule, with no "
                               f"candidate scored, the costliest that fits the stream's budget)")
        settings = retention_params(point)
        if settings:
            reasons["retention"] = settings
        return GrowthPlan(ops=self.ops_for(net, growth_params(point), context), reasons=reasons, retention=settings)

    def _largest_growth(self, net: Any, head: int | None, space: dict[str, Any], baseline: dict[str, Any],
                        context: Any, budget: TaskBudget | None) -> list[dict[str, Any]]:
        """Under the capacity rule, a largest growth within every budget, so that the rule's costliest end is always
        a candidate (as no growth is its cheapest; the search never prunes it, see `_search`): the largest uniform
        growth that fits, then each parameter raised while the point still fits (`growth_points.largest_point`)."""
        if self.rule != "capacity":
            return []
        point = largest_point(space, baseline,
                              lambda p: self._propose(net, head, p, context, budget).over_budget is None)
        return [point] if point is not None else []

    @staticmethod
    def _affordable(finished: list[dict[str, Any]], budget: TaskBudget | None, search_flops: float,
                    reasons: dict[str, Any], baseline: dict[str, Any]) -> list[dict[str, Any]]:
        """The finished candidates the rule may choose: under a stream budget, those whose training to the end of
        the stream fits it with the search's measured cost; no growth (`baseline`, never pruned) when none does."""
        if budget is None:
            return finished
        reasons["stream_budget"] = budget.describe(search_flops)
        fits = [r for r in finished
                if budget.exceeded(r["train_flops_per_sample"], r["train_flops_per_class"], search_flops) is None]
        if not fits:
            reasons["stream_budget"]["over"] = "no candidate fits with the search's measured cost; no growth"
        return fits or [r for r in finished if r["params"] == baseline][:1]

    def choose_predictions(self, learner: Any, task: Any) -> prediction_choice.PredictionChoice | None:
        """The `prediction_space`'s settings, chosen on the trained net (`selfgrow.growth.prediction_choice`)."""
        if not self.prediction_space:
            return None
        return prediction_choice.choose_predictions(learner, task, self.prediction_space, self.val_memory_per_class)

    def after_task(self, learner: Any, task: Any) -> None:
        """The trained task's outcome into the knowledge base (see `selfgrow.search.meta.link`)."""
        self.knowledge.after_task(learner, task)

    def search_space(self, learner: Any, task: Any, context: Any = None) -> dict[str, Any]:
        """The subclass's growth space and, when `retention_space` is set, the strategies' strengths beside it.

        A strength's choices always include its present value, so the point "no growth, strengths
        as they are" stays in the space.
        """
        from optuna.distributions import CategoricalDistribution

        from selfgrow.retention.settings import check_setting_values, current_settings

        space = dict(self.space(learner, task, context))
        if space and self.retention_space:
            present = current_settings(learner.retention, list(self.retention_space))
            for key, values in self.retention_space.items():
                check_setting_values(learner.retention, key, values)
                space[RETENTION_PREFIX + key] = CategoricalDistribution(sorted({*values, setting_value(present[key])}))
        return space

    def _baseline(self, learner: Any, space: dict[str, Any], context: Any) -> dict[str, Any]:
        """The point of `space` that keeps the net and the strategies' strengths as they are."""
        from selfgrow.retention.settings import current_settings

        growth = {k: v for k, v in space.items() if not k.startswith(RETENTION_PREFIX)}
        keys = [k[len(RETENTION_PREFIX):] for k in space if k.startswith(RETENTION_PREFIX)]
        present = current_settings(learner.retention, keys)
        settings = {RETENTION_PREFIX + k: setting_value(v) for k, v in present.items()}
        return {**self.no_growth(growth, context), **settings}

    def _zero_cost_filter(self, learner: Any, task: Any, enqueue: list[dict[str, Any]],
                          context: Any) -> NaswotFilter | None:
        """The search's first filter under `zero_cost` (None when off), the `enqueue`d points scored first; each
        point's net grown from the candidate's own random stream, so its score does not depend on the search's
        order."""
        if self.zero_cost is None:
            return None
        if learner.search_backend is not None:
            raise SelfgrowError(f"growth zero_cost: {self.zero_cost} screens the sampled points as they are asked, "
                                "which needs the search in this process; accepted: no search workers, or zero_cost: "
                                "null.")
        from selfgrow.nets.cost import inference_flops

        net = learner.net
        head = task.index if learner.scenario == "task" else None

        def grown(params: dict[str, Any]) -> Any:
            ops = self.ops_for(net, growth_params(params), context)
            with torch.random.fork_rng(devices=_rng_devices()):
                torch.manual_seed(candidate_seed(self.seed, task.index, _key(ops)))
                return GrowthPlan(ops=ops).apply(net)[0]

        return NaswotFilter(grown, naswot_batch(task), lambda grown_net: inference_flops(grown_net, head), enqueue)

    def _search(self, learner: Any, task: Any, space: dict[str, Any], enqueue: list[dict[str, Any]],
                context: Any, screen: Any = None, protected: list[dict[str, Any]] | None = None,
                prior: list[tuple[dict[str, Any], float]] | None = None, later: Later | None = None) -> SearchOutcome:
        """The task's study: shared with workers when the learner has a distributed backend (the surrogate's
        `screen` then does not act: workers sample on their own), else run here under a forked torch RNG;
        `protected`: enqueued points the halving never prunes; `prior`: the cost-gp sampler's; `later`: points
        enqueued after the first trials (in this process only: workers claim the study's trials on their own)."""
        coordinator = learner.search_backend
        if coordinator is not None and later is not None:
            raise SelfgrowError("growth warm_start similar: scores, or propose: pooled with its guard, needs the "
                                "search in this process (it enqueues past tasks' points once the first trials are "
                                "scored); accepted: no search workers, similar: features, or guard: off.")
        if coordinator is not None:
            return coordinator.search(self, learner, task, space, enqueue, context, protected=protected, prior=prior)
        propose, evaluate = self.problem(learner, task, context)
        kept: dict[int, Any] = {}  # trial -> its trained weights (keep_winner) or the candidate itself (adopt_winner)

        def keep(trial: Any, record: dict[str, Any], evaluation: Any) -> None:
            kept[record["trial"]] = evaluation if self.adopt_winner else evaluation.state_dict()

        with torch.random.fork_rng(devices=_rng_devices()):
            torch.manual_seed(self.seed * 1_000_003 + task.index)
            outcome = run_search(self.settings, f"{self.study_name}-{self.name}-task{task.index}", space,
                                 propose, evaluate, enqueue, keep if self.keep_winner or self.adopt_winner else None,
                                 screen, protected or (), prior or (), later)

        def winner(record: dict[str, Any]) -> Any:
            return kept[record.get("same_as", record["trial"])]

        if self.adopt_winner:
            outcome.adopted = lambda record: winner(record).adoption()
        else:
            outcome.weights = winner
        return outcome

    def problem(self, learner: Any, task: Any, context: Any = None) -> tuple[Any, Any]:
        """`(propose, evaluate)` of the search before `task`: what a point is, and its candidate in training."""
        net = learner.net
        head = task.index if learner.scenario == "task" else None

        budget = self._task_budget(learner, task, context)

        def evaluate(params: dict[str, Any]) -> Evaluation:
            ops = self.ops_for(net, growth_params(params), context)
            settings = retention_params(params)
            seed = candidate_seed(self.seed, task.index, _key(ops, settings))
            runs = [CandidateTraining(learner, task, ops, self.data_fraction, seed=seed + k,
                                      val_memory_per_class=self.val_memory_per_class, retention_settings=settings,
                                      repeat=k, schedule=self.proxy_schedule)
                    for k in range(self.repeats)]
            return runs[0] if self.repeats == 1 else RepeatedTraining(runs)

        return _Proposer(self, net, head, context, budget), evaluate

    def _propose(self, net: Any, head: int | None, params: dict[str, Any], context: Any = None,
                 budget: TaskBudget | None = None) -> Proposal:
        """Grow the net to `params` (untrained) to know its cost; the operator calls are its identity."""
        ops = self.ops_for(net, growth_params(params), context)
        grown = GrowthPlan(ops=ops).apply(net)[0]
        cost = _cost(grown, head, per_sample=budget is not None)
        value = cost["flops"] if self.objective == "flops" else cost["n_params"]
        return Proposal(key=_key(ops, retention_params(params)), cost=float(value), info={"ops": ops, **cost},
                        over_budget=self._over_budget(cost, budget))

    def _over_budget(self, cost: dict[str, Any], budget: TaskBudget | None = None) -> str | None:
        """Which budget `cost` exceeds, in words (None when within); `budget`: the stream's, with the search's estimate."""
        if self.max_flops is not None and cost["flops"] > self.max_flops:
            return f"{cost['flops']:,} inference FLOPs > max_flops {self.max_flops:,.0f}"
        if self.max_params is not None and cost["n_params"] > self.max_params:
            return f"{cost['n_params']:,} parameters > max_params {self.max_params:,}"
        if budget is not None:
            return budget.exceeded(cost["train_flops_per_sample"], cost["train_flops_per_class"])
        return None

    def _warm_start_points(self, space: dict[str, Any], learner: Any, context: Any) -> list[dict[str, Any]]:
        """The last `warm_start` tasks' chosen and best parameters that fit `space` (missing names: no growth)."""
        entries = reversed(self.history[-self.within:] if self.within else [])
        return self._fitting_points(space, [params for entry in entries for params in (entry["chosen"], entry["best"])],
                                    learner, context)

    def _fitting_points(self, space: dict[str, Any], given: list[dict[str, Any]], learner: Any,
                        context: Any) -> list[dict[str, Any]]:
        """The distinct points of `space` that the `given` parameters name (values outside it dropped, missing
        names at their no-growth value); parameters naming nothing in `space` give no point."""
        points: list[dict[str, Any]] = []
        for params in given:
            fitting = {k: v for k, v in params.items() if k in space and contains(space[k], v)}
            point = {**self._baseline(learner, space, context), **fitting}
            if fitting and point not in points:
                points.append(point)
        return points

    def _rule_text(self) -> str:
        budget = [f"{k} {v:,}" for k, v in (("max_flops", self.max_flops), ("max_params", self.max_params)) if v]
        if self.train_budget:
            budget.append(f"train_budget {self.train_budget:.3e} training FLOPs for the stream")
        slack = f" + {self.tolerance:g}" if self.tolerance else ""
        if self.familywise:
            slack += " (family-wise over the candidates compared, Šidák-Bonferroni)"
        rule = {
            "parsimony": f"cheapest candidate within {self.z:g} standard errors{slack} of the best score (parsimony)",
            "accuracy": "highest score" if not self.tolerance else f"cheapest candidate within {self.tolerance:g} of the best score",
            "mnas": f"highest score x (cost / current cost)^{MNAS_EXPONENT} (MnasNet)",
            "knee": "knee of the Pareto front",
            "capacity": f"costliest candidate within {self.z:g} standard errors{slack} of the best score (capacity)",
        }[self.rule]
        text = rule + (f" within {', '.join(budget)}" if budget else "")
        if self.follow:  # the rule acts only when a candidate is distinguishably better than the base's point
            text = (f"the knowledge base's first point unless a candidate scores more than {self.z:g} standard errors"
                    f"{slack} above it (follow), else the {text}")
        return text

    def memory_bytes(self, learner: Any) -> int:
        """Bytes of the validation memory the search keeps of the tasks seen (see `selfgrow.growth.validation_memory`)."""
        return memory_bytes(learner.seen, self.val_memory_per_class)

    # ---- state ------------------------------------------------------------------------------

    def state_dict(self) -> dict[str, Any]:
        return {"history": json.loads(json.dumps(self.history)), "knowledge": self.knowledge.state_dict()}

    def load_state_dict(self, state: dict[str, Any]) -> None:
        self.history = json.loads(json.dumps(state.get("history", [])))
        self.knowledge.load_state_dict(state.get("knowledge", {}))


def widen_ops(net: Any, targets: dict[str, int], mode: str) -> list[dict[str, Any]]:
    """`widen` calls taking each named width group to its target width (groups already as wide are skipped)."""
    groups = net.width_groups()
    return [{"op": "widen", "kwargs": {"layer": name, "by": int(target - groups[name].width), "mode": mode}}
            for name, target in targets.items() if target > groups[name].width]


def deepen_ops(net: Any, counts: dict[str, int]) -> list[dict[str, Any]]:
    """`deepen` calls inserting `counts[point]` identity layers at each depth point.

    Points are visited last-first and each point's layers are inserted at the same name, so no
    insertion renames a point still to visit (layer-list nets number their layers).
    """
    order = [p.name for p in reversed(net.depth_points())]
    return [{"op": "deepen", "kwargs": {"at": name}} for name in order for _ in range(int(counts.get(name, 0)))]


def widenable_groups(net: Any) -> dict[str, int]:
    """Width groups the search may widen, with their widths (groups feeding a cosine head cannot stay silent)."""
    cosine = bool(net.spec["head"].get("cosine"))
    return {name: g.width for name, g in net.width_groups().items() if not (cosine and g.feeds_head) and not g.gated}


def _cost(net: Any, head: int | None, per_sample: bool = False) -> dict[str, Any]:
    """Inference FLOPs of one input and parameters of `net`; with `per_sample`, also its training FLOPs per sample and
    what one more output class adds to them (what a stream budget projects)."""
    from selfgrow.nets.cost import count_params, inference_flops, training_flops_per_class, training_flops_per_sample

    cost = {"flops": int(inference_flops(net, head)), "n_params": int(count_params(net))}
    if per_sample:
        cost["train_flops_per_sample"] = int(training_flops_per_sample(net, head))
        cost["train_flops_per_class"] = int(training_flops_per_class(net))
    return cost


def _key(ops: list[dict[str, Any]], settings: dict[str, float | str] | None = None) -> str:
    """A candidate's identity: its operator calls (and retention strengths, when searched) as canonical JSON."""
    return json.dumps({"ops": ops, "retention": settings} if settings else ops, sort_keys=True)


def _rng_devices() -> list[int]:
    """The CUDA devices whose random streams a forked block must restore (none without CUDA)."""
    return list(range(torch.cuda.device_count())) if torch.cuda.is_available() else []


def _first_of(screens: list[Any]) -> Any:
    """One screen from several (None entries skipped): the first reason any of them gives, in order (None: none)."""
    acting = [screen for screen in screens if screen is not None]
    if not acting:
        return None
    if len(acting) == 1:
        return acting[0]
    return lambda params, records: next((reason for screen in acting
                                         if (reason := screen(params, records)) is not None), None)


def growth_params(params: dict[str, Any]) -> dict[str, Any]:
    """The growth part of a point (what `ops_for` reads)."""
    return {k: v for k, v in params.items() if not k.startswith(RETENTION_PREFIX)}


def retention_params(params: dict[str, Any]) -> dict[str, float | str]:
    """The retention strengths of a point, as "<strategy>.<attribute>" -> value."""
    return {k[len(RETENTION_PREFIX):]: setting_value(v) for k, v in params.items() if k.startswith(RETENTION_PREFIX)}


def _describe(record: dict[str, Any]) -> str:
    return f"val accuracy {record['accuracy']:.4f}, {record['flops']:,} FLOPs, {record['n_params']:,} params"


class _Proposer:
    """A search's `propose`: what a point is, its net grown for real as the search trains it (`__call__`), and, for
    whatever asks without training (the engine's budget check, cost-gp's pool: `engine.quiet_proposal`), the same
    from a copy of the net on the meta device (`sizing`): shapes only, no memory nor compute, so a point of a
    billion parameters costs what a small one does (the real growth where an operator needs values)."""

    def __init__(self, grower: SearchGrower, net: Any, head: int | None, context: Any,
                 budget: TaskBudget | None) -> None:
        self.grower, self.net, self.head, self.context, self.budget = grower, net, head, context, budget
        self._meta: Any = None

    def __call__(self, params: dict[str, Any]) -> Proposal:
        """The point's `Proposal` from the net grown for real (its growth draws from the random streams)."""
        return self.grower._propose(self.net, self.head, params, self.context, self.budget)

    def sizing(self, params: dict[str, Any]) -> Proposal:
        """The point's `Proposal` from the net grown on the meta device."""
        import copy

        if self._meta is None:
            self._meta = copy.deepcopy(self.net).to("meta")
        try:
            with torch.device("meta"):  # the layers an operator builds anew (deepen's transplant) too
                return self.grower._propose(self._meta, self.head, params, self.context, self.budget)
        except (NotImplementedError, RuntimeError):  # an operator that reads values (e.g. a norm) needs the real net
            return self(params)


__all__ = ["OBJECTIVES", "SearchGrower", "SearchOptions", "deepen_ops", "widen_ops", "widenable_groups"]
