"""Continual-learning metrics: pure functions over the accuracy matrix and learning curves.

Notation. `R` is the accuracy matrix of a stream of T tasks: `R[i][j]` is the test accuracy on
task j after training through task i (0-based; in the papers' 1-based notation this is
R_{i+1, j+1}). `R` may be a numpy array or a list of lists; entries that were not evaluated
(usually j > i) may be NaN or simply absent (ragged rows, e.g. row i holding only j <= i).
Rows are training steps, columns are tasks; the last row is the state at the end of the stream.

This module imports nothing from selfgrow so that anyone may use it.
"""

from __future__ import annotations

from collections.abc import Sequence

import numpy as np

AccuracyMatrix = np.ndarray | Sequence[Sequence[float]]


def as_matrix(R: AccuracyMatrix) -> np.ndarray:
    """The accuracy matrix as a float (T, T') array, ragged rows padded with NaN."""
    if isinstance(R, np.ndarray):
        matrix = R.astype(float)
    else:
        rows = [list(map(float, row)) for row in R]
        width = max((len(row) for row in rows), default=0)
        matrix = np.full((len(rows), width), np.nan)
        for i, row in enumerate(rows):
            matrix[i, : len(row)] = row
    if matrix.ndim != 2 or matrix.shape[0] == 0 or matrix.shape[1] < matrix.shape[0]:
        raise ValueError(
            f"accuracy matrix must be 2-D with one row per training step and at least as many "
            f"columns as rows; got shape {matrix.shape}"
        )
    return matrix


def _seen(matrix: np.ndarray, i: int) -> np.ndarray:
    """Row i restricted to the tasks seen so far (j <= i); all must have been evaluated."""
    row = matrix[i, : i + 1]
    if np.isnan(row).any():
        missing = [j for j in range(i + 1) if np.isnan(row[j])]
        raise ValueError(f"accuracy on seen task(s) {missing} after step {i} is missing")
    return row


def average_accuracy(R: AccuracyMatrix) -> float:
    """Mean accuracy over all tasks at the end of the stream.

    A = 1/T * sum_{j<T} R[T-1][j]   (Veniat, thesis eq. 5.1; Lopez-Paz & Ranzato 2017, "ACC").
    """
    matrix = as_matrix(R)
    last = matrix.shape[0] - 1
    return float(_seen(matrix, last).mean())


def average_incremental_accuracy(R: AccuracyMatrix) -> float:
    """Mean over training steps of the average accuracy on the tasks seen so far.

    AIA = 1/T * sum_{i<T} [ 1/(i+1) * sum_{j<=i} R[i][j] ]
    (Rebuffi et al. 2017, iCaRL, "average incremental accuracy"; with tasks of equal size this
    equals their accuracy over all classes seen so far, averaged over steps.)
    """
    matrix = as_matrix(R)
    return float(np.mean([_seen(matrix, i).mean() for i in range(matrix.shape[0])]))


def backward_transfer(R: AccuracyMatrix) -> float:
    """Average change of accuracy on each old task between just after learning it and the end.

    BWT = 1/(T-1) * sum_{j<T-1} (R[T-1][j] - R[j][j])   (Lopez-Paz & Ranzato 2017, GEM, eq. 3).
    Negative values mean forgetting; NaN for a single task (nothing to compare).
    """
    matrix = as_matrix(R)
    last = matrix.shape[0] - 1
    if last == 0:
        return float("nan")
    final = _seen(matrix, last)[:last]
    just_learned = np.array([_seen(matrix, j)[j] for j in range(last)])
    return float(np.mean(final - just_learned))


def forgetting(R: AccuracyMatrix) -> float:
    """Forgetting <F> as the CTrL benchmark reports it.

    F = 1/(T-1) * sum_{t<T-1} (R[T-1][t] - R[t][t])   (Veniat, thesis eq. 5.2).
    The thesis states that this is Lopez-Paz & Ranzato's backward transfer, with its sign:
    negative values mean the model forgot, positive values that later tasks helped. For the
    positive, max-based measure of Chaudhry et al. use `max_forgetting`.
    """
    return backward_transfer(R)


def max_forgetting(R: AccuracyMatrix) -> float:
    """Average drop from each old task's best accuracy to its final accuracy.

    f_j = max_{l<T-1} R[l][j] - R[T-1][j] for j < T-1 (maximum over the steps l >= j where task j
    was evaluated);  F = 1/(T-1) * sum_{j<T-1} f_j
    (Chaudhry et al. 2018, "Riemannian Walk", eq. 9-10). Positive values mean forgetting; NaN for
    a single task.
    """
    matrix = as_matrix(R)
    last = matrix.shape[0] - 1
    if last == 0:
        return float("nan")
    final = _seen(matrix, last)[:last]
    best = np.array([np.nanmax(matrix[j:last, j]) for j in range(last)])
    return float(np.mean(best - final))


def forward_transfer(R: AccuracyMatrix, baseline: Sequence[float] | np.ndarray) -> float:
    """Average accuracy on each task just before training on it, above a random-init model.

    FWT = 1/(T-1) * sum_{j=1}^{T-1} (R[j-1][j] - b[j])   (Lopez-Paz & Ranzato 2017, GEM, eq. 4),
    where b[j] is the test accuracy on task j of the model at random initialisation. Needs the
    entries just above the diagonal; NaN for a single task.
    """
    matrix = as_matrix(R)
    b = np.asarray(baseline, dtype=float)
    tasks = matrix.shape[0]
    if b.shape != (matrix.shape[1],) and b.shape != (tasks,):
        raise ValueError(f"baseline needs one accuracy per task ({tasks}); got shape {b.shape}")
    if tasks == 1:
        return float("nan")
    before = np.array([matrix[j - 1, j] for j in range(1, tasks)])
    if np.isnan(before).any():
        raise ValueError("forward transfer needs R[j-1][j], the accuracy on each task before training on it")
    return float(np.mean(before - b[1:tasks]))


def ctrl_transfer(R: AccuracyMatrix, last_task_alone_accuracy: float) -> float:
    """Transfer T(S) of the CTrL benchmark: what the stream brings to its last task.

    T(S) = R[T-1][T-1] - acc(last task | learned in isolation)   (Veniat, thesis eq. 5.3), the
    second term being the accuracy of an independent learner trained on the last task alone.
    """
    matrix = as_matrix(R)
    last = matrix.shape[0] - 1
    return float(_seen(matrix, last)[last] - last_task_alone_accuracy)


def lca(curves: Sequence[Sequence[float]] | np.ndarray, beta: int) -> float:
    """Learning curve area LCA@beta: how fast each task is learned, averaged over tasks.

    LCA@beta = 1/T * sum_t [ 1/(beta+1) * sum_{b=0}^{beta} A[t][b] ]
    (Veniat, thesis eq. 5.4; Chaudhry et al. 2019, A-GEM, section 4), where `curves[t][b]` is the
    test accuracy on task t after b mini-batches of training on task t (b = 0: before any update).
    """
    if beta < 0:
        raise ValueError(f"beta must be >= 0; got {beta}")
    rows = [np.asarray(curve, dtype=float) for curve in curves]
    if not rows:
        raise ValueError("lca needs at least one learning curve")
    short = [t for t, curve in enumerate(rows) if len(curve) < beta + 1]
    if short:
        raise ValueError(f"learning curves of tasks {short} have fewer than beta+1 = {beta + 1} points")
    return float(np.mean([curve[: beta + 1].mean() for curve in rows]))
