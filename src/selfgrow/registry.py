"""`Registry`: names -> classes, filled by a class decorator, building instances with checked options."""

from __future__ import annotations

import inspect
from collections.abc import Callable
from dataclasses import fields
from typing import Any

from selfgrow.errors import SelfgrowError, unknown_name
from selfgrow.options import Configurable


class Registry(dict):
    """A dict of registered classes; `kind` names them in errors, `attribute` receives the name on the class."""

    def __init__(self, kind: str, attribute: str = "name") -> None:
        super().__init__()
        self.kind = kind
        self.attribute = attribute

    def register(self, name: str) -> Callable[[type], type]:
        """Class decorator adding the class under `name` (and setting `cls.<attribute>` to it)."""

        def add(cls: type) -> type:
            setattr(cls, self.attribute, name)
            self[name] = cls
            return cls

        return add

    def get_class(self, name: str) -> type:
        """The class registered as `name`; an unknown name raises the suggest-the-closest error."""
        if name not in self:
            raise unknown_name(self.kind, name, self)
        return self[name]

    def build(self, name: str, **options: Any) -> Any:
        """An instance of `name` configured by `options`; unknown options are refused in one sentence.

        A `Configurable` class checks its options against its `Options` declaration as it is built;
        for any other class the names are checked against its `__init__`'s keywords.
        """
        cls = self.get_class(name)
        if not issubclass(cls, Configurable):
            accepted = accepted_options(cls)
            for key in options:
                if key not in accepted:
                    raise SelfgrowError(
                        f"Unknown option {key!r} for {self.kind} {name!r}; accepted: {', '.join(accepted) or 'none'}."
                    )
        try:
            return cls(**options)
        except SelfgrowError:
            raise
        except (TypeError, ValueError) as err:  # e.g. int("x") on an option given as text in the config
            raise SelfgrowError(
                f"Options {options!r} of {self.kind} {name!r} are not accepted ({err}); "
                f"check each value's type (see `selfgrow list`)."
            ) from err


def accepted_options(cls: type) -> list[str]:
    """The keyword options of `cls.__init__`, following `**options` into the base classes' `__init__`, down to
    `Configurable`'s, which takes the fields of `cls.Options`."""
    names: list[str] = []
    for klass in cls.__mro__:
        init = klass.__dict__.get("__init__")
        if init is None:
            continue
        if klass is Configurable:
            return names + [f.name for f in fields(cls.Options) if f.name not in names]
        params = list(inspect.signature(init).parameters.values())
        names += [p.name for p in params if p.name != "self" and p.kind not in (p.VAR_KEYWORD, p.VAR_POSITIONAL)
                  and p.name not in names]
        if not any(p.kind == p.VAR_KEYWORD for p in params):
            break
    return names
