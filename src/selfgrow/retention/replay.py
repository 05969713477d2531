"""Episodic memory replay with a fixed sample budget (ER / iCaRL rehearsal), and the joint-training upper bound."""

from __future__ import annotations

import math
from dataclasses import dataclass
from typing import Any

import torch
import torch.nn.functional as F

from selfgrow.options import option
from selfgrow.retention.base import Batch, Retention
from selfgrow.retention.registry import register_retention
from selfgrow.retention.scenario import Normalisation, model_input, net_device
from selfgrow.retention.selection import equal_quotas, group_ranks, herding_order, reservoir_keys
from selfgrow.retention.tensors import tensor_bytes
from selfgrow.streams.task import Task

SELECTIONS = ("reservoir", "herding")
BALANCES = ("class", "task", "none")
DRAWS = ("uniform", "cycle")
MIXES = ("batch", "dataset")
CLASSIFIERS = ("head", "nme")
DTYPES = {"uint8": torch.uint8, "float32": torch.float32}
FIELDS = ("x", "y", "task", "y_global", "priority")
TASK_KEY = 10**6  # task-IL prototypes are keyed task * TASK_KEY + local label


@dataclass
class ReplayOptions:
    """The replay memory's options (see `Replay`)."""

    budget: int | None = option(200, at_least=0, note="samples; null keeps every sample")
    selection: str = option("reservoir", choices=SELECTIONS)
    balance: str = option("class", choices=BALANCES)
    dtype: str = option("uint8", choices=tuple(DTYPES))
    replay_batch_size: int | None = option(None, at_least=1, note="null: the trainer's batch size")
    draw: str = option("uniform", choices=DRAWS, note="uniform: with replacement; cycle: each sample once per pass")
    mix: str = option("batch", choices=MIXES, note="batch: a replay batch per step; dataset: memory joins the task's data")
    classifier: str = option("head", choices=CLASSIFIERS, note="nme: nearest mean of exemplars at test time")
    batch_size: int = option(256, at_least=1)
    seed: int = 0


@dataclass
class JointOptions:
    """Joint training's options: only the seed of its sampling (the memory is every sample, see `Joint`)."""

    seed: int = 0


@register_retention("replay")
class Replay(Retention):
    """A memory of at most `budget` raw training samples of earlier tasks, replayed in every batch.

    After each task the memory takes that task's training samples, ranked by `selection`, and keeps
    the best ranked of each group within an equal share of the budget: `balance="class"` (a class of
    a task is a group, as iCaRL), `"task"` or `"none"` (one group: with reservoir keys this is exactly
    a uniform sample of everything seen, what reservoir sampling keeps, as in ER of Chaudhry et al. 2019).
    `selection="herding"` ranks by iCaRL herding on the net's L2-normalised features (computed after
    training on the task, inputs normalised, no augmentation); old classes keep their first-ranked
    samples when shares shrink, as iCaRL's exemplar reduction. Images are stored as uint8 by default
    (exact for streams built from 8-bit images; rotated streams lose < 1/255) or float32.
    `replay` returns, with `mix="batch"`, a batch of `replay_batch_size` samples (or of the trainer's
    batch size when unset); with `mix="dataset"` the memory is as good as part of the task's training
    set (iCaRL's training set of new data and exemplars): each step of b new samples replays
    ceil(b * memory / new samples), so an epoch passes over the memory once in expectation. Samples come
    as raw [0, 1] images on the CPU, drawn uniformly with replacement (`draw="uniform"`), or by
    `draw="cycle"` in passes through the memory, each pass a fresh shuffle in which every sample comes
    once (what Avalanche's replay data loader does; the pass restarts with each task).
    `classifier="nme"` classifies test samples by iCaRL's nearest mean of exemplars (Rebuffi et al. 2017,
    Algorithm 1): after each task the mean of the L2-normalised features of each class's memory
    samples (normalised again) is the class's prototype, and a test sample takes the class of the
    nearest prototype among the classes it may have (its task's in task-IL); the trainer's validation
    and early stopping keep using the head (growth searches score candidates by the nearest means, see
    `selfgrow.growth.candidates`); when the net grows the prototypes are computed again from the grown
    net's features (`on_growth` marks them stale; the next prediction recomputes them once, however many
    operators the growth had). Memory samples are normalised with the
    latest task's statistics, as the trainer replays them (the paper also averages flipped exemplars;
    we do not). `budget=None` keeps every
    sample; `batch_size` is the batch for computing herding features; `seed` drives the reservoir keys.
    """

    Options = ReplayOptions
    prediction_settings = ("classifier",)

    def __init__(self, **options: Any) -> None:
        super().__init__(**options)
        self.generator = torch.Generator().manual_seed(int(self.seed))
        self._pass = torch.empty(0, dtype=torch.long)  # what is left of the `cycle` draw's current pass
        self.new_samples = 1  # the current task's training samples (`mix="dataset"`)
        self.means = torch.empty(0)  # `classifier="nme"`: one prototype per row, for the classes of `mean_ids`
        self.mean_ids = torch.empty(0, dtype=torch.long)  # stream-wide class ids (task-IL: task * 10**6 + label)
        self.mean_basis: dict[str, Any] = {}  # how the means were computed: normalisation and scenario, for regrowth
        self.means_stale = False  # the net grew since the means were computed: the next prediction recomputes them
        self.memory = {
            "x": torch.empty(0, dtype=DTYPES[self.dtype]),
            "y": torch.empty(0, dtype=torch.long),
            "task": torch.empty(0, dtype=torch.long),
            "y_global": torch.empty(0, dtype=torch.long),
            "priority": torch.empty(0),
        }

    def __len__(self) -> int:
        return int(self.memory["y"].numel())

    def before_task(self, learner: Any, task: Task) -> None:
        self._pass = torch.empty(0, dtype=torch.long)  # the `cycle` draw starts a new pass with each task
        self.new_samples = max(1, int(task.y_train.numel()))

    def after_task(self, learner: Any, task: Task) -> None:
        """Add the task's training samples, then shrink every group to its share of the budget."""
        y = task.y_train.cpu()
        new = {
            "x": self._stored(task.x_train.cpu()),
            "y": y,
            "task": torch.full_like(y, task.index),
            "y_global": task.global_labels(y),
        }
        merged = {k: torch.cat([self.memory[k], new[k]]) for k in FIELDS if k != "priority"}
        groups = self._groups(merged["task"], merged["y"])
        quotas = None if self.budget is None else equal_quotas(int(groups.max()) + 1, self.budget)
        new_groups = groups[len(self):]
        new["priority"] = self._priorities(learner, task, new_groups, quotas)
        merged["priority"] = torch.cat([self.memory["priority"], new["priority"]])
        if quotas is not None:
            keep = group_ranks(groups, merged["priority"]) < quotas[groups]
            merged = {k: v[keep] for k, v in merged.items()}
        self.memory = merged
        self.prepare_predictions(learner, task)

    def prepare_predictions(self, learner: Any, task: Task) -> None:
        """With the nearest-mean classifier, the prototypes of the memory's classes after `task` (normalised as its
        data, in the learner's scenario); the head needs nothing."""
        if self.classifier == "nme":
            self.mean_basis = {"mean": list(task.mean or ()), "std": list(task.std or ()),
                               "task_il": learner.scenario == "task"}
            self._class_means(learner.net)

    def on_growth(self, growth: Any) -> None:
        """With the nearest-mean classifier, the prototypes are stale: a grown feature layer changes their size and
        values (logits are what growth preserves, not features), so the next prediction computes them again."""
        if self.classifier == "nme" and len(self.mean_ids):
            if self.mean_basis:
                self.means_stale = True
            else:  # a checkpoint of an earlier version: the head decides until the task's end computes them again
                self.means, self.mean_ids = torch.empty(0), torch.empty(0, dtype=torch.long)

    def replay(self, batch_size: int, generator: torch.Generator) -> Batch | None:
        if self.mix == "dataset":
            return self._sample(math.ceil(batch_size * len(self) / self.new_samples), generator)
        return self._sample(self.replay_batch_size or batch_size, generator)

    @property
    def decides_predictions_after_task(self) -> bool:
        """With the nearest-mean classifier, the after-task memory update gives the new classes their means."""
        return self.classifier == "nme"

    def predict(self, net: torch.nn.Module, x: torch.Tensor, task: Task, scenario: str,
                seen_class_ids: list[int] | None) -> torch.Tensor | None:
        if self.classifier != "nme" or len(self.mean_ids) == 0:
            return None
        if self.means_stale:
            self._class_means(net)
        features = F.normalize(net.features(x, task.index if scenario == "task" else None), dim=1)
        means, ids = self.means.to(features.device), self.mean_ids.to(features.device)
        if scenario == "task":
            allowed = ids // TASK_KEY == task.index
        elif seen_class_ids is not None:
            allowed = torch.isin(ids, torch.as_tensor(seen_class_ids, device=ids.device))
        else:
            allowed = torch.ones_like(ids, dtype=torch.bool)
        distances = torch.cdist(features, means[allowed])
        picked = ids[allowed][distances.argmin(1)]
        return picked % TASK_KEY if scenario == "task" else picked

    def _class_means(self, net: torch.nn.Module) -> None:
        """iCaRL's prototypes: per class of the memory, the normalised mean of its samples' normalised features
        (`mean_basis`: the normalisation of the task they were computed after, and the scenario)."""
        task_il = self.mean_basis["task_il"]
        norm = Normalisation(mean=tuple(self.mean_basis["mean"]), std=tuple(self.mean_basis["std"]))
        keys = self.memory["task"] * TASK_KEY + self.memory["y"] if task_il else self.memory["y_global"]
        ids = keys.unique()
        means = []
        for key in ids.tolist():
            rows = (keys == key).nonzero().squeeze(1)
            x = self.memory["x"][rows]
            x = x.float() / 255 if x.dtype == torch.uint8 else x
            head = key // TASK_KEY if task_il else None
            features = F.normalize(self._features_of(net, x, norm, head), dim=1)
            means.append(F.normalize(features.mean(0), dim=0))
        self.means, self.mean_ids, self.means_stale = torch.stack(means).cpu(), ids, False

    def _sample(self, size: int, generator: torch.Generator) -> Batch | None:
        """`size` memory samples, drawn as `draw` says."""
        if len(self) == 0 or size <= 0:
            return None
        if self.draw == "cycle":
            idx = self._cycled(size, generator)
        else:
            idx = torch.randint(len(self), (size,), generator=generator, device=generator.device).cpu()
        x = self.memory["x"][idx]
        x = x.float() / 255 if x.dtype == torch.uint8 else x
        return Batch(x=x, y=self.memory["y"][idx], task=self.memory["task"][idx],
                     y_global=self.memory["y_global"][idx])

    def _cycled(self, size: int, generator: torch.Generator) -> torch.Tensor:
        """The next `size` indices of the current pass through the memory, starting fresh shuffles as passes end."""
        parts = []
        while size > 0:
            if len(self._pass) == 0:
                self._pass = torch.randperm(len(self), generator=generator, device=generator.device).cpu()
            parts.append(self._pass[:size])
            self._pass, size = self._pass[size:], size - len(parts[-1])
        return torch.cat(parts)

    def _stored(self, x: torch.Tensor) -> torch.Tensor:
        """Images in the storage dtype."""
        if self.dtype == "uint8":
            return (x * 255).round().clamp(0, 255).to(torch.uint8)
        return x.float().clone()

    def _groups(self, task: torch.Tensor, y: torch.Tensor) -> torch.Tensor:
        """Group index of each sample (in order of arrival) for the budget split."""
        if self.balance == "none":
            return torch.zeros_like(y)
        key = task if self.balance == "task" else task * (int(y.max()) + 1) + y
        return torch.unique(key, return_inverse=True)[1]

    def _priorities(self, learner: Any, task: Task, groups: torch.Tensor, quotas: torch.Tensor | None) -> torch.Tensor:
        """Rank keys (lower is kept first) for the task's samples."""
        if self.selection == "reservoir":
            return reservoir_keys(groups.numel(), self.generator)
        features = self._features(learner, task)
        priority = torch.empty(groups.numel())
        for c in task.y_train.unique():
            members = (task.y_train.cpu() == c).nonzero().squeeze(1)
            limit = members.numel() if quotas is None else int(quotas[groups[members]].max())
            priority[members] = herding_order(features[members], limit).cpu()
        return priority

    def _features(self, learner: Any, task: Task) -> torch.Tensor:
        """Penultimate features of the task's training images (eval mode, normalised, not augmented)."""
        return self._features_of(learner.net, task.x_train, task, task.index if learner.scenario == "task" else None)

    def _features_of(self, net: torch.nn.Module, images: torch.Tensor, task: Task | Normalisation,
                     head: int | None) -> torch.Tensor:
        """Penultimate features of raw [0, 1] images normalised as `task`'s (eval mode, no augmentation)."""
        device = net_device(net)
        was_training = net.training
        net.eval()
        with torch.no_grad():
            chunks = [net.features(model_input(x.to(device), task), head) for x in images.split(self.batch_size)]
        net.train(was_training)
        return torch.cat(chunks)

    def state_dict(self) -> dict[str, Any]:
        return {**{f"memory/{k}": v for k, v in self.memory.items()}, "generator": self.generator.get_state(),
                "means": self.means, "mean_ids": self.mean_ids, "mean_basis": dict(self.mean_basis),
                "means_stale": self.means_stale}

    def load_state_dict(self, state: dict[str, Any]) -> None:
        self.memory = {k: state[f"memory/{k}"] for k in FIELDS}
        self.generator.set_state(state["generator"])
        self.means = state.get("means", torch.empty(0))  # absent in checkpoints of earlier versions
        self.mean_ids = state.get("mean_ids", torch.empty(0, dtype=torch.long))
        self.mean_basis = dict(state.get("mean_basis", {}))
        self.means_stale = bool(state.get("means_stale", False))

    def memory_bytes(self) -> int:
        return tensor_bytes(self.memory)


@register_retention("joint")
class Joint(Replay):
    """Joint training, the upper bound: the union of all seen tasks' training data.

    Implemented as an unbounded float32 memory holding every earlier task's full training set;
    each batch of the new task is joined by a replay batch whose size is proportional to the old
    data (batch_size * n_old / n_new), so every step samples uniformly from the union of seen tasks
    and an epoch over the new task is one pass over all data in expectation.
    """

    Options = JointOptions
    budget, selection, balance, dtype, draw = None, "reservoir", "none", "float32", "uniform"  # Replay's, fixed here
    mix, classifier, replay_batch_size, batch_size = "dataset", "head", None, 256
