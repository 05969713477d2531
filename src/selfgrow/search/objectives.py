"""The named objectives of a growth candidate: plasticity, stability, the search score, its error, and cost.

For a candidate trained on the new task and scored on validation data of every seen task:
- plasticity: its accuracy on the new task's validation split;
- stability: the mean over the earlier tasks of (accuracy after its training - accuracy before
  it), on the validation memory the learner keeps of them (0 when there is no earlier task; below
  0 means it forgot);
- score ("accuracy" in the records): the mean accuracy over the earlier tasks and the new one,
  what the learner is finally judged on. With T earlier tasks whose accuracy before growth is
  b (the same for every candidate of a task), score = (T * (b + stability) + plasticity) / (T + 1),
  so ranking by score weighs stability T times as much as plasticity;
- se: the standard error of the score from the validation sizes. Each task's accuracy is a
  proportion over n_t samples; with the Agresti-Coull adjustment p~ = (k + 2) / (n + 4) its
  variance is p~(1 - p~) / (n + 4) (never 0, even at 0 or 100% correct), and the mean of K tasks
  has variance sum_t var_t / K^2;
- cost: inference FLOPs of one input or parameters of the grown net (the grower's `objective`);
  a candidate's training FLOPs for the task are its inference FLOPs times a factor that is the
  same for every candidate of the task, so they rank alike.
"""

from __future__ import annotations

import math
from collections.abc import Mapping
from typing import Any

OBJECTIVE_NAMES = ("plasticity", "stability", "accuracy", "se")


def proportion_variance(accuracy: float, n: int) -> float:
    """Agresti-Coull variance of an accuracy measured on `n` samples (0 samples: the variance of a coin)."""
    if n <= 0:
        return 0.25
    p = (accuracy * n + 2) / (n + 4)
    return p * (1 - p) / (n + 4)


def candidate_objectives(after: Mapping[str, float], sizes: Mapping[str, int], new: str,
                         before: Mapping[str, float] | None = None) -> dict[str, Any]:
    """Plasticity, stability, score and its standard error from per-task validation accuracies.

    `after` maps task keys to the candidate's accuracies (the new task's key is `new`), `sizes`
    to the number of validation samples each was measured on, `before` the earlier tasks'
    accuracies before the candidate trained (missing: stability is not measured, reported as 0).
    """
    old = [k for k in after if k != new]
    before = before or {}
    drops = [after[k] - before[k] for k in old if k in before]
    variance = sum(proportion_variance(after[k], int(sizes.get(k, 0))) for k in after) / len(after) ** 2
    return {
        "accuracy": sum(after.values()) / len(after),
        "plasticity": after[new],
        "stability": sum(drops) / len(drops) if drops else 0.0,
        "se": math.sqrt(variance),
    }


__all__ = ["OBJECTIVE_NAMES", "candidate_objectives", "proportion_variance"]
