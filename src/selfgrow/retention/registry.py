"""Registry of retention strategies: names -> classes, and `build_retention` with clear errors."""

from __future__ import annotations

import inspect
from collections.abc import Callable
from typing import Any

from selfgrow.errors import SelfgrowError, unknown_name
from selfgrow.retention.base import Retention

RETENTION: dict[str, type[Retention]] = {}


def register_retention(name: str) -> Callable[[type[Retention]], type[Retention]]:
    """Class decorator adding a strategy to `RETENTION` under `name` (also set as `cls.name`)."""

    def add(cls: type[Retention]) -> type[Retention]:
        cls.name = name
        RETENTION[name] = cls
        return cls

    return add


def build_retention(name: str, **options: Any) -> Retention:
    """A new strategy `name` configured by `options`; unknown names or options raise `SelfgrowError`."""
    if name not in RETENTION:
        raise unknown_name("retention strategy", name, RETENTION)
    cls = RETENTION[name]
    accepted = [p for p in inspect.signature(cls.__init__).parameters if p != "self"]
    for key in options:
        if key not in accepted:
            raise SelfgrowError(
                f"Unknown option {key!r} for retention {name!r}; accepted: {', '.join(accepted) or 'none'}."
            )
    return cls(**options)
