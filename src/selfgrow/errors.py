"""User-facing errors: one clear sentence naming the bad value and what is accepted.

The CLI turns any `SelfgrowError` into exit code 2 and prints its message without a traceback.
"""

from __future__ import annotations

import difflib
from collections.abc import Iterable


class SelfgrowError(ValueError):
    """A mistake in the user's input (config, data, names); the message is shown as is."""


def closest(name: str, choices: Iterable[str]) -> str | None:
    """The valid name closest to `name`, or None when nothing is close enough to suggest."""
    matches = difflib.get_close_matches(str(name), list(choices), n=1, cutoff=0.5)
    return matches[0] if matches else None


def did_you_mean(name: str, choices: Iterable[str]) -> str:
    """" Did you mean 'x'?" for the closest valid name, or "" when none is close (ends an error sentence)."""
    hint = closest(name, choices)
    return f" Did you mean {hint!r}?" if hint else ""


def unknown_name(kind: str, name: str, choices: Iterable[str]) -> SelfgrowError:
    """The error for an unknown registry name, with the closest valid name suggested."""
    choices = sorted(choices)
    return SelfgrowError(f"Unknown {kind} {name!r}; accepted: {', '.join(choices)}.{did_you_mean(name, choices)}")
