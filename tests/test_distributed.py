"""Distributed growth search end to end: a coordinator and worker processes on a journal file and on a real
PostgreSQL server (started here on 127.0.0.1), compared with a single-process run given the same trials; a worker
killed during a trial."""

from __future__ import annotations

import hashlib
import json
import os
import signal
import subprocess
import sys
import time
from pathlib import Path

import optuna
import pytest
import yaml
from postgres_fixtures import throwaway_postgres

from selfgrow.config import from_dict
from selfgrow.factories import build_stream
from selfgrow.nets import build
from selfgrow.search.artifacts import unpack
from selfgrow.search.distributed import READY_PREFIX, RETRIED_ATTR
from selfgrow.search.engine import RECORD_ATTR
from selfgrow.search.worker import WORKER_ATTR
from selfgrow.train import accuracy

# Every trial is enqueued (no growth, then phi 1 and 2; task 1 adds its warm start): a sampler never
# proposes, so the single-process run and the distributed runs evaluate the same points.
CONFIG = {
    "seed": 0,
    "stream": {"name": "split", "dataset": "digits", "scenario": "class", "n_tasks": 2},
    "net": {"preset": "mlp-tiny"},
    "growth": {"name": "compound", "options": {"n_trials": 3, "epochs": 6, "halving_batch": 1, "keep_winner": True,
                                               "initial_points": [{"phi": 1.0}, {"phi": 2.0}]}},
    "retention": [{"name": "replay", "options": {"budget": 40}}, {"name": "lwf"}],
    "trainer": {"epochs": 2, "batch_size": 64, "optimizer": "adam", "lr": 0.003, "progress": False},
}
ENV = {**os.environ, "OMP_NUM_THREADS": "1"}  # one thread per process: every process sums floats alike
TIMEOUT = 300


def _config_file(tmp_path: Path) -> Path:
    path = tmp_path / "config.yaml"
    path.write_text(yaml.safe_dump({**CONFIG, "output": str(tmp_path / "runs")}))
    return path


def _selfgrow(*args: str) -> subprocess.Popen:
    return subprocess.Popen([sys.executable, "-m", "selfgrow.cli", *args], stdout=subprocess.PIPE,
                            stderr=subprocess.PIPE, text=True, env=ENV)


def _finish(process: subprocess.Popen) -> str:
    out, err = process.communicate(timeout=TIMEOUT)
    assert process.returncode == 0, err[-3000:]
    return out


def _run(tmp_path: Path, name: str, *args: str) -> Path:
    _finish(_selfgrow("run", "--config", str(_config_file(tmp_path)), "--name", name, *args))
    return tmp_path / "runs" / name


def _results(run_dir: Path) -> tuple[dict, list[dict]]:
    growth = [json.loads(line) for line in (run_dir / "growth.jsonl").read_text().splitlines()]
    return json.loads((run_dir / "results.json").read_text()), growth


@pytest.fixture(scope="module")
def reference(tmp_path_factory) -> Path:
    """The run folder of the single-process run of CONFIG."""
    return _run(tmp_path_factory.mktemp("single"), "single")


def _files(run_dir: Path) -> list[str]:
    return sorted(str(p.relative_to(run_dir)) for p in run_dir.rglob("*") if "checkpoints" not in p.parts)


def _check_same_as_single_process(run_dir: Path, reference: Path) -> None:
    """The same run folder, accuracy matrix and search records as the single-process run; the winners' weights
    are the uploaded artifacts; both workers trained trials."""
    (results, growth), (ref_results, ref_growth) = _results(run_dir), _results(reference)
    assert _files(run_dir) == _files(reference)
    assert results["accuracy"] == ref_results["accuracy"]
    for plan, ref_plan in zip(growth, ref_growth):
        assert plan["chosen"] == ref_plan["chosen"]
        for candidate, ref_candidate in zip(plan["candidates"], ref_plan["candidates"], strict=True):
            assert {k: candidate[k] for k in ref_candidate} == ref_candidate  # plus: worker, weights
    assert len({c["worker"] for plan in growth for c in plan["candidates"]}) == 2
    config = from_dict({**CONFIG, "output": str(run_dir.parent)})
    stream = build_stream(config)
    for i, plan in enumerate(growth):
        chosen = plan["candidates"][plan["chosen"]]
        blob = (run_dir.parent / f"{run_dir.name}.distributed" / "artifacts" / chosen["weights"]["artifact"]).read_bytes()
        assert hashlib.sha256(blob).hexdigest() == chosen["weights"]["sha256"]
        net = build(results["costs"][i]["spec"])  # the grown architecture the learner trained
        net.load_state_dict(unpack(blob)["weights"])
        val = {str(t.index): accuracy(net, t, "class", "val") for t in stream.tasks[: i + 1]}
        assert val == chosen["val_accuracy"]  # the artifact holds the winner's trained weights


def test_two_local_workers_on_a_journal_file_give_the_single_process_results(tmp_path, reference):
    run_dir = _run(tmp_path, "journal", "--workers", "2", "--distributed.heartbeat", "1")
    _check_same_as_single_process(run_dir, reference)
    assert (tmp_path / "runs" / "journal.distributed" / "journal.log").is_file()  # the default storage


# ---- PostgreSQL -----------------------------------------------------------------------------------


@pytest.fixture(scope="module")
def postgres() -> str:
    """A throwaway PostgreSQL cluster on 127.0.0.1 (see `postgres_fixtures`); its URL."""
    with throwaway_postgres() as where:
        yield f"postgresql+psycopg2://selfgrow@{where}"


def test_two_workers_on_postgresql_give_the_single_process_results_when_one_is_killed_during_a_trial(
        tmp_path, reference, postgres):
    study = "pg-run"
    coordinator = _selfgrow("run", "--config", str(_config_file(tmp_path)), "--name", "postgres", "--storage", postgres,
                            "--workers", "2", "--distributed.heartbeat", "1", "--distributed.study", study)
    victim = _kill_a_worker_during_a_trial(coordinator, postgres, study)
    _finish(coordinator)
    run_dir = tmp_path / "runs" / "postgres"
    _check_same_as_single_process(run_dir, reference)  # the retried trial trained to the same result
    task1 = next(n for n in optuna.get_all_study_names(postgres) if n.startswith(f"{study}-task1-"))
    trials = optuna.load_study(study_name=task1, storage=postgres).get_trials()
    assert trials[victim].state == optuna.trial.TrialState.FAIL and RECORD_ATTR not in trials[victim].user_attrs
    assert [t.state for t in trials if t.system_attrs.get(RETRIED_ATTR) == victim] == [optuna.trial.TrialState.COMPLETE]
    assert _results(run_dir)[1][1]["candidates"][victim]["lost_trials"] == [victim]


def _kill_a_worker_during_a_trial(coordinator: subprocess.Popen, storage: str, study: str) -> int:
    """SIGKILL the worker of the first trial of task 1 while it trains it; returns the trial's number.

    Both workers are stopped (SIGSTOP) when the task's study appears and then let run in turns of 30 ms,
    checking between turns, so the killed worker is known to hold an unfinished trial; no worker stays
    stopped long enough for its own trials to be taken for dead.
    """
    deadline = time.time() + TIMEOUT

    def alive() -> None:
        assert coordinator.poll() is None and time.time() < deadline, coordinator.communicate()

    storage = optuna.storages.RDBStorage(storage)
    pids: dict[str, int] = {}
    while len(pids) < 2 or not (names := [n for n in optuna.get_all_study_names(storage) if n.startswith(f"{study}-task1-")]):
        alive()
        if study in optuna.get_all_study_names(storage):
            run = optuna.load_study(study_name=study, storage=storage).user_attrs
            pids = {k[len(READY_PREFIX):]: v["pid"] for k, v in run.items() if k.startswith(READY_PREFIX)}
        time.sleep(0.01)
    for pid in pids.values():
        os.kill(pid, signal.SIGSTOP)
    task1 = optuna.load_study(study_name=names[0], storage=storage)
    try:
        while True:
            alive()
            running = [t for t in task1.get_trials(states=(optuna.trial.TrialState.RUNNING,)) if WORKER_ATTR in t.user_attrs]
            if running:
                os.kill(pids.pop(running[0].user_attrs[WORKER_ATTR]), signal.SIGKILL)
                return running[0].number
            for pid in pids.values():
                os.kill(pid, signal.SIGCONT)
                time.sleep(0.03)
                os.kill(pid, signal.SIGSTOP)
    finally:
        for pid in pids.values():
            os.kill(pid, signal.SIGCONT)


def test_a_torchrun_group_of_two_ranks_serves_the_search_as_one_data_parallel_worker(tmp_path, reference):
    """torchrun starts one worker of 2 ranks for a coordinator waiting for external workers (--workers 0): rank
    0 takes every trial and both ranks train each candidate on half of every batch (test_data_parallel.py checks
    that split); the run equals the single-process one up to the float noise of summing half batches."""
    storage, study = f"journal:{tmp_path / 'journal.log'}", "dp-run"
    coordinator = _selfgrow("run", "--config", str(_config_file(tmp_path)), "--name", "dp", "--storage", storage,
                            "--workers", "0", "--distributed.study", study)
    group = subprocess.Popen([sys.executable, "-m", "torch.distributed.run", "--standalone", "--nproc_per_node", "2",
                              "-m", "selfgrow.cli", "worker", "--storage", storage, "--study", study, "--name", "dp"],
                             stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True, env=ENV)
    _finish(coordinator)
    out = _finish(group)
    trials = sum(len(plan["candidates"]) for plan in _results(reference)[1])
    assert out.count(f"selfgrow worker: trained {trials} trials") == 2  # rank 0 took every trial, rank 1 raced them too
    (results, growth), (ref_results, ref_growth) = _results(tmp_path / "runs" / "dp"), _results(reference)
    assert _files(tmp_path / "runs" / "dp") == _files(reference)
    for plan, ref_plan in zip(growth, ref_growth, strict=True):
        assert plan["chosen"] == ref_plan["chosen"]
        assert {c["worker"] for c in plan["candidates"]} == {"dp"}
        for candidate, ref_candidate in zip(plan["candidates"], ref_plan["candidates"], strict=True):
            assert candidate["params"] == ref_candidate["params"]
            assert candidate["accuracy"] == pytest.approx(ref_candidate["accuracy"], abs=0.03)
    for row, ref_row in zip(results["accuracy"], ref_results["accuracy"], strict=True):
        assert row == pytest.approx(ref_row, abs=0.03)
