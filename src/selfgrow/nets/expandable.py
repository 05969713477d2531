"""Expandable representation: a new feature extractor per class-IL task, features concatenated, one head.

The simple variant of DER, "Dynamically Expandable Representation" (Yan et al. 2021): at each new
task a fresh extractor is added and the older ones are frozen; a single linear head over the
concatenated features scores every class seen so far. DER's auxiliary classifier (new vs. old
classes on the new features) and its channel-level pruning are not implemented. (Not to be
confused with Dark Experience Replay, also called DER.)

Spec: `{"kind": "expandable", "input_shape": [C, H, W], "extractor": {"kind": "mlp", "hidden": [64]},
"head": {"kind": "single", "classes": n}}` plus the bookkeeping keys `extractor_classes` (the head's
class count when each extractor was added; [0] for the first), `known_classes`, and `extractors`
(each extractor's own spec, oldest first; `extractor` is the template an expansion adds, and a
grower may give the newest one another size with `ops.set_new_extractor`). Any registered kind with
a `feature_dim` can be an extractor (its own head is dropped).

Expansion follows the head: whenever the single head gains classes (the learner's `ops.add_classes`
at a new task) after the current newest extractor has already been given classes, the rebuilt spec
gets one more extractor. The head's weights on an added extractor's features start at zero, so the
logits of every old class are exactly unchanged at the moment of expansion (the new classes' rows
read the old features with a fresh initialisation). Older extractors run without autograd and in
eval mode, so they never change; the newest extractor and the whole head learn, as in DER.
"""

from __future__ import annotations

import contextlib
from typing import Any

import torch
from torch import nn

from selfgrow.errors import SelfgrowError
from selfgrow.nets.base import GrowableNet, build, normalize_spec, register_net
from selfgrow.nets.heads import build_head

EXTRACTOR_HEAD = {"kind": "single", "classes": 0}


@register_net("expandable")
class ExpandableNet(GrowableNet):
    """Frozen old extractors + a trainable newest one, concatenated into one single head."""

    @classmethod
    def normalize_spec(cls, spec: dict) -> dict:
        head = spec["head"]
        if head["kind"] != "single" or head["cosine"]:
            raise SelfgrowError("An expandable net needs a linear single head (kind 'single', cosine false); class-IL only.")
        extractor = spec.get("extractor", {"kind": "mlp", "hidden": [64]})
        spec["extractor"] = _extractor_spec(extractor, spec["input_shape"])
        counts = spec.get("extractor_classes", [0])
        if not isinstance(counts, list) or not counts or not all(isinstance(c, int) and c >= 0 for c in counts):
            raise SelfgrowError(f"expandable 'extractor_classes' must be a non-empty list of ints >= 0; got {counts!r}.")
        extractors = spec.get("extractors", [spec["extractor"]] * len(counts))
        if not isinstance(extractors, list) or len(extractors) != len(counts):
            raise SelfgrowError(f"expandable 'extractors' must be a list of {len(counts)} net specs, one per entry "
                                f"of 'extractor_classes'; got {extractors!r}.")
        previous, classes = spec.get("known_classes", head["classes"]), head["classes"]
        if classes > previous > counts[-1]:
            counts, extractors = [*counts, previous], [*extractors, spec["extractor"]]
        spec["extractors"] = [_extractor_spec(e, spec["input_shape"]) for e in extractors]
        spec["extractor_classes"], spec["known_classes"] = counts, classes
        return spec

    def __init__(self, spec: dict):
        super().__init__(spec)
        self.extractors = nn.ModuleList(
            _extractor({**e, "input_shape": spec["input_shape"], "head": EXTRACTOR_HEAD}) for e in spec["extractors"])
        self.feature_dim = sum(e.feature_dim for e in self.extractors)
        self.head = build_head(spec["head"], self.feature_dim)
        with torch.no_grad():
            self.head.classifier.weight[:, self.extractors[0].feature_dim:] = 0

    def features(self, x: torch.Tensor, task: int | None = None) -> torch.Tensor:
        """Concatenated features of every extractor, oldest first (`task` is ignored)."""
        parts = []
        for k, extractor in enumerate(self.extractors):
            with torch.no_grad() if k < len(self.extractors) - 1 else contextlib.nullcontext():
                parts.append(extractor.features(x))
        return torch.cat(parts, dim=1)

    def frozen_parameter_names(self) -> set[str]:
        """Parameters of the older extractors (never updated: they get no gradient)."""
        prefixes = tuple(f"extractors.{k}." for k in range(len(self.extractors) - 1))
        return {n for n, _ in self.named_parameters() if n.startswith(prefixes)}

    def train(self, mode: bool = True) -> ExpandableNet:
        """Train mode for the newest extractor and the head; older extractors stay in eval mode."""
        super().train(mode)
        for extractor in list(self.extractors)[:-1]:
            extractor.eval()
        return self


def _extractor_spec(extractor: Any, input_shape: list[int]) -> dict:
    """An extractor's normalised spec without the keys its expandable net supplies (input shape, empty head)."""
    if not isinstance(extractor, dict) or extractor.get("kind") in (None, "expandable"):
        raise SelfgrowError(f"An expandable net's extractor must be a net spec of another kind; got {extractor!r}.")
    full = normalize_spec({**extractor, "input_shape": input_shape, "head": EXTRACTOR_HEAD})
    return {k: v for k, v in full.items() if k not in ("input_shape", "head")}


def _extractor(spec: dict) -> GrowableNet:
    """A net of another kind used for its `features` only (its empty head removed)."""
    net = build(spec)
    if not hasattr(net, "feature_dim"):
        raise SelfgrowError(f"Net kind {spec['kind']!r} does not declare feature_dim; it cannot be an extractor.")
    net.head = nn.Identity()
    return net
