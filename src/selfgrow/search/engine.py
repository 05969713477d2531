"""The multi-objective search loop: Optuna ask-and-tell, successive halving, warm start, Pareto front.

A search maximises validation accuracy and minimises a cost (inference FLOPs or parameters) over
a space of Optuna distributions. The caller supplies two functions: `propose(params)` says what a
point is without training it (its identity key, cost, budget check, plain-data description), and
`evaluate(params)` returns an `Evaluation` that trains the candidate further on request.

Early stopping (successive halving, Jamieson & Talwalkar 2016, with its rungs shared across the
whole study as in ASHA, Li et al. 2020): Optuna's pruners do not support multi-objective studies,
so trials are asked in batches of `halving_batch` and each batch is raced over the rungs of
`epochs` (cumulative epoch counts, e.g. [1, 3]). After every rung but the last a candidate trains
on only when it ranks among the best ceil(n / eta) of the n distinct candidates that ever reached
that rung in the study (this batch's and every earlier batch's, read from the records' `rung_scores`,
so a distributed worker decides alike); at least the batch's best goes on while the study has no
complete candidate. The others are told PRUNED (their partial accuracy kept as user attributes).
Survivors are told COMPLETE with their final (accuracy, cost), so every complete trial had the same
training. Trials that repeat a candidate already evaluated (same key) reuse its result at no cost.

Points over the budget (`Proposal.over_budget`) are told PRUNED untrained as soon as they are asked,
recorded with status "over_budget" and `counted` false, and do not count against `n_trials`: a
search under a budget trains as many candidates as one without (in the issue-18 wide space a third
of the trial slots went to such points; BENCHMARKS.md). At most `UNTRAINED_FACTOR` x `n_trials` are
turned away so per search; after that an over-budget point counts as a trial, still untrained.

The sampler's population (NSGA-II's generation size) is `population_size`, independent of the
halving batch, so a small batch still lets the sampler evolve over several batches.

Screening: `screen(params, records so far)`, when given, says why a sampled point is not worth
training (None: it is); such a point is told PRUNED untrained, recorded with status "screened",
and does not count against `n_trials` (at most `UNTRAINED_FACTOR` x `n_trials` are screened, after
which every point passes). Enqueued points are never screened. The searched growers screen with the knowledge
base's surrogate (`selfgrow.search.meta.surrogate`) and with a score without training (`selfgrow.growth.zero_cost`).

Optuna's per-trial log lines are turned down to warnings: the records hold every trial.

Warm start: `enqueue` lists earlier tasks' chosen parameters; they become the study's first
trials (`study.enqueue_trial`), which the sampler then learns from like any other trial. Enqueued
points that are also in `protected` are never pruned by the halving (they carry `PROTECTED_ATTR`,
so a distributed worker reads it from the study): the capacity rule's largest growth, which
short rungs are biased against (a wider net learns slower in its first epochs; BENCHMARKS.md).

Points after the first trials: `later` (a `Later`), when given, is asked after each batch once `later.after`
trials count (while trials remain) which points to enqueue next (the knowledge base's past tasks that rank the
first scores as this search does; `selfgrow.search.meta.agreement`), until it answers (None: not yet, too little
to go on); they are never screened, as the first enqueued points are not.

Every told trial carries its record as the user attribute `RECORD_ATTR` (JSON) and its identity
key as `KEY_ATTR`, so other processes (the distributed coordinator, the optuna-dashboard) read
the search from the study alone. `keep(trial, record, evaluation)`, when given, is called for
each candidate that completes, before it is told (to keep or upload its trained weights).
`race_batch` is one batch of that loop on trials asked by the caller: the distributed worker
(`selfgrow.search.worker`) runs it on the batches it claims from a shared study.
"""

from __future__ import annotations

import json
import math
from collections.abc import Callable, Iterable, Sequence
from dataclasses import dataclass, field
from typing import Any, Protocol

from selfgrow.errors import SelfgrowError
from selfgrow.progress import progress_bar
from selfgrow.search.pareto import pareto_front, select
from selfgrow.search.samplers import make_sampler
from selfgrow.search.storage import make_storage

RECORD_ATTR = "selfgrow:record"
KEY_ATTR = "selfgrow:key"
PROTECTED_ATTR = "selfgrow:protected"

class Evaluation(Protocol):
    """A candidate being trained: `train_to(epochs)` trains to that many epochs in total and scores it."""

    spent_flops: float

    def train_to(self, epochs: int) -> dict[str, Any]:
        """Train on to `epochs` epochs in total; returns at least {"accuracy": float} (plain data), and
        {"diverged": True} when training met non-finite losses or weights (the candidate then fails)."""
        ...


@dataclass
class Proposal:
    """What a point of the space is, known before training: identity, cost objective, budget verdict."""

    key: str
    cost: float
    info: dict[str, Any] = field(default_factory=dict)
    over_budget: str | None = None


@dataclass
class SearchSettings:
    """How a search runs (see the module docstring for halving and warm start)."""

    n_trials: int = 8
    sampler: str = "cost-gp"
    storage: str | None = None
    epochs: list[int] = field(default_factory=lambda: [2])
    eta: int = 2
    halving_batch: int = 4
    n_startup_trials: int = 4
    seed: int = 0
    population_size: int = 8

    def __post_init__(self) -> None:
        if isinstance(self.epochs, int):
            self.epochs = [self.epochs]
        epochs = list(self.epochs)
        if not epochs or any(not isinstance(e, int) or e < 1 for e in epochs) or epochs != sorted(set(epochs)):
            raise SelfgrowError(f"search epochs={self.epochs!r} is invalid; accepted: an integer >= 1 or an increasing list of them.")
        for name, low in (("n_trials", 1), ("eta", 2), ("halving_batch", 1), ("population_size", 2)):
            value = getattr(self, name)
            if not isinstance(value, int) or value < low:
                raise SelfgrowError(f"search {name}={value!r} is invalid; accepted: an integer >= {low}.")
        self.epochs = epochs


@dataclass
class Later:
    """Points to enqueue once `after` trials count, chosen by `points(records so far)` (None: ask again after the next
    batch; see the module docstring)."""

    after: int
    points: Callable[[list[dict[str, Any]]], Sequence[dict[str, Any]] | None]


Keep = Callable[[Any, dict[str, Any], Evaluation], None]
Screen = Callable[[dict[str, Any], list[dict[str, Any]]], "str | None"]
UNTRAINED_FACTOR = 4  # a search screens, and turns away over its budget, at most this many times n_trials points each


@dataclass
class SearchOutcome:
    """The candidates of one search (plain-data records, in trial order) and the study itself.

    `weights(record)`, when the search kept them, gives a complete candidate's trained state dict;
    `adopted(record)`, when it kept the candidates themselves (in process), its whole training.
    """

    records: list[dict[str, Any]]
    study: Any
    spent_flops: float
    weights: Callable[[dict[str, Any]], dict[str, Any]] | None = None
    adopted: Callable[[dict[str, Any]], Any] | None = None

    def finished(self) -> list[dict[str, Any]]:
        """The complete candidates (within the budget and trained through every rung)."""
        return [r for r in self.records if r["status"] == "complete"]

    def front(self) -> list[int]:
        """Trial numbers of the Pareto front of the finished candidates (cheapest first)."""
        done = self.finished()
        return [done[i]["trial"] for i in pareto_front([(r["accuracy"], r["cost"]) for r in done])]

    def choose(self, rule: str, tolerance: float = 0.0, z: float = 1.0, reference: float | None = None,
               among: list[dict[str, Any]] | None = None, familywise: bool = False) -> dict[str, Any]:
        """The finished candidate the rule picks (see `selfgrow.search.pareto`), with each score's standard error;
        `among`: the finished candidates it may pick (None: all of them)."""
        done = self.finished() if among is None else among
        errors = [float(r.get("se", 0.0)) for r in done]
        return done[select([(r["accuracy"], r["cost"]) for r in done], rule, tolerance, errors, z, reference,
                           familywise)]


def run_search(
    settings: SearchSettings,
    study_name: str,
    space: dict[str, Any],
    propose: Callable[[dict[str, Any]], Proposal],
    evaluate: Callable[[dict[str, Any]], Evaluation],
    enqueue: Sequence[dict[str, Any]] = (),
    keep: Keep | None = None,
    screen: Screen | None = None,
    protected: Sequence[dict[str, Any]] = (),
    prior: Sequence[tuple[dict[str, Any], float]] = (),
    later: Later | None = None,
) -> SearchOutcome:
    """Run one multi-objective search over `space` (name -> Optuna distribution); see the module docstring (`prior`:
    past searches' points and relative scores, for the cost-gp sampler; `later`: points enqueued after the first
    trials)."""
    import optuna

    optuna.logging.set_verbosity(optuna.logging.WARNING)
    study = _fresh_study(settings, study_name, propose, prior)
    enqueue_points(study, enqueue, protected)
    enqueued = list(enqueue)
    records: list[dict[str, Any]] = []
    known: dict[str, dict[str, Any]] = {}
    spent = 0.0
    with progress_bar(settings.n_trials, f"search {study_name}", "trial") as bar:
        while (done := _counted(records)) < settings.n_trials:
            size = min(settings.halving_batch, settings.n_trials - done)
            # asked lazily: a repeat or an over-budget point is told before the next point is sampled
            asked = _asked(study, space, size, screen, propose, records, settings.n_trials * UNTRAINED_FACTOR,
                           enqueued)
            batch, batch_spent = race_batch(settings, study, asked, done // settings.halving_batch,
                                            propose, evaluate, known, keep, bar)
            records += batch
            spent += batch_spent
            bar.update(len(batch))
            if later is not None and later.after <= _counted(records) < settings.n_trials:
                points = later.points(list(records))
                if points is not None:
                    enqueue_points(study, points)
                    enqueued += points
                    later = None
    records.sort(key=lambda r: r["trial"])
    return SearchOutcome(records, study, spent)


def enqueue_points(study: Any, enqueue: Sequence[dict[str, Any]], protected: Sequence[dict[str, Any]] = ()) -> None:
    """Enqueue `enqueue` in order (repeats skipped), marking those in `protected` as never pruned by the halving."""
    for params in enqueue:
        attrs = {PROTECTED_ATTR: True} if params in protected else None
        study.enqueue_trial(params, user_attrs=attrs, skip_if_exists=True)


def counts(record: dict[str, Any]) -> bool:
    """Whether a search's record counts against `n_trials`: not one the screen or the budget turned away untrained
    (a trial without a record yet, `{}`, counts)."""
    return record.get("status") != "screened" and record.get("counted", True)


def _counted(records: Sequence[dict[str, Any]]) -> int:
    """The trials that count against `n_trials`."""
    return sum(counts(r) for r in records)


def turned_away(records: Iterable[dict[str, Any]]) -> int:
    """How many points over the budget the search turned away without counting them."""
    return sum(r.get("status") == "over_budget" and not r.get("counted", True) for r in records)


def tell_untrained(study: Any, trial: Any, proposal: Proposal, status: str, reason: str,
                   **fields: Any) -> dict[str, Any]:
    """Tell `trial` PRUNED untrained (`status` over_budget or screened), in no batch, at no cost; its record."""
    record = {"trial": trial.number, "batch": None, "params": dict(trial.params), **proposal.info,
              "cost": proposal.cost, "status": status, "reason": reason, "spent_flops": 0.0, **fields}
    trial.set_user_attr(KEY_ATTR, proposal.key)
    _tell(study, trial, record)
    return record


def quiet_proposal(propose: Callable[[dict[str, Any]], Proposal], params: dict[str, Any]) -> Proposal:
    """`propose(params)` without moving the random streams (growing a net to know its cost draws weights), so a
    search that asks first what a point costs trains its candidates as one that does not; from `propose.sizing`
    where the propose has one (a searched grower's grows the net on the meta device: a point far over the budget,
    which may be a net of billions of parameters, costs nothing to turn away)."""
    import torch

    with torch.random.fork_rng(devices=[]):
        return getattr(propose, "sizing", propose)(dict(params))


def _asked(study: Any, space: dict[str, Any], size: int, screen: Screen | None,
           propose: Callable[[dict[str, Any]], Proposal], records: list[dict[str, Any]], most: int,
           enqueued: Sequence[dict[str, Any]]) -> Iterable[Any]:
    """`size` asked trials to train. Before each is handed on, a point over the budget is told untrained and
    recorded uncounted (status "over_budget"), and one the `screen` turns away is told PRUNED untrained (status
    "screened"), each kind at most `most` times per search (then the point is handed on as it is: over the
    budget it is told untrained later and counts); the `enqueued` points are never screened."""
    for _ in range(size):
        trial = study.ask(space)
        while True:
            params = dict(trial.params)
            by_budget = turned_away(records) < most
            by_screen = (screen is not None and params not in enqueued
                         and sum(r["status"] == "screened" for r in records) < most)
            if not (by_budget or by_screen):
                break
            proposal = quiet_proposal(propose, params)
            if by_budget and proposal.over_budget is not None:
                records.append(tell_untrained(study, trial, proposal, "over_budget", proposal.over_budget,
                                              counted=False))
            elif by_screen and (reason := screen(params, records)) is not None:
                records.append(tell_untrained(study, trial, proposal, "screened", reason))
            else:
                break
            trial = study.ask(space)
        yield trial


def race_batch(
    settings: SearchSettings,
    study: Any,
    trials: Iterable[Any],
    batch: int,
    propose: Callable[[dict[str, Any]], Proposal],
    evaluate: Callable[[dict[str, Any]], Evaluation],
    known: dict[str, dict[str, Any]],
    keep: Keep | None = None,
    bar: Any = None,
) -> tuple[list[dict[str, Any]], float]:
    """Propose, race and tell one batch of asked `trials` (an iterable: a generator asks as it goes); returns
    their records and the FLOPs spent.

    `known` maps the keys of candidates evaluated before to their records; a repeat reuses the
    result, and the batch's new candidates are added to it. `bar` (a progress bar) is told the rung being trained.
    """
    records: list[dict[str, Any]] = []
    groups: dict[str, list[tuple[Any, dict[str, Any]]]] = {}
    for trial in trials:
        proposal = propose(dict(trial.params))
        record = {"trial": trial.number, "batch": batch, "params": dict(trial.params),
                  **proposal.info, "cost": proposal.cost, "status": None}
        records.append(record)
        trial.set_user_attr(KEY_ATTR, proposal.key)
        if proposal.over_budget is not None:
            record.update(status="over_budget", reason=proposal.over_budget, spent_flops=0.0)
            _tell(study, trial, record)
        elif proposal.key in known:
            _copy_result(record, known[proposal.key])
            _tell(study, trial, record)
        else:
            groups.setdefault(proposal.key, []).append((trial, record))
    spent = _race(settings, groups, evaluate, keep, RungHistory.of(known.values()), bar)
    for key, group in groups.items():
        known[key] = group[0][1]
        for trial, record in group:
            if record is not group[0][1]:
                _copy_result(record, group[0][1])
            _tell(study, trial, record)
    return records, spent


@dataclass
class RungHistory:
    """What earlier batches left at each rung: the scores of the distinct candidates that reached it."""

    scores: dict[int, list[float]] = field(default_factory=dict)
    any_complete: bool = False

    @classmethod
    def of(cls, records: Iterable[dict[str, Any]]) -> "RungHistory":
        """The history of the evaluated candidates' records (their `rung_scores` and status)."""
        history = cls()
        for record in records:
            for rung, score in enumerate(record.get("rung_scores", [])):
                history.scores.setdefault(rung, []).append(float(score))
            history.any_complete = history.any_complete or record.get("status") == "complete"
        return history


def _race(settings: SearchSettings, batch: dict[str, list[tuple[Any, dict[str, Any]]]],
          evaluate: Callable[[dict[str, Any]], Evaluation], keep: Keep | None,
          history: RungHistory | None = None, bar: Any = None) -> float:
    """Successive halving of one batch's distinct candidates against every candidate that reached each rung
    before (`history`); fills their records, returns the FLOPs spent.

    A candidate leaves the race (and memory) as soon as it is pruned.
    """
    history = history or RungHistory()
    evaluations = {key: evaluate(dict(group[0][1]["params"])) for key, group in batch.items()}
    protected = {key for key, group in batch.items() if any(t.user_attrs.get(PROTECTED_ATTR) for t, _ in group)}
    spent = 0.0
    for rung, epochs in enumerate(settings.epochs):
        if bar is not None:
            bar.set_postfix_str(f"rung {rung + 1}/{len(settings.epochs)}: {len(evaluations)} candidate(s) to {epochs} epochs")
        for key, evaluation in list(evaluations.items()):
            record = batch[key][0][1]
            record.update(evaluation.train_to(epochs), rung=rung, epochs=epochs)
            record["rung_scores"] = [*record.get("rung_scores", []), record["accuracy"]]
            if record.get("diverged"):  # a failed candidate: out of the race, never chosen
                record.update(status="failed", reason=f"diverged during training (rung {rung}, {epochs} epochs)",
                              spent_flops=float(evaluation.spent_flops))
                spent += record["spent_flops"]
                del evaluations[key]
        last = rung == len(settings.epochs) - 1
        ranked = sorted(evaluations, key=lambda k: (-batch[k][0][1]["accuracy"], batch[k][0][1]["cost"]))
        going_on = ranked if last else _survivors(ranked, [batch[k][0][1]["accuracy"] for k in ranked],
                                                   history.scores.get(rung, []), settings.eta, not history.any_complete)
        going_on = [key for key in ranked if key in going_on or key in protected]
        leaving = [key for key in ranked if key not in going_on]
        for key in ranked:
            record = batch[key][0][1]
            if key in leaving:
                record.update(status="pruned", reason=f"successive halving after rung {rung} ({epochs} epochs)")
            elif last:
                record["status"] = "complete"
                if keep is not None:
                    keep(batch[key][0][0], record, evaluations[key])
            if key in leaving or last:
                record["spent_flops"] = float(evaluations[key].spent_flops)
                spent += record["spent_flops"]
        for key in leaving:
            del evaluations[key]
    return spent


def _survivors(ranked: list[str], scores: list[float], earlier: list[float], eta: int, keep_best: bool) -> list[str]:
    """The ranked candidates that make the best ceil(n / eta) of a rung's n scores, `earlier` candidates' included.

    Without earlier scores this is plain successive halving (exactly ceil(n / eta), ties to the
    cheaper); with them a candidate goes on when its score reaches the pool's cut (ties go its way),
    and with `keep_best` the batch's best goes on whatever the pool says.
    """
    places = math.ceil((len(earlier) + len(ranked)) / eta)
    if not earlier:
        return ranked[:places]
    cut = sorted([*earlier, *scores], reverse=True)[places - 1]
    kept = [key for key, score in zip(ranked, scores) if score >= cut]
    return kept or (ranked[:1] if keep_best else [])


def _copy_result(record: dict[str, Any], source: dict[str, Any]) -> None:
    """Give a repeated candidate the result of its first evaluation (no compute spent again)."""
    result = {k: v for k, v in source.items() if k not in record or k == "status"}
    record.update(result, same_as=source.get("same_as", source["trial"]), spent_flops=0.0)


def _tell(study: Any, trial: Any, record: dict[str, Any]) -> None:
    """Report a finished record to Optuna: COMPLETE with (accuracy, cost), FAIL when it diverged, else PRUNED.

    A shared study's trial may already be failed by a sweeper that took its worker for dead (a
    heartbeat held up too long); its retry carries the slot, so this late result is dropped.
    """
    from optuna.exceptions import UpdateFinishedTrialError
    from optuna.trial import TrialState

    try:
        for key in ("accuracy", "epochs", "reason"):
            if key in record:
                trial.set_user_attr(key, record[key])
        trial.set_user_attr(RECORD_ATTR, json.dumps(record))
        if record["status"] == "complete":
            study.tell(trial, [record["accuracy"], record["cost"]])
        elif record["status"] == "failed":
            study.tell(trial, state=TrialState.FAIL)
        else:
            study.tell(trial, state=TrialState.PRUNED)
    except UpdateFinishedTrialError:
        pass


def cost_within_budget(propose: Callable[[dict[str, Any]], Proposal]) -> Callable[[dict[str, Any]], float | None]:
    """A point's cost, or None when it is over the budget, asked without training it (the cost-gp sampler's input)."""

    def cost_of(params: dict[str, Any]) -> float | None:
        proposal = quiet_proposal(propose, params)
        return None if proposal.over_budget is not None else proposal.cost

    return cost_of


def _fresh_study(settings: SearchSettings, study_name: str, propose: Callable[[dict[str, Any]], Proposal],
                 prior: Sequence[tuple[dict[str, Any], float]] = ()) -> Any:
    """A new study named `study_name` in the storage; a stale one of that name (a killed run) is replaced."""
    import optuna

    storage = make_storage(settings.storage)
    try:
        optuna.delete_study(study_name=study_name, storage=storage)
    except KeyError:
        pass
    return optuna.create_study(
        study_name=study_name,
        storage=storage,
        directions=["maximize", "minimize"],
        sampler=make_sampler(settings.sampler, settings.seed, settings.n_startup_trials, settings.population_size,
                             cost_within_budget(propose), prior),
    )

