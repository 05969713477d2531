"""A user's images in class-per-folder layout (`<path>/<class>/*.png`, optionally under train/ and test/)."""

from __future__ import annotations

import os
from collections.abc import Sequence
from pathlib import Path

import numpy as np
import torch
from PIL import Image, UnidentifiedImageError
from tqdm import tqdm

from selfgrow.data.arrays import DatasetArrays
from selfgrow.data.images import as_nchw_tensor
from selfgrow.data.split import split_dataset
from selfgrow.errors import SelfgrowError

GREY_MODES = frozenset({"1", "L", "LA", "I", "I;16", "F"})


def load_imagefolder(
    path: str | os.PathLike,
    size: int | Sequence[int] | None = None,
    grayscale: bool | None = None,
    test_fraction: float = 0.2,
    seed: int = 0,
) -> DatasetArrays:
    """Read class folders of images, resized to `size` ((H, W) or one int for square; None keeps their size).

    Class names are the sorted folder names. With `train/` and `test/` subfolders those are the
    splits; otherwise a stratified `test_fraction` (drawn with `seed`) becomes the test set.
    `grayscale=None` gives one channel when every image is grey, else RGB.
    """
    root = Path(path).expanduser()
    if not root.is_dir():
        raise SelfgrowError(
            f"imagefolder path {str(root)!r} is not a folder; give a folder with one subfolder per class."
        )
    target_size = _parse_size(size)
    has_splits = (root / "train").is_dir() and (root / "test").is_dir()
    classes = _class_names(root / "train" if has_splits else root)
    if has_splits:
        train_files, y_train = _list_images(root / "train", classes)
        test_files, y_test = _list_images(root / "test", classes)
    else:
        train_files, y_train = _list_images(root, classes)
        test_files, y_test = [], []
    files = train_files + test_files
    headers = [_header(f) for f in files]
    grey = grayscale if grayscale is not None else all(mode in GREY_MODES for mode, _ in headers)
    if target_size is None:
        target_size = _common_size(files, headers)
    x = as_nchw_tensor(_read_pixels(files, "L" if grey else "RGB", target_size))
    y = torch.tensor(y_train + y_test, dtype=torch.int64)
    if has_splits:
        n = len(train_files)
        return DatasetArrays("imagefolder", x[:n], y[:n], x[n:], y[n:], classes)
    return split_dataset("imagefolder", x, y, classes, test_fraction, seed)


def _parse_size(size: int | Sequence[int] | None) -> tuple[int, int] | None:
    """`size` option -> (height, width), validated."""
    if size is None:
        return None
    pair = (size, size) if isinstance(size, int) else tuple(size)
    if len(pair) != 2 or not all(isinstance(s, int) and not isinstance(s, bool) and s > 0 for s in pair):
        raise SelfgrowError(f"imagefolder size {size!r} is not accepted; give a positive int or [height, width].")
    return pair  # type: ignore[return-value]


def _visible(path: Path) -> bool:
    return not path.name.startswith(".")


def _class_names(folder: Path) -> list[str]:
    """Sorted names of the visible subfolders: one class each."""
    classes = sorted(p.name for p in folder.iterdir() if p.is_dir() and _visible(p))
    if not classes:
        raise SelfgrowError(
            f"imagefolder {str(folder)!r} has no class subfolders; put each class's images in its own folder."
        )
    return classes


def _list_images(folder: Path, classes: list[str]) -> tuple[list[Path], list[int]]:
    """Every visible file under each class folder present in `folder` (sorted), with its label."""
    present = {p.name for p in folder.iterdir() if p.is_dir() and _visible(p)}
    unknown = sorted(present - set(classes))
    if unknown:
        raise SelfgrowError(f"{str(folder)!r} has class folders {unknown} missing from the training classes {classes}.")
    files: list[Path] = []
    labels: list[int] = []
    for label, name in enumerate(classes):
        if name not in present:
            continue
        found = sorted(
            p for p in (folder / name).rglob("*")
            if p.is_file() and all(part[0] != "." for part in p.relative_to(folder).parts)
        )  # fmt: skip
        if not found:
            raise SelfgrowError(f"class folder {str(folder / name)!r} holds no images; remove it or add images.")
        files += found
        labels += [label] * len(found)
    return files, labels


def _header(file: Path) -> tuple[str, tuple[int, int]]:
    """(mode, (height, width)) of an image, read from its header only."""
    try:
        with Image.open(file) as image:
            return image.mode, (image.height, image.width)
    except (UnidentifiedImageError, OSError) as err:
        raise SelfgrowError(
            f"{str(file)!r} is not an image file Pillow can read; imagefolder accepts only images."
        ) from err


def _common_size(files: list[Path], headers: list[tuple[str, tuple[int, int]]]) -> tuple[int, int]:
    """The one size all images share (needed when no `size` is given)."""
    first = headers[0][1]
    for file, (_, hw) in zip(files, headers):
        if hw != first:
            raise SelfgrowError(
                f"{str(file)!r} is {hw[0]}x{hw[1]} but {str(files[0])!r} is {first[0]}x{first[1]}; "
                "pass size=[height, width] to resize all images."
            )
    return first


def _read_pixels(files: list[Path], mode: str, size: tuple[int, int]) -> np.ndarray:
    """Decode, convert to `mode` and resize every file -> uint8 (N, H, W) or (N, H, W, 3)."""
    height, width = size
    out = np.empty((len(files), height, width, *(() if mode == "L" else (3,))), dtype=np.uint8)
    for i, file in enumerate(tqdm(files, desc="reading images", unit="img", disable=None, leave=False)):
        try:
            with Image.open(file) as image:
                converted = image.convert(mode)
                if converted.size != (width, height):
                    converted = converted.resize((width, height), Image.Resampling.BILINEAR)
                out[i] = np.asarray(converted)
        except OSError as err:
            raise SelfgrowError(f"{str(file)!r} could not be decoded ({err}); replace or remove it.") from err
    return out
