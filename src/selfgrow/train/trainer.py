"""`Trainer.fit`: train a net on one task with retention hooks, early stopping and optional lr/wd selection.

Data stay in memory: a task's tensors move to the device once, mini-batches are index slices of a
per-epoch permutation drawn from a generator seeded by (seed, task index), and augmentation and
normalisation run per batch on the device. Nothing here depends on the global RNG except what
the network itself draws (e.g. dropout), so a fit is reproducible on CPU from the seed alone.
"""

from __future__ import annotations

import contextlib
import copy
import math
import sys
import time
from collections.abc import Callable, Iterator, Sequence
from dataclasses import asdict, dataclass, field
from typing import Any

import torch
import torch.nn.functional as F
from tqdm.auto import tqdm

from selfgrow.config import TrainerConfig
from selfgrow.errors import SelfgrowError, unknown_name
from selfgrow.options import check_fields
from selfgrow.retention.base import Batch, Retention, overriding
from selfgrow.streams.task import Task
from selfgrow.train.batches import check_scenario, to_input
from selfgrow.train.device import DEVICES, resolve_device
from selfgrow.train.evaluate import accuracy
from selfgrow.train.interrupt import check as check_interrupt
from selfgrow.train.parallel import DataParallel

OptimizerState = dict[str, dict[str, torch.Tensor]]  # parameter name -> optimizer state tensors
BAD_STEPS_BEFORE_LR_DROP = 3  # consecutive non-finite losses after which the learning rate is halved


@dataclass
class FitResult:
    """What one `fit` did: epochs, validation curves (per epoch, and per batch for LCA), compute spent.

    `val_acc` is the validation accuracy of the weights `fit` leaves in the net (the best epoch's with
    early stopping, else the last epoch's); `best_val_acc` the highest seen at any epoch end.
    """

    epochs: int
    val_acc: float | None
    best_val_acc: float | None
    best_epoch: int | None
    val_curve: list[float]
    loss_curve: list[float]
    batch_curve: list[float]
    train_samples: int
    train_flops: float
    wall_time: float
    lr: float
    weight_decay: float
    stopped_early: bool = False
    skipped_steps: int = 0  # steps whose loss was NaN or infinite: no update was made
    lr_drops: int = 0  # times the learning rate was halved after BAD_STEPS_BEFORE_LR_DROP bad steps in a row
    grid: list[dict] = field(default_factory=list)
    optimizer_state: OptimizerState = field(default_factory=dict, repr=False)  # only when carried (reset_optimizer=False)

    def to_dict(self) -> dict[str, Any]:
        """JSON-ready summary (the optimizer state is left out)."""
        out = asdict(self)
        out.pop("optimizer_state")
        return out

    @classmethod
    def from_dict(cls, data: dict[str, Any]) -> FitResult:
        """Rebuild a result from `to_dict()` (with no optimizer state); `from_dict(d).to_dict() == d`."""
        return cls(**copy.deepcopy(data))


@dataclass
class _TaskData:
    """One task's train/val tensors on the training device."""

    x_train: torch.Tensor
    y_train: torch.Tensor
    y_global_train: torch.Tensor  # stream-wide ids of y_train, mapped once rather than per batch
    x_val: torch.Tensor
    y_val: torch.Tensor

    @classmethod
    def on(cls, task: Task, device: torch.device) -> "_TaskData":
        y_train = task.y_train.to(device)
        return cls(task.x_train.to(device), y_train, task.global_labels(y_train), task.x_val.to(device),
                   task.y_val.to(device))


@dataclass
class Trainer(TrainerConfig):
    """Training configuration and loop for one task at a time.

    The options and their defaults are `selfgrow.config.TrainerConfig`'s (declared once there, so a
    config file, the CLI and `Trainer(...)` in Python train alike), plus the run-wide `device` and `seed`.

    `schedule`: "cosine" anneals to 0 over the epochs (stepped once per epoch); "cosine_steps" the
    same over the optimizer steps, so that even a one-epoch fit ends at lr 0; "step" divides the lr
    by 10 at 50% and 75% of the epochs. `patience`: stop after that many epochs without a better
    validation accuracy and restore the best weights (None: off). `lr_grid`/`wd_grid`: per-task
    selection on the task's own validation split (each stream is seen once, so no stream-level
    tuning): every combination is trained from the same starting point for `grid_epochs` (None: the
    full `epochs`, and the best trial's weights are kept as the result); with fewer grid epochs the
    best setting is trained again in full. `reset_optimizer=False` carries the optimizer's
    per-parameter state (momentum, Adam moments) from task to task instead of starting fresh.
    `curve_batches`: validation accuracy is also recorded after each of the first that many batches
    (the learning-curve area metric, LCA). Adam's `weight_decay` is the L2 form of
    `torch.optim.Adam`. `amp`: autocast on CUDA only (bfloat16 where supported, else float16 with
    loss scaling); ignored on other devices.
    `progress`: tqdm bar over epochs (None: only when stderr is a terminal). `min_epoch_steps`: an
    epoch passes over the training set as often as it takes (a fresh shuffle each time) to make at
    least that many batches, so that a task of a few dozen images is trained for some hundred steps
    as under the thesis' iteration-based early stopping (None: one pass per epoch).
    """

    device: str = "auto"
    seed: int = 0

    def __post_init__(self) -> None:
        check_fields(self, "Trainer")
        _check_choice("device", str(self.device).split(":", 1)[0], DEVICES)
        if self.grid_epochs is not None and self.grid_epochs > self.epochs:
            raise SelfgrowError(f"Trainer grid_epochs={self.grid_epochs!r} is invalid; accepted: None or 1..epochs.")

    def fit(
        self,
        net: torch.nn.Module,
        task: Task,
        scenario: str,
        retention: Sequence[Retention] = (),
        seen_tasks: Sequence[Task] | None = None,
        optimizer_state: OptimizerState | None = None,
        on_step: Callable[[float], None] | None = None,
    ) -> FitResult:
        """Train `net` in place on `task` and return what it did.

        `seen_tasks` (earlier tasks) restrict class-IL validation predictions to their classes and the
        task's own (None: every output of the single head, which covers exactly the seen classes when the
        learner grew it). `optimizer_state` is the previous task's (used when `reset_optimizer` is False).
        `on_step` is called with every step's loss (the run's loggers), grid trials' steps included.
        """
        check_scenario(scenario)
        started = time.perf_counter()
        device = resolve_device(self.device)
        net.to(device)
        data = _TaskData.on(task, device)
        seen_ids = None
        if scenario == "class" and seen_tasks is not None:
            seen_ids = sorted({c for t in [*seen_tasks, task] for c in t.class_ids})
        flops_per_sample = self._flops_per_sample(net, task, scenario)
        settings = [(lr, wd) for lr in (self.lr_grid or [self.lr]) for wd in (self.wd_grid or [self.weight_decay])]
        context = dict(data=data, task=task, scenario=scenario, retention=list(retention), seen_ids=seen_ids, device=device,
                       on_step=on_step)
        state = None if self.reset_optimizer else optimizer_state
        if len(settings) == 1:
            run = self._train(net, *settings[0], self.epochs, state, **context)
        else:
            run = self._select(net, settings, state, context)
        run.train_flops = float(run.train_samples) * flops_per_sample
        run.wall_time = time.perf_counter() - started
        if optimizer_state and not self.reset_optimizer:
            run.optimizer_state = {**optimizer_state, **run.optimizer_state}
        return run

    def planned_samples(self, n_train: int, replaying: int = 0) -> int:
        """At most how many samples one `fit` on `n_train` new samples passes (its training FLOPs are these times
        the net's per-sample FLOPs): every epoch run (no early stop), every grid setting, and each of `replaying`
        strategies filling every batch with as many replayed samples (`Retention.replay` gives at most that)."""
        per_epoch = n_train * _epoch_passes(n_train, self.batch_size, self.min_epoch_steps) * (1 + replaying)
        settings = len(self.lr_grid or [self.lr]) * len(self.wd_grid or [self.weight_decay])
        if settings == 1:
            return self.epochs * per_epoch
        again = self.epochs if self.grid_epochs not in (None, self.epochs) else 0
        return (settings * (self.grid_epochs or self.epochs) + again) * per_epoch

    def _select(
        self,
        net: torch.nn.Module,
        settings: list[tuple[float, float]],
        optimizer_state: OptimizerState | None,
        context: dict[str, Any],
    ) -> FitResult:
        """Train a copy per (lr, weight decay) from the same start, keep the best on validation.

        With `grid_epochs` short of `epochs` the winner is trained again in full. The samples of
        every trial count towards the compute spent; each trial runs under a forked global RNG.
        """
        data, task, device = context["data"], context["task"], context["device"]
        if len(data.y_val) == 0:
            raise SelfgrowError(f"lr_grid/wd_grid need a validation split, but task {task.name!r} has none.")
        grid, samples, best = [], 0, None
        for lr, wd in settings:
            trial = copy.deepcopy(net)
            with torch.random.fork_rng(devices=[device] if device.type == "cuda" else []):
                run = self._train(trial, lr, wd, self.grid_epochs or self.epochs, optimizer_state, **context)
            samples += run.train_samples
            grid.append({"lr": lr, "weight_decay": wd, "val_acc": run.val_acc})
            if best is None or run.val_acc > best[1].val_acc:
                best = (trial, run)
        assert best is not None
        trial, run = best
        if self.grid_epochs in (None, self.epochs):
            net.load_state_dict(trial.state_dict())
        else:
            run = self._train(net, run.lr, run.weight_decay, self.epochs, optimizer_state, **context)
            samples += run.train_samples
        run.grid, run.train_samples = grid, samples
        return run

    # ---- one training run -------------------------------------------------------------------------

    def _train(
        self,
        net: torch.nn.Module,
        lr: float,
        weight_decay: float,
        epochs: int,
        optimizer_state: OptimizerState | None,
        *,
        data: _TaskData,
        task: Task,
        scenario: str,
        retention: list[Retention],
        seen_ids: list[int] | None,
        device: torch.device,
        on_step: Callable[[float], None] | None = None,
    ) -> FitResult:
        """Train for up to `epochs` with one (lr, weight decay); returns curves and the optimizer state.

        The loop (epochs, early stopping, curves) is here; an epoch's batches are `_epoch`'s, a batch's
        assembly `_assemble`'s, its loss `_batch_loss`'s, the step and its guards `_NonFiniteGuard` and `_step`'s.
        """
        track_val = len(data.y_val) > 0 and (self.val_every_epoch or self.patience is not None)
        parallel = DataParallel.current()  # under torchrun: this rank's share of every batch

        def val_acc() -> float:
            if parallel is not None:
                parallel.average_buffers(net)
            return accuracy(net, _ValView(task, data), scenario, "val", seen_ids, device, self.eval_batch_size)

        run = _Run(self, task, device, curve_batches=self.curve_batches if len(data.y_val) > 0 else 0,
                   val_acc=val_acc, parallel=parallel)
        run.on_step = on_step
        val_curve: list[float] = []
        loss_curve: list[float] = []
        best = _Best(self.patience)
        epoch = 0
        with _frozen(net, _merged_lr_scales(net, retention)) as groups:
            optimizer = self._optimizer(groups, lr, weight_decay)
            if optimizer is not None and optimizer_state:
                _load_named_state(optimizer, dict(net.named_parameters()), optimizer_state)
            steps = _epoch_steps(len(data.y_train), self.batch_size, self.min_epoch_steps)
            scheduler = self._scheduler(optimizer, epochs, steps) if optimizer is not None else None
            run.step_scheduler = scheduler if self.schedule == "cosine_steps" else None
            bar = tqdm(range(epochs), desc=f"task {task.index}", leave=False, disable=not self._show_progress())
            for epoch in bar:
                loss_curve.append(self._epoch(net, data, task, scenario, retention, optimizer, run))
                if scheduler is not None and run.step_scheduler is None:
                    scheduler.step()
                if track_val:
                    val_curve.append(val_acc())
                    bar.set_postfix(loss=f"{loss_curve[-1]:.3f}", val=f"{val_curve[-1]:.3f}")
                    if best.update(val_curve[-1], epoch, net):
                        break
            bar.close()
            if parallel is not None:
                parallel.average_buffers(net)
            keep_state = optimizer is not None and not self.reset_optimizer
            final_state = _named_state(optimizer, net) if keep_state else {}
        if best.state is not None:
            net.load_state_dict(best.state)
            final_acc: float | None = best.acc
        elif track_val:
            final_acc = val_curve[-1]
        else:
            final_acc = val_acc() if len(data.y_val) else None
        return FitResult(
            epochs=epoch + 1,
            val_acc=final_acc,
            best_val_acc=best.acc if best.epoch is not None else None,
            best_epoch=best.epoch,
            val_curve=val_curve,
            loss_curve=loss_curve,
            batch_curve=run.batch_curve,
            train_samples=run.samples,
            train_flops=0.0,
            wall_time=0.0,
            lr=lr,
            weight_decay=weight_decay,
            stopped_early=best.stopped,
            skipped_steps=run.guard.skipped,
            lr_drops=run.guard.lr_drops,
            optimizer_state=final_state,
        )

    def _epoch(self, net: torch.nn.Module, data: _TaskData, task: Task, scenario: str, retention: list[Retention],
               optimizer: torch.optim.Optimizer | None, run: _Run) -> float:
        """One pass over the epoch's batches; returns the mean loss of the steps taken (NaN when none was)."""
        net.train()
        order = _epoch_order(len(data.y_train), self.batch_size, self.min_epoch_steps, run.order_gen).to(run.device)
        loss_sum, seen = 0.0, 0
        for idx in _batches(order, self.batch_size):
            check_interrupt()
            batch, replay = self._assemble(data, idx, task, retention, run)
            with run.autocast():
                loss = self._batch_loss(net, batch, replay, task, scenario, retention, run)
            run.samples += len(idx) + (len(replay.y) if replay is not None else 0)
            value = float(loss.detach())  # the step's one device sync: NaN check and loss curve
            if run.parallel is not None:
                value = run.parallel.mean(value, run.device)  # every rank skips or steps alike
            if run.guard.finite(value, optimizer):
                run.samples += _step(optimizer, run.scaler, loss, run.parallel, run.overriders(retention, "after_backward"),
                                     net)
                loss_sum += value * len(idx)
                seen += len(idx)
            run.steps += 1
            if run.step_scheduler is not None:
                run.step_scheduler.step()
            if run.on_step is not None:
                run.on_step(value)
            if run.steps <= run.curve_batches:
                run.batch_curve.append(run.val_acc())
        return loss_sum / seen if seen else float("nan")

    def _assemble(self, data: _TaskData, idx: torch.Tensor, task: Task, retention: list[Retention],
                  run: _Run) -> tuple[Batch, Batch | None]:
        """The batch of new samples at `idx` and the strategies' replayed samples to mix into it."""
        y = data.y_train[idx]
        batch = Batch(data.x_train[idx], y, torch.full_like(y, task.index), data.y_global_train[idx])
        return batch, self._replay(retention, len(idx), run.replay_gen, run.device)

    def _batch_loss(
        self,
        net: torch.nn.Module,
        batch: Batch,
        replay: Batch | None,
        task: Task,
        scenario: str,
        retention: list[Retention],
        run: _Run,
    ) -> torch.Tensor:
        """Classification loss of new and replayed samples plus every strategy's penalties (new and replayed samples)."""
        parallel = run.parallel
        classifiers = run.overriders(retention, "classification_loss")
        classify = classifiers[0].classification_loss if classifiers else None
        loss, new, logits, replayed = self._loss(net, batch, replay, task, scenario, run.augment_gen, parallel, classify)
        scale = 1.0 if parallel is None else parallel.penalty_scale(len(new.y), len(batch.y))
        for strategy in retention:
            extra = strategy.penalty(net, new, logits)
            if extra is not None:
                loss = loss + (extra if parallel is None else extra * scale)
        if replayed:
            mine = sum(len(group.y) for group, _ in replayed)
            old_scale = 1.0 if parallel is None else parallel.penalty_scale(mine, len(replay.y))
            for strategy in run.overriders(retention, "replay_penalty"):
                for group, group_logits in replayed:
                    extra = strategy.replay_penalty(net, group, group_logits)
                    if extra is not None:
                        loss = loss + (extra if parallel is None else extra * old_scale)
        return loss

    def _loss(
        self,
        net: torch.nn.Module,
        batch: Batch,
        replay: Batch | None,
        task: Task,
        scenario: str,
        augment_gen: torch.Generator,
        parallel: DataParallel | None = None,
        classify: Any = None,
    ) -> tuple[torch.Tensor, Batch, torch.Tensor, list[tuple[Batch, torch.Tensor]]]:
        """Mean cross-entropy over new and replayed samples; also the transformed new batch and its logits, and
        the replayed samples with their logits (one group, or one per earlier task in task-IL). `classify`
        (a strategy's `classification_loss`) replaces the cross-entropy on a shared head.

        Task-IL: each sample is scored by the head of its own task against local labels (a mixed batch is
        grouped by task id). Class-IL: the single head over all classes seen so far, global labels.
        Domain-IL: the shared head, global labels. Replayed samples are augmented and normalised like
        the new ones. Under `parallel` this rank keeps its share of the new and of the replayed rows
        (`DataParallel.share`), scaled so that the group's averaged gradient is the whole batch's.
        """
        x_all = batch.x if replay is None else torch.cat([batch.x, replay.x])
        x_all = to_input(x_all, task, augment_gen)
        n_all, n_new = len(x_all), len(batch.y)
        new = Batch(x_all[:n_new], batch.y, batch.task, batch.y_global)
        old = None if replay is None else Batch(x_all[n_new:], replay.y, replay.task, replay.y_global)
        w_new = w_old = 1.0
        if parallel is not None:
            new, w_new = parallel.share(new)
            if old is not None:
                old, w_old = parallel.share(old)
        mean = (parallel.world if parallel is not None else 1, n_all)  # a sum of weighted CEs x world / n_all
        if scenario != "task":
            joined = x_all if parallel is None else torch.cat([new.x] + ([] if old is None else [old.x]))
            loss, logits, replayed = _shared_head_loss(net, joined, new, old, w_new, w_old, mean, parallel is None,
                                                       classify)
        else:
            loss, logits, replayed = _own_heads_loss(net, new, old, task.index, w_new, w_old, mean, parallel is None)
        return loss, new, logits, replayed

    @staticmethod
    def _replay(retention: list[Retention], batch_size: int, generator: torch.Generator, device: torch.device) -> Batch | None:
        """All strategies' replay samples for one batch, concatenated and moved to the device (None if none)."""
        parts = [b for b in (r.replay(batch_size, generator) for r in retention) if b is not None and len(b.y)]
        if not parts:
            return None
        return Batch(*(torch.cat([getattr(b, f) for b in parts]).to(device) for f in ("x", "y", "task", "y_global")))

    def _optimizer(self, groups: list[dict], lr: float, weight_decay: float) -> torch.optim.Optimizer | None:
        """SGD or Adam over the parameter groups, each group's lr scaled by its factor (None: nothing to train)."""
        if not groups:
            return None
        param_groups = [{"params": g["params"], "lr": lr * g["scale"]} for g in groups]
        if self.optimizer == "sgd":
            return torch.optim.SGD(param_groups, lr=lr, momentum=self.momentum, weight_decay=weight_decay)
        return torch.optim.Adam(param_groups, lr=lr, weight_decay=weight_decay)

    def _scheduler(self, optimizer: torch.optim.Optimizer, epochs: int,
                   steps_per_epoch: int = 1) -> torch.optim.lr_scheduler.LRScheduler | None:
        """The lr schedule of one fit: stepped once per epoch, or once per optimizer step for "cosine_steps"."""
        if self.schedule == "cosine":
            return torch.optim.lr_scheduler.CosineAnnealingLR(optimizer, T_max=epochs)
        if self.schedule == "cosine_steps":
            return torch.optim.lr_scheduler.CosineAnnealingLR(optimizer, T_max=epochs * steps_per_epoch)
        if self.schedule == "step":
            milestones = sorted({max(1, epochs // 2), max(1, (3 * epochs) // 4)})
            return torch.optim.lr_scheduler.MultiStepLR(optimizer, milestones=milestones, gamma=0.1)
        return None

    @staticmethod
    def _flops_per_sample(net: torch.nn.Module, task: Task, scenario: str) -> float:
        """Training FLOPs for one sample of this task's head (`selfgrow.nets.cost` caches them per spec)."""
        from selfgrow.nets.cost import training_flops_per_sample

        return float(training_flops_per_sample(net, task=task.index if scenario == "task" else None))

    def _show_progress(self) -> bool:
        return sys.stderr.isatty() if self.progress is None else bool(self.progress)


class _ValView:
    """A task whose val split is the device copy already made, so evaluation does not copy it again."""

    def __init__(self, task: Task, data: _TaskData) -> None:
        self._task, self.x_val, self.y_val = task, data.x_val, data.y_val

    def __getattr__(self, name: str) -> Any:
        return getattr(self._task, name)


def _shared_head_loss(net: torch.nn.Module, x: torch.Tensor, new: Batch, old: Batch | None, w_new: float,
                      w_old: float, mean: tuple[int, int], plain: bool,
                      classify: Any = None) -> tuple[torch.Tensor, torch.Tensor, list]:
    """Class- and domain-IL: one head over global labels for the new rows and the replayed ones after them.

    `plain` (no data parallelism): the mean loss of the whole batch in one call, no weighting ops. The loss
    is cross-entropy, or the per-sample losses of `classify(x, logits, y)` when a strategy replaces it.
    """
    y = new.y_global if old is None else torch.cat([new.y_global, old.y_global])
    logits = net(x)
    replayed = [] if old is None else [(old, logits[len(new.y):])]
    if plain and classify is None:
        return F.cross_entropy(logits, y), logits[: len(new.y)], replayed
    per_sample = F.cross_entropy(logits, y, reduction="none") if classify is None else classify(x, logits, y)
    if plain:
        return per_sample.mean(), logits[: len(new.y)], replayed
    weights = torch.full_like(y, w_new, dtype=logits.dtype)
    weights[len(new.y):] = w_old
    ce = (per_sample * weights).sum()
    return ce * mean[0] / mean[1], logits[: len(new.y)], replayed


def _own_heads_loss(net: torch.nn.Module, new: Batch, old: Batch | None, task_index: int, w_new: float,
                    w_old: float, mean: tuple[int, int], plain: bool) -> tuple[torch.Tensor, torch.Tensor, list]:
    """Task-IL: new rows on the task's head, replayed rows grouped by task, each on its own head, local labels.

    Without replay and data parallelism (`plain`), the common case: a plain mean cross-entropy.
    """
    logits = net(new.x, task=task_index)
    if old is None and plain:
        return F.cross_entropy(logits, new.y), logits, []
    ce = F.cross_entropy(logits, new.y, reduction="sum") * w_new
    replayed = []
    for t in [] if old is None else torch.unique(old.task).tolist():
        rows = old.task == t
        group = Batch(old.x[rows], old.y[rows], old.task[rows], old.y_global[rows])
        group_logits = net(group.x, task=int(t))
        ce = ce + F.cross_entropy(group_logits, group.y, reduction="sum") * w_old
        replayed.append((group, group_logits))
    return ce * mean[0] / mean[1], logits, replayed


class _Run:
    """What one training run carries from batch to batch: its random streams, autocast, counters and guards.

    Each stream is seeded from (trainer seed, task index): the batch order, the replay draws and the
    augmentations (CPU generators, so every device gets the same crops).
    """

    def __init__(self, trainer: Trainer, task: Task, device: torch.device, curve_batches: int,
                 val_acc: Any, parallel: DataParallel | None) -> None:
        base_seed = trainer.seed * 1_000_003 + task.index
        self.order_gen = torch.Generator().manual_seed(base_seed)
        self.replay_gen = torch.Generator().manual_seed(base_seed + 1)
        self.augment_gen = torch.Generator().manual_seed(base_seed + 2)
        self.device, self.parallel, self.val_acc, self.curve_batches = device, parallel, val_acc, curve_batches
        self.use_amp = trainer.amp and device.type == "cuda"
        self.amp_dtype = torch.bfloat16 if self.use_amp and torch.cuda.is_bf16_supported() else torch.float16
        self.scaler = torch.amp.GradScaler("cuda") if self.use_amp and self.amp_dtype == torch.float16 else None
        self.guard = _NonFiniteGuard()
        self.samples, self.steps = 0, 0
        self.on_step: Any = None  # called with each step's loss (`Trainer.fit`'s `on_step`)
        self.step_scheduler: Any = None  # an lr schedule stepped after every batch ("cosine_steps")
        self.batch_curve: list[float] = [val_acc()] if curve_batches else []
        self._overriders: dict[str, list[Retention]] = {}

    def autocast(self) -> contextlib.AbstractContextManager:
        return torch.autocast(self.device.type, dtype=self.amp_dtype) if self.use_amp else contextlib.nullcontext()

    def overriders(self, retention: list[Retention], hook: str) -> list[Retention]:
        """The strategies overriding `hook` (`after_backward`, `classification_loss`, ...), found once per run."""
        if hook not in self._overriders:
            self._overriders[hook] = overriding(retention, hook)
        return self._overriders[hook]


class _Best:
    """Tracks the best validation accuracy; with a patience, snapshots its weights and says when to stop."""

    def __init__(self, patience: int | None) -> None:
        self.patience = patience
        self.acc, self.epoch, self.state, self.since, self.stopped = float("-inf"), None, None, 0, False

    def update(self, acc: float, epoch: int, net: torch.nn.Module) -> bool:
        """Record one epoch's accuracy; True when training should stop early."""
        if acc > self.acc:
            self.acc, self.epoch, self.since = acc, epoch, 0
            if self.patience is not None:
                self.state = {k: v.detach().clone() for k, v in net.state_dict().items()}
            return False
        self.since += 1
        self.stopped = self.patience is not None and self.since >= self.patience
        return self.stopped


class _NonFiniteGuard:
    """Skips the update of a step whose loss is NaN or infinite; halves the lr after a run of them.

    A non-finite loss would write NaN into the weights and the optimizer state, ruining every later
    task; skipping keeps the last finite weights. Repeated bad steps usually mean the lr is too high
    for the current (e.g. just grown) net, hence the halving. Checking costs one device sync per step.
    """

    def __init__(self) -> None:
        self.skipped, self.lr_drops, self._in_a_row = 0, 0, 0

    def finite(self, loss: float, optimizer: torch.optim.Optimizer | None) -> bool:
        """True when the step may update the weights; otherwise the skip is counted (and the lr maybe halved)."""
        if math.isfinite(loss):
            self._in_a_row = 0
            return True
        self.skipped += 1
        self._in_a_row += 1
        if self._in_a_row >= BAD_STEPS_BEFORE_LR_DROP and optimizer is not None:
            for group in optimizer.param_groups:
                group["lr"] *= 0.5
            self.lr_drops += 1
            self._in_a_row = 0
        return False


def _step(optimizer: torch.optim.Optimizer | None, scaler: torch.amp.GradScaler | None, loss: torch.Tensor,
          parallel: DataParallel | None = None, surgeons: Sequence[Retention] = (),
          net: torch.nn.Module | None = None) -> int:
    """One optimizer step on `loss` (with loss scaling for float16 autocast; nothing when all is frozen);
    under `parallel` the gradients are the group's mean; `surgeons`' `after_backward` edit them before the step.
    Returns the samples the surgeons passed forward and backward for their own gradients."""
    extra = 0
    if optimizer is None:
        return extra
    optimizer.zero_grad(set_to_none=True)
    params = [p for group in optimizer.param_groups for p in group["params"]]
    (loss if scaler is None else scaler.scale(loss)).backward()
    if parallel is not None:
        parallel.average_gradients(params)
    if surgeons:
        if scaler is not None:
            scaler.unscale_(optimizer)  # the strategies see (and edit) the gradients the step applies
        for strategy in surgeons:
            extra += strategy.after_backward(net, params) or 0
    if scaler is None:
        optimizer.step()
    else:
        scaler.step(optimizer)
        scaler.update()
    return extra


def _check_choice(kind: str, value: str, choices: tuple[str, ...]) -> None:
    if value not in choices:
        raise unknown_name(kind, value, choices)


def _epoch_order(n: int, batch_size: int, min_steps: int | None, generator: torch.Generator) -> torch.Tensor:
    """One epoch's sample order: shuffled passes over the `n` samples, enough for `min_steps` batches."""
    return torch.cat([torch.randperm(n, generator=generator) for _ in range(_epoch_passes(n, batch_size, min_steps))])


def _epoch_passes(n: int, batch_size: int, min_steps: int | None) -> int:
    """How many passes over `n` samples one epoch makes: enough for `min_steps` batches, at least one."""
    return max(1, math.ceil((min_steps or 0) * batch_size / n)) if n else 1


def _epoch_steps(n: int, batch_size: int, min_steps: int | None) -> int:
    """The number of batches `_batches` cuts from one `_epoch_order` of `n` samples (at least 1)."""
    return max(1, len(_batch_starts(_epoch_passes(n, batch_size, min_steps) * n, batch_size)))


def _batch_starts(n: int, batch_size: int) -> list[int]:
    """Where the batches of `n` samples start; a trailing batch of one sample joins the previous one
    (BatchNorm needs 2)."""
    starts = list(range(0, n, batch_size))
    if len(starts) > 1 and n - starts[-1] == 1:
        starts.pop()
    return starts


def _batches(order: torch.Tensor, batch_size: int) -> Iterator[torch.Tensor]:
    """Index slices of `order`, cut at `_batch_starts`."""
    n = len(order)
    starts = _batch_starts(n, batch_size)
    for i, start in enumerate(starts):
        end = starts[i + 1] if i + 1 < len(starts) else n
        yield order[start:end]


def _merged_lr_scales(net: torch.nn.Module, retention: Sequence[Retention]) -> dict[str, float]:
    """Per-parameter lr factor: 0 for what the net itself declares frozen (e.g. MNTDP's old modules),
    times the product of every strategy's factor (missing names count as 1)."""
    frozen = net.frozen_parameter_names() if hasattr(net, "frozen_parameter_names") else set()
    scales: dict[str, float] = {name: 0.0 for name in frozen}
    for strategy in retention:
        for name, factor in strategy.param_lr_scale(net).items():
            if float(factor) < 0:
                raise SelfgrowError(f"Learning-rate factor {factor!r} for {name!r} is invalid; accepted: a number >= 0.")
            scales[name] = scales.get(name, 1.0) * float(factor)
    return scales


@contextlib.contextmanager
def _frozen(net: torch.nn.Module, scales: dict[str, float]) -> Iterator[list[dict]]:
    """Parameter groups by lr factor; factor-0 parameters get no gradient and no optimizer entry while inside.

    Leaving them out of the optimizer is what keeps them exactly unchanged: a zero lr alone would still
    let weight decay and momentum act through some optimizers' update rules.
    """
    restore = {name: p.requires_grad for name, p in net.named_parameters()}
    by_scale: dict[float, list[torch.nn.Parameter]] = {}
    for name, p in net.named_parameters():
        scale = scales.get(name, 1.0)
        if scale == 0.0:
            p.requires_grad_(False)
        elif p.requires_grad:
            by_scale.setdefault(scale, []).append(p)
    try:
        yield [{"scale": s, "params": ps} for s, ps in by_scale.items()]
    finally:
        for name, p in net.named_parameters():
            p.requires_grad_(restore[name])


def _named_state(optimizer: torch.optim.Optimizer, net: torch.nn.Module) -> OptimizerState:
    """The optimizer's per-parameter state keyed by parameter name (CPU copies)."""
    return {
        name: {k: v.detach().cpu().clone() for k, v in optimizer.state[p].items() if torch.is_tensor(v)}
        for name, p in net.named_parameters()
        if p in optimizer.state and optimizer.state[p]
    }


def _load_named_state(optimizer: torch.optim.Optimizer, params: dict[str, torch.nn.Parameter], state: OptimizerState) -> None:
    """Put name-keyed state back into `optimizer` for the parameters it trains (shape mismatches are skipped)."""
    trained = {p for g in optimizer.param_groups for p in g["params"]}
    for name, entries in state.items():
        p = params.get(name)
        if p is None or p not in trained:
            continue
        if any(v.dim() and v.shape != p.shape for v in entries.values()):
            continue
        optimizer.state[p] = {k: (v.to(p.device) if v.dim() else v.clone()) for k, v in entries.items()}
