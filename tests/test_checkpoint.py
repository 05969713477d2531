"""Checkpoints: exact round trip without pickle, resume equals an uninterrupted run, corruption fallback, pruning."""

from __future__ import annotations

import json
import random

import numpy as np
import pytest
import torch
from trainer_fixtures import make_net, make_tasks

from selfgrow.errors import SelfgrowError
from selfgrow.growth import build_grower
from selfgrow.nets.ops import remap_tensors
from selfgrow.retention.base import Retention
from selfgrow.train import Learner, TaskRecord, Trainer, checkpoint_dir, load_checkpoint, load_latest, restore, save_checkpoint


class Anchor(Retention):
    """L2 pull towards the weights after the last task: tensor state that must follow growth and resume."""

    def __init__(self) -> None:
        self.anchors: dict[str, torch.Tensor] = {}
        self.tasks_done = 0

    def penalty(self, net, batch, logits):
        params = dict(net.named_parameters())
        terms = [((params[n] - a.to(params[n].device)) ** 2).sum() for n, a in self.anchors.items()]
        return 0.01 * torch.stack(terms).sum() if terms else None

    def after_task(self, learner, task) -> None:
        self.anchors = {n: p.detach().cpu().clone() for n, p in learner.net.named_parameters()}
        self.tasks_done += 1

    def on_growth(self, growth) -> None:
        self.anchors = remap_tensors(self.anchors, growth) if self.anchors else {}

    def state_dict(self):
        return {"anchors": self.anchors, "tasks_done": self.tasks_done}

    def load_state_dict(self, state) -> None:
        self.anchors, self.tasks_done = dict(state["anchors"]), state["tasks_done"]


def _learner(seed: int = 0) -> Learner:
    trainer = Trainer(epochs=2, batch_size=16, optimizer="adam", lr=0.01, reset_optimizer=False,
                      device="cpu", curve_batches=2, seed=5)
    grower = build_grower("schedule", width_per_class=2, deepen_every=2)
    return Learner(make_net("class", seed=seed), grower, [Anchor()], trainer, "class")


def _run(learner, tasks, run_dir):
    """Learn each task, record its accuracy row and checkpoint after it (as the experiment loop does)."""
    matrix = []
    for task in tasks:
        learner.learn(task)
        matrix.append(learner.evaluate(learner.seen))
        save_checkpoint(run_dir, task.index, learner, {"accuracy": matrix})
    return matrix


def _assert_same_learner(a: Learner, b: Learner) -> None:
    assert a.net.spec == b.net.spec
    sa, sb = a.net.state_dict(), b.net.state_dict()
    assert sa.keys() == sb.keys() and all(torch.equal(sa[k], sb[k]) for k in sa)
    assert a.optimizer_state.keys() == b.optimizer_state.keys()
    for name, entries in a.optimizer_state.items():
        assert all(torch.equal(v, b.optimizer_state[name][k]) for k, v in entries.items())
    assert _timeless(a.records) == _timeless(b.records) and a.seen_class_ids == b.seen_class_ids


def _timeless(records: list[TaskRecord]) -> list[dict]:
    """Records as plain dicts without wall-clock times, the one thing two identical runs may differ in."""
    return [{**d, "fit": {k: v for k, v in d["fit"].items() if k != "wall_time"}} for d in (r.to_dict() for r in records)]


def test_round_trip_restores_the_learner_exactly(tmp_path):
    tasks = make_tasks(2)
    original = _learner()
    matrix = _run(original, tasks, tmp_path)
    index, state = load_latest(tmp_path)
    copy = _learner(seed=1)
    results = restore(copy, state, tasks)
    assert index == 1 and results == {"accuracy": matrix}
    _assert_same_learner(original, copy)
    assert copy.seen == tasks and copy.grower.state_dict() == original.grower.state_dict()
    anchors = copy.retention[0].anchors
    assert anchors.keys() == original.retention[0].anchors.keys()
    assert all(torch.equal(anchors[k], original.retention[0].anchors[k]) for k in anchors)
    x = torch.rand(4, 1, 4, 4)
    with torch.no_grad():
        assert torch.equal(original.net(x), copy.net(x))

    folder = checkpoint_dir(tmp_path, 1)
    tensors = torch.load(folder / "tensors.pt", weights_only=True)
    assert all(isinstance(t, torch.Tensor) for t in tensors.values())
    manifest = json.loads((folder / "manifest.json").read_text())
    assert manifest["task_index"] == 1 and set(manifest["sha256"]) == {"tensors.pt", "state.json"}
    assert json.loads((folder / "state.json").read_text())["learner"]["nets"][0]["spec"] == original.net.spec


def test_resume_after_a_task_equals_the_uninterrupted_run(tmp_path):
    tasks = make_tasks(3)
    uninterrupted = _learner()
    matrix = _run(uninterrupted, tasks, tmp_path / "a")

    _run(_learner(), tasks[:2], tmp_path / "b")
    resumed = _learner(seed=7)
    results = restore(resumed, load_checkpoint(tmp_path / "b", 1), tasks)
    resumed.learn(tasks[2])
    assert results["accuracy"] + [resumed.evaluate(tasks)] == matrix
    _assert_same_learner(uninterrupted, resumed)


def test_rng_states_are_saved_and_restored(tmp_path):
    learner = _learner()
    torch.manual_seed(11), np.random.seed(11), random.seed(11)
    save_checkpoint(tmp_path, 0, learner, {})
    expected = (torch.rand(3), np.random.rand(3), random.random())
    torch.manual_seed(0), np.random.seed(0), random.seed(0)
    restore(learner, load_checkpoint(tmp_path, 0))
    assert torch.equal(torch.rand(3), expected[0])
    assert np.array_equal(np.random.rand(3), expected[1]) and random.random() == expected[2]


def test_a_corrupt_latest_checkpoint_falls_back_to_the_previous_one(tmp_path):
    learner = _learner()
    for index in (0, 1):
        save_checkpoint(tmp_path, index, learner, {"after": index})
    weights = checkpoint_dir(tmp_path, 1) / "tensors.pt"
    weights.write_bytes(weights.read_bytes()[:-10] + b"0123456789")
    with pytest.warns(RuntimeWarning, match="task_001.*sha256"):
        index, state = load_latest(tmp_path)
    assert index == 0 and state["results"] == {"after": 0}

    (checkpoint_dir(tmp_path, 0) / "manifest.json").unlink()  # as if killed before the manifest
    with pytest.warns(RuntimeWarning), pytest.raises(SelfgrowError, match="No readable checkpoint"):
        load_latest(tmp_path)
    assert load_latest(tmp_path / "elsewhere") is None


def test_only_the_last_two_checkpoints_are_kept(tmp_path):
    learner = _learner()
    for index in range(4):
        save_checkpoint(tmp_path, index, learner, {})
    names = sorted(p.name for p in (tmp_path / "checkpoints").iterdir())
    assert names == ["task_002", "task_003"]


def test_independent_nets_round_trip(tmp_path):
    tasks = make_tasks(2)
    trainer = Trainer(optimizer="sgd", epochs=2, batch_size=16, lr=0.1, device="cpu", curve_batches=0)
    original = Learner(make_net("class"), build_grower("fixed"), [], trainer, "class", independent=True)
    _run(original, tasks, tmp_path)
    copy = Learner(make_net("class", seed=3), build_grower("fixed"), [], trainer, "class", independent=True)
    restore(copy, load_latest(tmp_path)[1], tasks)
    assert len(copy.nets) == 2 and copy.evaluate(tasks) == original.evaluate(tasks)
    with pytest.raises(SelfgrowError, match="independent"):
        restore(Learner(make_net("class"), build_grower("fixed"), [], trainer, "class"), load_latest(tmp_path)[1])
