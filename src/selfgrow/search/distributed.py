"""Distributed growth search: the run is the coordinator, worker processes train the candidates.

Layout in the shared storage (a journal file or a database, `selfgrow.search.storage`):

- the run study (`--study NAME`, default `<run name>-<digest of the config>`) holds no trials,
  only user attributes: `RUN_ATTR` (heartbeat interval, retries, artifact location, and the run
  config's artifact, from which a worker builds the stream while it waits for work), `CURRENT_ATTR`
  (the task study workers should serve, or null) and `FINISHED_ATTR` (workers exit when true);
- one study per task, `<run study>-task<i>-<digest>`, whose digest is the sha256 of the job it
  carries (`JOB_ATTR`: the artifact holding the run config, the task index and the learner's state
  at the moment of the search), the knowledge base's prior for the cost-gp sampler (`PRIOR_ATTR`: past
  searches' points and relative scores, empty without one), and, once searched, the search phase's wall
  time (`SECONDS_ATTR`).
  The name is therefore deterministic: a coordinator resumed after a kill finds the study of the
  task it was searching, with the trials already finished, and waits for the rest instead of
  starting over; a learner in any other state gets a study of its own. (So does a second run of
  the same config against the same run study: its results would be the same, and it reuses them.)

The coordinator (`Coordinator.search`, called by `SearchGrower` inside `coordinating`) enqueues the
same warm-start and no-growth points a single-process search enqueues, uploads the job, points the
run study at the task study, and waits. While it waits it sweeps trials whose worker stopped
beating (`selfgrow.search.liveness`) so that they are retried. When every one of the `n_trials`
trial slots has a result (a retried trial fills the slot of the trial it retries) it reads the
records the workers stored on the trials and hands them to the grower, which picks the Pareto
point by the same rule as a single-process search, and, with `keep_winner`, the winner's trained
weights, downloaded from the artifact store. A worker's error stops the run with its message, as it
would have stopped a single-process run.

Local workers: with `workers: N` the coordinator starts N `selfgrow worker` processes on this
machine, each with `torch.get_num_threads() // N` threads (at least 1), logging to
`<work dir>/worker-<k>.log`; they stop with the run. With `workers: 0` it waits for workers
started elsewhere and prints the command that starts one. The work directory
`<output>/<name>.distributed/` (beside the run folder, which stays as a single-process run's)
holds the logs, the default artifact directory and, when no storage is given, the journal file.
"""

from __future__ import annotations

import contextlib
import dataclasses
import hashlib
import json
import os
import shlex
import socket
import subprocess
import sys
import time
import warnings
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import torch
from tqdm import tqdm

from selfgrow.errors import SelfgrowError
from selfgrow.search.artifacts import (
    download,
    is_object_store,
    make_artifact_store,
    pack,
    unpack,
    upload,
)
from selfgrow.search.engine import RECORD_ATTR, SearchOutcome, counts, enqueue_points
from selfgrow.search.liveness import fail_stale_trials
from selfgrow.search.storage import JOURNAL_PREFIX, is_shared, make_storage, redact
from selfgrow.train.interrupt import check as check_interrupt

RUN_ATTR = "selfgrow:run"
CURRENT_ATTR = "selfgrow:current"
FINISHED_ATTR = "selfgrow:finished"
JOB_ATTR = "selfgrow:job"
PRIOR_ATTR = "selfgrow:prior"
SECONDS_ATTR = "selfgrow:search_seconds"  # wall time of the task's search phase, from upload to the last result
READY_PREFIX = "selfgrow:ready:"  # + worker name: {time, pid, host} of its connection to the run study
RETRIED_ATTR = "failed_trial"  # Optuna's retry callback marks a retry with the number of the trial it retries
POLL_SECONDS = 0.2

_current: Coordinator | None = None  # the distributed run under way in this process (one at a time)


@dataclass
class DistributedSettings:
    """Where a distributed run's studies and artifacts live and who trains (resolved from the run config)."""

    storage: str
    artifacts: Path | str  # a directory, or an object store's s3:// or gs:// URL
    study: str
    workers: int
    heartbeat: int
    max_retry: int
    work_dir: Path


def settings_for(config: Any, run_dir: Path) -> DistributedSettings | None:
    """The distributed settings of a run config (None when it asks for no distributed search)."""
    section = config.distributed
    if not is_shared(section.storage) and section.workers == 0:
        if section.artifacts is not None or section.study is not None:
            raise SelfgrowError("distributed.artifacts and distributed.study need a distributed search; give "
                                "--storage journal:PATH or a database URL, or --workers N.")
        return None
    if section.storage == "memory":
        raise SelfgrowError("--workers needs a storage the workers share; give --storage journal:PATH or a database "
                            "URL (or no --storage for a journal file beside the run folder).")
    work_dir = run_dir.with_name(run_dir.name + ".distributed").absolute()
    storage = section.storage or f"{JOURNAL_PREFIX}{work_dir / 'journal.log'}"
    make_storage(storage)  # checks the value now
    study = section.study or f"{config.name}-{job_digest(job_config(config))[:8]}"
    artifacts: Path | str = work_dir / "artifacts"
    if section.artifacts and is_object_store(section.artifacts):
        artifacts = section.artifacts
    elif section.artifacts:
        artifacts = Path(section.artifacts).expanduser().absolute()
    return DistributedSettings(storage, artifacts, study, section.workers, section.heartbeat, section.max_retry,
                               work_dir)


def job_config(config: Any) -> dict[str, Any]:
    """What a worker needs of the run config to rebuild the stream and the learner (no paths of this machine)."""
    from selfgrow.config import to_dict

    values = to_dict(config)
    for machine_specific in ("distributed", "output"):
        values.pop(machine_specific, None)
    return values


def job_digest(values: Any) -> str:
    """sha256 of plain data (canonical JSON)."""
    return hashlib.sha256(json.dumps(values, sort_keys=True).encode()).hexdigest()


def task_fingerprint(seen: list[Any], task: Any) -> str:
    """sha256 of the data a search trains and scores on: the task's training and validation splits and the
    validation splits of the tasks seen before (a worker checks that its rebuilt stream gives the same)."""
    digest = hashlib.sha256()
    for tensor in [task.x_train, task.y_train, *(t for seen_task in [*seen, task] for t in (seen_task.x_val, seen_task.y_val))]:
        digest.update(tensor.detach().cpu().contiguous().numpy().tobytes())
    return digest.hexdigest()


@contextlib.contextmanager
def coordinating(config: Any, settings: DistributedSettings, quiet: bool = False) -> Iterator[Coordinator]:
    """Searches of this process run distributed while the block runs: run study opened, local workers started."""
    global _current
    if _current is not None:
        raise SelfgrowError("A distributed run is already under way in this process; run one at a time.")
    coordinator = Coordinator(config, settings, quiet)
    coordinator.open()
    _current = coordinator
    try:
        yield coordinator
    finally:
        _current = None
        coordinator.close()


class Coordinator:
    """The run's side of a distributed search: run study, local workers, one task study per search."""

    def __init__(self, config: Any, settings: DistributedSettings, quiet: bool = False) -> None:
        self.config = config
        self.settings = settings
        self.quiet = quiet
        self.job_config = job_config(config)
        self.storage: Any = None
        self.store: Any = None
        self.run_study: Any = None
        self.processes: list[subprocess.Popen] = []
        self.local_names: list[str] = []
        self.opened = 0.0

    # ---- the run ------------------------------------------------------------------------------

    def open(self) -> None:
        """Open (or reopen) the run study, record the run's settings for workers, start the local workers."""
        import optuna

        optuna.logging.set_verbosity(optuna.logging.WARNING)
        s = self.settings
        self.storage = make_storage(s.storage, heartbeat=s.heartbeat, max_retry=s.max_retry)
        self.store = make_artifact_store(s.artifacts)
        self.run_study = optuna.create_study(study_name=s.study, storage=self.storage, load_if_exists=True)
        self.opened = time.time()
        config = upload(self.store, self.storage, self.run_study, "config.pt", pack({"config": self.job_config}))
        self.run_study.set_user_attr(RUN_ATTR, {"heartbeat": s.heartbeat, "max_retry": s.max_retry,
                                                "artifacts": str(s.artifacts), "config": config})
        self.run_study.set_user_attr(CURRENT_ATTR, None)
        self.run_study.set_user_attr(FINISHED_ATTR, False)
        s.work_dir.mkdir(parents=True, exist_ok=True)
        threads = max(1, torch.get_num_threads() // max(1, s.workers))
        for k in range(s.workers):
            name = f"{socket.gethostname()}-local{k}"
            self.local_names.append(name)
            with open(s.work_dir / f"worker-{k}.log", "ab") as log:  # the child keeps its own descriptor
                self.processes.append(subprocess.Popen(
                    [*worker_command(s, name), "--threads", str(threads), "--parent", str(os.getpid())],
                    stdout=log, stderr=subprocess.STDOUT, stdin=subprocess.DEVNULL))
        who = f"{s.workers} local workers" if s.workers else "workers started elsewhere"
        hint = shlex.join(worker_command(dataclasses.replace(s, storage=redact(s.storage)), None)[3:])
        self._say(f"distributed search: study {s.study} in {redact(s.storage)}, artifacts in {s.artifacts}; "
                  f"trials trained by {who}. More workers: selfgrow {hint}")

    def close(self) -> None:
        """Tell the workers the run is over and stop the local ones."""
        with contextlib.suppress(Exception):  # a storage that went away must not hide the run's own error
            self.run_study.set_user_attr(CURRENT_ATTR, None)
            self.run_study.set_user_attr(FINISHED_ATTR, True)
        for process in self.processes:
            if process.poll() is None:
                process.terminate()
        for process in self.processes:
            try:
                process.wait(timeout=10)
            except subprocess.TimeoutExpired:
                process.kill()
                process.wait()

    # ---- one task's search --------------------------------------------------------------------

    def search(self, grower: Any, learner: Any, task: Any, space: dict[str, Any],
               enqueue: list[dict[str, Any]], context: Any = None,
               protected: list[dict[str, Any]] | None = None,
               prior: list[tuple[dict[str, Any], float]] | None = None) -> SearchOutcome:
        """Share the task's study with the workers, wait for its trials, return its records (see the module docstring);
        `protected`: enqueued points the halving never prunes (`selfgrow.search.engine`); `prior`: the cost-gp
        sampler's, which each worker's sampler reads from the study."""
        self._await_local_workers()
        started = time.perf_counter()
        study = self._task_study(learner, task, enqueue, grower.context_state(context), protected or [], prior or [])
        self.run_study.set_user_attr(CURRENT_ATTR, study.study_name)
        propose = grower.problem(learner, task, context)[0]
        records = self._wait(study, grower.settings, propose, task.index)
        self.run_study.set_user_attr(CURRENT_ATTR, None)
        study.set_user_attr(SECONDS_ATTR, time.perf_counter() - started)
        store = self.store
        return SearchOutcome(records, study, float(sum(r.get("spent_flops", 0.0) for r in records)),
                             weights=lambda record: unpack(download(store, record["weights"]))["weights"])

    def _task_study(self, learner: Any, task: Any, enqueue: list[dict[str, Any]], context: Any,
                    protected: list[dict[str, Any]], prior: list[tuple[dict[str, Any], float]]) -> Any:
        """The task's study, created with its enqueued points and job (the learner's state, the grower's task
        context as plain data), or found as a killed coordinator left it."""
        import optuna

        blob = pack({"config": self.job_config, "task": task.index, "learner": learner.state_dict(),
                     "context": context, "data": task_fingerprint(learner.seen, task)})
        name = f"{self.settings.study}-task{task.index}-{hashlib.sha256(blob).hexdigest()[:12]}"
        study = optuna.create_study(study_name=name, storage=self.storage, directions=["maximize", "minimize"],
                                    load_if_exists=True)
        if JOB_ATTR in study.user_attrs:
            requeue_errors(study)
        else:
            enqueue_points(study, enqueue, protected)
            study.set_user_attr(PRIOR_ATTR, [[dict(point), score] for point, score in prior])
            study.set_user_attr(JOB_ATTR, upload(self.store, self.storage, study, f"job-task{task.index}.pt", blob))
        return study

    def _wait(self, study: Any, settings: Any, propose: Any, task_index: int) -> list[dict[str, Any]]:
        """Sweep stale trials and poll until every trial slot has a result; returns the records by slot."""
        s = self.settings
        bar = tqdm(total=settings.n_trials, desc=f"task {task_index} search", unit="trial", leave=False,
                   disable=self.quiet or not sys.stderr.isatty())
        try:
            while True:
                fail_stale_trials(study, self.storage, 2 * s.heartbeat, s.max_retry)
                slots = collect(study.get_trials(deepcopy=False), settings.n_trials, s.max_retry, 4 * s.heartbeat)
                done = [r for r in slots if r is not None]
                bar.update(sum(counts(r) for r in done) - bar.n)
                for record in done:
                    if record["status"] == "error":
                        raise SelfgrowError(f"Worker {record.get('worker', '?')} failed on trial {record['trial']}: "
                                            f"{record['reason']}")
                if len(done) == len(slots):
                    return [_with_proposal(r, propose) for r in done]
                self._check_local_workers()
                check_interrupt()  # Ctrl-C stops the wait as it stops a single-process search at a batch
                time.sleep(POLL_SECONDS)
        finally:
            bar.close()

    def _await_local_workers(self) -> None:
        """Wait until every running local worker has connected, so that all start on the first trials together."""
        while True:
            ready = self.run_study.user_attrs
            if all(ready.get(READY_PREFIX + name, {"time": 0.0})["time"] >= self.opened or process.poll() is not None
                   for name, process in zip(self.local_names, self.processes)):
                return
            self._check_local_workers()
            check_interrupt()
            time.sleep(POLL_SECONDS)

    def _check_local_workers(self) -> None:
        """Stop with the log's last line when every local worker has exited (nobody would train the trials)."""
        if self.processes and all(p.poll() is not None for p in self.processes):
            log = self.settings.work_dir / "worker-0.log"
            lines = log.read_text(errors="replace").strip().splitlines() if log.exists() else []
            raise SelfgrowError(f"All {len(self.processes)} local workers exited (codes "
                                f"{', '.join(str(p.returncode) for p in self.processes)}); the last line of {log}: "
                                f"{lines[-1] if lines else '(empty)'}")

    def _say(self, message: str) -> None:
        if not self.quiet:
            tqdm.write(message, file=sys.stdout)


def worker_command(settings: DistributedSettings, name: str | None) -> list[str]:
    """The command line of a worker for this run (`name` None: the worker names itself)."""
    command = [sys.executable, "-m", "selfgrow.cli", "worker", "--storage", settings.storage, "--study", settings.study,
               "--artifacts", str(settings.artifacts)]
    return command + (["--name", name] if name else [])


def requeue_errors(study: Any) -> None:
    """Queue again each trial slot that a worker's error ended (a resumed run gives it another chance)."""
    import optuna
    from optuna.storages import RetryHeartbeatStaleTrialCallback

    last: dict[int, Any] = {}
    for trial in study.get_trials(deepcopy=False):  # in number order: a slot's latest trial comes last
        last[trial.system_attrs.get(RETRIED_ATTR, trial.number)] = trial
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", optuna.exceptions.ExperimentalWarning)
        retry = RetryHeartbeatStaleTrialCallback()
        for trial in last.values():
            if trial_record(trial).get("status") == "error":
                retry(study, trial)


def _original(trial: Any) -> bool:
    """Whether `trial` is a slot's first trial: not a retry (it fills the slot it retries), nor asked past the
    budget."""
    return RETRIED_ATTR not in trial.system_attrs and trial_record(trial).get("status") != "beyond_budget"


def counts_as_slot(trial: Any) -> bool:
    """Whether `trial` takes one of the `n_trials` slots: a slot's first trial that is not a point the budget turned
    away uncounted (`selfgrow.search.engine.counts`)."""
    return _original(trial) and counts(trial_record(trial))


def collect(trials: list[Any], n_trials: int, max_retry: int, give_up_after: float) -> list[dict[str, Any] | None]:
    """Per trial slot, its record, or None while it has none: the trials that retry none and were not asked past
    the budget, in order, up to the `n_trials`-th that counts (points over the budget turned away uncounted are
    kept between them, as a single-process search records them); None for each slot not asked yet.

    A slot's trials are its first trial and the retries of it (Optuna's retry marks a retry with
    the number of the trial it retries); the last of them decides. Told: its record. Failed
    without a record (its worker stopped beating) with no retry to come (`max_retry` reached, or
    none appeared within `give_up_after` seconds): a failed record with no training result.
    Records are renumbered to their slots, so they read as those of a single-process search; batches
    are numbered in the order of the slots of their first trials.
    """
    from optuna.trial import TrialState

    originals, counted = [], 0
    for t in trials:
        if counted < n_trials and _original(t):
            originals.append(t)
            counted += counts_as_slot(t)
    chains = {t.number: [t] for t in originals}
    for t in trials:
        if t.system_attrs.get(RETRIED_ATTR) in chains:
            chains[t.system_attrs[RETRIED_ATTR]].append(t)
    slot_of = {t.number: slot for slot, chain in enumerate(chains.values()) for t in chain}
    out: list[dict[str, Any] | None] = []
    for slot, chain in enumerate(chains.values()):
        last = chain[-1]
        if last.state.is_finished() and RECORD_ATTR in last.user_attrs:
            record = trial_record(last)
        elif last.state == TrialState.FAIL and (len(chain) > max_retry or _long_ago(last, give_up_after)):
            record = {"trial": last.number, "batch": last.number, "params": dict(last.params), "status": "failed",
                      "reason": f"its worker stopped (no heartbeat) on {len(chain)} tries", "spent_flops": 0.0}
        else:
            out.append(None)
            continue
        lost = [t.number for t in chain if t.state == TrialState.FAIL and RECORD_ATTR not in t.user_attrs]
        if lost:
            record["lost_trials"] = lost  # trials of this slot whose worker stopped beating
        record["trial"] = slot
        for field in ("same_as", "batch"):  # batch: the number of the batch's first trial
            if field in record:
                record[field] = slot_of.get(record[field], record[field])
        out.append(record)
    heads = {r["batch"] for r in out if r is not None and r["batch"] is not None}  # untrained points: no batch
    order = {head: k for k, head in enumerate(sorted(heads))}
    for record in out:
        if record is not None and record["batch"] is not None:
            record["batch"] = order[record["batch"]]
    return out + [None] * (n_trials - counted)


def trial_record(trial: Any) -> dict[str, Any]:
    """The record a worker stored on `trial` ({} when none)."""
    return json.loads(trial.user_attrs[RECORD_ATTR]) if RECORD_ATTR in trial.user_attrs else {}


def _long_ago(trial: Any, seconds: float) -> bool:
    """Whether a finished trial finished more than `seconds` ago (a retry that should have appeared by then)."""
    return trial.datetime_complete is not None and time.time() - trial.datetime_complete.timestamp() > seconds


def _with_proposal(record: dict[str, Any], propose: Any) -> dict[str, Any]:
    """A record with the point's description (operator calls, cost) where its worker died before writing one."""
    if "cost" in record:
        return record
    with torch.random.fork_rng(devices=[]):  # growing the net to know its cost draws random weights
        proposal = propose(dict(record["params"]))
    return {**record, **proposal.info, "cost": proposal.cost}
