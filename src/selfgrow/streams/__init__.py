"""Streams of tasks: the registry `STREAMS`, `build(name, **options)` and `describe_streams()`.

Common options (where they apply): `dataset` (a name for `selfgrow.data.load`, or a
`DatasetArrays`), `data_dir`, `seed` (drives every random choice: class order, validation split,
permutations, sampled tasks), `scenario` (task | class | domain), `val_fraction` (default 0.1,
carved out of the training set, stratified and seeded), and the per-class limits
`max_train_per_class`, `max_val_per_class`, `max_test_per_class` that run any stream at a
reduced, stated size. With `max_train_per_class` and no `max_val_per_class`, validation is capped
at round(max_train_per_class * val_fraction / (1 - val_fraction)) per class (where its size comes
from `val_fraction`), so train:val stays what `val_fraction` says. Multi-dataset streams (CTrL, yaml) take `datasets`, a mapping from names
to ready `DatasetArrays`, instead of `dataset`.
"""

from __future__ import annotations

import inspect
from collections.abc import Callable
from dataclasses import dataclass
from functools import partial

from selfgrow.errors import SelfgrowError, unknown_name
from selfgrow.streams.classic import permuted, rotated, split
from selfgrow.streams.composed import from_yaml
from selfgrow.streams.ctrl import TRANSFER_STREAMS, long_stream, transfer_stream
from selfgrow.streams.task import SCENARIOS, Stream, Task


@dataclass(frozen=True)
class StreamEntry:
    """A registered stream builder and what `selfgrow list` says about its default form."""

    builder: Callable[..., Stream]
    tasks: str
    classes_per_task: str
    samples: str
    summary: str

    def options(self) -> list[str]:
        """The keyword options the builder accepts."""
        return list(inspect.signature(self.builder).parameters)


_TRANSFER_SAMPLES = {
    "s_minus": "t1 400/200 train/val per class, others 40/20; all test images",
    "s_plus": "t6 400/200 train/val per class, others 40/20; all test images",
    "s_in": "t1 400/200, t2-t5 40/20, t6 5/3 train/val per class; all test images",
    "s_out": "t1 400/200 train/val per class, others 40/20; all test images",
    "s_pl": "t5 400/200 train/val per class, others 40/20; all test images",
}

STREAMS: dict[str, StreamEntry] = {
    "split": StreamEntry(split, "5 on MNIST (n_tasks)", "2 (classes_per_task)", "whole dataset, 10% of train as val",
                         "Disjoint classes per task (Split-MNIST/CIFAR); class-IL by default, or task-IL."),
    "permuted": StreamEntry(permuted, "10 (n_tasks)", "all (10 for MNIST)", "whole dataset per task, 10% of train as val",
                            "Each task permutes the pixels with its own seeded permutation; task-IL by default."),
    "rotated": StreamEntry(rotated, "5 (n_tasks or angles)", "all (10 for MNIST)", "whole dataset per task, 10% of train as val",
                           "Each task rotates the images by its own angle (0, 36, ... 144 deg); domain-IL by default."),
    **{
        name: StreamEntry(partial(transfer_stream, name), "5" if name == "s_pl" else "6", "10", _TRANSFER_SAMPLES[name],
                          f"CTrL {summary}; task-IL, 3x32x32.")
        for name, summary in TRANSFER_STREAMS.items()
    },
    "s_long": StreamEntry(long_stream, "100 (n_tasks)", "5", "small 5/3, large 1000/500 train/val per class; all test images",
                          "CTrL S^long: seeded 5-way tasks over 5 datasets, small tasks grow from 50% to 100%; task-IL."),
    "yaml": StreamEntry(from_yaml, "as listed", "as listed", "as listed",
                        "Tasks described in a YAML file (path) or a list (tasks): dataset, classes, samples, transforms."),
}  # fmt: skip


def build(name: str, **options) -> Stream:
    """Build the stream registered as `name` with the given options."""
    if name not in STREAMS:
        raise unknown_name("stream", name, STREAMS)
    accepted = STREAMS[name].options()
    unknown = sorted(set(options) - set(accepted))
    if unknown:
        raise SelfgrowError(f"Unknown option(s) {unknown} for stream {name!r}; accepted: {', '.join(accepted)}.")
    return STREAMS[name].builder(**options)


def describe_streams() -> list[dict]:
    """One row per registered stream (name, tasks, classes per task, samples, summary, options)."""
    return [
        {
            "name": name,
            "tasks": entry.tasks,
            "classes_per_task": entry.classes_per_task,
            "samples": entry.samples,
            "summary": entry.summary,
            "options": entry.options(),
        }
        for name, entry in STREAMS.items()
    ]


__all__ = ["SCENARIOS", "STREAMS", "Stream", "StreamEntry", "Task", "build", "describe_streams"]
