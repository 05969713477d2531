"""Candidate training for growth searches: a grown copy of the learner's net, trained briefly, scored on every seen task.

A candidate is the learner's current net grown by a list of operator calls, so it inherits every
weight and a few epochs suffice. It trains on the new task with deep copies of the learner's
retention strategies (carried through the growth with `on_growth`, then `before_task` on a view
of the learner whose net is the candidate), so forgetting is part of its score: the accuracy on
the validation split of the new task and on the validation memory of every task seen before
(`selfgrow.growth.validation_memory`: at most `val_memory_per_class` samples per class, counted
in the learner's memory). Its objectives (`selfgrow.search.objectives`) are the plasticity (new
task), the stability (earlier tasks' accuracy after minus before its training), the score (mean
over all seen tasks) and the score's standard error from the validation sizes. Candidates are
scored as the learner's evaluation will predict: through the strategies' `predict` (BiC's
corrections, the nearest mean of exemplars), after the after-task steps that decide predictions
(`Retention.decides_predictions_after_task`: BiC's correction of the new classes, weight aligning,
the nearest-mean classifier's memory update), run at each scoring on copies of the candidate and
of those strategies (BiC's held-out images of the new task are then drawn from the validation
split the candidate is scored on: 10 per class, against the whole split). The other after-task
steps (Fisher, a head-classified memory's update) are not run for candidates: they cost compute
and do not change what the candidate predicts. Training runs in the learner's trainer
configuration except: no lr/wd grid (the trainer's `lr` and `weight_decay`), no early stopping,
no progress bar, optimizer state carried from rung to rung, each rung's batch order drawn
from a seed of its own, and `schedule` (None: the trainer's) applied within each rung
(cosine_steps: every rung anneals to 0, the next restarts at the trainer's lr).
With `data_fraction` < 1 candidates train on a stratified subset of the task's training data
(the same subset for every candidate of a task: a cheaper proxy, as in proxy-data NAS); they are
always scored on the new task's full validation split.

Reproducibility per candidate: a candidate owns its random stream, seeded by `seed` (the search
derives it from the grower's seed, the task and the candidate's operator calls: `candidate_seed`).
Its growth draws from it and each rung trains under it (the global stream is left alone), so a
candidate's result does not depend on which other candidates were trained before it, in which
order, or in which process: a distributed worker and a single-process search give it the same
numbers (CPU; on CUDA only the CPU stream is carried from rung to rung).

Repeats (`RepeatedTraining`): a search that can afford it trains each candidate several times
from streams of their own and scores the mean, with a standard error that includes the repeats'
spread; the proxy-fidelity bench measured that spread above the validation-size error.
"""

from __future__ import annotations

import contextlib
import copy
import dataclasses
import hashlib
import json
import math
from collections.abc import Iterator
from typing import Any

import torch

from selfgrow.errors import SelfgrowError
from selfgrow.growth.base import AdoptedTraining, GrowthPlan
from selfgrow.growth.validation_memory import memory_view
from selfgrow.retention.base import overriding
from selfgrow.retention.settings import apply_settings
from selfgrow.search.objectives import candidate_objectives
from selfgrow.train.parallel import DataParallel
from selfgrow.train.trainer import FitResult, OptimizerState


REPEAT_SEED_STEP = 1_000_033  # trainer-seed offset of each repeat: its own batch order and augmentations


class LearnerView:
    """The learner as the retention hooks see it, with a candidate net in place of its own."""

    def __init__(self, learner: Any, net: torch.nn.Module) -> None:
        self._learner = learner
        self.net = net

    def __getattr__(self, name: str) -> Any:
        return getattr(self._learner, name)


class CandidateTraining:
    """One candidate: grown copy, retention copies, training in rungs (`train_to`), compute spent (`spent_flops`)."""

    def __init__(self, learner: Any, task: Any, ops: list[dict[str, Any]], data_fraction: float = 1.0,
                 seed: int = 0, val_memory_per_class: int | None = None,
                 retention_settings: dict[str, float] | None = None, repeat: int = 0,
                 schedule: str | None = None) -> None:
        if learner.independent:
            raise SelfgrowError("Growth search needs one shared net; set mode: shared (independent mode trains a fresh net per task).")
        self.learner = learner
        self.task = task
        self.train_task = _subset(task, data_fraction, learner.trainer.seed) if data_fraction < 1 else task
        self._rng_state = _seeded_state(seed)
        with self._own_rng():
            self._grow(ops, retention_settings or {})
        self.trainer = dataclasses.replace(
            learner.trainer, lr_grid=None, wd_grid=None, grid_epochs=None, patience=None, progress=False,
            curve_batches=0, reset_optimizer=False, seed=learner.trainer.seed + REPEAT_SEED_STEP * repeat,
            schedule=schedule or learner.trainer.schedule,
        )
        self.epochs_done = 0
        self.spent_flops = 0.0
        self.fits: list[Any] = []  # each rung's FitResult, for a training adopted as the task's
        self.val_memory_per_class = val_memory_per_class
        self.before: dict[str, float] | None = None  # earlier tasks' accuracies before any training

    def _grow(self, ops: list[dict[str, Any]], retention_settings: dict[str, float]) -> None:
        """The grown copy of the learner's net, with the optimizer state and retention copies carried through
        (and set to the candidate's retention strengths)."""
        from selfgrow.train import remap_optimizer_state

        learner = self.learner
        net, growths = GrowthPlan(ops=ops).apply(learner.net)
        self.net = net if growths else copy.deepcopy(learner.net)
        self.retention = copy.deepcopy(learner.retention)
        apply_settings(self.retention, retention_settings)
        self.optimizer_state = copy.deepcopy(learner.optimizer_state)
        for growth in growths:
            self.optimizer_state = remap_optimizer_state(self.optimizer_state, growth)
            for strategy in self.retention:
                strategy.on_growth(growth)
        view = LearnerView(learner, self.net)
        for strategy in self.retention:
            strategy.before_task(view, self.task)

    @contextlib.contextmanager
    def _own_rng(self) -> Iterator[None]:
        """Run the block on this candidate's random stream (the global one is restored afterwards)."""
        with torch.random.fork_rng(devices=[]):
            torch.set_rng_state(self._rng_state)
            try:
                yield
            finally:
                self._rng_state = torch.get_rng_state()

    def train_to(self, epochs: int) -> dict[str, Any]:
        """Train on to `epochs` epochs in total, then score: mean and per-task validation accuracy."""
        if self.before is None:
            before = self._accuracies(self.learner.seen, self.net, overriding(self.retention, "predict"))
            self.before = {key: acc for key, (acc, _) in before.items()}
        if epochs > self.epochs_done:
            trainer = dataclasses.replace(self.trainer, epochs=epochs - self.epochs_done,
                                          seed=self.trainer.seed + 7919 * self.epochs_done)
            with self._own_rng():
                fit = trainer.fit(self.net, self.train_task, self.learner.scenario, self.retention,
                                  optimizer_state=self.optimizer_state)
            self.optimizer_state = fit.optimizer_state
            self.spent_flops += fit.train_flops
            self.fits.append(fit)
            self.epochs_done = epochs
            if fit.skipped_steps or not all(torch.isfinite(p).all() for p in self.net.parameters()):
                return {"accuracy": 0.0, "diverged": True, "skipped_steps": fit.skipped_steps}
        return self.score()

    def score(self) -> dict[str, Any]:
        """The candidate's objectives on the validation data of every seen task and the new one."""
        measured = self._accuracies([*self.learner.seen, self.task], *self._as_evaluated())
        per_task = {key: acc for key, (acc, _) in measured.items()}
        sizes = {key: n for key, (_, n) in measured.items()}
        result = {**candidate_objectives(per_task, sizes, str(self.task.index), self.before),
                  "val_accuracy": per_task, "val_sizes": sizes}
        parallel = DataParallel.current()
        if parallel is not None:  # data-parallel ranks race on the leader's numbers, so they prune alike
            result = json.loads(parallel.from_leader(json.dumps(result).encode() if parallel.rank == 0 else None))
        return result

    def _as_evaluated(self) -> tuple[torch.nn.Module, list[Any]]:
        """The net and the predicting strategies as the learner's evaluation will see them after the task: the
        after-task steps that decide predictions run on copies (the candidate itself trains on unchanged)."""
        deciding = [s.decides_predictions_after_task for s in self.retention]
        if not any(deciding):
            return self.net, overriding(self.retention, "predict")
        net = copy.deepcopy(self.net)
        strategies = [copy.deepcopy(s) if d else s for s, d in zip(self.retention, deciding)]
        view = LearnerView(self.learner, net)
        for strategy, d in zip(strategies, deciding):
            if d:
                strategy.after_task(view, self.task)
        return net, overriding(strategies, "predict")

    def _accuracies(self, tasks: list[Any], net: torch.nn.Module, classifiers: list[Any]) -> dict[str, tuple[float, int]]:
        """Task key -> (validation accuracy, samples) of `net` predicting through `classifiers` (`validation_accuracies`)."""
        measured, flops = validation_accuracies(self.learner, self.task, tasks, net, classifiers,
                                                self.val_memory_per_class, self.trainer.eval_batch_size)
        self.spent_flops += flops
        return measured

    def state_dict(self) -> dict[str, torch.Tensor]:
        """The candidate's trained weights and buffers as CPU copies (a winner handed to the learner)."""
        return {k: v.detach().cpu().clone() for k, v in self.net.state_dict().items()}

    def adoption(self) -> AdoptedTraining:
        """This candidate's training as the task's: its net, optimizer state, strategies and its rungs' fits as one."""
        return AdoptedTraining(net=self.net, optimizer_state=self.optimizer_state, retention=self.retention,
                               fit=merged_fit(self.fits, self.optimizer_state))


class RepeatedTraining:
    """A candidate trained `len(runs)` times (growth draws, batch orders and augmentations differ), scored by the mean.

    The score's standard error then holds both sources of noise: the spread of the repeats (training
    noise, its variance over the repeats' count) and the validation sample's (the repeats share
    the validation images, so averaging does not shrink it): se = sqrt(se_val^2 + s^2 / r), with s
    the repeats' sample standard deviation. The objectives are the repeats' means; the weights a
    kept winner hands on, and the training an adopted winner hands over, are the first repeat's.
    """

    def __init__(self, runs: list[CandidateTraining]) -> None:
        if not runs:
            raise SelfgrowError("RepeatedTraining needs at least one candidate run.")
        self.runs = runs

    @property
    def spent_flops(self) -> float:
        return sum(run.spent_flops for run in self.runs)

    def train_to(self, epochs: int) -> dict[str, Any]:
        """Train every repeat to `epochs` epochs and combine their scores (a diverged repeat fails the candidate)."""
        results = [run.train_to(epochs) for run in self.runs]
        failed = next((r for r in results if r.get("diverged")), None)
        return failed if failed is not None else combine_repeats(results)

    def state_dict(self) -> dict[str, torch.Tensor]:
        return self.runs[0].state_dict()

    def adoption(self) -> AdoptedTraining:
        return self.runs[0].adoption()


def validation_accuracies(learner: Any, new: Any, tasks: list[Any], net: torch.nn.Module, classifiers: list[Any],
                          per_class: int | None, batch_size: int) -> tuple[dict[str, tuple[float, int]], float]:
    """Task key -> (validation accuracy, samples) of `net` predicting through `classifiers` (the strategies overriding
    `predict`) in the learner's scenario: the new task's (`new`) whole split, earlier ones' validation memory of
    `per_class` samples per class; and the forward passes' FLOPs."""
    from selfgrow.nets.cost import inference_flops
    from selfgrow.train import accuracy

    scenario = learner.scenario
    out, flops = {}, 0.0
    for task in tasks:
        view = task if task is new else memory_view(task, per_class)
        acc = accuracy(net, view, scenario, "val", batch_size=batch_size, classifiers=classifiers)
        if math.isnan(acc):
            raise SelfgrowError(
                f"Task {task.name!r} has no validation data to score growth candidates on; "
                "set stream.val_fraction above 0."
            )
        out[str(task.index)] = (acc, len(view.y_val))
        head = task.index if scenario == "task" else None
        flops += float(inference_flops(net, head, sub_network=False)) * len(view.y_val)
    return out, flops


def merged_fit(fits: list[FitResult], optimizer_state: OptimizerState) -> FitResult:
    """The rungs' fits of one candidate as one training: epochs, curves and samples joined, the last rung's
    accuracy; its train FLOPs are 0, as the search's FLOPs (the plan's `search_flops`) already count them."""
    if not fits:
        raise SelfgrowError("A candidate that never trained has no training to adopt.")
    last = fits[-1]
    best = max(fits, key=lambda f: -1.0 if f.best_val_acc is None else f.best_val_acc)
    offset = sum(f.epochs for f in fits[:fits.index(best)])
    return dataclasses.replace(
        last, epochs=sum(f.epochs for f in fits), best_val_acc=best.best_val_acc,
        best_epoch=None if best.best_epoch is None else offset + best.best_epoch,
        val_curve=[v for f in fits for v in f.val_curve], loss_curve=[v for f in fits for v in f.loss_curve],
        batch_curve=[v for f in fits for v in f.batch_curve], train_samples=sum(f.train_samples for f in fits),
        train_flops=0.0, wall_time=sum(f.wall_time for f in fits), skipped_steps=sum(f.skipped_steps for f in fits),
        lr_drops=sum(f.lr_drops for f in fits), grid=[], optimizer_state=optimizer_state)


def combine_repeats(results: list[dict[str, Any]]) -> dict[str, Any]:
    """One score from several repeats' objectives: means, and se = sqrt(mean validation se^2 + var / r)."""
    r = len(results)
    mean = {key: sum(res[key] for res in results) / r for key in ("accuracy", "plasticity", "stability")}
    scores = [res["accuracy"] for res in results]
    per_task = {key: sum(res["val_accuracy"][key] for res in results) / r for key in results[0]["val_accuracy"]}
    return {**mean, "se": repeats_error(scores, [res["se"] for res in results]), "val_accuracy": per_task,
            "val_sizes": results[0]["val_sizes"], "repeat_scores": scores}


def repeats_error(scores: list[float], errors: list[float]) -> float:
    """The standard error of the mean of repeated scores sharing one validation sample: sqrt(mean se^2 + var / r)."""
    r = len(scores)
    mean = sum(scores) / r
    variance = sum((x - mean) ** 2 for x in scores) / (r - 1) if r > 1 else 0.0
    return math.sqrt(sum(e**2 for e in errors) / r + variance / r)


def candidate_seed(seed: int, task_index: int, key: str) -> int:
    """The seed of a candidate's random stream: a hash of the grower's seed, the task and the candidate's key."""
    digest = hashlib.sha256(f"{seed}/{task_index}/{key}".encode()).digest()
    return int.from_bytes(digest[:8], "little") & (2**63 - 1)


def _seeded_state(seed: int) -> torch.Tensor:
    """The CPU generator state `torch.manual_seed(seed)` would set, without touching the global stream."""
    return torch.Generator().manual_seed(seed).get_state()


def subset_indices(task: Any, fraction: float, seed: int) -> torch.Tensor:
    """The indices of a stratified `fraction` of the task's training samples (seeded by the trainer seed and task
    index): what a candidate trains on."""
    from selfgrow.data import stratified_split

    keep = stratified_split(task.y_train, fraction, seed * 1_000_003 + task.index)[1]
    if len(keep) == 0:
        raise SelfgrowError(f"data_fraction {fraction:g} leaves no training sample of task {task.name!r}; raise it.")
    return keep


def _subset(task: Any, fraction: float, seed: int) -> Any:
    """The task cut to `subset_indices`."""
    keep = subset_indices(task, fraction, seed)
    return dataclasses.replace(task, x_train=task.x_train[keep], y_train=task.y_train[keep])
