"""User data: class-per-folder images and .npz arrays, happy paths and clear errors."""

from __future__ import annotations

import numpy as np
import pytest
import torch
from PIL import Image

from selfgrow.data import load
from selfgrow.errors import SelfgrowError


def save_image(path, colour, size=(10, 6), mode="RGB"):
    path.parent.mkdir(parents=True, exist_ok=True)
    Image.new(mode, size, colour).save(path)


@pytest.fixture
def folder(tmp_path):
    """Two classes (5 'red' and 5 'blue' images of assorted sizes), folders listed out of order."""
    root = tmp_path / "images"
    for i in range(5):
        save_image(root / "zebra" / f"{i}.png", (0, 0, 200), size=(10 + i, 6))
        save_image(root / "apple" / f"{i}.png", (200, 0, 0), size=(6, 6))
    return root


def test_imagefolder_resizes_names_classes_sorted_and_splits_stratified(folder):
    data = load("imagefolder", path=folder, size=[4, 5], test_fraction=0.4)
    assert data.classes == ["apple", "zebra"]
    assert data.x_train.shape == (6, 3, 4, 5) and data.x_train.dtype == torch.uint8
    assert data.y_train.bincount().tolist() == [3, 3] and data.y_test.bincount().tolist() == [2, 2]
    colours = data.x_train.float().mean(dim=(2, 3))
    expected = torch.tensor([[200.0, 0, 0], [0, 0, 200.0]])[data.y_train]
    assert torch.allclose(colours, expected, atol=1)


def test_imagefolder_uses_train_and_test_subfolders(tmp_path):
    for split, n in (("train", 3), ("test", 2)):
        for i in range(n):
            save_image(tmp_path / split / "b" / f"{i}.png", 90, mode="L", size=(3, 3))
            save_image(tmp_path / split / "a" / f"{i}.png", 30, mode="L", size=(3, 3))
    data = load("imagefolder", path=tmp_path)
    assert data.x_train.shape == (6, 1, 3, 3) and data.x_test.shape == (4, 1, 3, 3)  # all grey -> one channel
    assert data.y_test.tolist() == [0, 0, 1, 1]
    assert data.x_test[:, 0, 0, 0].tolist() == [30, 30, 90, 90]
    assert load("imagefolder", path=tmp_path, grayscale=False).x_train.shape == (6, 3, 3, 3)


def test_imagefolder_names_a_non_image_file(folder):
    (folder / "apple" / "notes.txt").write_text("not an image")
    with pytest.raises(SelfgrowError, match=r"notes.txt' is not an image file"):
        load("imagefolder", path=folder, size=4)


def test_imagefolder_needs_size_when_images_differ(folder):
    with pytest.raises(SelfgrowError, match="pass size="):
        load("imagefolder", path=folder)


@pytest.mark.parametrize("size", [0, [4], "big", [4, 4.5], True])
def test_imagefolder_rejects_bad_sizes(folder, size):
    with pytest.raises(SelfgrowError, match="size .* is not accepted"):
        load("imagefolder", path=folder, size=size)


def test_imagefolder_rejects_a_folder_without_classes(tmp_path):
    with pytest.raises(SelfgrowError, match="no class subfolders"):
        load("imagefolder", path=tmp_path)
    with pytest.raises(SelfgrowError, match="is not a folder"):
        load("imagefolder", path=tmp_path / "absent")


def npz_file(tmp_path, **arrays):
    path = tmp_path / "data.npz"
    np.savez(path, **arrays)
    return path


@pytest.mark.parametrize("layout", ["nhwc", "nchw", "nhw"])
def test_npz_accepts_each_image_layout(tmp_path, layout):
    nchw = np.arange(6 * 3 * 4 * 5, dtype=np.uint8).reshape(6, 3, 4, 5)
    if layout == "nhw":
        nchw = nchw[:, :1]
    x = {"nhwc": nchw.transpose(0, 2, 3, 1), "nchw": nchw, "nhw": nchw[:, 0]}[layout]
    y = np.array([0, 1, 2, 0, 1, 2])
    data = load("npz", path=npz_file(tmp_path, x=x, y=y, x_test=x[:2], y_test=y[:2], classes=np.array(["a", "b", "c"])))
    assert torch.equal(data.x_train, torch.from_numpy(nchw))
    assert data.classes == ["a", "b", "c"] and data.y_test.tolist() == [0, 1]


def test_npz_scales_floats_and_splits_off_a_test_set(tmp_path):
    x = np.full((10, 2, 2), 0.5, dtype=np.float32)
    x[:, 0, 0] = 1.0
    y = np.repeat([0, 1], 5)
    data = load("npz", path=npz_file(tmp_path, x=x, y=y), test_fraction=0.2)
    assert data.classes == ["0", "1"] and data.y_test.bincount().tolist() == [1, 1]
    assert data.x_train[0, 0].tolist() == [[255, 128], [128, 128]]


@pytest.mark.parametrize(
    "arrays, message",
    [
        ({"x": np.zeros((4, 5, 5, 5), np.uint8), "y": np.zeros(4, int)}, r"x has shape \(4, 5, 5, 5\); accepted"),
        ({"x": np.zeros((4, 5), np.uint8), "y": np.zeros(4, int)}, r"x has shape \(4, 5\)"),
        ({"x": np.zeros((4, 2, 2), np.int16), "y": np.zeros(4, int)}, "x has dtype int16"),
        ({"x": np.full((4, 2, 2), 2.0), "y": np.zeros(4, int)}, "values outside"),
        ({"x": np.zeros((4, 2, 2), np.uint8), "y": np.zeros(3, int)}, r"y has shape \(3,\); expected \(4,\)"),
        ({"x": np.zeros((4, 2, 2), np.uint8), "y": np.zeros(4)}, "y has dtype float64"),
        ({"x": np.zeros((4, 2, 2), np.uint8), "y": np.array([0, 1, -1, 0])}, "negative label -1"),
        ({"x": np.zeros((4, 2, 2), np.uint8), "y": np.array([0, 1, 2, 0]), "classes": np.array(["a", "b"])},
         r"label 2 but names 2 classes"),
        ({"x": np.zeros((4, 2, 2), np.uint8), "y": np.zeros(4, int), "x_test": np.zeros((1, 2, 2), np.uint8)},
         "only one of 'x_test' and 'y_test'"),
        ({"x": np.zeros((4, 2, 2), np.uint8), "y": np.zeros(4, int), "x_test": np.zeros((1, 3, 3), np.uint8),
          "y_test": np.zeros(1, int)}, "x_test images are"),
        ({"images": np.zeros((4, 2, 2), np.uint8)}, r"lacks the arrays \['x', 'y'\]"),
    ],
)  # fmt: skip
def test_npz_errors_name_the_problem(tmp_path, arrays, message):
    with pytest.raises(SelfgrowError, match=message):
        load("npz", path=npz_file(tmp_path, **arrays))


def test_npz_refuses_pickled_objects_and_missing_files(tmp_path):
    path = tmp_path / "objects.npz"
    np.savez(path, x=np.array([{"a": 1}], dtype=object), y=np.zeros(1, int))
    with pytest.raises(SelfgrowError, match="not a readable .npz of plain arrays"):
        load("npz", path=path)
    with pytest.raises(SelfgrowError, match="is not a file"):
        load("npz", path=tmp_path / "absent.npz")
