"""Head operators: a new head for a new task (task-IL), more classes on a single head (class-IL)."""

from __future__ import annotations

from selfgrow.errors import SelfgrowError
from selfgrow.nets.base import GrowableNet
from selfgrow.nets.ops.growth import Growth, growth_from, transplant


def _require_head(net: GrowableNet, kind: str, op: str) -> dict:
    head = net.spec["head"]
    if head["kind"] != kind:
        raise SelfgrowError(f"{op} needs a {kind!r} head; this net has a {head['kind']!r} head.")
    return head


def _positive(n, what: str) -> int:
    if not isinstance(n, int) or n < 1:
        raise SelfgrowError(f"{what} must be a positive int; got {n!r}.")
    return n


def add_head(net: GrowableNet, n_classes: int) -> Growth:
    """Append a freshly initialised classifier with `n_classes` outputs for a new task."""
    head = _require_head(net, "multi", "add_head")
    n = _positive(n_classes, "add_head n_classes")
    spec = {**net.spec, "head": {**head, "classes": head["classes"] + [n]}}
    new, copied = transplant(net, spec)
    return growth_from(net, new, copied, {"op": "add_head", "n_classes": n})


def add_classes(net: GrowableNet, n: int) -> Growth:
    """Append `n` outputs (new stream-wide class ids) to the single head; old logits unchanged."""
    head = _require_head(net, "single", "add_classes")
    n = _positive(n, "add_classes n")
    spec = {**net.spec, "head": {**head, "classes": head["classes"] + n}}
    new, copied = transplant(net, spec)
    return growth_from(net, new, copied, {"op": "add_classes", "n": n})
