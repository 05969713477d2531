"""Every method preset runs through `experiment.run` like any config, and behaves as its name says."""

from __future__ import annotations

import math

import pytest

from selfgrow.config import from_dict
from selfgrow.experiment import run
from selfgrow.methods import METHODS


def run_method(tmp_path, method: str, scenario: str, n_tasks: int = 3, epochs: int = 4, **extra):
    config = from_dict({
        "name": f"{method}-{scenario}", "seed": 0, "output": str(tmp_path), "method": method,
        "stream": {"name": "split", "dataset": "digits", "scenario": scenario, "n_tasks": n_tasks, "classes_per_task": 2},
        "trainer": {"epochs": epochs, "batch_size": 32, "optimizer": "adam", "lr": 0.003, "progress": False},
        **extra,
    })
    return run(config, quiet=True)


@pytest.mark.parametrize("method", [m for m, spec in METHODS.items() if not spec.task_il_only])
def test_every_class_il_method_runs_end_to_end(tmp_path, method):
    results = run_method(tmp_path, method, "class", n_tasks=2, epochs=1)
    assert results.n_done == 2
    assert all(0.0 <= a <= 1.0 for row in results.accuracy for a in row)
    assert results.run["method"] == method


@pytest.mark.parametrize("method", [m for m, spec in METHODS.items() if spec.task_il_only])
def test_every_task_il_method_runs_end_to_end_without_forgetting(tmp_path, method):
    """Columns, frozen paths and masks per task leave what a task learnt untouched by the next one
    (bindgrow's shared layers keep learning slowly, and DEN's shared units drift up to its σ before they are
    duplicated, so only they may move)."""
    masked = {"net": {"preset": "mlp-tiny", "options": {"unit_masks": True}}}
    extra = masked if method in ("firefly-cl", "den") else {}
    results = run_method(tmp_path, method, "task", n_tasks=2, epochs=1, **extra)
    R = results.matrix()
    assert results.n_done == 2 and results.run["method"] == method and R[1][1] > 0.5
    if method not in ("bindgrow", "den"):
        assert R[1][0] == pytest.approx(R[0][0], abs=1e-9)


def test_pnn_runs_task_il_and_never_forgets(tmp_path):
    results = run_method(tmp_path, "pnn", "task")
    R = results.matrix()
    for j in range(len(R)):
        assert all(R[i][j] == R[j][j] for i in range(j, len(R)))  # a frozen column per task


def test_independent_never_forgets_and_pays_one_net_per_task(tmp_path):
    independent = run_method(tmp_path, "independent", "task")
    R = independent.matrix()
    assert all(R[-1][j] == R[j][j] for j in range(len(R)))
    params = [c["params"] for c in independent.costs]
    assert params[1] == 2 * params[0] and params[2] == 3 * params[0]
    finetune = run_method(tmp_path, "finetune", "task")
    assert independent.summary()["average_accuracy"] >= finetune.summary()["average_accuracy"]


def test_fixed_small_and_large_keep_their_size_and_large_is_larger(tmp_path):
    small = run_method(tmp_path, "fixed-small", "class")
    large = run_method(tmp_path, "fixed-large", "class")
    for results in (small, large):
        hidden = [c["spec"]["hidden"] for c in results.costs]
        assert all(h == hidden[0] for h in hidden)  # only the head grows with new classes
    assert large.costs[-1]["params"] > 10 * small.costs[-1]["params"]


def test_class_il_finetune_forgets_and_replay_remembers(tmp_path):
    finetune = run_method(tmp_path, "finetune", "class", epochs=10)
    er = run_method(tmp_path, "er", "class", epochs=10)
    assert finetune.summary()["max_forgetting"] > 0.5
    assert er.summary()["average_accuracy"] > finetune.summary()["average_accuracy"] + 0.3
    assert not math.isnan(er.summary()["forgetting"])
