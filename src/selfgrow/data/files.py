"""Where data lives on disk (data root, decoded cache), file checksums and sizes."""

from __future__ import annotations

import hashlib
import os
from pathlib import Path

DATA_ENV = "SELFGROW_DATA"
CACHE_ENV = "SELFGROW_CACHE"
DEFAULT_ROOT = Path("~/.cache/selfgrow")


def data_root(data_dir: str | os.PathLike | None = None) -> Path:
    """The dataset root: `data_dir` (the `--data-dir` flag), else $SELFGROW_DATA, else ~/.cache/selfgrow."""
    chosen = data_dir if data_dir is not None else os.environ.get(DATA_ENV) or DEFAULT_ROOT
    return Path(chosen).expanduser()


def cache_root() -> Path:
    """Writable folder for decoded arrays: $SELFGROW_CACHE, else ~/.cache/selfgrow/decoded.

    Separate from the data root because that may be read-only (a shared dataset folder).
    """
    return Path(os.environ.get(CACHE_ENV) or DEFAULT_ROOT / "decoded").expanduser()


def md5_of(path: Path, chunk_size: int = 1 << 20) -> str:
    """Hex MD5 of a file (the checksum the dataset authors publish)."""
    digest = hashlib.md5(usedforsecurity=False)
    with open(path, "rb") as handle:
        for chunk in iter(lambda: handle.read(chunk_size), b""):
            digest.update(chunk)
    return digest.hexdigest()


def folder_size(folder: Path) -> int:
    """Total bytes of the regular files under `folder` (0 when it does not exist)."""
    if not folder.is_dir():
        return 0
    return sum(p.stat().st_size for p in folder.rglob("*") if p.is_file())
