"""Download path against a local HTTP server serving small files generated in the official formats."""

from __future__ import annotations

import functools
import gzip
import hashlib
import http.server
import io
import pickle
import tarfile
import threading
from pathlib import Path

import numpy as np
import pytest
import scipy.io
import torch

from selfgrow.data import SOURCES, download, load
from selfgrow.data.download import FASHION_CLASSES
from selfgrow.errors import SelfgrowError

RNG = np.random.default_rng(0)


def md5(path: Path) -> str:
    return hashlib.md5(path.read_bytes()).hexdigest()


def write_idx_gz(path: Path, array: np.ndarray) -> None:
    header = bytes([0, 0, 8, array.ndim]) + np.asarray(array.shape, dtype=">i4").tobytes()
    with gzip.open(path, "wb") as handle:
        handle.write(header + array.astype(np.uint8).tobytes())


def write_tar_gz(path: Path, folder: str, members: dict[str, dict]) -> None:
    with tarfile.open(path, "w:gz") as tar:
        for name, content in members.items():
            data = pickle.dumps(content)
            info = tarfile.TarInfo(f"{folder}/{name}")
            info.size = len(data)
            tar.addfile(info, io.BytesIO(data))


def cifar_batch(n: int, label_key: bytes, num_classes: int) -> dict:
    images = RNG.integers(0, 256, (n, 3072), dtype=np.uint8)
    return {b"data": images, label_key: RNG.integers(0, num_classes, n).tolist()}


class QuietHandler(http.server.SimpleHTTPRequestHandler):
    def log_message(self, *args) -> None:
        pass


@pytest.fixture(scope="module")
def served(tmp_path_factory):
    """Generated official-format files under <dir>/<dataset>/, served on 127.0.0.1; yields (dir, url, expected)."""
    served = tmp_path_factory.mktemp("served")
    expected: dict[str, dict] = {}
    for name, classes in (("mnist", 10), ("fashion_mnist", 10)):
        folder = served / name
        folder.mkdir()
        splits = {"train": 7, "t10k": 4}
        expected[name] = {}
        for prefix, n in splits.items():
            images = RNG.integers(0, 256, (n, 28, 28), dtype=np.uint8)
            labels = np.arange(n) % classes
            write_idx_gz(folder / f"{prefix}-images-idx3-ubyte.gz", images)
            write_idx_gz(folder / f"{prefix}-labels-idx1-ubyte.gz", labels)
            expected[name][prefix] = (images, labels)
    (served / "cifar10").mkdir()
    batches = {f"data_batch_{i}": cifar_batch(3, b"labels", 10) for i in range(1, 6)}
    batches["test_batch"] = cifar_batch(4, b"labels", 10)
    names10 = [f"class{i}".encode() for i in range(10)]
    write_tar_gz(served / "cifar10" / "cifar-10-python.tar.gz", "cifar-10-batches-py",
                 {**batches, "batches.meta": {b"label_names": names10}})  # fmt: skip
    expected["cifar10"] = batches
    (served / "cifar100").mkdir()
    c100 = {"train": cifar_batch(5, b"fine_labels", 100), "test": cifar_batch(3, b"fine_labels", 100)}
    names100 = [f"fine{i}".encode() for i in range(100)]
    write_tar_gz(served / "cifar100" / "cifar-100-python.tar.gz", "cifar-100-python",
                 {**c100, "meta": {b"fine_label_names": names100, b"coarse_label_names": [b"x"] * 20}})  # fmt: skip
    expected["cifar100"] = c100
    (served / "svhn").mkdir()
    expected["svhn"] = {}
    for split, labels in (("train", [10, 1, 2, 10, 9]), ("test", [3, 10])):
        x = RNG.integers(0, 256, (32, 32, 3, len(labels)), dtype=np.uint8)
        scipy.io.savemat(served / "svhn" / f"{split}_32x32.mat", {"X": x, "y": np.asarray(labels).reshape(-1, 1)})
        expected["svhn"][split] = (x, labels)
    handler = functools.partial(QuietHandler, directory=str(served))
    server = http.server.ThreadingHTTPServer(("127.0.0.1", 0), handler)
    thread = threading.Thread(target=server.serve_forever, daemon=True)
    thread.start()
    yield served, f"http://127.0.0.1:{server.server_address[1]}", expected
    server.shutdown()
    server.server_close()


def checksums_of(folder: Path) -> dict[str, str]:
    return {p.name: md5(p) for p in folder.iterdir()}


def leftovers(root: Path, name: str) -> list[str]:
    """Everything in the data root other than the finished dataset folder."""
    return sorted(p.name for p in root.iterdir() if p.name != name)


def test_mnist_idx_files_are_converted_in_official_order(served, tmp_path):
    folder, url, expected = served
    target = download("mnist", tmp_path, base_url=f"{url}/mnist", checksums=checksums_of(folder / "mnist"))
    assert target == tmp_path / "mnist"
    assert leftovers(tmp_path, "mnist") == []
    data = load("mnist", tmp_path)
    train_x, train_y = expected["mnist"]["train"]
    assert data.x_train.dtype == torch.uint8 and data.x_train.shape == (7, 1, 28, 28)
    assert torch.equal(data.x_train[:, 0], torch.from_numpy(train_x))
    assert data.y_train.tolist() == train_y.tolist() and data.y_train.dtype == torch.int64
    assert torch.equal(data.x_test[:, 0], torch.from_numpy(expected["mnist"]["t10k"][0]))
    assert data.classes == [str(d) for d in range(10)]


def test_mirror_variable_points_at_a_per_dataset_folder(served, tmp_path, monkeypatch):
    folder, url, expected = served
    monkeypatch.setenv("SELFGROW_MIRROR", url)
    download("fashion_mnist", tmp_path, checksums=checksums_of(folder / "fashion_mnist"))
    data = load("fashion_mnist", tmp_path)
    assert data.classes == FASHION_CLASSES
    assert torch.equal(data.x_test[:, 0], torch.from_numpy(expected["fashion_mnist"]["t10k"][0]))


def test_cifar10_tarball_batches_become_channels_first_images(served, tmp_path):
    folder, url, expected = served
    download("cifar10", tmp_path, base_url=f"{url}/cifar10", checksums=checksums_of(folder / "cifar10"))
    data = load("cifar10", tmp_path)
    batches = expected["cifar10"]
    train = np.concatenate([batches[f"data_batch_{i}"][b"data"] for i in range(1, 6)]).reshape(-1, 3, 32, 32)
    assert data.x_train.shape == (15, 3, 32, 32)
    assert torch.equal(data.x_train, torch.from_numpy(train))
    assert data.y_train.tolist() == sum((batches[f"data_batch_{i}"][b"labels"] for i in range(1, 6)), [])
    assert data.y_test.tolist() == batches["test_batch"][b"labels"]
    assert data.classes == [f"class{i}" for i in range(10)]


def test_cifar100_uses_fine_labels_and_their_names(served, tmp_path):
    folder, url, expected = served
    download("cifar100", tmp_path, base_url=f"{url}/cifar100", checksums=checksums_of(folder / "cifar100"))
    data = load("cifar100", tmp_path)
    assert data.num_classes == 100 and data.classes[7] == "fine7"
    assert data.y_train.tolist() == expected["cifar100"]["train"][b"fine_labels"]
    assert torch.equal(data.x_test, torch.from_numpy(expected["cifar100"]["test"][b"data"].reshape(-1, 3, 32, 32)))


def test_svhn_mat_files_map_label_10_to_digit_0(served, tmp_path):
    folder, url, expected = served
    download("svhn", tmp_path, base_url=f"{url}/svhn", checksums=checksums_of(folder / "svhn"))
    data = load("svhn", tmp_path)
    x, labels = expected["svhn"]["train"]
    assert data.y_train.tolist() == [0, 1, 2, 0, 9]
    assert data.y_test.tolist() == [3, 0]
    assert torch.equal(data.x_train, torch.from_numpy(x.transpose(3, 2, 0, 1).copy()))


def test_published_checksum_mismatch_is_rejected_and_leaves_nothing(served, tmp_path):
    folder, url, _ = served
    actual = md5(folder / "mnist" / "train-images-idx3-ubyte.gz")
    published = SOURCES["mnist"].md5["train-images-idx3-ubyte.gz"]
    with pytest.raises(SelfgrowError) as err:
        download("mnist", tmp_path, base_url=f"{url}/mnist")
    message = str(err.value)
    assert "train-images-idx3-ubyte.gz" in message and published in message and actual in message
    assert list(tmp_path.rglob("*")) == []


def test_failed_forced_download_keeps_the_previous_copy(served, tmp_path):
    folder, url, expected = served
    good = checksums_of(folder / "mnist")
    download("mnist", tmp_path, base_url=f"{url}/mnist", checksums=good)
    before = {p.name: p.read_bytes() for p in (tmp_path / "mnist").iterdir()}
    bad = {**good, "t10k-labels-idx1-ubyte.gz": "0" * 32}
    with pytest.raises(SelfgrowError, match="t10k-labels-idx1-ubyte.gz"):
        download("mnist", tmp_path, base_url=f"{url}/mnist", checksums=bad, force=True)
    assert {p.name: p.read_bytes() for p in (tmp_path / "mnist").iterdir()} == before
    assert leftovers(tmp_path, "mnist") == []


def test_prepared_folder_is_kept_unless_forced(served, tmp_path):
    folder, url, _ = served
    download("mnist", tmp_path, base_url=f"{url}/mnist", checksums=checksums_of(folder / "mnist"))
    # A second call must not touch the network: an unreachable URL would fail if it did.
    assert download("mnist", tmp_path, base_url="http://127.0.0.1:9/none") == tmp_path / "mnist"


def test_unreachable_file_is_a_clear_error(served, tmp_path):
    _, url, _ = served
    with pytest.raises(SelfgrowError, match="Could not download .*svhn/train_32x32.mat"):
        download("svhn", tmp_path, base_url=f"{url}/missing/svhn")
    assert list(tmp_path.rglob("*")) == []


def test_files_not_in_the_official_layout_are_a_clear_error(served, tmp_path):
    folder, url, _ = served
    bad = folder / "bad_cifar10"
    bad.mkdir()
    write_tar_gz(bad / "cifar-10-python.tar.gz", "cifar-10-batches-py", {"test_batch": {b"labels": [1]}})
    with pytest.raises(SelfgrowError, match="lacks the member 'batches.meta'"):
        download("cifar10", tmp_path, base_url=f"{url}/bad_cifar10", checksums=checksums_of(bad))
    no_pixels = {f"data_batch_{i}": {b"labels": [1]} for i in range(1, 6)}
    members = {"batches.meta": {b"label_names": [b"a"]}, "test_batch": {b"labels": [1]}, **no_pixels}
    write_tar_gz(bad / "cifar-10-python.tar.gz", "cifar-10-batches-py", members)
    with pytest.raises(SelfgrowError, match="do not have the official layout"):
        download("cifar10", tmp_path, base_url=f"{url}/bad_cifar10", checksums=checksums_of(bad))
    assert list(tmp_path.rglob("*")) == []


def test_bad_names_are_rejected():
    with pytest.raises(SelfgrowError, match="Did you mean 'cifar100'"):
        download("cifar1000")
    with pytest.raises(SelfgrowError, match="accepted: .*svhn"):
        download("digits")
    with pytest.raises(SelfgrowError, match="does not use"):
        download("cifar10", checksums={"cifar-100-python.tar.gz": "0" * 32})
