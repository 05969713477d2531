"""The growth benchmarks' probe learner run with another seed (`benchmarks/growth_probe.py`): a stream run again."""

from __future__ import annotations

import sys
from pathlib import Path

import torch

sys.path.insert(0, str(Path(__file__).resolve().parents[1] / "benchmarks"))
from growth_probe import probe_learner  # noqa: E402

BENCH = """
name: probe-seed
seeds: [0]
base:
  stream: {name: split, dataset: digits, scenario: class, n_tasks: 5, max_train_per_class: 40, max_val_per_class: 10}
  net: {preset: mlp-small, options: {hidden: [8, 8]}}
  trainer: {epochs: 1, batch_size: 32, progress: false}
methods:
  plain: {}
"""


def test_another_run_seed_draws_other_samples_of_the_same_classes(tmp_path):
    bench = tmp_path / "bench.yaml"
    bench.write_text(BENCH)
    first, first_stream = probe_learner(bench, "plain", tmp_path / "a", grower=None)
    again, again_stream = probe_learner(bench, "plain", tmp_path / "b", grower=None)
    other, other_stream = probe_learner(bench, "plain", tmp_path / "c", grower=None, seed=3)
    task, same, rerun = first_stream.tasks[1], again_stream.tasks[1], other_stream.tasks[1]
    assert torch.equal(task.x_train, same.x_train)  # the base's seed: the same samples every time
    assert task.class_names == rerun.class_names
    assert not torch.equal(task.x_train, rerun.x_train) and not torch.equal(task.x_val, rerun.x_val)
    weights = [next(net.parameters()) for net in (first.net, again.net, other.net)]
    assert torch.equal(weights[0], weights[1]) and not torch.equal(weights[0], weights[2])  # initialised by the seed
