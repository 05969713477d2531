"""Renaming helpers for inserting an element into an indexed list of modules or spec keys."""

from __future__ import annotations

from collections.abc import Iterable


def shift_index(name: str, prefixes: str | Iterable[str], after: int) -> str:
    """`name` with the index right after a matching prefix incremented when it is > `after`.

    `shift_index("layers.3.weight", "layers.", after=1)` -> "layers.4.weight": the names an
    old module takes once a new one is inserted at position `after + 1`.
    """
    for prefix in [prefixes] if isinstance(prefixes, str) else prefixes:
        if name.startswith(prefix):
            index, _, rest = name[len(prefix):].partition(".")
            if index.isdigit() and int(index) > after:
                return f"{prefix}{int(index) + 1}" + (f".{rest}" if rest else "")
    return name


def shift_gate_keys(gates: dict[str, int], prefix: str, after: int) -> dict[str, int]:
    """Spec gate counts with group names renamed as by `shift_index`."""
    return {shift_index(k, prefix, after): v for k, v in gates.items()}
