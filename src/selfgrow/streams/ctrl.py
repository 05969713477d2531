"""The CTrL transfer streams (Veniat et al. 2021; Veniat's thesis, section 5.3.2, Table 5.2, Appendix A.1).

Each stream is a list of task specs for `composed.compose`; every task is task-incremental
(one head per task), rescaled to 3x32x32 (grey replicated to RGB, bilinear resizing), normalised
with its own training-set statistics and trained with random crops (padding 4) and horizontal
flips, as in the thesis (section 5.4).

Sample counts. Table 5.2's caption says "per class", but its figures are per task: CIFAR-10 has
5,000 training images per class, too few for 4,000 + 2,000 per class, the text says "the first
task has 4000 training examples", and the 5-way tasks of S^long use 25 training examples, i.e.
5 per class, like the 50 of S^in's last 10-way task. So for the 10-way tasks here: large = 400
train + 200 val per class, small = 40 + 20, S^in's last task 5 + 3; test = every test image of
the task's classes.

Datasets we do not have offline are replaced (the stream's description says so):
  - SVHN (digits in another input domain)  -> scikit-learn `digits` (8x8 scans, upsampled);
  - DTD (textures, unrelated to the rest)  -> Fashion-MNIST under a fixed seeded pixel
    permutation, whose images have no spatial structure left;
  - CIFAR-100 (in S^long)                   -> Rainbow-MNIST.
With `originals=True` SVHN and CIFAR-100 themselves are used (their prepared files must be in
the data folder); DTD has no loader and is always replaced.
Rainbow-MNIST (thesis 5.4) is MNIST with a background colour, original scale and rotation: white
digits over one of seven rainbow colours, one colour per task.
"""

from __future__ import annotations

import os
from collections.abc import Mapping, Sequence

import torch

from selfgrow.data.arrays import DatasetArrays
from selfgrow.errors import SelfgrowError, unknown_name
from selfgrow.streams.composed import compose
from selfgrow.streams.images import RAINBOW
from selfgrow.streams.sources import Sources, seed_for
from selfgrow.streams.task import Stream

CTRL_SHAPE = (3, 32, 32)
LARGE = {"train_per_class": 400, "val_per_class": 200}  # 4000 / 2000 per 10-way task
SMALL = {"train_per_class": 40, "val_per_class": 20}  # 400 / 200 per 10-way task
TINY = {"train_per_class": 5, "val_per_class": 3}  # 50 / 30 per 10-way task (S^in's last task)
LONG_LARGE = {"train_per_class": 1000, "val_per_class": 500}  # 5000 / 2500 per 5-way task
LONG_SMALL = {"train_per_class": 5, "val_per_class": 3}  # 25 / 15 per 5-way task
LONG_WAYS = 5
LONG_POOL = ("mnist", "svhn", "fashion_mnist", "cifar10", "cifar100")
SUBSTITUTES = {"svhn": "digits", "cifar100": "rainbow_mnist", "dtd": "permuted fashion_mnist"}

TRANSFER_STREAMS = {
    "s_minus": "S^- (direct transfer): t1+ then 4 distractors then t1- = t1 with 10x less data",
    "s_plus": "S^+ (knowledge update): t1- then 4 distractors then t1+ = t1 with 10x more data",
    "s_in": "S^in (input shift): Rainbow-MNIST t1, 4 distractors, then t1 on another background colour with little data",
    "s_out": "S^out (output shift): t1, 4 distractors, then t1 with 10x less data and every label id shuffled",
    "s_pl": "S^pl (plasticity): 4 small unrelated tasks, then a large CIFAR-10 probe task",
}


class _Catalogue:
    """Task specs of the CTrL datasets, with this stream's seed and substitutions."""

    def __init__(self, seed: int, originals: bool) -> None:
        self.seed = seed
        self.originals = originals

    def spec(self, dataset: str, size: dict, colour: str | None = None, **extra) -> dict:
        """The spec of a task on `dataset` (CTrL's name), replaced by its stand-in where needed.

        `colour` is the background of Rainbow-MNIST tasks (and of CIFAR-100's stand-in).
        """
        if dataset == "dtd":
            base = {"dataset": "fashion_mnist", "permutation_seed": seed_for(self.seed, "dtd"), "description": "stand-in for DTD"}
        elif dataset == "svhn" and not self.originals:
            base = {"dataset": "digits", "description": "stand-in for SVHN"}
        elif dataset == "cifar100" and not self.originals:
            base = {"dataset": "mnist", "background": colour, "description": "stand-in for CIFAR-100"}
        elif dataset == "rainbow_mnist":
            base = {"dataset": "mnist", "background": colour}
        else:
            base = {"dataset": dataset}
        substituted = base["dataset"] != dataset and dataset != "rainbow_mnist"
        return {**base, "name": SUBSTITUTES[dataset] if substituted else dataset, **size, **extra}


def transfer_specs(stream: str, seed: int, originals: bool = False) -> list[dict]:
    """The task specs of one of the five 5-6 task transfer streams (Table 5.2)."""
    cat = _Catalogue(seed, originals)
    distractors = [cat.spec(d, SMALL) for d in ("mnist", "dtd", "fashion_mnist", "svhn")]
    generator = torch.Generator().manual_seed(seed_for(seed, "rainbow"))
    first_colour, last_colour = (list(RAINBOW)[i] for i in torch.randperm(len(RAINBOW), generator=generator)[:2].tolist())
    streams = {
        "s_minus": [cat.spec("cifar10", LARGE), *distractors, cat.spec("cifar10", SMALL)],
        "s_plus": [cat.spec("cifar10", SMALL), *distractors, cat.spec("cifar10", LARGE)],
        "s_in": [
            cat.spec("rainbow_mnist", LARGE, colour=first_colour),
            cat.spec("cifar10", SMALL),
            *distractors[1:],
            cat.spec("rainbow_mnist", TINY, colour=last_colour),
        ],
        "s_out": [cat.spec("cifar10", LARGE), *distractors, cat.spec("cifar10", SMALL, label_shuffle=True)],
        "s_pl": [*distractors, cat.spec("cifar10", LARGE)],
    }
    if stream not in streams:
        raise unknown_name("transfer stream", stream, streams)
    return [{**spec, "name": f"t{i + 1} {spec['name']}"} for i, spec in enumerate(streams[stream])]


def long_specs(n_tasks: int, seed: int, sources: Sources, pool: Sequence[str] = LONG_POOL, originals: bool = False) -> list[dict]:
    """The task specs of S^long: seeded 5-way tasks whose share of small tasks grows over the stream.

    As in the thesis (section 5.4): each task picks a dataset of the pool and 5 of its classes at
    random; a task is small (5 train / 3 val per class) with probability 0.5 in the first third
    of the stream, 0.75 in the second and 1 in the last, else large (1000 / 500 per class, or
    whatever the class has). The thesis' instance (Appendix A.1) has 100 tasks.
    """
    if isinstance(n_tasks, bool) or not isinstance(n_tasks, int) or n_tasks < 1:
        raise SelfgrowError(f"n_tasks {n_tasks!r} is not accepted; give a positive integer (the thesis uses 100).")
    accepted = (*LONG_POOL, "digits", "rainbow_mnist")
    for name in pool:
        if name not in accepted:
            raise unknown_name("S^long dataset", name, accepted)
    cat = _Catalogue(seed, originals)
    generator = torch.Generator().manual_seed(seed_for(seed, "s_long"))
    specs = []
    for t in range(n_tasks):
        third = (t >= n_tasks // 3) + (t >= 2 * n_tasks // 3)
        small = float(torch.rand((), generator=generator)) < (0.5, 0.75, 1.0)[third]
        name = pool[int(torch.randint(len(pool), (), generator=generator))]
        colour = list(RAINBOW)[int(torch.randint(len(RAINBOW), (), generator=generator))]
        spec = cat.spec(name, LONG_SMALL if small else LONG_LARGE, colour=colour)
        n_classes = sources.get(spec["dataset"]).num_classes
        if n_classes < LONG_WAYS:
            raise SelfgrowError(f"Dataset {spec['dataset']!r} has {n_classes} classes; S^long tasks need at least {LONG_WAYS}.")
        spec["classes"] = torch.randperm(n_classes, generator=generator)[:LONG_WAYS].tolist()
        spec["name"] = f"t{t + 1} {spec['name']} {'small' if small else 'large'}"
        specs.append(spec)
    return specs


def _substitution_text(originals: bool, names: Sequence[str]) -> str:
    swapped = [f"{n} -> {SUBSTITUTES[n]}" for n in names if n in SUBSTITUTES and (n == "dtd" or not originals)]
    return f" Stand-ins for datasets not available offline: {', '.join(swapped)}." if swapped else ""


def transfer_stream(
    stream: str,
    seed: int = 0,
    originals: bool = False,
    input_shape: Sequence[int] = CTRL_SHAPE,
    max_train_per_class: int | None = None,
    max_val_per_class: int | None = None,
    max_test_per_class: int | None = None,
    data_dir: str | os.PathLike | None = None,
    datasets: Mapping[str, DatasetArrays] | None = None,
) -> Stream:
    """One of CTrL's transfer streams S^-, S^+, S^in, S^out, S^pl (task-incremental)."""
    specs = transfer_specs(stream, seed, originals)
    description = TRANSFER_STREAMS[stream] + "." + _substitution_text(originals, ("svhn", "dtd"))
    return compose(
        specs, name=stream, description=description, scenario="task", seed=seed, input_shape=input_shape,
        max_train_per_class=max_train_per_class, max_val_per_class=max_val_per_class,
        max_test_per_class=max_test_per_class, sources=Sources(data_dir, datasets),
    )  # fmt: skip


def long_stream(
    n_tasks: int = 100,
    pool: Sequence[str] = LONG_POOL,
    seed: int = 0,
    originals: bool = False,
    input_shape: Sequence[int] = CTRL_SHAPE,
    max_train_per_class: int | None = None,
    max_val_per_class: int | None = None,
    max_test_per_class: int | None = None,
    data_dir: str | os.PathLike | None = None,
    datasets: Mapping[str, DatasetArrays] | None = None,
) -> Stream:
    """CTrL's S^long: `n_tasks` seeded 5-way tasks, mostly small ones as the stream goes on.

    At full size (100 tasks, every test image of each task's classes, float32 3x32x32) the
    stream holds several GB; `max_test_per_class` and fewer tasks bring it down.
    """
    sources = Sources(data_dir, datasets)
    specs = long_specs(n_tasks, seed, sources, tuple(pool), originals)
    description = (
        f"S^long (scalability): {n_tasks} seeded 5-way tasks over {', '.join(pool)}; small tasks (5 train / 3 val "
        "per class) make up 50%, 75%, then 100% of each third, the rest are large (1000 / 500 per class)."
        + _substitution_text(originals, pool)
    )
    return compose(
        specs, name="s_long", description=description, scenario="task", seed=seed, input_shape=input_shape,
        max_train_per_class=max_train_per_class, max_val_per_class=max_val_per_class,
        max_test_per_class=max_test_per_class, sources=sources,
    )  # fmt: skip
