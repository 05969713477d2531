"""The prepared format: JPEG splits decoded once and cached, cache invalidation, clear errors."""

from __future__ import annotations

import io
import os

import numpy as np
import pytest
import torch
from PIL import Image

from selfgrow.data import load
from selfgrow.data import prepared
from selfgrow.errors import SelfgrowError

COLOURS = [(250, 10, 10), (10, 250, 10), (10, 10, 250), (200, 200, 40)]


def write_jpeg_split(path, colours, labels):
    """A split in the shared CIFAR-10 layout: concatenated JPEG files plus offsets."""
    blobs = []
    for colour in colours:
        buffer = io.BytesIO()
        Image.new("RGB", (6, 4), colour).save(buffer, format="JPEG", quality=95)
        blobs.append(np.frombuffer(buffer.getvalue(), dtype=np.uint8))
    offsets = np.concatenate([[0], np.cumsum([len(b) for b in blobs])]).astype(np.int64)
    np.savez_compressed(path, jpeg=np.concatenate(blobs), offsets=offsets, y=np.asarray(labels, dtype=np.int64))


@pytest.fixture
def jpeg_root(tmp_path, monkeypatch):
    """A data root holding a tiny JPEG-format 'cifar10' and an empty decoded cache."""
    monkeypatch.setenv("SELFGROW_CACHE", str(tmp_path / "cache"))
    folder = tmp_path / "data" / "cifar10"
    folder.mkdir(parents=True)
    write_jpeg_split(folder / "train.npz", COLOURS, [0, 1, 2, 1])
    write_jpeg_split(folder / "test.npz", COLOURS[:2], [1, 0])
    (folder / "classes.txt").write_text("red\ngreen\nblue\n")
    return tmp_path / "data"


def mean_colours(x: torch.Tensor) -> torch.Tensor:
    return x.float().mean(dim=(2, 3))


def test_jpeg_split_decodes_to_channels_first_rgb(jpeg_root):
    data = load("cifar10", jpeg_root)
    assert data.x_train.shape == (4, 3, 4, 6) and data.x_train.dtype == torch.uint8
    assert torch.allclose(mean_colours(data.x_train), torch.tensor(COLOURS, dtype=torch.float32), atol=4)
    assert data.y_test.tolist() == [1, 0] and data.classes == ["red", "green", "blue"]


def test_second_load_reads_the_cache_without_decoding(jpeg_root, monkeypatch):
    first = load("cifar10", jpeg_root)
    cached = prepared.decoded_cache_path(jpeg_root / "cifar10" / "train.npz")
    assert cached.is_file()

    def no_decoding(*args, **kwargs):
        raise AssertionError("decoded again although a cache entry exists")

    monkeypatch.setattr(prepared, "decode_jpegs", no_decoding)
    second = load("cifar10", jpeg_root)
    assert torch.equal(first.x_train, second.x_train) and torch.equal(first.x_test, second.x_test)


def test_changed_source_invalidates_and_replaces_its_cache(jpeg_root):
    source = jpeg_root / "cifar10" / "train.npz"
    load("cifar10", jpeg_root)
    old_cache = prepared.decoded_cache_path(source)
    write_jpeg_split(source, COLOURS[::-1], [1, 2, 1, 0])
    stat = source.stat()
    os.utime(source, ns=(stat.st_atime_ns, stat.st_mtime_ns + 1_000_000_000))  # guard coarse mtime clocks
    data = load("cifar10", jpeg_root)
    assert torch.allclose(mean_colours(data.x_train), torch.tensor(COLOURS[::-1], dtype=torch.float32), atol=4)
    new_cache = prepared.decoded_cache_path(source)
    assert new_cache != old_cache and not old_cache.exists()
    assert sorted(p.name for p in new_cache.parent.iterdir() if p.name.startswith("train")) == [new_cache.name]


def test_damaged_cache_entry_is_rebuilt(jpeg_root):
    first = load("cifar10", jpeg_root)
    prepared.decoded_cache_path(jpeg_root / "cifar10" / "train.npz").write_bytes(b"garbage")
    assert torch.equal(load("cifar10", jpeg_root).x_train, first.x_train)


def test_missing_dataset_says_how_to_get_it(tmp_path):
    expected = r"'svhn' is not prepared .*missing train.npz, test.npz, classes.txt.*download"
    with pytest.raises(SelfgrowError, match=expected):
        load("svhn", tmp_path)


def test_corrupt_split_file_is_named(jpeg_root):
    (jpeg_root / "cifar10" / "test.npz").write_bytes(b"not a zip")
    with pytest.raises(SelfgrowError, match="test.npz is not a readable prepared split"):
        load("cifar10", jpeg_root)


def test_labels_beyond_classes_txt_are_rejected(jpeg_root):
    (jpeg_root / "cifar10" / "classes.txt").write_text("red\ngreen\n")
    with pytest.raises(SelfgrowError, match=r"labels in \[0, 2\] but classes.txt names 2 classes"):
        load("cifar10", jpeg_root)


def test_split_without_images_is_rejected(tmp_path):
    folder = tmp_path / "mnist"
    folder.mkdir()
    for split in ("train", "test"):
        np.savez(folder / f"{split}.npz", y=np.zeros(2, dtype=np.int64))
    (folder / "classes.txt").write_text("0\n")
    with pytest.raises(SelfgrowError, match="needs 'y' and either 'x' or 'jpeg' with 'offsets'"):
        load("mnist", tmp_path)
