"""Tiny synthetic tasks and nets shared by the trainer, learner, growth and checkpoint tests (no tests here).

Each class is a fixed random ±1 pattern on a 1x4x4 image plus small noise, so a small MLP separates
the classes within a few epochs on CPU.
"""

from __future__ import annotations

import torch

from selfgrow.nets import build
from selfgrow.retention.base import Batch, Retention
from selfgrow.streams.task import Task

SHAPE = (1, 4, 4)


def make_task(index: int, class_ids: list[int], per_class: int = 24, seed: int = 0, noise: float = 0.15) -> Task:
    """A task whose local label k is stream class `class_ids[k]`; 50% train, 25% val, 25% test."""
    gen = torch.Generator().manual_seed(1000 + seed)
    prototypes = torch.randint(0, 2, (max(class_ids) + 1, *SHAPE), generator=gen).float() * 2 - 1
    gen.manual_seed(seed * 100 + index)
    labels = torch.arange(len(class_ids)).repeat_interleave(per_class)
    labels = labels[torch.randperm(len(labels), generator=gen)]
    ids = torch.as_tensor(class_ids)[labels]
    x = (0.5 + 0.3 * prototypes[ids] + noise * torch.randn(len(labels), *SHAPE, generator=gen)).clamp(0, 1)
    n = len(labels)
    a, b = n // 2, (3 * n) // 4
    return Task(
        index=index,
        name=f"t{index}",
        class_ids=list(class_ids),
        class_names=[str(c) for c in class_ids],
        x_train=x[:a],
        y_train=labels[:a],
        x_val=x[a:b],
        y_val=labels[a:b],
        x_test=x[b:],
        y_test=labels[b:],
        mean=(0.5,),
        std=(0.3,),
    )


def make_tasks(n_tasks: int = 3, per_task: int = 2, scenario: str = "class", per_class: int = 24) -> list[Task]:
    """Class ids 0.. in order of arrival (domain-IL: the same ids, different patterns per task)."""
    if scenario == "domain":
        return [make_task(i, list(range(per_task)), per_class, seed=i) for i in range(n_tasks)]
    return [make_task(i, list(range(i * per_task, (i + 1) * per_task)), per_class) for i in range(n_tasks)]


def make_net(scenario: str = "class", hidden: list[int] | None = None, seed: int = 0):
    """An MLP with no heads yet (the learner adds them), initialised from `seed`."""
    head = {"kind": "multi", "classes": []} if scenario == "task" else {"kind": "single", "classes": 0}
    torch.manual_seed(seed)
    return build({"kind": "mlp", "input_shape": list(SHAPE), "hidden": hidden or [16], "head": head})


class Recorder(Retention):
    """Logs every hook call (and optionally freezes parameters or adds a constant penalty)."""

    def __init__(self, scales: dict[str, float] | None = None, constant_penalty: float | None = None) -> None:
        self.calls: list[str] = []
        self.scales = scales or {}
        self.constant_penalty = constant_penalty

    def before_task(self, learner, task) -> None:
        self.calls.append(f"before_task {task.index}")

    def after_task(self, learner, task) -> None:
        self.calls.append(f"after_task {task.index}")

    def on_growth(self, growth) -> None:
        self.calls.append(f"on_growth {growth.op['op']}")

    def param_lr_scale(self, net) -> dict[str, float]:
        return dict(self.scales)

    def penalty(self, net, batch: Batch, logits: torch.Tensor):
        if self.constant_penalty is None:
            return None
        return torch.tensor(self.constant_penalty)


class FixedReplay(Retention):
    """Replays a fixed set of raw samples of an earlier task (the first `batch_size` of them)."""

    def __init__(self, task: Task) -> None:
        self.task = task

    def replay(self, batch_size: int, generator: torch.Generator) -> Batch:
        x, y = self.task.x_train[:batch_size], self.task.y_train[:batch_size]
        return Batch(x, y, torch.full_like(y, self.task.index), self.task.global_labels(y))


def run_config_file(tmp_path, config: dict) -> tuple:
    """Run `config` through `selfgrow run --config FILE`; returns its run folder and its growth log."""
    import json

    import yaml

    from selfgrow.cli import main

    path = tmp_path / "config.yaml"
    path.write_text(yaml.safe_dump(config))
    assert main(["run", "--config", str(path)]) == 0
    run_dir = tmp_path / "runs" / config["name"]
    return run_dir, [json.loads(line) for line in (run_dir / "growth.jsonl").read_text().splitlines()]


def bindgrow_digits_config(output: str, name: str = "bindgrow", **growth_options) -> dict:
    """A bindgrow run on 3 task-IL digits tasks: a JointNet of two 16-unit linear modules, slow-lr 0.1, a small search."""
    options = {"n_trials": 3, "epochs": 1, "halving_batch": 3, "task_epochs": 2, "rsa_samples": 30, **growth_options}
    return {
        "name": name, "seed": 0, "output": output,
        "stream": {"name": "split", "dataset": "digits", "scenario": "task", "n_tasks": 3, "classes_per_task": 2},
        "net": {"spec": {"kind": "jointnet", "modules": [{"type": "linear", "width": 16}] * 2}},
        "growth": {"name": "bindgrow", "options": options},
        "retention": [{"name": "slow_lr", "options": {"factor": 0.1}}],
        "trainer": {"epochs": 2, "batch_size": 64, "optimizer": "adam", "lr": 0.003, "progress": False},
    }
