"""Readers for the files the dataset authors publish: MNIST idx.gz, CIFAR python tarballs, SVHN .mat.

Each returns plain numpy arrays in the layout of the prepared format (uint8 images (N, H, W) or
(N, H, W, C), int64 labels) so `download` can write them with `write_prepared`.
"""

from __future__ import annotations

import gzip
import pickle
import tarfile
from dataclasses import dataclass
from pathlib import Path

import numpy as np
import scipy.io

from selfgrow.errors import SelfgrowError

Split = tuple[np.ndarray, np.ndarray]
IDX_UINT8 = 0x08


@dataclass
class Converted:
    """A dataset read from its official files: (images, labels) per split and the class names."""

    train: Split
    test: Split
    classes: list[str]


def read_idx(path: Path) -> np.ndarray:
    """A gzipped idx file (LeCun's MNIST format: magic 0 0 <dtype> <ndim>, big-endian int32 dims, data)."""
    with gzip.open(path, "rb") as handle:
        raw = handle.read()
    ndim = raw[3] if len(raw) >= 4 else 0
    if len(raw) < 4 or raw[:2] != b"\0\0" or raw[2] != IDX_UINT8 or ndim == 0:
        raise SelfgrowError(f"{path.name} is not an unsigned-byte idx file (its header is {raw[:4]!r}).")
    dims = tuple(int(d) for d in np.frombuffer(raw, dtype=">i4", count=ndim, offset=4))
    data = np.frombuffer(raw, dtype=np.uint8, offset=4 + 4 * ndim)
    if data.size != int(np.prod(dims)):
        raise SelfgrowError(f"{path.name} declares shape {dims} but holds {data.size} values.")
    return data.reshape(dims)


def read_idx_dataset(files: dict[str, Path], classes: list[str]) -> Converted:
    """MNIST-style datasets: four idx.gz files (train/t10k images and labels)."""

    def split(prefix: str) -> Split:
        x = read_idx(files[f"{prefix}-images-idx3-ubyte.gz"])
        y = read_idx(files[f"{prefix}-labels-idx1-ubyte.gz"]).astype(np.int64)
        if len(x) != len(y):
            raise SelfgrowError(f"{prefix}-images holds {len(x)} images but {prefix}-labels {len(y)} labels.")
        return x, y

    return Converted(split("train"), split("t10k"), classes)


@dataclass(frozen=True)
class CifarLayout:
    """Which pickles inside a CIFAR python tarball hold what."""

    train_members: tuple[str, ...]
    test_members: tuple[str, ...]
    meta_member: str
    label_key: bytes
    names_key: bytes


CIFAR10_LAYOUT = CifarLayout(
    tuple(f"data_batch_{i}" for i in range(1, 6)), ("test_batch",), "batches.meta", b"labels", b"label_names"
)
# CIFAR-100 is used with its 100 fine labels (the 20 coarse superclasses are ignored).
CIFAR100_LAYOUT = CifarLayout(("train",), ("test",), "meta", b"fine_labels", b"fine_label_names")


def read_cifar_tarball(path: Path, layout: CifarLayout) -> Converted:
    """A CIFAR python tarball -> images (N, 32, 32, 3) channels-last, fine labels, class names.

    The batches are pickles; they are only unpickled after `download` verified the tarball's checksum.
    """
    with tarfile.open(path, "r:gz") as tar:
        members = {Path(m.name).name: m for m in tar.getmembers() if m.isfile()}

        def unpickle(member: str) -> dict:
            if member not in members:
                raise SelfgrowError(f"{path.name} lacks the member {member!r} of a CIFAR python archive.")
            return pickle.load(tar.extractfile(members[member]), encoding="bytes")  # noqa: S301 (checksum-verified)

        def split(member_names: tuple[str, ...]) -> Split:
            batches = [unpickle(m) for m in member_names]
            x = np.concatenate([np.asarray(b[b"data"], dtype=np.uint8) for b in batches])
            y = np.concatenate([np.asarray(b[layout.label_key], dtype=np.int64) for b in batches])
            return x.reshape(-1, 3, 32, 32).transpose(0, 2, 3, 1), y

        classes = [n.decode() for n in unpickle(layout.meta_member)[layout.names_key]]
        return Converted(split(layout.train_members), split(layout.test_members), classes)


def read_svhn_mat(path: Path) -> Split:
    """An SVHN cropped-digits .mat (X (32, 32, 3, N), y (N, 1), 10 meaning digit 0) -> (N, 32, 32, 3), labels 0..9."""
    mat = scipy.io.loadmat(path)
    if "X" not in mat or "y" not in mat:
        raise SelfgrowError(f"{path.name} lacks the arrays 'X' and 'y' of an SVHN .mat file.")
    x = np.ascontiguousarray(np.asarray(mat["X"], dtype=np.uint8).transpose(3, 0, 1, 2))
    y = np.asarray(mat["y"], dtype=np.int64).reshape(-1)
    return x, np.where(y == 10, 0, y)
