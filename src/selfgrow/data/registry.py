"""The dataset registry: what each dataset is, whether it is on disk, and `load(name, ...)`."""

from __future__ import annotations

import inspect
import os
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from selfgrow.data.arrays import DatasetArrays
from selfgrow.data.digits import load_digits
from selfgrow.data.download import SOURCES
from selfgrow.data.files import data_root, folder_size
from selfgrow.data.imagefolder import load_imagefolder
from selfgrow.data.prepared import is_prepared, read_prepared
from selfgrow.data.user_npz import load_npz
from selfgrow.errors import SelfgrowError, unknown_name

BUILTIN, PREPARED, USER = "builtin", "prepared", "user"


@dataclass(frozen=True)
class DatasetSpec:
    """One registered dataset.

    `kind` says where its data comes from: `builtin` (shipped with a dependency), `prepared`
    (`<data root>/<name>/` in the prepared format, see `prepared.py`) or `user` (files named by
    the `path` option). `loader` takes the data root first for prepared datasets, then the
    dataset's options as keywords. `splits`, `input_shape` (C, H, W) and `num_classes` are None
    where they depend on the user's files.
    """

    name: str
    description: str
    kind: str
    loader: Callable[..., DatasetArrays]
    splits: dict[str, int] | None = None
    input_shape: tuple[int, int, int] | None = None
    num_classes: int | None = None

    @property
    def downloadable(self) -> bool:
        return self.name in SOURCES

    def options(self) -> dict[str, inspect.Parameter]:
        """The keyword options `load` accepts for this dataset."""
        params = list(inspect.signature(self.loader).parameters.values())
        return {p.name: p for p in params[1 if self.kind == PREPARED else 0 :]}


def _prepared_loader(name: str) -> Callable[[Path], DatasetArrays]:
    def load_prepared(root: Path) -> DatasetArrays:
        return read_prepared(root / name, name)

    return load_prepared


def _prepared(
    name: str, description: str, train: int, test: int, shape: tuple[int, int, int], classes: int
) -> DatasetSpec:
    splits = {"train": train, "test": test}
    return DatasetSpec(name, description, PREPARED, _prepared_loader(name), splits, shape, classes)


DATASETS: dict[str, DatasetSpec] = {
    spec.name: spec
    for spec in (
        DatasetSpec(
            "digits", "scikit-learn's 8x8 handwritten digits (fixed stratified 1/4 test split); needs no files",
            BUILTIN, load_digits, {"train": 1347, "test": 450}, (1, 8, 8), 10,
        ),
        _prepared("mnist", "MNIST handwritten digits, 28x28 grey", 60000, 10000, (1, 28, 28), 10),
        _prepared("fashion_mnist", "Fashion-MNIST Zalando article images, 28x28 grey", 60000, 10000, (1, 28, 28), 10),
        _prepared("cifar10", "CIFAR-10 natural images, 32x32 RGB", 50000, 10000, (3, 32, 32), 10),
        _prepared("cifar100", "CIFAR-100 natural images, 32x32 RGB, 100 fine classes", 50000, 10000, (3, 32, 32), 100),
        _prepared("svhn", "SVHN street-view house-number digits (cropped), 32x32 RGB", 73257, 26032, (3, 32, 32), 10),
        DatasetSpec("imagefolder", "your images, one folder per class (options: path, size)", USER, load_imagefolder),
        DatasetSpec("npz", "your arrays x, y [, x_test, y_test, classes] in a .npz (option: path)", USER, load_npz),
    )
}  # fmt: skip


def get_spec(name: str) -> DatasetSpec:
    """The registry entry for `name`, or the "unknown dataset, did you mean" error."""
    if name not in DATASETS:
        raise unknown_name("dataset", name, DATASETS)
    return DATASETS[name]


def load(name: str, data_dir: str | os.PathLike | None = None, **options: Any) -> DatasetArrays:
    """Load dataset `name` (prepared ones from `data_root(data_dir)`) with its options as keywords."""
    spec = get_spec(name)
    accepted = spec.options()
    unknown = sorted(set(options) - set(accepted))
    if unknown:
        names = ", ".join(accepted) or "none"
        raise SelfgrowError(f"Dataset {name!r} has no option {unknown[0]!r}; accepted options: {names}.")
    missing = [o for o, p in accepted.items() if p.default is inspect.Parameter.empty and o not in options]
    if missing:
        raise SelfgrowError(f"Dataset {name!r} needs the option {missing[0]!r} ({spec.description}).")
    root_args = (data_root(data_dir),) if spec.kind == PREPARED else ()
    return spec.loader(*root_args, **options)


def available(name: str, data_dir: str | os.PathLike | None = None) -> bool:
    """True when `load(name)` needs no download first (built-in and user datasets always; prepared when on disk)."""
    spec = get_spec(name)
    return spec.kind != PREPARED or is_prepared(data_root(data_dir) / name)


def dataset_info(name: str, data_dir: str | os.PathLike | None = None) -> dict[str, Any]:
    """Plain-data summary for `selfgrow list`: description, official sizes, status and size on disk (MB)."""
    spec = get_spec(name)
    folder = data_root(data_dir) / name
    on_disk = spec.kind == PREPARED and is_prepared(folder)
    status = {BUILTIN: "built in", USER: "your files (option path)"}.get(spec.kind) or (
        "ready" if on_disk else "not downloaded"
    )
    return {
        "name": spec.name,
        "description": spec.description,
        "train": spec.splits["train"] if spec.splits else None,
        "test": spec.splits["test"] if spec.splits else None,
        "input_shape": list(spec.input_shape) if spec.input_shape else None,
        "classes": spec.num_classes,
        "downloadable": spec.downloadable,
        "available": available(name, data_dir),
        "status": status,
        "size_mb": round(folder_size(folder) / 1e6, 1) if on_disk else None,
        "path": str(folder) if spec.kind == PREPARED else None,
    }
