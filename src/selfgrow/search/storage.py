"""Where studies live: in memory (default), a journal file (`journal:PATH`), or a database URL.

In memory suits one process; a journal file (Optuna's `JournalFileBackend`) is shared by several
processes of one machine (or of machines mounting one file system that supports its lock); a
database URL (e.g. `postgresql://user:password@host/db`, driver psycopg2 from the optional extra
`selfgrow[distributed]`; the plain form is rewritten to `postgresql+psycopg2://` when psycopg 3 is
missing) is shared by workers on many machines.

Heartbeats (for distributed searches): with `heartbeat` seconds, a database storage records each
running trial's heartbeat itself (Optuna's `RDBStorage(heartbeat_interval=...)`); a trial whose
heartbeat is older than twice the interval is failed by `optuna.storages.fail_stale_trials`, and
its parameters are queued again (`RetryHeartbeatStaleTrialCallback`, at most `max_retry` times).
Journal storages have no heartbeat of their own: `selfgrow.search.liveness` keeps one for them.
"""

from __future__ import annotations

import warnings
from pathlib import Path
from typing import Any

from selfgrow.errors import SelfgrowError

JOURNAL_PREFIX = "journal:"
IN_MEMORY = (None, "memory")


def make_storage(storage: str | None, heartbeat: int | None = None, max_retry: int = 3) -> Any:
    """An Optuna storage for `storage`: None or "memory" -> in memory; "journal:PATH" -> a journal
    file (safe for several processes on one file system); a URL such as "postgresql://user@host/db"
    (the installed driver is used, see `database_url`) or "sqlite:///file.db" -> Optuna's RDB storage,
    with heartbeats every `heartbeat` seconds and stale trials retried up to `max_retry` times when
    `heartbeat` is given. A storage that cannot be opened raises SelfgrowError (one sentence)."""
    import optuna
    from optuna.storages import JournalStorage
    from optuna.storages.journal import JournalFileBackend

    if storage in IN_MEMORY:
        return optuna.storages.InMemoryStorage()
    if not isinstance(storage, str):
        raise SelfgrowError(f"search storage {storage!r} is invalid; accepted: memory, journal:PATH or a database URL.")
    if storage.startswith(JOURNAL_PREFIX):
        path = journal_path(storage)
        try:
            path.parent.mkdir(parents=True, exist_ok=True)
            return JournalStorage(JournalFileBackend(str(path)))
        except OSError as err:
            detail = f"{err.filename} is a file, not a folder" if isinstance(err, FileExistsError) else err.strerror or err
            raise SelfgrowError(f"Cannot open the journal file {str(path)!r} ({detail}); accepted: "
                                "journal:PATH with PATH in a folder this process can create and write.") from err
    if "://" not in storage:
        raise SelfgrowError(f"search storage {storage!r} is invalid; accepted: memory, journal:PATH or a database URL.")
    return _database(database_url(storage), heartbeat, max_retry)


def database_url(url: str) -> str:
    """`url` with a driver SQLAlchemy can load: the plain `postgresql://` (and `postgres://`) form that
    PostgreSQL users type maps, in SQLAlchemy 2, to psycopg 3; where that is missing and psycopg2 (the
    `selfgrow[distributed]` driver) is installed, the URL names psycopg2 instead. Other URLs are unchanged."""
    import importlib.util

    scheme, sep, rest = url.partition("://")
    if scheme not in ("postgresql", "postgres"):
        return url
    if importlib.util.find_spec("psycopg") is None and importlib.util.find_spec("psycopg2") is not None:
        return f"postgresql+psycopg2{sep}{rest}"
    return f"postgresql{sep}{rest}"


def is_shared(storage: str | None) -> bool:
    """Whether other processes can reach a study in `storage` (a journal file or a database)."""
    return storage not in IN_MEMORY


def journal_path(storage: str) -> Path:
    """The file of a "journal:PATH" storage."""
    path = Path(storage[len(JOURNAL_PREFIX):]).expanduser()
    if not path.name:
        raise SelfgrowError(f"search storage {storage!r} names no file; accepted: journal:PATH, e.g. journal:runs/study.log.")
    return path


def _database(url: str, heartbeat: int | None, max_retry: int) -> Any:
    """Optuna's RDB storage at `url` (with heartbeats when `heartbeat` is given, stale trials retried); a
    storage that cannot be opened (missing driver, bad URL, unreachable server, refused login) is one sentence."""
    import optuna
    from optuna.storages import RDBStorage, RetryHeartbeatStaleTrialCallback

    with warnings.catch_warnings():
        warnings.simplefilter("ignore", optuna.exceptions.ExperimentalWarning)
        beats = {} if heartbeat is None else {
            "heartbeat_interval": heartbeat, "grace_period": 2 * heartbeat,
            "heartbeat_stale_trial_callback": RetryHeartbeatStaleTrialCallback(max_retry=max_retry)}
        try:
            return RDBStorage(url, **beats)
        except ImportError as err:  # Optuna re-raises SQLAlchemy's ModuleNotFoundError as a bare ImportError
            missing = _missing_module(err)
            raise SelfgrowError(
                f"The database driver {missing!r} that {redact(url)} needs is not installed; accepted: a URL whose "
                "driver is installed (postgresql://... with psycopg2 from pip install 'selfgrow[distributed]', or "
                "sqlite:///FILE) or journal:PATH, or install that driver."
            ) from err
        except Exception as err:  # sqlalchemy's connection errors: one sentence, not a traceback
            detail = _first_line(err)
            raise SelfgrowError(f"Cannot open the study database {redact(url)} ({detail}); accepted: the URL of a "
                                "server that accepts this user's connections, dialect+driver://user:password@host:port/db.") from err


def _missing_module(err: ImportError) -> str:
    """The name of the module whose import failed, looking through Optuna's re-raise."""
    cause: BaseException | None = err
    while cause is not None:
        if isinstance(cause, ImportError) and cause.name:
            return cause.name
        cause = cause.__cause__ or cause.__context__
    return "?"


def _first_line(err: BaseException) -> str:
    """The gist of a database error: its first line, without SQLAlchemy's background link, at most 200 characters."""
    orig = getattr(err, "orig", None) or err
    lines = [line.strip() for line in str(orig).splitlines() if line.strip()]
    text = lines[0] if lines else type(err).__name__
    return text.rstrip(".")[:200]


def redact(storage: str) -> str:
    """A storage URL with its user and password replaced by `***`, for messages and printed commands."""
    scheme, sep, rest = storage.partition("://")
    _, at, place = rest.rpartition("@")
    return f"{scheme}{sep}***@{place}" if sep and at else storage
