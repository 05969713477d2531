"""Download the official dataset files, verify their published MD5, convert them to the prepared format.

Nothing partial is ever left in the data root: files are fetched into a temporary folder inside
it, checked, converted into a staging folder, and the finished folder is renamed into place;
the temporary folder is removed whatever happens.

Where files come from, in order: the `base_url` argument (a folder holding this dataset's
files), else `$SELFGROW_MIRROR/<name>/`, else the official address below.
"""

from __future__ import annotations

import functools
import os
import pickle
import shutil
import tarfile
import tempfile
import urllib.error
import urllib.request
from collections.abc import Callable, Mapping
from dataclasses import dataclass
from pathlib import Path

from tqdm import tqdm

from selfgrow.data.files import data_root, md5_of
from selfgrow.data.formats import (
    CIFAR10_LAYOUT,
    CIFAR100_LAYOUT,
    Converted,
    read_cifar_tarball,
    read_idx_dataset,
    read_svhn_mat,
)
from selfgrow.data.prepared import is_prepared, write_prepared
from selfgrow.errors import SelfgrowError, unknown_name

MIRROR_ENV = "SELFGROW_MIRROR"
DIGIT_CLASSES = [str(d) for d in range(10)]
FASHION_CLASSES = [
    "T-shirt/top", "Trouser", "Pullover", "Dress", "Coat", "Sandal", "Shirt", "Sneaker", "Bag", "Ankle boot",
]  # fmt: skip


@dataclass(frozen=True)
class Source:
    """Official files of one dataset: where they are, their published MD5 and how to convert them."""

    url: str
    md5: Mapping[str, str]
    convert: Callable[[dict[str, Path]], Converted]


def _svhn(files: dict[str, Path]) -> Converted:
    return Converted(read_svhn_mat(files["train_32x32.mat"]), read_svhn_mat(files["test_32x32.mat"]), DIGIT_CLASSES)


SOURCES: dict[str, Source] = {
    # MD5s as published with the files and used by torchvision.datasets.MNIST (the README of
    # ../shared/datasets confirms the label files' d53e105e... / ec29112d...). yann.lecun.com no longer
    # serves them reliably; PyTorch's byte-identical mirror does.
    "mnist": Source(
        "https://ossci-datasets.s3.amazonaws.com/mnist/",
        {
            "train-images-idx3-ubyte.gz": "f68b3c2dcbeaaa9fbdd348bbdeb94873",
            "train-labels-idx1-ubyte.gz": "d53e105ee54ea40749a09fcbcd1e9432",
            "t10k-images-idx3-ubyte.gz": "9fb629c4189551a2d022fa330f9573f3",
            "t10k-labels-idx1-ubyte.gz": "ec29112dd5afa0611ce80d1b7f02629c",
        },
        functools.partial(read_idx_dataset, classes=DIGIT_CLASSES),
    ),
    # MD5s from github zalandoresearch/fashion-mnist README (table "Get the Data"), also in torchvision.
    "fashion_mnist": Source(
        "http://fashion-mnist.s3-website.eu-central-1.amazonaws.com/",
        {
            "train-images-idx3-ubyte.gz": "8d4fb7e6c68d591d4c3dfef9ec88bf0d",
            "train-labels-idx1-ubyte.gz": "25c81989df183df01b3e8a0aad5dffbe",
            "t10k-images-idx3-ubyte.gz": "bef4ecab320f06d8554ea6380940ec79",
            "t10k-labels-idx1-ubyte.gz": "bb300cfdad3c16e7a12a480ee83cd310",
        },
        functools.partial(read_idx_dataset, classes=FASHION_CLASSES),
    ),
    # MD5s published on https://www.cs.toronto.edu/~kriz/cifar.html (python versions).
    "cifar10": Source(
        "https://www.cs.toronto.edu/~kriz/",
        {"cifar-10-python.tar.gz": "c58f30108f718f92721af3b95e74349a"},
        lambda files: read_cifar_tarball(files["cifar-10-python.tar.gz"], CIFAR10_LAYOUT),
    ),
    "cifar100": Source(
        "https://www.cs.toronto.edu/~kriz/",
        {"cifar-100-python.tar.gz": "eb9058c3a382ffc7106e4002c42a8d85"},
        lambda files: read_cifar_tarball(files["cifar-100-python.tar.gz"], CIFAR100_LAYOUT),
    ),
    # MD5s of the cropped-digits files (format 2) as listed by torchvision.datasets.SVHN.
    "svhn": Source(
        "http://ufldl.stanford.edu/housenumbers/",
        {
            "train_32x32.mat": "e26dedcc434d2e4c54c9b2d4a06d8373",
            "test_32x32.mat": "eb5a983be6a315427106f1b164d9cef3",
        },
        _svhn,
    ),
}


def download(
    name: str,
    data_dir: str | os.PathLike | None = None,
    base_url: str | None = None,
    checksums: Mapping[str, str] | None = None,
    force: bool = False,
) -> Path:
    """Fetch, verify and convert dataset `name` into `<data root>/<name>/`; returns that folder.

    `checksums` replaces published MD5s per file name (for mirrors serving other bytes, and tests).
    An already prepared folder is kept unless `force` is true.
    """
    if name not in SOURCES:
        raise unknown_name("downloadable dataset", name, SOURCES)
    source = SOURCES[name]
    unknown_files = sorted(set(checksums or {}) - set(source.md5))
    if unknown_files:
        raise SelfgrowError(
            f"checksums name files {unknown_files} that {name!r} does not use; accepted: {', '.join(source.md5)}."
        )
    root = data_root(data_dir)
    target = root / name
    if is_prepared(target) and not force:
        return target
    base = _base_url(name, source, base_url)
    expected = {**source.md5, **(checksums or {})}
    root.mkdir(parents=True, exist_ok=True)
    work = Path(tempfile.mkdtemp(dir=root, prefix=f".{name}-download-"))
    try:
        files = {filename: _fetch_verified(base + filename, work / filename, md5) for filename, md5 in expected.items()}
        converted = _convert(name, source, files)
        staging = work / name
        write_prepared(staging, converted.train, converted.test, converted.classes)
        if target.exists():
            os.replace(target, work / "previous")
        os.replace(staging, target)
    finally:
        shutil.rmtree(work, ignore_errors=True)
    return target


def _convert(name: str, source: Source, files: dict[str, Path]) -> Converted:
    """Run the source's converter, turning a malformed file's low-level error into a clear one."""
    try:
        return source.convert(files)
    except SelfgrowError:
        raise
    except (KeyError, IndexError, ValueError, OSError, EOFError, pickle.UnpicklingError, tarfile.TarError) as err:
        raise SelfgrowError(
            f"The downloaded files of {name!r} do not have the official layout ({type(err).__name__}: {err}); "
            "check the mirror."
        ) from err


def _base_url(name: str, source: Source, base_url: str | None) -> str:
    """The folder URL to fetch from (argument, mirror variable, or official), ending in '/'."""
    if base_url:
        return base_url.rstrip("/") + "/"
    mirror = os.environ.get(MIRROR_ENV)
    if mirror:
        return f"{mirror.rstrip('/')}/{name}/"
    return source.url


def _fetch_verified(url: str, destination: Path, md5: str) -> Path:
    """Download `url` to `destination` and check its MD5; a mismatching file is deleted."""
    try:
        with urllib.request.urlopen(url, timeout=60) as response, open(destination, "wb") as out:
            total = int(response.headers.get("Content-Length") or 0) or None
            with tqdm(total=total, unit="B", unit_scale=True, desc=destination.name, disable=None, leave=False) as bar:
                for chunk in iter(lambda: response.read(1 << 20), b""):
                    out.write(chunk)
                    bar.update(len(chunk))
    except (urllib.error.URLError, OSError) as err:
        destination.unlink(missing_ok=True)
        reason = getattr(err, "reason", err)
        raise SelfgrowError(
            f"Could not download {url} ({reason}); check the network, or set {MIRROR_ENV} or base_url to a mirror."
        ) from err
    actual = md5_of(destination)
    if actual != md5:
        destination.unlink(missing_ok=True)
        raise SelfgrowError(
            f"Checksum mismatch for {destination.name} from {url}: expected MD5 {md5}, got {actual}; "
            "the file was deleted."
        )
    return destination
