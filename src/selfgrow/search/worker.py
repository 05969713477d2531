"""`selfgrow worker`: a process that trains the growth candidates of distributed runs.

A worker opens the run study named on its command line (waiting until the coordinator creates
it), then serves the task study the run study points at (`CURRENT_ATTR`) until the run is
finished (`FINISHED_ATTR`; a run found finished at the start is waited on, as a coordinator may
resume it), its parent process is gone (local workers), or no work came for `idle_timeout` seconds. For a task study it:

1. downloads the job (run config, task index, learner state; `selfgrow.search.distributed`),
   rebuilds the learner and loads its state, on the stream it built from the run config when it
   connected (data from `SELFGROW_DATA` or the config's `data_dir` on this machine; a task whose
   data differ from the coordinator's is refused);
2. claims a batch of up to `halving_batch` trials: enqueued and retried trials first
   (`study.ask` takes WAITING trials first), then new points from its own sampler, seeded from
   (seed, task, worker name) so that workers do not propose the same points. A new point over the
   search's budget is told untrained at once and not counted, as a single-process search does; a new
   point past the `n_trials` budget (two workers asking at once) is told FAIL as `beyond_budget` and
   never counts;
3. beats for the claimed trials (`selfgrow.search.liveness`), races them by successive halving
   exactly as a single-process search races a batch (`race_batch`), reusing the results of
   candidates the study has already evaluated, uploads each complete candidate's trained weights
   as an artifact of its trial (`record["weights"]`), and tells the results.

An error while training (a bug, data missing on this machine) is told as a FAIL trial whose
record has status "error" and the message; the coordinator stops the run with it, and a resumed
coordinator queues those trials again. A killed worker's trials stop beating and are retried.

Data-parallel candidates: started by `torchrun --nproc_per_node K -m selfgrow.cli worker ...`, the
K processes form one worker. Rank 0 (the leader) does all of the above; it sends each job and each
claimed batch (trial numbers, parameters, the known results) to the other ranks, which race the same
batch with the same candidates, each training on its share of every batch
(`selfgrow.train.parallel`); the leader's scores decide the halving on every rank. Only the leader
talks to the storage. An error in any rank ends the group (torchrun stops every rank); its trials
stop beating and are retried by other workers.
"""

from __future__ import annotations

import contextlib
import dataclasses
import hashlib
import json
import os
import socket
import time
import traceback
import warnings
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any

import torch

from selfgrow.errors import SelfgrowError
from selfgrow.search.artifacts import (
    download,
    make_artifact_store,
    pack,
    unpack,
    upload,
)
from selfgrow.search.distributed import (
    CURRENT_ATTR,
    FINISHED_ATTR,
    JOB_ATTR,
    POLL_SECONDS,
    PRIOR_ATTR,
    READY_PREFIX,
    RETRIED_ATTR,
    RUN_ATTR,
    counts_as_slot,
    job_digest,
    task_fingerprint,
    trial_record,
)
from selfgrow.search.engine import (
    KEY_ATTR,
    PROTECTED_ATTR,
    RECORD_ATTR,
    UNTRAINED_FACTOR,
    Proposal,
    cost_within_budget,
    quiet_proposal,
    race_batch,
    tell_untrained,
    turned_away,
)
from selfgrow.search.liveness import Heartbeat, beat, fail_stale_trials
from selfgrow.search.samplers import make_sampler
from selfgrow.search.storage import make_storage
from selfgrow.train.parallel import DataParallel, join_torchrun_group

WORKER_ATTR = "selfgrow:worker"


@dataclass
class Job:
    """One task study as this worker serves it: the rebuilt search problem."""

    study: Any
    task_index: int
    settings: Any
    space: dict[str, Any]
    propose: Any
    evaluate: Any


class Worker:
    """Serves the task studies of one run study (see the module docstring)."""

    def __init__(self, storage: str, study: str, artifacts: str | None = None, name: str | None = None,
                 idle_timeout: float | None = None, parent: int | None = None, quiet: bool = False,
                 group: DataParallel | None = None) -> None:
        self.group = group  # the torchrun ranks this worker leads (None: it trains alone)
        self.url = storage
        self.study_name = study
        self.artifacts = artifacts
        self.name = name or f"{socket.gethostname()}-{os.getpid()}"
        self.idle_timeout = idle_timeout
        self.parent = parent
        self.quiet = quiet
        self.storage: Any = None
        self.store: Any = None
        self.run_study: Any = None
        self.heartbeat = 10
        self.max_retry = 3
        self.job: Job | None = None
        self._stream: tuple[str, Any] | None = None
        self._seen_open = False
        self.trained = 0

    def serve(self) -> int:
        """Train trials until the run finishes (or the parent is gone, or the idle timeout); returns trials trained."""
        import optuna

        optuna.logging.set_verbosity(optuna.logging.WARNING)
        idle_since = time.monotonic()
        if self._connect(idle_since):
            while not self._should_stop():
                current = self.run_study.user_attrs.get(CURRENT_ATTR)
                if current and self._serve_task(current):
                    idle_since = time.monotonic()
                    continue
                if self.idle_timeout is not None and time.monotonic() - idle_since > self.idle_timeout:
                    self._say(f"no work for {self.idle_timeout:g} s; stopping")
                    break
                time.sleep(POLL_SECONDS)
        # Only a normal end tells the other ranks: after an error they may wait in a collective, and the
        # leader's exit is what makes torchrun end the group.
        self._to_group({"op": "stop"})
        return self.trained

    def follow(self) -> int:
        """A torchrun rank other than 0: race the leader's batches on this rank's share of the data until told
        to stop; returns the trials raced."""
        assert self.group is not None
        while True:
            message = json.loads(self.group.from_leader(None))
            if message["op"] == "stop":
                return self.trained
            if message["op"] == "job":
                self.job = None
                self.job = self._problem(None, unpack(self.group.from_leader(None)))
                continue
            assert self.job is not None
            trials = [_MirroredTrial(number, params, attrs) for number, params, attrs in message["trials"]]
            with torch.random.fork_rng(devices=[]):
                race_batch(self.job.settings, _MIRRORED_STUDY, trials, trials[0].number, self.job.propose,
                           self.job.evaluate, message["known"])
            self.trained += len(trials)

    def _to_group(self, message: dict[str, Any], blob: bytes | None = None) -> None:
        """Send a control message (and a blob after it) to the other ranks of this worker's torchrun group."""
        if self.group is not None:
            self.group.from_leader(json.dumps(message).encode())
            if blob is not None:
                self.group.from_leader(blob)

    # ---- the run study ----------------------------------------------------------------------------

    def _connect(self, since: float) -> bool:
        """Open the run study (waiting for it) and the storage with the run's heartbeat; False when given up."""
        import optuna

        plain = make_storage(self.url)
        while True:
            try:
                run = optuna.load_study(study_name=self.study_name, storage=plain)
                settings = run.user_attrs.get(RUN_ATTR)
                if settings is not None:
                    break
            except KeyError:
                pass
            if self._parent_gone() or (self.idle_timeout is not None and time.monotonic() - since > self.idle_timeout):
                self._say(f"run study {self.study_name!r} did not appear; stopping")
                return False
            time.sleep(POLL_SECONDS)
        self.heartbeat, self.max_retry = int(settings["heartbeat"]), int(settings["max_retry"])
        self.storage = make_storage(self.url, heartbeat=self.heartbeat, max_retry=self.max_retry)
        self.store = make_artifact_store(self.artifacts or settings["artifacts"])
        self.run_study = optuna.load_study(study_name=self.study_name, storage=self.storage)
        self._config(unpack(download(self.store, settings["config"]))["config"])  # builds the stream before work
        _warm_up()
        self.run_study.set_user_attr(READY_PREFIX + self.name, {"time": time.time(), "pid": os.getpid(),
                                                                 "host": socket.gethostname()})
        self._say(f"serving run study {self.study_name!r}")
        return True

    def _should_stop(self) -> bool:
        """Whether the parent is gone or the run finished (a run found finished may still be resumed: wait)."""
        finished = bool(self.run_study.user_attrs.get(FINISHED_ATTR))
        self._seen_open = self._seen_open or not finished
        return self._parent_gone() or (finished and self._seen_open)

    def _parent_gone(self) -> bool:
        """Whether the coordinator that started this local worker has exited (the worker was re-parented)."""
        return self.parent is not None and os.getppid() != self.parent

    # ---- a task study -----------------------------------------------------------------------------

    def _serve_task(self, study_name: str) -> bool:
        """Train batches of the task study until it has no trial left to claim; whether any was trained."""
        if self.job is None or self.job.study.study_name != study_name:
            self.job = None  # frees the previous task's learner before loading the next
            self.job = self._load(study_name)
        job = self.job
        worked = False
        while not self._should_stop():
            fail_stale_trials(job.study, self.storage, 2 * self.heartbeat, self.max_retry)
            trials = claim(job.study, self.storage, job.settings, job.space, self.name, job.propose)
            if not trials:
                break
            self._race(job, trials)
            worked = True
        return worked

    def _race(self, job: Job, trials: list[Any]) -> None:
        """Race one claimed batch with heartbeats; an error is told on the batch's trials."""
        from optuna.exceptions import UpdateFinishedTrialError
        from optuna.trial import TrialState

        numbers = [t.number for t in trials]
        started = time.perf_counter()
        known = known_results(job.study.get_trials(deepcopy=False))
        self._to_group({"op": "race", "known": known, "trials": [
            [t.number, dict(t.params), {k: v for k, v in t.user_attrs.items() if k == PROTECTED_ATTR}] for t in trials]})
        with Heartbeat(self.storage, [t._trial_id for t in trials], self.heartbeat), torch.random.fork_rng(devices=[]):
            try:
                records, _ = race_batch(job.settings, job.study, trials, trials[0].number, job.propose,
                                        job.evaluate, known, self._keep)
            except Exception as err:  # noqa: BLE001 - any failure is told to the coordinator, which stops the run
                traceback.print_exc()
                reason = str(err) if isinstance(err, SelfgrowError) else f"{type(err).__name__}: {err}"
                for trial in trials:
                    record = {"trial": trial.number, "batch": trials[0].number, "params": dict(trial.params),
                              "status": "error", "reason": reason, "worker": self.name}
                    with contextlib.suppress(UpdateFinishedTrialError):  # told before the error came
                        trial.set_user_attr(RECORD_ATTR, json.dumps(record))
                        job.study.tell(trial, state=TrialState.FAIL)
                if self.group is not None:
                    raise  # the other ranks may wait in a collective: torchrun ends the group
                return
        self.trained += len(trials)
        told = ", ".join(f"{r['trial']} {r['status']}" + (f" {r['accuracy']:.3f}" if "accuracy" in r else "")
                         for r in records)
        self._say(f"task {job.task_index}: trials {numbers} in {time.perf_counter() - started:.1f} s: {told}")

    def _keep(self, trial: Any, record: dict[str, Any], evaluation: Any) -> None:
        """Upload a complete candidate's trained weights as an artifact of its trial."""
        blob = pack({"weights": evaluation.state_dict()})
        record["weights"] = upload(self.store, self.storage, trial, f"weights-trial{trial.number}.pt", blob)

    def _load(self, study_name: str) -> Job:
        """Rebuild the task's search problem from its job (see the module docstring)."""
        import optuna

        study = optuna.load_study(study_name=study_name, storage=self.storage)
        blob = download(self.store, study.user_attrs[JOB_ATTR])
        self._to_group({"op": "job"}, blob)
        job = self._problem(study, unpack(blob))
        self._say(f"task {job.task_index}: serving study {study_name!r}")
        return job

    def _problem(self, study: Any, job: dict[str, Any]) -> Job:
        """The search problem of a downloaded job; `study` (None on a follower rank) gets this worker's sampler."""
        with torch.random.fork_rng(devices=[]):  # building nets draws weights: leave the process's stream alone
            learner, task = self._learner(job)
        grower = learner.grower
        context = grower.context_from_state(job["context"])
        space = grower.search_space(learner, task, context)
        propose, evaluate = grower.problem(learner, task, context)
        settings = grower.settings
        if study is not None:
            seed = int.from_bytes(hashlib.sha256(f"{settings.seed}/{task.index}/{self.name}".encode()).digest()[:4],
                                  "little")
            study.sampler = make_sampler(settings.sampler, seed, settings.n_startup_trials, settings.population_size,
                                         cost_within_budget(propose), study.user_attrs.get(PRIOR_ATTR, []))
        name = self.name

        def tagged(params: dict[str, Any]) -> Any:
            proposal = propose(params)
            return dataclasses.replace(proposal, info={**proposal.info, "worker": name})

        return Job(study, task.index, settings, space, tagged, evaluate)

    def _learner(self, job: dict[str, Any]) -> tuple[Any, Any]:
        """The learner in the job's state and the task to search before, on streams rebuilt from the config."""
        from selfgrow.factories import build_learner

        config, stream = self._config(job["config"])
        learner = build_learner(config, stream)
        learner.load_state_dict(job["learner"], stream.tasks)
        task = stream[job["task"]]
        if task_fingerprint(learner.seen, task) != job["data"]:
            raise SelfgrowError(f"The data of task {task.index} on worker {self.name} differ from the coordinator's; "
                                "give every machine the same dataset files (SELFGROW_DATA) and selfgrow version.")
        return learner, task

    def _config(self, values: dict[str, Any]) -> tuple[Any, Any]:
        """The run config of `values` (method applied) and its stream, built once and kept for the next tasks."""
        from selfgrow.config import from_dict, to_dict
        from selfgrow.factories import apply_method, build_stream
        from selfgrow.plugins import load_plugins

        config = from_dict(values)
        load_plugins(config.plugins)  # the run's own components, before the learner is built from them
        config = apply_method(config)
        key = job_digest({"stream": to_dict(config)["stream"], "seed": config.seed, "data_dir": config.data_dir})
        if self._stream is None or self._stream[0] != key:
            self._stream = None  # frees the old stream's data before loading the new
            with torch.random.fork_rng(devices=[]):
                self._stream = (key, build_stream(config))
        return config, self._stream[1]

    def _say(self, message: str) -> None:
        if not self.quiet:
            print(f"worker {self.name}: {message}", flush=True)


def _warm_up() -> None:
    """Count the FLOPs of a tiny net once: the counter's first use imports much of torch (seconds), which
    would otherwise make a worker's first trial slower than its others."""
    from selfgrow.nets import build
    from selfgrow.nets.cost import training_flops_per_sample

    with torch.random.fork_rng(devices=[]):
        net = build({"kind": "mlp", "input_shape": [1, 2, 2], "hidden": [2], "head": {"kind": "single", "classes": 2}})
        training_flops_per_sample(net)


def claim(study: Any, storage: Any, settings: Any, space: dict[str, Any], worker: str,
          propose: Callable[[dict[str, Any]], Proposal] | None = None) -> list[Any]:
    """Up to `halving_batch` trials to train: waiting ones first, then new ones within the `n_trials` budget.

    With `propose`, a new point over the search's budget is told untrained at once and not counted, as a
    single-process search turns it away (`selfgrow.search.engine`, up to `UNTRAINED_FACTOR` x `n_trials`
    of them). Each claimed trial gets its first heartbeat at once (a trial without any is never found stale:
    only a worker dying between Optuna's `ask` and that beat leaves a trial running forever, as in
    Optuna's own `optimize`), then names its `worker` (`WORKER_ATTR`) for people watching the study.
    """
    from optuna.trial import TrialState

    trials: list[Any] = []
    while len(trials) < settings.halving_batch:
        existing = study.get_trials(deepcopy=False)
        waiting = any(t.state == TrialState.WAITING for t in existing)
        if not waiting and sum(map(counts_as_slot, existing)) >= settings.n_trials:
            break
        with warnings.catch_warnings():  # Optuna's "heartbeat is for Study.optimize": ours beats for ask-and-tell
            warnings.filterwarnings("ignore", message="Heartbeat of storage")
            trial = study.ask(space)
        existing = study.get_trials(deepcopy=False)
        if RETRIED_ATTR not in existing[trial.number].system_attrs:
            if propose is not None and turned_away(map(trial_record, existing)) < settings.n_trials * UNTRAINED_FACTOR:
                proposal = quiet_proposal(propose, trial.params)
                if proposal.over_budget is not None:
                    tell_untrained(study, trial, proposal, "over_budget", proposal.over_budget, counted=False)
                    continue
            rank = sum(counts_as_slot(t) for t in existing if t.number <= trial.number)
            if rank > settings.n_trials:
                record = {"trial": trial.number, "params": dict(trial.params), "status": "beyond_budget",
                          "reason": f"asked while another worker took the last of the {settings.n_trials} trials"}
                trial.set_user_attr(RECORD_ATTR, json.dumps(record))
                study.tell(trial, state=TrialState.FAIL)
                break
        beat(storage, trial._trial_id)
        trial.set_user_attr(WORKER_ATTR, worker)
        trials.append(trial)
    return trials


def known_results(trials: list[Any]) -> dict[str, dict[str, Any]]:
    """Key -> record of the candidates the study has evaluated (the first evaluation of each key)."""
    known: dict[str, dict[str, Any]] = {}
    for trial in trials:
        if trial.state.is_finished() and RECORD_ATTR in trial.user_attrs and KEY_ATTR in trial.user_attrs:
            record = json.loads(trial.user_attrs[RECORD_ATTR])
            if record["status"] in ("complete", "pruned", "failed"):
                known.setdefault(trial.user_attrs[KEY_ATTR], record)
    return known


class _MirroredTrial:
    """A trial as a follower rank races it: number, parameters and the user attributes that steer the race (whether
    the halving may prune it) from the leader; records stay with the leader."""

    def __init__(self, number: int, params: dict[str, Any], user_attrs: dict[str, Any]) -> None:
        self.number = number
        self.params = params
        self.user_attrs = user_attrs

    def set_user_attr(self, key: str, value: Any) -> None:
        """Records are the leader's to store."""


class _MirroredStudy:
    """The study as a follower rank sees it: the leader tells the results."""

    def tell(self, *args: Any, **kwargs: Any) -> None:
        """Results are the leader's to tell."""


_MIRRORED_STUDY = _MirroredStudy()


def serve(storage: str, study: str, artifacts: str | None = None, name: str | None = None, threads: int | None = None,
          idle_timeout: float | None = None, parent: int | None = None, quiet: bool = False) -> int:
    """Run a worker (see the module docstring) with `threads` torch threads; returns the number of trials it trained.

    Under `torchrun` (WORLD_SIZE > 1) rank 0 is the worker and the other ranks follow it (data-parallel).
    """
    if threads is not None:
        torch.set_num_threads(threads)
    group = join_torchrun_group()
    if group is not None and group.rank > 0:
        trained = Worker(storage, study, artifacts, f"{name or socket.gethostname()}-rank{group.rank}", quiet=True,
                         group=group).follow()
    else:
        trained = Worker(storage, study, artifacts, name, idle_timeout, parent, quiet, group).serve()
    if group is not None:  # after the "stop" every rank gets here: close the group together, not at interpreter exit
        import torch.distributed as dist

        dist.barrier()
        dist.destroy_process_group()
    return trained
