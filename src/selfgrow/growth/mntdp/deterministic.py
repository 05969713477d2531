"""MNTDP-D (thesis Algorithm 4): train every candidate path as an independent copy, keep the best on validation.

Each candidate is a grown copy of the learner's net (no fresh module is shared between paths),
trained by the learner's trainer as configured, so its lr/weight-decay grid and early stopping
select the hyper-parameters per path on the task's validation split, as the thesis does. The
candidate of highest validation accuracy wins; ties go to the earlier one in the search space's
order (the most reuse of the best-ranked source, i.e. the fewest new parameters).

Candidates run one after the other in this process. The thesis trains them side by side on one
GPU; separate CPU processes (torch.multiprocessing spawn) would each start a fresh interpreter,
import torch and receive a copy of the task's tensors, and on a machine of a few cores they only
compete with PyTorch's own intra-op threads for the same cores, so they are not used.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

import torch

from selfgrow.growth.mntdp.paths import Candidate
from selfgrow.growth.mntdp.training import (
    fit_candidate,
    materialise,
    trained_parameter_count,
)
from selfgrow.progress import progress_bar
from selfgrow.train.trainer import FitResult


@dataclass
class SearchOutcome:
    """What a search found: per-candidate scores (plain data), the winner, its trained net and fit."""

    scores: list[dict[str, Any]]
    chosen: int
    net: torch.nn.Module
    fit: FitResult
    search_flops: float  # training FLOPs spent besides the winner's own fit


def search_deterministic(learner: Any, task: Any, space: list[Candidate]) -> SearchOutcome:
    """Train each candidate of `space` in turn and keep the one of best validation accuracy."""
    scores: list[dict[str, Any]] = []
    best: tuple[int, torch.nn.Module, FitResult] | None = None
    spent = 0.0
    bar = progress_bar(len(space), f"mntdp-D task {task.index} paths", "path", learner.trainer.progress)
    for i, candidate in enumerate(space):
        net, state = materialise(learner, task, candidate)
        fit = fit_candidate(learner, task, candidate, net, state)
        bar.update()
        spent += fit.train_flops
        scores.append({
            "val_acc": fit.val_acc, "epochs": fit.epochs, "lr": fit.lr, "train_flops": fit.train_flops,
            "new_params": trained_parameter_count(net, task.index, candidate),
        })  # fmt: skip
        if best is None or fit.val_acc > best[2].val_acc:
            best = (i, net, fit)
    bar.close()
    assert best is not None, "the search space is never empty"
    chosen, net, fit = best
    return SearchOutcome(scores, chosen, net, fit, spent - fit.train_flops)
