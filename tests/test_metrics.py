"""Metric formulas checked against values computed by hand on small accuracy matrices."""

from __future__ import annotations

import ast
import math

import numpy as np
import pytest

from selfgrow import metrics

NAN = float("nan")
# R[i][j]: accuracy on task j after training through task i; NaN = not evaluated.
R = [
    [0.9, NAN, NAN],
    [0.7, 0.8, NAN],
    [0.6, 0.75, 0.95],
]
# Task 0 peaks after task 1 (0.8 > 0.5 on its diagonal); task 1 improves later.
R_PEAK = [
    [0.5, NAN, NAN],
    [0.8, 0.6, NAN],
    [0.4, 0.7, 0.9],
]


def test_average_accuracy_is_mean_of_last_row():
    # (0.6 + 0.75 + 0.95) / 3
    assert metrics.average_accuracy(R) == pytest.approx(2.3 / 3)


def test_average_incremental_accuracy_averages_the_seen_tasks_per_step():
    # step 0: 0.9; step 1: (0.7 + 0.8) / 2 = 0.75; step 2: 2.3 / 3
    assert metrics.average_incremental_accuracy(R) == pytest.approx((0.9 + 0.75 + 2.3 / 3) / 3)


def test_backward_transfer_and_thesis_forgetting_share_the_sign_of_the_change():
    # ((0.6 - 0.9) + (0.75 - 0.8)) / 2 = -0.175: negative means the model forgot.
    assert metrics.backward_transfer(R) == pytest.approx(-0.175)
    assert metrics.forgetting(R) == pytest.approx(-0.175)
    # ((0.4 - 0.5) + (0.7 - 0.6)) / 2 = 0: the drop on task 0 and the gain on task 1 cancel.
    assert metrics.forgetting(R_PEAK) == pytest.approx(0.0)


def test_max_forgetting_measures_from_the_best_past_accuracy():
    # task 0: max(0.9, 0.7) - 0.6 = 0.3; task 1: 0.8 - 0.75 = 0.05
    assert metrics.max_forgetting(R) == pytest.approx(0.175)
    # task 0: max(0.5, 0.8) - 0.4 = 0.4; task 1: 0.6 - 0.7 = -0.1 -> (0.4 - 0.1) / 2
    assert metrics.max_forgetting(R_PEAK) == pytest.approx(0.15)


def test_forward_transfer_uses_the_entries_above_the_diagonal():
    full = [
        [0.9, 0.15, 0.2],
        [0.7, 0.8, 0.3],
        [0.6, 0.75, 0.95],
    ]
    baseline = [0.1, 0.1, 0.25]
    # ((0.15 - 0.1) + (0.3 - 0.25)) / 2
    assert metrics.forward_transfer(full, baseline) == pytest.approx(0.05)
    with pytest.raises(ValueError, match="before training"):
        metrics.forward_transfer(R, baseline)


def test_ctrl_transfer_compares_the_last_task_with_a_learner_trained_on_it_alone():
    # 0.95 - 0.9
    assert metrics.ctrl_transfer(R, 0.9) == pytest.approx(0.05)
    assert metrics.ctrl_transfer(R, 0.97) == pytest.approx(-0.02)


def test_lca_averages_the_first_beta_plus_one_points_of_each_curve():
    curves = [[0.1, 0.5, 0.9, 1.0], [0.2, 0.4, 0.6, 0.8]]
    # task 0: (0.1 + 0.5 + 0.9) / 3 = 0.5; task 1: (0.2 + 0.4 + 0.6) / 3 = 0.4
    assert metrics.lca(curves, 2) == pytest.approx(0.45)
    # beta = 0: the accuracies before any update, (0.1 + 0.2) / 2
    assert metrics.lca(curves, 0) == pytest.approx(0.15)
    with pytest.raises(ValueError, match="fewer than beta"):
        metrics.lca(curves, 4)


def test_ragged_rows_equal_nan_padding():
    ragged = [[0.9], [0.7, 0.8], [0.6, 0.75, 0.95]]
    for fn in (metrics.average_accuracy, metrics.average_incremental_accuracy, metrics.forgetting, metrics.max_forgetting):
        assert fn(ragged) == pytest.approx(fn(np.array(R)))


def test_missing_accuracy_on_a_seen_task_is_an_error():
    with pytest.raises(ValueError, match="missing"):
        metrics.average_accuracy([[0.9, NAN], [NAN, 0.8]])


def test_single_task_has_no_forgetting_or_transfer_to_report():
    assert math.isnan(metrics.forgetting([[0.9]]))
    assert math.isnan(metrics.max_forgetting([[0.9]]))
    assert math.isnan(metrics.forward_transfer([[0.9]], [0.1]))
    assert metrics.average_accuracy([[0.9]]) == pytest.approx(0.9)


def test_metrics_module_imports_nothing_from_selfgrow():
    tree = ast.parse(open(metrics.__file__).read())
    imported = [a.name for n in ast.walk(tree) if isinstance(n, ast.Import) for a in n.names]
    imported += [n.module or "" for n in ast.walk(tree) if isinstance(n, ast.ImportFrom)]
    assert not [name for name in imported if name.split(".")[0] == "selfgrow"]
