"""Registry, data root resolution, option checking, availability, and the built-in digits."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest
import torch
from sklearn.datasets import load_digits

from selfgrow.data import DATASETS, available, data_root, dataset_info, load
from selfgrow.errors import SelfgrowError


def test_registry_covers_the_documented_datasets():
    names = {"digits", "mnist", "fashion_mnist", "cifar10", "cifar100", "svhn", "imagefolder", "npz"}
    assert set(DATASETS) == names
    downloadable = {n for n, s in DATASETS.items() if s.downloadable}
    assert downloadable == {"mnist", "fashion_mnist", "cifar10", "cifar100", "svhn"}
    assert DATASETS["svhn"].splits == {"train": 73257, "test": 26032}
    assert DATASETS["cifar100"].num_classes == 100 and DATASETS["cifar100"].input_shape == (3, 32, 32)


def test_data_root_prefers_argument_then_environment_then_home(monkeypatch, tmp_path):
    monkeypatch.setenv("SELFGROW_DATA", str(tmp_path / "env"))
    assert data_root(tmp_path / "arg") == tmp_path / "arg"
    assert data_root() == tmp_path / "env"
    monkeypatch.delenv("SELFGROW_DATA")
    monkeypatch.setenv("HOME", str(tmp_path / "home"))
    assert data_root() == tmp_path / "home" / ".cache" / "selfgrow"


def test_unknown_dataset_suggests_the_closest_name():
    with pytest.raises(SelfgrowError, match="Unknown dataset 'mnsit'.*Did you mean 'mnist'"):
        load("mnsit")


def test_options_are_checked_by_name():
    with pytest.raises(SelfgrowError, match="'digits' has no option 'size'; accepted options: none"):
        load("digits", size=4)
    with pytest.raises(SelfgrowError, match="'imagefolder' needs the option 'path'"):
        load("imagefolder")
    with pytest.raises(SelfgrowError, match="'npz' has no option 'pth'; accepted options: path, test_fraction, seed"):
        load("npz", pth="x.npz")


def test_digits_are_uint8_8x8_with_a_fixed_stratified_quarter_test_split():
    data = load("digits")
    again = load("digits")
    assert torch.equal(data.x_train, again.x_train) and torch.equal(data.y_test, again.y_test)
    assert data.input_shape == (1, 8, 8) and data.x_train.dtype == torch.uint8 and data.y_train.dtype == torch.int64
    assert (len(data.y_train), len(data.y_test)) == (1347, 450)
    assert DATASETS["digits"].splits == {"train": len(data.y_train), "test": len(data.y_test)}
    per_class = np.bincount(load_digits().target)
    assert data.y_test.bincount().tolist() == np.round(per_class * 0.25).astype(int).tolist()
    assert (data.y_train.bincount() + data.y_test.bincount()).tolist() == per_class.tolist()
    # 0..16 rescaled to 0..255: pixel value 16 (max ink) becomes 255, 8 becomes round(127.5) = 128.
    assert int(data.x_train.max()) == 255
    assert set(torch.unique(data.x_train).tolist()) <= {round(v * 255 / 16) for v in range(17)}


def test_availability_and_info_for_a_missing_dataset(tmp_path):
    assert available("digits", tmp_path) and available("npz", tmp_path)
    assert not available("cifar100", tmp_path)
    info = dataset_info("cifar100", tmp_path)
    assert info["status"] == "not downloaded" and info["size_mb"] is None and info["downloadable"]
    assert (info["train"], info["test"], info["classes"]) == (50000, 10000, 100)
    assert Path(info["path"]) == tmp_path / "cifar100"
    assert dataset_info("digits", tmp_path)["status"] == "built in"
    assert dataset_info("imagefolder", tmp_path)["train"] is None


def test_info_reports_size_on_disk_for_a_prepared_dataset(tmp_path):
    folder = tmp_path / "mnist"
    folder.mkdir()
    for split in ("train", "test"):
        np.savez(folder / f"{split}.npz", x=np.zeros((1000, 28, 28), np.uint8), y=np.zeros(1000, np.int64))
    (folder / "classes.txt").write_text("0\n")
    info = dataset_info("mnist", tmp_path)
    assert info["status"] == "ready" and info["available"]
    assert info["size_mb"] == pytest.approx(2 * 1000 * 28 * 28 / 1e6, abs=0.1)
