"""Helpers shared by the growth-search tests (no tests here): learning tiny streams, a tiny digits run."""

from __future__ import annotations

import json
import threading
from pathlib import Path
from typing import Any

import torch
from trainer_fixtures import make_net, make_tasks

from selfgrow.config import from_dict
from selfgrow.experiment import run
from selfgrow.growth import build_grower
from selfgrow.retention import build_retention
from selfgrow.search.worker import serve
from selfgrow.train import Learner, TaskRecord, Trainer

QUICK = {"n_trials": 3, "epochs": 1, "halving_batch": 3}


def learner_for(grower: str, options: dict | None = None, hidden: list[int] | None = None) -> Learner:
    """A class-IL learner on the 1x4x4 fixture tasks with replay + LwF and a seeded MLP."""
    trainer = Trainer(epochs=2, batch_size=16, optimizer="adam", lr=0.01, device="cpu", curve_batches=0, progress=False)
    retention = [build_retention("replay", budget=12), build_retention("lwf")]
    return Learner(make_net("class", hidden=hidden or [8]), build_grower(grower, **(options or {})), retention, trainer, "class")


def learn(grower: str, options: dict | None = None, n_tasks: int = 3, hidden: list[int] | None = None) -> tuple[Learner, list[TaskRecord]]:
    """Learn `n_tasks` fixture tasks from the same seed; returns the learner and its `TaskRecord`s."""
    torch.manual_seed(0)
    learner = learner_for(grower, options, hidden)
    return learner, [learner.learn(task) for task in make_tasks(n_tasks)]


def resumed_pair(tmp_path: Path, grower: str, options: dict) -> tuple[Learner, Learner, list]:
    """A learner of 2 fixture tasks, and a fresh one restored from its checkpoint (grower states checked equal
    and JSON-ready); returns both and the 3 tasks, with the global RNG as `restore` left it."""
    from selfgrow.train import load_latest, restore, save_checkpoint

    learner, _ = learn(grower, options, n_tasks=2)
    save_checkpoint(tmp_path, 1, learner, {})
    resumed = learner_for(grower, options)
    tasks = make_tasks(3)
    restore(resumed, load_latest(tmp_path)[1], tasks)
    assert resumed.grower.state_dict() == learner.grower.state_dict()
    assert json.loads(json.dumps(learner.grower.state_dict())) == learner.grower.state_dict()
    return learner, resumed, tasks


def same_net(a: torch.nn.Module, b: torch.nn.Module) -> bool:
    """Same spec and bit-identical weights and buffers."""
    sa, sb = a.state_dict(), b.state_dict()
    return a.spec == b.spec and sa.keys() == sb.keys() and all(torch.equal(sa[k], sb[k]) for k in sa)


def digits_run(tmp_path: Path, grower: str, options: dict) -> tuple[Path, list[dict]]:
    """A 2-task class-IL run on scikit-learn digits through `experiment.run`; returns its folder and growth.jsonl."""
    config = from_dict({
        "name": grower, "seed": 0, "output": str(tmp_path),
        "stream": {"name": "split", "dataset": "digits", "scenario": "class", "n_tasks": 2},
        "net": {"preset": "mlp-tiny"},
        "growth": {"name": grower, "options": options},
        "retention": [{"name": "replay", "options": {"budget": 40}}],
        "trainer": {"epochs": 2, "batch_size": 64, "optimizer": "adam", "lr": 0.003, "progress": False},
    })
    run(config, quiet=True)
    run_dir = tmp_path / grower
    return run_dir, [json.loads(line) for line in (run_dir / "growth.jsonl").read_text().splitlines()]


def distributed_digits_run(tmp_path: Path, name: str, growth: dict, n_tasks: int) -> tuple[Any, str]:
    """A class-IL digits run of `growth` whose search one worker thread serves over a journal file; returns the run's
    results and the storage (the run folder is tmp_path/runs/`name`)."""
    storage = f"journal:{tmp_path / 'journal.log'}"
    config = from_dict({
        "name": name, "seed": 0, "output": str(tmp_path / "runs"),
        "stream": {"name": "split", "dataset": "digits", "scenario": "class", "n_tasks": n_tasks},
        "net": {"preset": "mlp-tiny"},
        "growth": growth,
        "trainer": {"epochs": 1, "batch_size": 64, "optimizer": "adam", "lr": 0.003, "progress": False},
        "distributed": {"storage": storage, "study": name, "heartbeat": 1},
    })
    worker = threading.Thread(target=serve, args=(storage, name), kwargs={"idle_timeout": 120, "quiet": True})
    worker.start()
    result = run(config, quiet=True)
    worker.join()
    return result, storage
