"""Typed options of growers and retention strategies: one dataclass per component, checked in one place.

A component declares its options once, as a dataclass `Options` nested in its class, each field
with its type, its default and (through `option`) its range or choices. `Configurable.__init__`
checks the options it is given against that declaration, whether they come from a config file,
the CLI or a Python call, so every way in gets the same defaults and the same one-sentence errors,
and sets each option as an attribute of the same name (a component may normalise it afterwards).
Checks that involve several options, or another registry, go in the dataclass's `__post_init__`.
"""

from __future__ import annotations

import math
import types
import typing
from collections.abc import Callable, Iterable, Mapping
from dataclasses import MISSING, dataclass, field, fields
from typing import Any, ClassVar

from selfgrow.errors import SelfgrowError, did_you_mean


def option(
    default: Any = MISSING,
    *,
    factory: Callable[[], Any] | None = None,
    at_least: float | None = None,
    above: float | None = None,
    at_most: float | None = None,
    below: float | None = None,
    choices: Iterable[Any] | Callable[[], Iterable[Any]] | None = None,
    nonempty: bool = False,
    note: str = "",
) -> Any:
    """A dataclass field of an `Options` declaration with its checks.

    Bounds apply to a number, or to every number of a list; `choices` (or a function returning them,
    for names registered later) lists the accepted values; `nonempty` refuses an empty list; `note`
    is said after the accepted values in the error (what the option means, what a special value does).
    """
    checks = {"at_least": at_least, "above": above, "at_most": at_most, "below": below, "choices": choices,
              "nonempty": nonempty or None, "note": note or None}
    metadata = {key: value for key, value in checks.items() if value is not None}
    if factory is not None:
        return field(default_factory=factory, metadata=metadata)
    return field(default=default, metadata=metadata)


def with_default(declaration: type, name: str, default: Any) -> Any:
    """The field `name` of the dataclass `declaration` with another default and the same checks (a subclass's)."""
    return field(default=default, metadata=declaration.__dataclass_fields__[name].metadata)


@dataclass
class NoOptions:
    """The declaration of a component without options."""


def check_options(declaration: type, values: Mapping[str, Any], owner: str) -> Any:
    """An instance of the dataclass `declaration` from `values`, each checked against its field.

    Unknown names, wrong types and values out of range raise SelfgrowError naming `owner`, the
    option, its value and what is accepted.
    """
    known = {f.name: f for f in fields(declaration)}
    for key in values:
        if key not in known:
            raise SelfgrowError(f"Unknown option {key!r} for {owner}; accepted: {', '.join(known) or 'none'}."
                                f"{did_you_mean(key, known)}")
    hints = typing.get_type_hints(declaration)
    for key, value in values.items():
        check_value(owner, key, value, hints[key], known[key].metadata)
    return declaration(**values)


def check_fields(instance: Any, owner: str) -> None:
    """Check every field of the dataclass `instance` against its type and declared checks (a `__post_init__`'s use)."""
    hints = typing.get_type_hints(type(instance))
    for f in fields(instance):
        check_value(owner, f.name, getattr(instance, f.name), hints[f.name], f.metadata)


def check_value(owner: str, key: str, value: Any, hint: Any, checks: Mapping[str, Any]) -> None:
    """SelfgrowError naming `owner`, the option, its value and what is accepted, unless `value` fits."""
    if not (has_type(value, hint) and within(value, checks)):
        raise SelfgrowError(f"{owner} option {key}={value!r} is invalid; accepted: {accepted(hint, checks)}.")


def accepted(hint: Any, checks: Mapping[str, Any]) -> str:
    """The values a field accepts, in words (its type, then its range or choices, then its note)."""
    nullable = has_type(None, hint)
    if "choices" in checks:
        text = "one of " + ", ".join(str(c) for c in _choices(checks) if c is not None)
    else:
        rest = [a for a in typing.get_args(hint) if a is not type(None)] if nullable else [hint]
        text = " or ".join(describe_type(a) for a in rest)
        bounds = _bounds(checks)
        if bounds:
            text += f", each {bounds}" if _is_list(hint) else f" {bounds}"
        if checks.get("nonempty"):
            text += ", not empty"
    return ("null or " if nullable else "") + text + (f" ({checks['note']})" if "note" in checks else "")


def option_defaults(declaration: type) -> dict[str, Any]:
    """Each option of `declaration` with its default (what `selfgrow list` shows)."""
    return {f.name: f.default_factory() if f.default_factory is not MISSING else f.default
            for f in fields(declaration)}


def has_type(value: Any, kind: Any) -> bool:
    """Whether `value` fits the annotation `kind` (int for float is fine; bool is not a number; floats finite)."""
    origin, args = typing.get_origin(kind), typing.get_args(kind)
    if kind is Any:
        return True
    if origin in (typing.Union, types.UnionType):
        return any(has_type(value, a) for a in args)
    if kind is type(None):
        return value is None
    if origin is list:
        return isinstance(value, list) and all(has_type(v, args[0]) for v in value)
    if origin is dict:
        return isinstance(value, dict) and all(isinstance(k, str) for k in value)
    if kind is float:
        return isinstance(value, (int, float)) and not isinstance(value, bool) and math.isfinite(value)
    if kind is int:
        return isinstance(value, int) and not isinstance(value, bool)
    return isinstance(value, kind)


def describe_type(kind: Any) -> str:
    """Words for an annotation, as the error messages use them."""
    origin, args = typing.get_origin(kind), typing.get_args(kind)
    if origin in (typing.Union, types.UnionType):
        return " or ".join(describe_type(a) for a in args)
    if origin is list:
        return f"a list of {describe_type(args[0]).removeprefix('a ').removeprefix('an ')}s"
    if origin is dict:
        return "a mapping"
    words = {int: "an integer", float: "a finite number", str: "a string", bool: "true or false", type(None): "null"}
    return words.get(kind, getattr(kind, "__name__", str(kind)))


class Configurable:
    """Base of components built from options: `Options` declares them, `__init__` checks and sets them.

    `component` names the kind of component in errors ("grower", "retention strategy"); `name` is
    the registered name (set by the registry's decorator).
    """

    Options: ClassVar[type] = NoOptions
    component: ClassVar[str] = "component"
    name: ClassVar[str] = "component"

    def __init__(self, **options: Any) -> None:
        self.options = check_options(type(self).Options, options, f"{self.component} {self.name!r}")
        for f in fields(self.options):
            setattr(self, f.name, getattr(self.options, f.name))


def within(value: Any, checks: Mapping[str, Any]) -> bool:
    """Whether `value` (already of the right type) satisfies the bounds, choices and non-emptiness of `checks`."""
    if value is None:
        return True
    if "choices" in checks:
        return value in list(_choices(checks))
    if isinstance(value, list):
        return not (checks.get("nonempty") and not value) and all(within(v, checks) for v in value)
    if isinstance(value, bool) or not isinstance(value, (int, float)):
        return True
    return not (("at_least" in checks and value < checks["at_least"]) or ("above" in checks and value <= checks["above"])
                or ("at_most" in checks and value > checks["at_most"]) or ("below" in checks and value >= checks["below"]))


def _bounds(checks: Mapping[str, Any]) -> str:
    """The bounds of `checks` in words: ">= 1", "> 0", "in [0, 1]", "in (0, 1]", "in [0, 1)", "<= 2", or ""."""
    closed, shut = "at_least" in checks, "at_most" in checks
    low = checks["at_least"] if closed else checks.get("above")
    high = checks["at_most"] if shut else checks.get("below")
    if low is not None and high is not None:
        return f"in {'[' if closed else '('}{low:g}, {high:g}{']' if shut else ')'}"
    if low is not None:
        return f"{'>=' if closed else '>'} {low:g}"
    return f"{'<=' if shut else '<'} {high:g}" if high is not None else ""


def declared_choices(declaration: type | None, name: str) -> list[Any] | None:
    """The choices option `name` of `declaration` declares (None: it declares none, or there is no such option)."""
    known = getattr(declaration, "__dataclass_fields__", {})
    if name not in known or "choices" not in known[name].metadata:
        return None
    return list(_choices(known[name].metadata))


def _choices(checks: Mapping[str, Any]) -> Iterable[Any]:
    choices = checks["choices"]
    return choices() if callable(choices) else choices


def _is_list(hint: Any) -> bool:
    return typing.get_origin(hint) is list or any(typing.get_origin(a) is list for a in typing.get_args(hint))
