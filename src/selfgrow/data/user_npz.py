"""A user's arrays in one .npz file: `x`, `y`, optional `x_test`, `y_test` and `classes`."""

from __future__ import annotations

import os
import zipfile
from pathlib import Path

import numpy as np
import torch

from selfgrow.data.arrays import DatasetArrays
from selfgrow.data.images import as_nchw_tensor, labels_tensor, require_every_class
from selfgrow.data.split import split_dataset
from selfgrow.errors import SelfgrowError

CHANNEL_COUNTS = (1, 3)


def load_npz(path: str | os.PathLike, test_fraction: float = 0.2, seed: int = 0) -> DatasetArrays:
    """Load user arrays; images (N, H, W), (N, H, W, C) or (N, C, H, W) with C in {1, 3}, uint8 or float in [0, 1].

    Without `x_test`/`y_test` a stratified `test_fraction` (drawn with `seed`) becomes the test set.
    Without `classes` the classes are named "0" .. str(max label).
    """
    file = Path(path).expanduser()
    arrays = _read_arrays(file)
    missing = [k for k in ("x", "y") if k not in arrays]
    if missing:
        raise SelfgrowError(
            f"{str(file)!r} lacks the arrays {missing}; an npz dataset needs 'x' and 'y' (found {sorted(arrays)})."
        )
    if ("x_test" in arrays) != ("y_test" in arrays):
        raise SelfgrowError(f"{str(file)!r} has only one of 'x_test' and 'y_test'; give both or neither.")
    x = _images(arrays["x"], "x", file)
    y = _labels(arrays["y"], "y", len(x), file)
    has_test = "x_test" in arrays
    if has_test:
        x_test = _images(arrays["x_test"], "x_test", file)
        y_test = _labels(arrays["y_test"], "y_test", len(x_test), file)
        if x_test.shape[1:] != x.shape[1:]:
            raise SelfgrowError(
                f"{str(file)!r}: x_test images are {tuple(x_test.shape[1:])} (C, H, W) "
                f"but x images are {tuple(x.shape[1:])}."
            )
    all_labels = torch.cat([y, y_test]) if has_test else y
    classes = _classes(arrays.get("classes"), int(all_labels.max()) + 1 if len(all_labels) else 0, file)
    if len(all_labels) and int(all_labels.max()) >= len(classes):
        raise SelfgrowError(
            f"{str(file)!r} has label {int(all_labels.max())} but names {len(classes)} classes; "
            f"labels must lie in [0, {len(classes) - 1}]."
        )
    require_every_class(y, classes, repr(str(file)))
    if has_test:
        return DatasetArrays("npz", x, y, x_test, y_test, classes)
    return split_dataset("npz", x, y, classes, test_fraction, seed)


def _read_arrays(file: Path) -> dict[str, np.ndarray]:
    """Every array of the npz file (object arrays are refused: no pickles are loaded)."""
    if not file.is_file():
        raise SelfgrowError(f"npz path {str(file)!r} is not a file; give a .npz holding arrays x and y.")
    try:
        with np.load(file, allow_pickle=False) as archive:
            return {key: archive[key] for key in archive.files}
    except (OSError, ValueError, zipfile.BadZipFile) as err:
        raise SelfgrowError(f"{str(file)!r} is not a readable .npz of plain arrays ({err}).") from err


def _images(x: np.ndarray, key: str, file: Path) -> torch.Tensor:
    """Validated images -> uint8 (N, C, H, W); channels-last is assumed when the last axis is 1 or 3."""
    channels_first = x.ndim == 4 and x.shape[-1] not in CHANNEL_COUNTS and x.shape[1] in CHANNEL_COUNTS
    if not (x.ndim == 3 or (x.ndim == 4 and x.shape[-1] in CHANNEL_COUNTS) or channels_first):
        raise SelfgrowError(
            f"{str(file)!r}: {key} has shape {x.shape}; "
            "accepted: (N, H, W), (N, H, W, C) or (N, C, H, W) with C 1 or 3."
        )
    if channels_first:
        x = x.transpose(0, 2, 3, 1)
    if np.issubdtype(x.dtype, np.floating):
        if x.size and not (np.isfinite(x).all() and x.min() >= 0.0 and x.max() <= 1.0):
            raise SelfgrowError(
                f"{str(file)!r}: float array {key} has values outside [0, 1]; scale images to [0, 1] or store uint8."
            )
        x = np.round(x * 255.0).astype(np.uint8)
    elif x.dtype != np.uint8:
        raise SelfgrowError(f"{str(file)!r}: {key} has dtype {x.dtype}; accepted: uint8 (0..255) or float in [0, 1].")
    return as_nchw_tensor(x)


def _labels(y: np.ndarray, key: str, count: int, file: Path) -> torch.Tensor:
    """Validated integer labels (N,) or (N, 1) -> int64 (N,)."""
    if not np.issubdtype(y.dtype, np.integer) or y.dtype == np.bool_:
        raise SelfgrowError(f"{str(file)!r}: {key} has dtype {y.dtype}; labels must be integers 0 .. classes-1.")
    if y.shape not in ((count,), (count, 1)):
        raise SelfgrowError(f"{str(file)!r}: {key} has shape {y.shape}; expected ({count},), one label per image.")
    if y.size and y.min() < 0:
        raise SelfgrowError(
            f"{str(file)!r}: {key} holds the negative label {int(y.min())}; labels must lie in [0, classes-1]."
        )
    return labels_tensor(y)


def _classes(names: np.ndarray | None, default_count: int, file: Path) -> list[str]:
    """Class names from the file's `classes` array, else "0" .. str(default_count - 1)."""
    if names is None:
        return [str(c) for c in range(default_count)]
    if names.ndim != 1:
        raise SelfgrowError(f"{str(file)!r}: classes has shape {names.shape}; give a 1-D array of names.")
    return [str(n) for n in names.tolist()]
