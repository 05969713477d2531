"""The standard streams over one dataset: split (new classes per task), permuted and rotated inputs."""

from __future__ import annotations

import os
from collections.abc import Callable, Sequence
from dataclasses import dataclass

import torch

from selfgrow.data.arrays import DatasetArrays
from selfgrow.data.split import stratified_split
from selfgrow.errors import SelfgrowError
from selfgrow.streams.common import (
    check_fraction,
    check_scenario,
    class_indices,
    default_augment,
    in_classes,
    local_labels,
    normalisation,
)
from selfgrow.streams.images import permute_pixels, pixel_permutation, rotate, to_float
from selfgrow.streams.sampling import cap_per_class, check_cap, val_cap
from selfgrow.streams.sources import Sources, seed_for
from selfgrow.streams.task import SCENARIOS, Stream, Task

Transform = Callable[[torch.Tensor], torch.Tensor]


@dataclass
class Carved:
    """One dataset cut into the samples a stream uses: train/val from its training set, test from its test set."""

    data: DatasetArrays
    train: torch.Tensor
    val: torch.Tensor
    test: torch.Tensor
    mean: tuple[float, ...]
    std: tuple[float, ...]

    def task(self, index: int, name: str, classes: Sequence[int], class_ids: list[int], transform: Transform, description: str) -> Task:
        """The task holding this carve's samples of `classes`, with `transform` applied to the images."""

        def part(x: torch.Tensor, y: torch.Tensor, idx: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
            idx = idx[in_classes(y[idx], classes)]
            return transform(to_float(x[idx])), local_labels(y[idx], classes)

        d = self.data
        x_train, y_train = part(d.x_train, d.y_train, self.train)
        empty = torch.nonzero(torch.bincount(y_train, minlength=len(classes)) == 0).flatten().tolist()
        if empty:
            raise SelfgrowError(
                f"Task {name!r} has no training samples of class {[d.classes[classes[k]] for k in empty]} in dataset "
                f"{d.name!r}; every class of a task needs training samples (check the dataset's files, or leave "
                "the class out with class_order)."
            )
        x_val, y_val = part(d.x_train, d.y_train, self.val)
        x_test, y_test = part(d.x_test, d.y_test, self.test)
        return Task(
            index=index,
            name=name,
            class_ids=class_ids,
            class_names=[d.classes[c] for c in classes],
            x_train=x_train,
            y_train=y_train,
            x_val=x_val,
            y_val=y_val,
            x_test=x_test,
            y_test=y_test,
            mean=self.mean,
            std=self.std,
            augment=default_augment(x_train.shape[1:]),
            description=description,
        )


def carve(
    data: DatasetArrays,
    seed: int,
    val_fraction: float,
    max_train_per_class: int | None,
    max_val_per_class: int | None,
    max_test_per_class: int | None,
) -> Carved:
    """Carve a seeded, stratified validation set out of the training set, then apply the per-class caps.

    With `max_train_per_class` set and `max_val_per_class` not, validation is capped at
    round(max_train_per_class * val_fraction / (1 - val_fraction)) per class (`sampling.val_cap`),
    so a reduced run keeps the train:val ratio that `val_fraction` states.
    Normalisation statistics are those of the dataset's whole training set (so a stream run at a
    reduced size normalises as the full one does).
    """
    check_fraction("val_fraction", val_fraction)
    for name, cap in [("max_train_per_class", max_train_per_class), ("max_val_per_class", max_val_per_class), ("max_test_per_class", max_test_per_class)]:
        check_cap(name, cap)
    train, val = stratified_split(data.y_train, val_fraction, seed)
    generator = torch.Generator().manual_seed(seed_for(seed, "caps", data.name))
    mean, std = normalisation(data.x_train)
    return Carved(
        data=data,
        train=cap_per_class(train, data.y_train, max_train_per_class, generator),
        val=cap_per_class(val, data.y_train, val_cap(max_train_per_class, max_val_per_class, val_fraction), generator),
        test=cap_per_class(torch.arange(len(data.y_test)), data.y_test, max_test_per_class, generator),
        mean=mean,
        std=std,
    )


def partition(order: list[int], n_tasks: int | None, classes_per_task: int | None) -> list[list[int]]:
    """Cut a class order into consecutive tasks of equal size (2 classes per task when neither is given)."""
    for name, value in [("n_tasks", n_tasks), ("classes_per_task", classes_per_task)]:
        if value is not None and (isinstance(value, bool) or not isinstance(value, int) or value < 1):
            raise SelfgrowError(f"{name} {value!r} is not accepted; give a positive integer.")
    n = len(order)
    if n_tasks is None and classes_per_task is None:
        classes_per_task = 2
    if classes_per_task is None:
        if n % n_tasks:
            divisors = [d for d in range(1, n + 1) if n % d == 0]
            raise SelfgrowError(f"n_tasks {n_tasks} cannot split {n} classes into tasks of equal size; accepted: {divisors}, or set classes_per_task.")
        classes_per_task = n // n_tasks
    if n_tasks is None:
        if n % classes_per_task:
            divisors = [d for d in range(1, n + 1) if n % d == 0]
            raise SelfgrowError(f"classes_per_task {classes_per_task} does not divide the {n} classes; accepted: {divisors}, or set n_tasks.")
        n_tasks = n // classes_per_task
    if n_tasks * classes_per_task > n:
        raise SelfgrowError(
            f"n_tasks * classes_per_task = {n_tasks} * {classes_per_task} = {n_tasks * classes_per_task} exceeds the "
            f"{n} classes available; accepted: a product of at most {n}."
        )
    return [order[t * classes_per_task : (t + 1) * classes_per_task] for t in range(n_tasks)]


def _caps_text(max_train: int | None, max_val: int | None, max_test: int | None, val_fraction: float = 0.1) -> str:
    capped_val = val_cap(max_train, max_val, val_fraction)
    derived = f" [max_train_per_class x {val_fraction:g} / {1 - val_fraction:g}]" if max_val is None else ""
    caps = [f"{part} <= {cap}/class{derived if part == 'val' else ''}"
            for part, cap in [("train", max_train), ("val", capped_val), ("test", max_test)] if cap]
    return f" Reduced size: {', '.join(caps)}." if caps else ""


def split(
    dataset: str | DatasetArrays = "mnist",
    n_tasks: int | None = None,
    classes_per_task: int | None = None,
    class_order: list[int | str] | None = None,
    shuffle_classes: bool = False,
    scenario: str = "class",
    seed: int = 0,
    val_fraction: float = 0.1,
    max_train_per_class: int | None = None,
    max_val_per_class: int | None = None,
    max_test_per_class: int | None = None,
    data_dir: str | os.PathLike | None = None,
    dataset_options: dict | None = None,
) -> Stream:
    """Split a dataset's classes into tasks of disjoint classes (Split-MNIST, Split-CIFAR).

    Classes go in natural order (0-1, 2-3, ... as in the field's Split-MNIST), or in `class_order`,
    permuted by the seed when `shuffle_classes`. Give `n_tasks` or `classes_per_task` (default: 2
    classes per task); with both, the first n_tasks * classes_per_task classes are used.
    Scenario `class` (one growing head, default) or `task` (one head per task).
    """
    check_scenario("split", scenario, ("class", "task"))
    data = Sources(data_dir).get(dataset, **(dataset_options or {}))
    order = class_indices(data, class_order)
    if shuffle_classes:
        generator = torch.Generator().manual_seed(seed_for(seed, "class_order"))
        order = [order[i] for i in torch.randperm(len(order), generator=generator).tolist()]
    groups = partition(order, n_tasks, classes_per_task)
    carved = carve(data, seed, val_fraction, max_train_per_class, max_val_per_class, max_test_per_class)
    tasks, first_id = [], 0
    for t, classes in enumerate(groups):
        names = [data.classes[c] for c in classes]
        tasks.append(
            carved.task(t, f"{data.name}[{','.join(names)}]", classes, list(range(first_id, first_id + len(classes))), _identity, f"{data.name} classes {names}")
        )
        first_id += len(classes)
    order_text = "seeded random" if shuffle_classes else ("given" if class_order is not None else "natural")
    return Stream(
        name=f"split_{data.name}",
        scenario=scenario,
        tasks=tasks,
        description=(
            f"Split {data.name}: {len(groups)} tasks of {len(groups[0])} classes in {order_text} order, "
            f"{scenario}-incremental; validation = {val_fraction:g} of each class's training samples."
            + _caps_text(max_train_per_class, max_val_per_class, max_test_per_class, val_fraction)
        ),
    )


def _identity(x: torch.Tensor) -> torch.Tensor:
    return x


def _same_classes_stream(
    kind: str,
    data: DatasetArrays,
    carved: Carved,
    scenario: str,
    transforms: list[tuple[str, Transform]],
    description: str,
) -> Stream:
    """A stream whose tasks all hold every class of `data`, each task with its own input transform."""
    classes = list(range(data.num_classes))
    tasks = []
    for t, (label, transform) in enumerate(transforms):
        ids = classes if scenario == "domain" else [t * len(classes) + c for c in classes]
        tasks.append(carved.task(t, f"{data.name} {label}", classes, ids, transform, f"{data.name}, {label}"))
    return Stream(name=f"{kind}_{data.name}", scenario=scenario, tasks=tasks, description=description)


def permuted(
    dataset: str | DatasetArrays = "mnist",
    n_tasks: int = 10,
    scenario: str = "task",
    seed: int = 0,
    val_fraction: float = 0.1,
    max_train_per_class: int | None = None,
    max_val_per_class: int | None = None,
    max_test_per_class: int | None = None,
    data_dir: str | os.PathLike | None = None,
    dataset_options: dict | None = None,
) -> Stream:
    """Permuted-MNIST style: every task is the whole dataset under its own fixed pixel permutation.

    As in the thesis' Table 5.5, every task (the first included) is a random permutation, drawn
    from the seed: the same seed gives the same permutations. Default scenario `task` (one head
    per task, as there); `domain` shares one head and the class ids; `class` gives each task
    fresh class ids (van de Ven & Tolias 2019).
    """
    check_scenario("permuted", scenario, SCENARIOS)
    if isinstance(n_tasks, bool) or not isinstance(n_tasks, int) or n_tasks < 1:
        raise SelfgrowError(f"n_tasks {n_tasks!r} is not accepted; give a positive integer.")
    data = Sources(data_dir).get(dataset, **(dataset_options or {}))
    carved = carve(data, seed, val_fraction, max_train_per_class, max_val_per_class, max_test_per_class)
    generator = torch.Generator().manual_seed(seed_for(seed, "permutations"))
    n_pixels = data.input_shape[1] * data.input_shape[2]
    permutations = [pixel_permutation(n_pixels, generator) for _ in range(n_tasks)]
    transforms = [(f"permutation {t}", _permuter(p)) for t, p in enumerate(permutations)]
    description = (
        f"Permuted {data.name}: {n_tasks} tasks, each all {data.num_classes} classes under a seeded pixel "
        f"permutation, {scenario}-incremental." + _caps_text(max_train_per_class, max_val_per_class, max_test_per_class, val_fraction)
    )
    return _same_classes_stream("permuted", data, carved, scenario, transforms, description)


def _permuter(permutation: torch.Tensor) -> Transform:
    return lambda x: permute_pixels(x, permutation)


def rotated(
    dataset: str | DatasetArrays = "mnist",
    n_tasks: int | None = None,
    angles: list[float] | None = None,
    max_angle: float = 180.0,
    scenario: str = "domain",
    seed: int = 0,
    val_fraction: float = 0.1,
    max_train_per_class: int | None = None,
    max_val_per_class: int | None = None,
    max_test_per_class: int | None = None,
    data_dir: str | os.PathLike | None = None,
    dataset_options: dict | None = None,
) -> Stream:
    """Rotated-MNIST style: every task is the whole dataset rotated by its own fixed angle.

    Angles are `angles` (degrees), else `n_tasks` (default 5) angles evenly spaced from 0 up to
    (not including) `max_angle`: 0, 36, 72, 108, 144 by default. Default scenario `domain`.
    """
    check_scenario("rotated", scenario, SCENARIOS)
    if angles is None:
        count = 5 if n_tasks is None else n_tasks
        if isinstance(count, bool) or not isinstance(count, int) or count < 1:
            raise SelfgrowError(f"n_tasks {n_tasks!r} is not accepted; give a positive integer.")
        angles = [t * float(max_angle) / count for t in range(count)]
    elif n_tasks is not None and n_tasks != len(angles):
        raise SelfgrowError(f"n_tasks {n_tasks} disagrees with the {len(angles)} angles given; accepted: n_tasks = {len(angles)} or unset.")
    if not angles:
        raise SelfgrowError("angles [] is not accepted; give at least one angle in degrees.")
    data = Sources(data_dir).get(dataset, **(dataset_options or {}))
    carved = carve(data, seed, val_fraction, max_train_per_class, max_val_per_class, max_test_per_class)
    transforms = [(f"rotated {a:g} deg", _rotator(float(a))) for a in angles]
    description = (
        f"Rotated {data.name}: {len(angles)} tasks rotated by {', '.join(f'{a:g}' for a in angles)} degrees, "
        f"{scenario}-incremental." + _caps_text(max_train_per_class, max_val_per_class, max_test_per_class, val_fraction)
    )
    return _same_classes_stream("rotated", data, carved, scenario, transforms, description)


def _rotator(degrees: float) -> Transform:
    return lambda x: rotate(x, degrees)
