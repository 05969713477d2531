"""Classifier heads: one head per task (task-IL) or one growing head (class-/domain-IL).

Spec forms: `{"kind": "multi", "classes": [n0, n1, ...], "cosine": false}` and
`{"kind": "single", "classes": n, "cosine": false}`. The cosine classifier (LUCIR-style, used
against the bias towards new classes in class-IL) scores `scale * cos(f, w_k)` with a learned
scale initialised to `COSINE_INIT_SCALE`.
"""

from __future__ import annotations

import math
import warnings

import torch
import torch.nn.functional as F
from torch import nn

from selfgrow.errors import SelfgrowError
from selfgrow.nets.groups import Port

HEAD_KINDS = ("multi", "single")
COSINE_INIT_SCALE = 10.0


def normalize_head(head) -> dict:
    """Validate a head spec and fill defaults."""
    if not isinstance(head, dict) or head.get("kind") not in HEAD_KINDS:
        raise SelfgrowError(
            f"Head spec must be a dict with kind 'multi' or 'single'; got {head!r}."
        )
    head = dict(head)
    head.setdefault("cosine", False)
    classes = head.get("classes")
    if head["kind"] == "multi":
        if not isinstance(classes, list) or not all(isinstance(c, int) and c > 0 for c in classes):
            raise SelfgrowError(f"A multi head needs 'classes': a list of positive ints; got {classes!r}.")
    elif not isinstance(classes, int) or classes < 0:
        raise SelfgrowError(f"A single head needs 'classes': an int >= 0; got {classes!r}.")
    return head


class CosineLinear(nn.Module):
    """Cosine classifier: logits = scale * <f/|f|, w_k/|w_k|>, scale learned."""

    def __init__(self, in_features: int, out_features: int):
        super().__init__()
        self.weight = nn.Parameter(torch.empty(out_features, in_features))
        nn.init.kaiming_uniform_(self.weight, a=math.sqrt(5))
        self.scale = nn.Parameter(torch.tensor([COSINE_INIT_SCALE]))

    def forward(self, f: torch.Tensor) -> torch.Tensor:
        return self.scale * F.linear(F.normalize(f, dim=1), F.normalize(self.weight, dim=1))


def make_classifier(in_features: int, n_classes: int, cosine: bool) -> nn.Module:
    """A linear or cosine classifier with `n_classes` outputs (0 before the first class-IL task)."""
    with warnings.catch_warnings():
        warnings.filterwarnings("ignore", "Initializing zero-element tensors is a no-op")
        return CosineLinear(in_features, n_classes) if cosine else nn.Linear(in_features, n_classes)


class MultiHead(nn.Module):
    """One classifier per task; `forward(f, task)` uses classifier `task`."""

    def __init__(self, in_features: int, classes: list[int], cosine: bool):
        super().__init__()
        self.heads = nn.ModuleList(make_classifier(in_features, n, cosine) for n in classes)

    def forward(self, f: torch.Tensor, task: int | None) -> torch.Tensor:
        if task is None or not 0 <= int(task) < len(self.heads):
            raise SelfgrowError(
                f"A multi-head net needs a task id in 0..{len(self.heads) - 1}; got {task!r}."
            )
        return self.heads[int(task)](f)

    def feature_consumers(self, prefix: str) -> list[Port]:
        return [Port(f"{prefix}heads.{i}.weight", 1) for i in range(len(self.heads))]

    def parameter_names_of_other_tasks(self, task: int, prefix: str) -> set[str]:
        return {f"{prefix}heads.{i}.{n}" for i, h in enumerate(self.heads) if i != task
                for n, _ in h.named_parameters()}


class SingleHead(nn.Module):
    """One classifier over every class seen so far (stream-wide class ids); ignores `task`."""

    def __init__(self, in_features: int, classes: int, cosine: bool):
        super().__init__()
        self.classifier = make_classifier(in_features, classes, cosine)

    def forward(self, f: torch.Tensor, task: int | None = None) -> torch.Tensor:
        return self.classifier(f)

    def feature_consumers(self, prefix: str) -> list[Port]:
        return [Port(f"{prefix}classifier.weight", 1)]

    def parameter_names_of_other_tasks(self, task: int, prefix: str) -> set[str]:
        return set()


def build_head(spec: dict, in_features: int) -> nn.Module:
    """The head module for a normalised head spec reading `in_features` features."""
    if spec["kind"] == "multi":
        return MultiHead(in_features, spec["classes"], spec["cosine"])
    return SingleHead(in_features, spec["classes"], spec["cosine"])
