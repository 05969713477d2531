"""Strengths of the retention strategies as searchable settings: "<strategy>.<attribute>" -> value.

A growth search may choose, together with the growth, how strongly the run's strategies hold on
to earlier tasks (LwF's `alpha`, EWC's `lam`, the replay batch size...). A setting names a
strategy by its registry name and one of its numeric attributes; `apply_settings` sets it on the
strategies in place, after checking that the name is unambiguous and the attribute exists.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from typing import Any

from selfgrow.errors import SelfgrowError
from selfgrow.retention.base import Retention


def setting_target(strategies: Sequence[Retention], key: str) -> tuple[Retention, str]:
    """The strategy and attribute a setting key "<strategy>.<attribute>" names (one sentence when it names none)."""
    name, _, attribute = key.partition(".")
    matching = [s for s in strategies if s.name == name]
    names = ", ".join(s.name for s in strategies) or "none"
    if not attribute or len(matching) != 1:
        raise SelfgrowError(f"Retention setting {key!r} names no single strategy of this run; accepted: "
                            f"'<strategy>.<attribute>' with one of the run's strategies ({names}).")
    strategy = matching[0]
    value = getattr(strategy, attribute, None)
    if isinstance(value, bool) or not isinstance(value, (int, float)):
        numeric = sorted(k for k, v in vars(strategy).items() if isinstance(v, (int, float)) and not isinstance(v, bool))
        raise SelfgrowError(f"Retention setting {key!r} is not a numeric attribute of {name}; accepted: "
                            f"{', '.join(numeric) or 'none'}.")
    return strategy, attribute


def current_settings(strategies: Sequence[Retention], keys: Sequence[str]) -> dict[str, Any]:
    """The strategies' present values of the settings `keys`."""
    return {key: getattr(*setting_target(strategies, key)) for key in keys}


def apply_settings(strategies: Sequence[Retention], settings: Mapping[str, Any]) -> None:
    """Set each "<strategy>.<attribute>" to its value, keeping the attribute's type (int stays int)."""
    for key, value in settings.items():
        strategy, attribute = setting_target(strategies, key)
        old = getattr(strategy, attribute)
        setattr(strategy, attribute, type(old)(value))


__all__ = ["apply_settings", "current_settings", "setting_target"]
