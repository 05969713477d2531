"""Damaged or inconsistent dataset files: one sentence naming the file (cases not already in tests/test_data_*.py)."""

from __future__ import annotations

import numpy as np
import pytest

from selfgrow import streams
from selfgrow.data import load
from selfgrow.data.prepared import write_prepared
from selfgrow.errors import SelfgrowError


def _prepared(root, labels=(0, 1, 2, 3), classes=("a", "b", "c", "d")):
    """A tiny prepared 'mnist' folder: 5 samples per listed label in each split."""
    y = np.repeat(np.asarray(labels), 5)
    x = np.random.default_rng(0).integers(0, 256, (len(y), 4, 4), dtype=np.uint8)
    write_prepared(root / "mnist", (x, y), (x, y), list(classes))
    return root / "mnist"


def _truncate(path, keep=0.5):
    data = path.read_bytes()
    path.write_bytes(data[: int(len(data) * keep)])


def test_truncated_prepared_split_is_named_with_the_fix(tmp_path):
    folder = _prepared(tmp_path)
    _truncate(folder / "train.npz", 0.9)
    with pytest.raises(
        SelfgrowError,
        match=rf"{folder / 'train.npz'} is not a readable prepared split .*download again",
    ):
        load("mnist", tmp_path)


def test_truncated_user_npz_is_named(tmp_path):
    path = tmp_path / "mine.npz"
    np.savez(path, x=np.zeros((8, 4, 4), np.uint8), y=np.arange(8) % 2)
    _truncate(path)
    with pytest.raises(
        SelfgrowError, match=r"mine.npz' is not a readable .npz of plain arrays"
    ):
        load("npz", path=path)


def test_a_task_class_without_training_samples_is_refused(tmp_path):
    _prepared(tmp_path, labels=(0, 1, 3))
    with pytest.raises(
        SelfgrowError,
        match=r"Task '.*' has no training samples of class \['c'\] in dataset 'mnist'",
    ):
        streams.build(
            "split",
            dataset="mnist",
            data_dir=str(tmp_path),
            n_tasks=2,
            classes_per_task=2,
        )


def test_a_user_npz_class_without_samples_is_refused(tmp_path):
    path = tmp_path / "mine.npz"
    np.savez(
        path,
        x=np.zeros((8, 4, 4), np.uint8),
        y=np.arange(8) % 2,
        classes=np.array(["cat", "dog", "eel"]),
    )
    with pytest.raises(
        SelfgrowError,
        match=r"mine.npz' has no training samples of class 'eel' \(label 2\)",
    ):
        load("npz", path=path)


@pytest.mark.parametrize(
    "arrays, message",
    [
        ({"x": np.zeros((20, 4, 4), np.float32)}, "expected uint8 images, got float32"),
        ({"x": np.zeros((20, 16), np.uint8)}, r"expected images of shape \(N, H, W\) or \(N, H, W, C\), got \(20, 16\)"),
        ({"x": np.zeros((19, 4, 4), np.uint8)}, "holds 19 images but 20 labels"),
        ({"y": np.full(20, 7)}, r"labels in \[7, 7\] but classes.txt names 4 classes"),
    ],
)  # fmt: skip
def test_prepared_split_with_wrong_arrays_names_file_and_problem(tmp_path, arrays, message):
    folder = _prepared(tmp_path)
    with np.load(folder / "train.npz") as archive:
        good = {"x": archive["x"], "y": archive["y"]}
    np.savez(folder / "train.npz", **{**good, **arrays})
    with pytest.raises(SelfgrowError, match=rf"{folder / 'train.npz'}.*{message}"):
        load("mnist", tmp_path)
