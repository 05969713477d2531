"""The prepared on-disk format: `<root>/<name>/{train,test}.npz` plus `classes.txt` (see datasets/README.md).

A split's npz holds int64 labels `y` and the images either as uint8 `x` ((N, H, W) grey or
(N, H, W, C) channels-last) or as concatenated JPEG files `jpeg` with `offsets` (N + 1,). JPEG
splits are decoded once and the pixels cached under `cache_root()`, keyed by the source file's
path, size and modification time, so a changed source invalidates its cache.
"""

from __future__ import annotations

import hashlib
import io
import warnings
import zipfile
from pathlib import Path

import numpy as np
import torch
from PIL import Image
from tqdm import tqdm

from selfgrow.atomic import atomic_write_bytes, atomic_write_text
from selfgrow.data.arrays import DatasetArrays
from selfgrow.data.files import cache_root
from selfgrow.data.images import as_nchw_tensor, labels_tensor
from selfgrow.errors import SelfgrowError

SPLITS = ("train", "test")
CLASSES_FILE = "classes.txt"
PREPARED_FILES = (*(f"{split}.npz" for split in SPLITS), CLASSES_FILE)
# Bump when the decoding below changes, so caches written by older code are not reused.
DECODE_VERSION = 1


def is_prepared(folder: Path) -> bool:
    """True when `folder` holds every file of the prepared format."""
    return all((folder / name).is_file() for name in PREPARED_FILES)


def read_prepared(folder: Path, name: str) -> DatasetArrays:
    """Load a prepared dataset folder into `DatasetArrays` (decoding and caching JPEG splits)."""
    if not is_prepared(folder):
        missing = [f for f in PREPARED_FILES if not (folder / f).is_file()]
        raise SelfgrowError(
            f"Dataset {name!r} is not prepared in {folder} (missing {', '.join(missing)}); download it first "
            f"(`selfgrow data download {name}`) or point --data-dir / SELFGROW_DATA at a folder holding it."
        )
    classes = read_classes(folder / CLASSES_FILE)
    x_train, y_train = read_split(folder / "train.npz", len(classes))
    x_test, y_test = read_split(folder / "test.npz", len(classes))
    return DatasetArrays(name, x_train, y_train, x_test, y_test, classes)


def read_classes(path: Path) -> list[str]:
    """Class names, one per line (line i names label i)."""
    return [line for line in path.read_text(encoding="utf-8").splitlines() if line.strip()]


def read_split(path: Path, num_classes: int) -> tuple[torch.Tensor, torch.Tensor]:
    """One prepared split as (uint8 (N, C, H, W), int64 (N,)) tensors, labels checked against `num_classes`."""
    try:
        with np.load(path, allow_pickle=False) as archive:
            keys = set(archive.files)
            if "y" not in keys or not ("x" in keys or {"jpeg", "offsets"} <= keys):
                raise SelfgrowError(
                    f"{path} holds arrays {sorted(keys)}; a prepared split needs 'y' and either 'x' "
                    "or 'jpeg' with 'offsets'."
                )
            y = labels_tensor(archive["y"])
            x = as_nchw_tensor(archive["x"]) if "x" in keys else torch.from_numpy(_decoded_jpegs(path, archive))
    except SelfgrowError:
        raise
    except (OSError, zipfile.BadZipFile, ValueError, TypeError) as err:
        raise SelfgrowError(f"{path} is not a readable prepared split ({err}); delete it and download again.") from err
    if len(x) != len(y):
        raise SelfgrowError(f"{path} holds {len(x)} images but {len(y)} labels; each image needs one label.")
    if len(y) and (int(y.min()) < 0 or int(y.max()) >= num_classes):
        raise SelfgrowError(
            f"{path} has labels in [{int(y.min())}, {int(y.max())}] but classes.txt names {num_classes} classes; "
            f"labels must lie in [0, {num_classes - 1}]."
        )
    return x, y


def write_prepared(
    folder: Path,
    train: tuple[np.ndarray, np.ndarray],
    test: tuple[np.ndarray, np.ndarray],
    classes: list[str],
) -> None:
    """Write a dataset in the prepared format, each file atomically; images uint8 (N, H, W) or (N, H, W, C)."""
    for split, (x, y) in zip(SPLITS, (train, test)):
        images, labels = np.ascontiguousarray(x, dtype=np.uint8), np.asarray(y, dtype=np.int64)
        atomic_write_bytes(folder / f"{split}.npz", _serialised(np.savez_compressed, x=images, y=labels))
    atomic_write_text(folder / CLASSES_FILE, "\n".join(classes) + "\n")


def _serialised(save, *args, **kwargs) -> bytes:
    """The bytes numpy's `save`/`savez*` would write to a file."""
    buffer = io.BytesIO()
    save(buffer, *args, **kwargs)
    return buffer.getvalue()


def decoded_cache_path(source: Path) -> Path:
    """Where the decoded pixels of the JPEG split `source` are cached (the key changes with the source file)."""
    stat = source.stat()
    identity = f"{DECODE_VERSION}|{source.resolve()}|{stat.st_size}|{stat.st_mtime_ns}"
    key = hashlib.sha1(identity.encode()).hexdigest()[:16]
    return cache_root() / source.parent.name / f"{source.stem}-{key}.npy"


def _decoded_jpegs(source: Path, archive: np.lib.npyio.NpzFile) -> np.ndarray:
    """uint8 (N, 3, H, W) pixels of a JPEG split: read from the cache, else decoded and cached."""
    cached = decoded_cache_path(source)
    if cached.is_file():
        try:
            return np.load(cached, allow_pickle=False)
        except (OSError, ValueError):
            pass  # a damaged cache entry is simply rebuilt below
    channels_last = decode_jpegs(archive["jpeg"], archive["offsets"], f"decoding {source.parent.name}/{source.name}")
    pixels = np.ascontiguousarray(channels_last.transpose(0, 3, 1, 2))
    try:
        atomic_write_bytes(cached, _serialised(np.save, pixels))
        for stale in cached.parent.glob(f"{source.stem}-*.npy"):
            if stale != cached:
                stale.unlink(missing_ok=True)
    except OSError as err:
        warnings.warn(
            f"could not cache decoded images in {cached.parent} ({err}); set SELFGROW_CACHE to a writable folder",
            stacklevel=2,
        )
    return pixels


def decode_jpegs(buffer: np.ndarray, offsets: np.ndarray, desc: str = "decoding") -> np.ndarray:
    """Concatenated JPEG files -> uint8 (N, H, W, 3) RGB pixels; image i is buffer[offsets[i]:offsets[i + 1]].

    Pillow decodes one file per call, so this loop is per image; it runs once per source thanks to the cache.
    """
    view = memoryview(np.ascontiguousarray(buffer, dtype=np.uint8))
    count = len(offsets) - 1
    images = None
    for i in tqdm(range(count), desc=desc, unit="img", disable=None, leave=False):
        with Image.open(io.BytesIO(view[offsets[i] : offsets[i + 1]])) as image:
            pixels = np.asarray(image.convert("RGB"))
        if images is None:
            images = np.empty((count, *pixels.shape), dtype=np.uint8)
        if pixels.shape != images.shape[1:]:
            raise SelfgrowError(f"JPEG image {i} is {pixels.shape}, unlike the first image {images.shape[1:]}.")
        images[i] = pixels
    return images if images is not None else np.empty((0, 0, 0, 3), dtype=np.uint8)
