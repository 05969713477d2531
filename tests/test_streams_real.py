"""Streams over the real offline datasets, at small per-class sizes (skipped without the data)."""

from __future__ import annotations

import pytest
import torch

from selfgrow.streams import build


def test_split_mnist_at_reduced_size(real_data_root):
    stream = build("split", dataset="mnist", data_dir=real_data_root, max_train_per_class=20, max_val_per_class=5, max_test_per_class=10)
    assert [t.class_names for t in stream] == [["0", "1"], ["2", "3"], ["4", "5"], ["6", "7"], ["8", "9"]]
    assert all(t.input_shape == (1, 28, 28) and t.y_train.numel() == 40 and t.y_test.numel() == 20 for t in stream)
    # normalised with the statistics of MNIST's whole training set (the well-known values)
    assert stream[0].mean == pytest.approx((0.1307,), abs=1e-4) and stream[0].std == pytest.approx((0.3081,), abs=1e-4)


def test_ctrl_s_minus_on_real_data_is_rgb_32x32_with_cifar_augmentation(real_data_root):
    stream = build("s_minus", data_dir=real_data_root, max_train_per_class=8, max_val_per_class=2, max_test_per_class=3)
    assert len(stream) == 6
    for task in stream:
        assert task.input_shape == (3, 32, 32) and task.augment == {"crop_padding": 4, "hflip": True}
        assert task.x_train.dtype == torch.float32 and 0.0 <= task.x_train.min() and task.x_train.max() <= 1.0
        assert task.y_train.numel() == 80 and task.y_test.numel() == 30
    assert "stand-in for SVHN" in stream[4].description and "stand-in for DTD" in stream[2].description
