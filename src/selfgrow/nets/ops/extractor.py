"""The expandable net's growth decision: what size the extractor of the new task gets (DER-style growth)."""

from __future__ import annotations

from typing import Any

import torch

from selfgrow.errors import SelfgrowError
from selfgrow.nets.base import GrowableNet
from selfgrow.nets.ops.growth import Growth, transplant

HEAD_WEIGHT = "head.classifier.weight"


def set_new_extractor(net: GrowableNet, extractor: dict[str, Any]) -> Growth:
    """Give an expandable net's newest extractor the spec `extractor` (freshly initialised; older ones copied).

    Meant right after an expansion, before the new extractor has learnt anything: the head's
    columns on it start at zero (as an expansion makes them), so the logits of every class older
    than it are exactly unchanged; a newest extractor the old classes already read (trained
    columns) is refused, as replacing it would change what they learnt.
    """
    if net.spec.get("kind") != "expandable":
        raise SelfgrowError(f"set_new_extractor needs an expandable net; got net kind {net.spec.get('kind')!r}.")
    newest = len(net.extractors) - 1
    older_classes = net.spec["extractor_classes"][-1]
    start = sum(e.feature_dim for e in list(net.extractors)[:newest])
    weight = net.head.classifier.weight
    if older_classes and bool(weight[:older_classes, start:].detach().ne(0).any()):
        raise SelfgrowError("set_new_extractor: the older classes already read the newest extractor (non-zero head "
                            "columns), so it has been trained; resize an extractor only right after an expansion.")
    spec = {**net.spec, "extractors": [*net.spec["extractors"][:newest], extractor]}
    replaced = f"extractors.{newest}."
    new, copied = transplant(net, spec, lambda n: None if n.startswith(replaced) or n == HEAD_WEIGHT else n)
    with torch.no_grad():
        target = new.head.classifier.weight
        target[:, :start].copy_(weight[:, :start])
        if newest:
            target[:, start:] = 0
    params = {n for n, _ in net.named_parameters()}
    param_map = {k: v for k, v in copied.items() if k in params}
    partial = {HEAD_WEIGHT: (HEAD_WEIGHT, 1, torch.arange(start))} if start else {}
    return Growth(new, param_map, {"op": "set_new_extractor", "extractor": extractor}, net, partial)
