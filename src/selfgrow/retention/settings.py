"""Strengths of the retention strategies as searchable settings: "<strategy>.<attribute>" -> value.

A growth search may choose, together with the growth, how strongly the run's strategies hold on
to earlier tasks (LwF's `alpha`, EWC's `lam`, the replay batch size...) and how they predict (the
replay memory's `classifier`, head or nearest mean). A setting names a strategy by its registry
name and one of its numeric attributes, or an attribute whose option declares its choices (a
string); `apply_settings` sets it on the strategies in place, after checking that the name is
unambiguous and the attribute exists.
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
    allowed = settable(strategy)
    if attribute not in allowed:
        raise SelfgrowError(f"Retention setting {key!r} is not a numeric attribute of {name} nor one with declared "
                            f"choices; accepted: {', '.join(sorted(allowed)) or 'none'}.")
    return strategy, attribute


def settable(strategy: Retention) -> dict[str, list[str] | None]:
    """The attributes a setting may name: numeric ones (None) and string options with declared choices (them)."""
    from selfgrow.options import declared_choices

    out: dict[str, list[str] | None] = {}
    for key, value in vars(strategy).items():
        if isinstance(value, (int, float)) and not isinstance(value, bool):
            out[key] = None
        elif isinstance(value, str) and (choices := declared_choices(getattr(type(strategy), "Options", None), key)):
            out[key] = [str(c) for c in choices]
    return out


def setting_value(value: Any) -> float | str:
    """A setting's value as searched and recorded: a number as float, a choice as str."""
    return value if isinstance(value, str) else float(value)


def check_setting_values(strategies: Sequence[Retention], key: str, values: Sequence[Any]) -> None:
    """Refuse values the setting cannot take (a number for a choice, a string outside the declared choices)."""
    strategy, attribute = setting_target(strategies, key)
    choices = settable(strategy)[attribute]
    wrong = [v for v in values if (v not in choices if choices is not None else isinstance(v, str))]
    if wrong:
        accepted = f"one of {', '.join(choices)}" if choices is not None else "numbers"
        raise SelfgrowError(f"Retention setting {key!r} cannot take {wrong[0]!r}; accepted: {accepted}.")


def current_settings(strategies: Sequence[Retention], keys: Sequence[str]) -> dict[str, Any]:
    """The strategies' present values of the settings `keys`."""
    return {key: getattr(*setting_target(strategies, key)) for key in keys}


def apply_settings(strategies: Sequence[Retention], settings: Mapping[str, Any]) -> None:
    """Set each "<strategy>.<attribute>" to its value, keeping the attribute's type (int stays int)."""
    for key, value in settings.items():
        strategy, attribute = setting_target(strategies, key)
        old = getattr(strategy, attribute)
        setattr(strategy, attribute, type(old)(value))


__all__ = ["apply_settings", "check_setting_values", "current_settings", "setting_target", "setting_value", "settable"]
