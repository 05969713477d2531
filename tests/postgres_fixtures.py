"""A throwaway PostgreSQL cluster on 127.0.0.1 for the storage tests (no tests here)."""

from __future__ import annotations

import contextlib
import os
import pwd
import shutil
import socket
import subprocess
import tempfile
from collections.abc import Iterator
from pathlib import Path

import pytest


def free_port() -> int:
    """A TCP port on 127.0.0.1 that nothing listens on right now."""
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def postgres_bin() -> Path | None:
    """Folder of initdb/pg_ctl: Debian's /usr/lib/postgresql/<version>/bin (newest), else the PATH's."""
    found = sorted(Path("/usr/lib/postgresql").glob("*/bin/initdb"),
                   key=lambda p: int(p.parts[-3]) if p.parts[-3].isdigit() else 0)
    if found:
        return found[-1].parent
    initdb = shutil.which("initdb")
    return Path(initdb).parent if initdb else None


@contextlib.contextmanager
def throwaway_postgres(password: str | None = None) -> Iterator[str]:
    """Start a cluster (as user postgres when the tests run as root) whose superuser is `selfgrow`, with
    `password` (scram) or trusted; yields "127.0.0.1:PORT/postgres"; skips the test when it cannot start."""
    pytest.importorskip("psycopg2", reason="PostgreSQL test skipped: psycopg2 missing (pip install 'selfgrow[distributed]')")
    bindir = postgres_bin()
    if bindir is None:
        pytest.skip("PostgreSQL test skipped: initdb not found (install Debian's postgresql package, see .ci/run)")
    root = Path(tempfile.mkdtemp(prefix="selfgrow-pg-"))
    prefix: list[str] = []
    account = None
    if os.geteuid() == 0:  # the server refuses to run as root
        runuser = shutil.which("runuser")
        try:
            account = pwd.getpwnam("postgres")
        except KeyError:
            account = None
        if runuser is None or account is None:
            shutil.rmtree(root)
            pytest.skip("PostgreSQL test skipped: running as root without a 'postgres' user and runuser")
        os.chown(root, account.pw_uid, account.pw_gid)
        prefix = [runuser, "-u", "postgres", "--"]
    auth = ["-A", "trust"]
    if password is not None:
        (root / "pw").write_text(password + "\n")
        if account is not None:
            os.chown(root / "pw", account.pw_uid, account.pw_gid)
        auth = ["-A", "scram-sha-256", "--pwfile", str(root / "pw")]
    port, data = free_port(), root / "data"
    steps = [
        [str(bindir / "initdb"), "-D", str(data), *auth, "-U", "selfgrow", "--no-sync", "-E", "UTF8"],
        [str(bindir / "pg_ctl"), "-D", str(data), "-l", str(root / "server.log"), "-w", "-t", "60",
         "-o", f"-h 127.0.0.1 -p {port} -k {root} -F", "start"],
    ]
    for step in steps:
        done = subprocess.run(prefix + step, check=False, capture_output=True, text=True)
        if done.returncode != 0:
            log = (root / "server.log").read_text() if (root / "server.log").exists() else ""
            shutil.rmtree(root, ignore_errors=True)
            pytest.skip(f"PostgreSQL test skipped: {Path(step[0]).name} failed: {(done.stderr or log).strip()[-300:]}")
    try:
        yield f"127.0.0.1:{port}/postgres"
    finally:
        subprocess.run(prefix + [str(bindir / "pg_ctl"), "-D", str(data), "-m", "immediate", "stop"], check=False,
                       capture_output=True)
        shutil.rmtree(root, ignore_errors=True)
