"""Streams composed task by task from plain data (a YAML file, a list of dicts, or the CTrL tables).

Each task is a dict:

    dataset:          name for selfgrow.data.load (or a DatasetArrays)
    classes:          class names or indices, in local-label order (default: all classes)
    train_per_class:  training samples per class (default: what is left after validation)
    val_per_class:    validation samples per class, taken from the training set
                      (default: round(val_fraction * samples of the class), at most
                      round(max_train_per_class * val_fraction / (1 - val_fraction)) when the
                      stream caps training and not validation)
    test_per_class:   test samples per class (default: all of the class's test samples)
    rotation:         rotate the images by this many degrees
    background:       paint grey images white on this colour (a rainbow colour name or [r, g, b])
    permutation_seed: shuffle the pixel positions with the permutation drawn from this seed
    label_shuffle:    true (or a seed): reorder the classes' local labels so that none keeps
                      the id it has in the listed order
    name, description: shown by `selfgrow list` and in reports

Training and validation samples of a class are drawn from one seeded order of the dataset's
training set, chunk after chunk, so tasks that reuse a class get fresh samples while there are
enough (see `ClassPool`). Images go through rotation, background, then shape fitting (to
`input_shape`: grey replicated to RGB, bilinear resizing) and pixel permutation last.
"""

from __future__ import annotations

import os
from collections.abc import Mapping, Sequence
from pathlib import Path

import torch

from selfgrow.data.arrays import DatasetArrays
from selfgrow.errors import SelfgrowError
from selfgrow.streams.common import check_fraction, check_scenario, class_indices, default_augment, in_classes, local_labels, normalisation
from selfgrow.streams.images import colour, fit_shape, on_background, permute_pixels, pixel_permutation, rotate, to_float
from selfgrow.streams.sampling import ClassPool, cap_per_class, check_cap, derangement, val_cap
from selfgrow.streams.sources import Sources, seed_for
from selfgrow.streams.task import SCENARIOS, Stream, Task

TASK_KEYS = (
    "dataset",
    "classes",
    "train_per_class",
    "val_per_class",
    "test_per_class",
    "rotation",
    "background",
    "permutation_seed",
    "label_shuffle",
    "name",
    "description",
)


def _min(*values: int | None) -> int | None:
    present = [v for v in values if v is not None]
    return min(present) if present else None


class Composer:
    """Builds the tasks of one stream in order, sharing datasets, sample pools and the input shape."""

    def __init__(
        self,
        sources: Sources,
        seed: int,
        scenario: str,
        input_shape: Sequence[int] | None,
        val_fraction: float,
        caps: tuple[int | None, int | None, int | None],
    ) -> None:
        self.sources = sources
        self.seed = seed
        self.scenario = scenario
        self.input_shape = tuple(input_shape) if input_shape is not None else None
        self.val_fraction = val_fraction
        self.caps = caps
        self._pools: dict[str, ClassPool] = {}
        self._next_id = 0
        self._first: Task | None = None

    def _pool(self, data: DatasetArrays) -> ClassPool:
        if data.name not in self._pools:
            self._pools[data.name] = ClassPool(data.y_train, seed_for(self.seed, "pool", data.name))
        return self._pools[data.name]

    def _draw(self, data: DatasetArrays, classes: list[int], spec: dict) -> tuple[torch.Tensor, torch.Tensor]:
        """Training and validation indices of the task, per class as the spec and caps say."""
        pool = self._pool(data)
        max_train, max_val, _ = self.caps
        train, val = [], []
        for c in classes:
            size = pool.size(c)
            n_val = spec.get("val_per_class")
            val_limit = max_val
            if n_val is None:  # validation from val_fraction: capped in proportion with a training cap
                n_val = round(self.val_fraction * size)
                val_limit = val_cap(max_train, max_val, self.val_fraction)
            n_train = spec.get("train_per_class")
            n_train = max(size - n_val, 0) if n_train is None else n_train
            chunk_train, chunk_val = pool.draw(c, [_min(n_train, max_train), _min(n_val, val_limit)])
            train.append(chunk_train)
            val.append(chunk_val)
        return torch.cat(train), torch.cat(val)

    def _images(self, x: torch.Tensor, spec: dict) -> torch.Tensor:
        """uint8 dataset images -> the task's float images (rotation, background, shape, permutation)."""
        images = to_float(x)
        if spec.get("rotation"):
            images = rotate(images, float(spec["rotation"]))
        if spec.get("background") is not None:
            images = on_background(images, colour(spec["background"]))
        if self.input_shape is None:
            self.input_shape = tuple(images.shape[1:])
        images = fit_shape(images, self.input_shape)
        if spec.get("permutation_seed") is not None:
            generator = torch.Generator().manual_seed(int(spec["permutation_seed"]))
            images = permute_pixels(images, pixel_permutation(images.shape[2] * images.shape[3], generator))
        return images

    def task(self, index: int, spec: Mapping) -> Task:
        """Build task `index` from its spec dict."""
        spec = _checked(index, spec)
        data = self.sources.get(spec["dataset"])
        classes = class_indices(data, spec.get("classes"))
        shuffle = spec.get("label_shuffle")
        if shuffle:
            seed = seed_for(self.seed, "labels", index) if shuffle is True else int(shuffle)
            classes = [classes[i] for i in derangement(len(classes), torch.Generator().manual_seed(seed)).tolist()]
        train, val = self._draw(data, classes, spec)
        test = in_classes(data.y_test, classes)
        generator = torch.Generator().manual_seed(seed_for(self.seed, "test", index))
        test = cap_per_class(test, data.y_test, _min(spec.get("test_per_class"), self.caps[2]), generator)

        x_train = self._images(data.x_train[train], spec)
        ids = self._class_ids(index, len(classes))
        names = [data.classes[c] for c in classes]
        mean, std = normalisation(x_train) if self.scenario == "task" or self._first is None else (self._first.mean, self._first.std)
        task = Task(
            index=index,
            name=spec.get("name") or f"t{index + 1} {data.name}",
            class_ids=ids,
            class_names=names,
            x_train=x_train,
            y_train=local_labels(data.y_train[train], classes),
            x_val=self._images(data.x_train[val], spec),
            y_val=local_labels(data.y_train[val], classes),
            x_test=self._images(data.x_test[test], spec),
            y_test=local_labels(data.y_test[test], classes),
            mean=mean,
            std=std,
            augment=default_augment(x_train.shape[1:]),
        )
        task.description = _describe(task, data.name, spec)
        if self._first is None:
            self._first = task
        return task

    def _class_ids(self, index: int, n_classes: int) -> list[int]:
        """Stream-wide ids: shared 0..k-1 in the domain scenario, fresh contiguous ids otherwise."""
        if self.scenario == "domain":
            if self._first is not None and self._first.n_classes != n_classes:
                raise SelfgrowError(
                    f"Task {index} has {n_classes} classes but the first has {self._first.n_classes}; "
                    "the domain scenario needs the same number of classes in every task."
                )
            return list(range(n_classes))
        ids = list(range(self._next_id, self._next_id + n_classes))
        self._next_id += n_classes
        return ids


def _checked(index: int, spec: Mapping) -> dict:
    """The task spec as a dict, after rejecting unknown keys, a missing dataset and bad counts."""
    if not isinstance(spec, Mapping):
        raise SelfgrowError(f"Task {index} is {spec!r}; accepted: a mapping with keys {', '.join(TASK_KEYS)}.")
    unknown = sorted(set(spec) - set(TASK_KEYS))
    if unknown:
        raise SelfgrowError(f"Task {index} has unknown key(s) {unknown}; accepted: {', '.join(TASK_KEYS)}.")
    if "dataset" not in spec:
        raise SelfgrowError(f"Task {index} names no dataset; add `dataset: <name>` (e.g. mnist).")
    for key in ("train_per_class", "val_per_class", "test_per_class"):
        value = spec.get(key)
        if value is not None and (isinstance(value, bool) or not isinstance(value, int) or value < 0):
            raise SelfgrowError(f"Task {index} {key} {value!r} is not accepted; give a non-negative integer.")
    return dict(spec)


def _describe(task: Task, dataset: str, spec: dict) -> str:
    """One line saying what the task is."""
    parts = [f"{dataset} {task.n_classes}-way {task.class_names}"]
    if spec.get("rotation"):
        parts.append(f"rotated {float(spec['rotation']):g} deg")
    if spec.get("background") is not None:
        parts.append(f"on {spec['background']} background")
    if spec.get("permutation_seed") is not None:
        parts.append(f"pixels permuted (seed {spec['permutation_seed']})")
    if spec.get("label_shuffle"):
        parts.append("labels shuffled (no class keeps its id)")
    counts = f"{task.y_train.numel()}/{task.y_val.numel()}/{task.y_test.numel()} train/val/test"
    text = ", ".join(parts) + f"; {counts}"
    return f"{spec['description']}: {text}" if spec.get("description") else text


def compose(
    tasks: Sequence[Mapping],
    name: str,
    description: str,
    scenario: str = "task",
    seed: int = 0,
    input_shape: Sequence[int] | None = None,
    val_fraction: float = 0.1,
    max_train_per_class: int | None = None,
    max_val_per_class: int | None = None,
    max_test_per_class: int | None = None,
    sources: Sources | None = None,
) -> Stream:
    """A stream from a list of task specs (see the module docstring).

    Normalisation: in the task scenario each task carries the statistics of its own training set
    (as CTrL does); in the class and domain scenarios, where no task id exists at test time, every
    task carries those of the first task's training set.
    """
    check_scenario(name, scenario, SCENARIOS)
    check_fraction("val_fraction", val_fraction)
    caps = (max_train_per_class, max_val_per_class, max_test_per_class)
    for cap_name, cap in zip(("max_train_per_class", "max_val_per_class", "max_test_per_class"), caps):
        check_cap(cap_name, cap)
    if input_shape is not None and (len(input_shape) != 3 or input_shape[0] not in (1, 3)):
        raise SelfgrowError(f"input_shape {list(input_shape)!r} is not accepted; give [channels, height, width] with 1 or 3 channels.")
    if not tasks:
        raise SelfgrowError(f"Stream {name!r} has no tasks; give a list of at least one task.")
    composer = Composer(sources or Sources(), seed, scenario, input_shape, val_fraction, caps)
    built = [composer.task(i, spec) for i, spec in enumerate(tasks)]
    return Stream(name=name, scenario=scenario, tasks=built, description=description)


STREAM_KEYS = ("tasks", "name", "description", "scenario", "seed", "input_shape", "val_fraction",
               "max_train_per_class", "max_val_per_class", "max_test_per_class")


def from_yaml(
    path: str | os.PathLike | None = None,
    tasks: list[dict] | None = None,
    scenario: str | None = None,
    seed: int | None = None,
    input_shape: list[int] | None = None,
    val_fraction: float | None = None,
    max_train_per_class: int | None = None,
    max_val_per_class: int | None = None,
    max_test_per_class: int | None = None,
    name: str | None = None,
    description: str | None = None,
    data_dir: str | os.PathLike | None = None,
    datasets: Mapping[str, DatasetArrays] | None = None,
) -> Stream:
    """A stream described in a YAML file (`path`) or given as `tasks`, a list of task dicts.

    The file holds either the list of tasks or a mapping with `tasks` and any of the stream
    settings (scenario, seed, input_shape, val_fraction, max_*_per_class, name, description);
    options given here override the file. Defaults: scenario task, seed 0, val_fraction 0.1,
    input shape of the first task. `datasets` maps names to ready DatasetArrays.
    """
    settings = _read_stream_file(Path(path)) if path is not None else {}
    given = {
        "tasks": tasks, "scenario": scenario, "seed": seed, "input_shape": input_shape, "val_fraction": val_fraction,
        "max_train_per_class": max_train_per_class, "max_val_per_class": max_val_per_class,
        "max_test_per_class": max_test_per_class, "name": name, "description": description,
    }
    settings.update({k: v for k, v in given.items() if v is not None})
    if "tasks" not in settings:
        raise SelfgrowError("The yaml stream needs tasks: give `path` to a YAML file or `tasks`, a list of task mappings.")
    settings.setdefault("name", Path(path).stem if path is not None else "yaml")
    settings.setdefault("description", f"Stream of {len(settings['tasks'])} tasks described in {'YAML' if path else 'a task list'}.")
    return compose(**settings, sources=Sources(data_dir, datasets))


def _read_stream_file(path: Path) -> dict:
    """The stream settings in a YAML file (a list of tasks, or a mapping with `tasks`)."""
    import yaml

    if not path.is_file():
        raise SelfgrowError(f"Stream file {str(path)!r} does not exist; give the path of a YAML file.")
    try:
        content = yaml.safe_load(path.read_text())
    except yaml.YAMLError as error:
        raise SelfgrowError(f"Stream file {str(path)!r} is not valid YAML ({error}).") from None
    if isinstance(content, list):
        return {"tasks": content}
    if not isinstance(content, dict):
        raise SelfgrowError(f"Stream file {str(path)!r} holds {type(content).__name__}; accepted: a list of tasks or a mapping with `tasks`.")
    unknown = sorted(set(content) - set(STREAM_KEYS))
    if unknown:
        raise SelfgrowError(f"Stream file {str(path)!r} has unknown key(s) {unknown}; accepted: {', '.join(STREAM_KEYS)}.")
    return content
