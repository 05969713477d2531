"""The offline copies of real datasets load with the official counts, shapes and statistics."""

from __future__ import annotations

import pytest
import torch

from selfgrow.data import dataset_info, load, prepared
from selfgrow.data.prepared import read_split
from selfgrow.data.transforms import channel_stats

MNIST_TRAIN = [5923, 6742, 5958, 6131, 5842, 5421, 5918, 6265, 5851, 5949]
MNIST_TEST = [980, 1135, 1032, 1010, 982, 892, 958, 1028, 974, 1009]


@pytest.fixture(scope="module")
def cifar_memo(tmp_path_factory):
    """Decode CIFAR-10 once per module, into a throw-away cache folder."""
    with pytest.MonkeyPatch.context() as patch:
        patch.setenv("SELFGROW_CACHE", str(tmp_path_factory.mktemp("decoded")))
        yield {}


@pytest.fixture
def cifar10(real_data_root, cifar_memo):
    if "data" not in cifar_memo:
        cifar_memo["data"] = load("cifar10", real_data_root)
    return cifar_memo["data"]


def check_grey(data, train_counts, test_counts):
    assert data.x_train.shape == (60000, 1, 28, 28) and data.x_test.shape == (10000, 1, 28, 28)
    assert data.x_train.dtype == torch.uint8 and data.y_train.dtype == torch.int64
    assert data.y_train.bincount().tolist() == train_counts
    assert data.y_test.bincount().tolist() == test_counts


def test_mnist_official_counts_and_pixel_statistics(real_data_root):
    data = load("mnist", real_data_root)
    check_grey(data, MNIST_TRAIN, MNIST_TEST)
    assert data.classes == [str(d) for d in range(10)]
    mean, std = channel_stats(data.x_train)
    assert mean[0] == pytest.approx(0.1306605, abs=1e-6) and std[0] == pytest.approx(0.3081078, abs=1e-6)
    info = dataset_info("mnist", real_data_root)
    assert info["status"] == "ready" and info["size_mb"] == pytest.approx(11.5, abs=0.2)


def test_fashion_mnist_official_counts(real_data_root):
    data = load("fashion_mnist", real_data_root)
    check_grey(data, [6000] * 10, [1000] * 10)
    assert data.classes[0] == "T-shirt/top" and data.classes[9] == "Ankle boot"
    mean, _ = channel_stats(data.x_train)
    assert mean[0] == pytest.approx(0.2860406, abs=1e-6)


def test_cifar10_official_counts_shapes_and_channel_means(cifar10):
    assert cifar10.x_train.shape == (50000, 3, 32, 32) and cifar10.x_test.shape == (10000, 3, 32, 32)
    assert cifar10.x_train.dtype == torch.uint8 and cifar10.y_test.dtype == torch.int64
    assert cifar10.y_train.bincount().tolist() == [5000] * 10
    assert cifar10.y_test.bincount().tolist() == [1000] * 10
    assert cifar10.classes[:3] == ["airplane", "automobile", "bird"]
    mean, _ = channel_stats(cifar10.x_train)  # R, G, B order (README: 0.4913 / 0.4821 / 0.4465)
    assert mean == pytest.approx((0.4913, 0.4821, 0.4465), abs=2e-4)


def test_cifar10_second_load_comes_from_the_cache(cifar10, real_data_root, monkeypatch):
    def no_decoding(*args, **kwargs):
        raise AssertionError("decoded again although a cache entry exists")

    monkeypatch.setattr(prepared, "decode_jpegs", no_decoding)
    x_test, y_test = read_split(real_data_root / "cifar10" / "test.npz", 10)
    assert torch.equal(x_test, cifar10.x_test) and torch.equal(y_test, cifar10.y_test)
