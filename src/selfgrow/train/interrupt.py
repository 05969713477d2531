"""Deferred Ctrl-C: SIGINT only sets a flag, and training stops at the next batch boundary.

A KeyboardInterrupt raised at an arbitrary bytecode can land inside a garbage-collector or weakref
callback, where Python prints "Exception ignored" and carries on, so the run would not stop. With
the flag, the stop happens at a known point (`check`, called once per batch and before each task);
a second Ctrl-C stops at once.
"""

from __future__ import annotations

import contextlib
import signal
import threading
from collections.abc import Iterator

_requested = False


def _on_sigint(signum: int, frame: object) -> None:
    global _requested
    if _requested:
        raise KeyboardInterrupt
    _requested = True


@contextlib.contextmanager
def deferred_interrupts() -> Iterator[None]:
    """Within the block, Ctrl-C requests a stop that `check` turns into KeyboardInterrupt (main thread only)."""
    global _requested
    if threading.current_thread() is not threading.main_thread():
        yield
        return
    _requested = False
    previous = signal.signal(signal.SIGINT, _on_sigint)
    try:
        yield
    finally:
        signal.signal(signal.SIGINT, previous)
        _requested = False


def check() -> None:
    """Raise KeyboardInterrupt when a stop was requested."""
    if _requested:
        raise KeyboardInterrupt
