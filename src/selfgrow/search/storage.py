"""Where studies live: in memory (default), a journal file (`journal:PATH`), or a database URL."""

from __future__ import annotations

from pathlib import Path
from typing import Any

from selfgrow.errors import SelfgrowError

JOURNAL_PREFIX = "journal:"


def make_storage(storage: str | None) -> Any:
    """An Optuna storage for `storage`: None or "memory" -> in memory; "journal:PATH" -> a journal
    file (safe for several processes on one file system); a URL such as
    "postgresql://user@host/db" or "sqlite:///file.db" -> passed to Optuna (RDB storage)."""
    import optuna
    from optuna.storages import JournalStorage
    from optuna.storages.journal import JournalFileBackend

    if storage is None or storage == "memory":
        return optuna.storages.InMemoryStorage()
    if not isinstance(storage, str):
        raise SelfgrowError(f"search storage {storage!r} is invalid; accepted: memory, journal:PATH or a database URL.")
    if storage.startswith(JOURNAL_PREFIX):
        path = Path(storage[len(JOURNAL_PREFIX):]).expanduser()
        if not path.name:
            raise SelfgrowError(f"search storage {storage!r} names no file; accepted: journal:PATH, e.g. journal:runs/study.log.")
        path.parent.mkdir(parents=True, exist_ok=True)
        return JournalStorage(JournalFileBackend(str(path)))
    if "://" in storage:
        return storage
    raise SelfgrowError(f"search storage {storage!r} is invalid; accepted: memory, journal:PATH or a database URL.")
