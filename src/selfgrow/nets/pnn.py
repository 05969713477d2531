"""Progressive Neural Networks (Rusu et al. 2016): one column per task, lateral links from older columns.

Spec: `{"kind": "pnn", "input_shape": [C, H, W], "conv": [{"width": c, "kernel": 3, "stride": 1}, ...],
"hidden": [w0, w1, ...], "head": {"kind": "multi", "classes": [n0, n1, ...]}}` (`conv` is optional:
conv layers on the image, then linear layers on the flattened result).

There is one column per task head, so the learner's `ops.add_head` (which rebuilds the net from
the edited spec and copies the old weights) is what adds a column: old columns and heads keep their
names and values, the new column starts from a fresh initialisation, and since no old column reads
a newer one, old tasks' outputs are unchanged.

Column k computes h_k^0 = relu(W_k^0 x) and h_k^i = relu(W_k^i h_k^{i-1} + sum_{j<k} U_{k:j}^i h_j^{i-1})
(the paper's eq. 1; lateral links are layers of the same type as W^i: convolutions between conv
layers, linear maps otherwise. The paper's non-linear "adapters" with a learned scale and a
dimension reduction are not implemented).
Head k reads the last hidden layer of column k (no lateral links into the output layer).

Older columns and heads are frozen by construction: the forward pass of an older column runs without
autograd, so their parameters never receive a gradient (optimisers skip them: no update, no weight
decay), and `train()` keeps them in eval mode. Only the newest column and head learn; PNN is
task-incremental only (the task id picks the column).
"""

from __future__ import annotations

import contextlib

import torch
from torch import nn

from selfgrow.errors import SelfgrowError
from selfgrow.nets.base import GrowableNet, register_net
from selfgrow.nets.heads import build_head
from selfgrow.nets.mlp import positive_int_list


def layer_shapes(spec: dict) -> list[tuple[str, dict]]:
    """Each layer of a column as (type, arguments): conv layers on the image, then linear layers."""
    c, h, w = spec["input_shape"]
    layers = []
    for conv in spec["conv"]:
        k, stride = conv["kernel"], conv["stride"]
        layers.append(("conv", {"in_channels": c, "out_channels": conv["width"], "kernel_size": k,
                                "stride": stride, "padding": k // 2}))
        c = conv["width"]
        h, w = (h + 2 * (k // 2) - k) // stride + 1, (w + 2 * (k // 2) - k) // stride + 1
    flat = c * h * w
    for width in spec["hidden"]:
        layers.append(("linear", {"in_features": flat, "out_features": width}))
        flat = width
    return layers


def make_layer(kind: str, args: dict, bias: bool = True) -> nn.Module:
    """A conv or linear layer from its `layer_shapes` entry."""
    return nn.Conv2d(**args, bias=bias) if kind == "conv" else nn.Linear(**args, bias=bias)


class Column(nn.Module):
    """One PNN column: its own layers plus lateral links from each older column's previous layer.

    A lateral link into layer i is a layer of the same type and shape as layer i (without bias)
    reading an older column's activation i-1: a convolution for conv layers, a linear map for
    linear ones (on the flattened activation where conv meets linear).
    """

    def __init__(self, shapes: list[tuple[str, dict]], older: int):
        super().__init__()
        self.kinds = [kind for kind, _ in shapes]
        self.layers = nn.ModuleList(make_layer(kind, args) for kind, args in shapes)
        self.laterals = nn.ModuleList(
            nn.ModuleList(make_layer(kind, args, bias=False) for _ in range(older)) for kind, args in shapes[1:]
        )

    def forward(self, x: torch.Tensor, older: list[list[torch.Tensor]]) -> list[torch.Tensor]:
        """Activations of every layer, given the activations of each older column (oldest first)."""
        out = [torch.relu(self.layers[0](x))]
        for i in range(1, len(self.layers)):
            z = self.layers[i](self._input(i, out[-1]))
            for lateral, column in zip(self.laterals[i - 1], older):
                z = z + lateral(self._input(i, column[i - 1]))
            out.append(torch.relu(z))
        return out

    def _input(self, i: int, activation: torch.Tensor) -> torch.Tensor:
        """An activation shaped for layer i (flattened for a linear layer)."""
        return activation.flatten(1) if self.kinds[i] == "linear" else activation


@register_net("pnn")
class ProgressiveNet(GrowableNet):
    """A column per task head; `forward(x, task)` runs columns 0..task and head `task`."""

    @classmethod
    def normalize_spec(cls, spec: dict) -> dict:
        spec["hidden"] = positive_int_list(spec.get("hidden", [64]), "pnn 'hidden'")
        if not spec["hidden"]:
            raise SelfgrowError("pnn 'hidden' needs at least one layer width (the features the head reads).")
        spec["conv"] = [_conv_layer(c, i) for i, c in enumerate(spec.get("conv", []))]
        if spec["head"]["kind"] != "multi":
            raise SelfgrowError("A pnn net needs a 'multi' head (one column per task; task-IL only).")
        return spec

    def __init__(self, spec: dict):
        super().__init__(spec)
        shapes = layer_shapes(spec)
        n_columns = len(spec["head"]["classes"])
        self.columns = nn.ModuleList(Column(shapes, k) for k in range(n_columns))
        self.feature_dim = spec["hidden"][-1]
        self.head = build_head(spec["head"], self.feature_dim)

    @property
    def n_columns(self) -> int:
        return len(self.columns)

    def features(self, x: torch.Tensor, task: int | None = None) -> torch.Tensor:
        """Last hidden layer of column `task` (default: the newest column)."""
        k = self._column(task)
        x = x.flatten(1) if not self.spec["conv"] else x
        older: list[list[torch.Tensor]] = []
        for j in range(k + 1):
            frozen = j < self.n_columns - 1
            with torch.no_grad() if frozen else contextlib.nullcontext():
                older.append(self.columns[j](x, older))
        return older[k][-1]

    def forward(self, x: torch.Tensor, task: int | None = None) -> torch.Tensor:
        k = self._column(task)
        frozen_head = k < self.n_columns - 1
        with torch.no_grad() if frozen_head else contextlib.nullcontext():
            return self.head(self.features(x, k), k)

    def _column(self, task: int | None) -> int:
        """The column index of `task` (None: the newest)."""
        if self.n_columns == 0:
            raise SelfgrowError("This pnn net has no column yet; add a task head first (ops.add_head).")
        k = self.n_columns - 1 if task is None else int(task)
        if not 0 <= k < self.n_columns:
            raise SelfgrowError(f"A pnn net needs a task id in 0..{self.n_columns - 1}; got {task!r}.")
        return k

    def frozen_parameter_names(self) -> set[str]:
        """Parameters of the older columns and heads (never updated: they get no gradient)."""
        last = self.n_columns - 1
        prefixes = tuple(f"columns.{k}." for k in range(last)) + tuple(f"head.heads.{k}." for k in range(last))
        return {n for n, _ in self.named_parameters() if n.startswith(prefixes)}

    def train(self, mode: bool = True) -> ProgressiveNet:
        """Train mode for the newest column only; older columns stay in eval mode."""
        super().train(mode)
        for column in list(self.columns)[:-1]:
            column.eval()
        return self

    def task_parameter_names(self, task: int | None) -> set[str]:
        """Columns 0..task and head `task` (all parameters when `task` is None)."""
        if task is None:
            return super().task_parameter_names(None)
        k = self._column(task)
        prefixes = tuple(f"columns.{j}." for j in range(k + 1)) + (f"head.heads.{k}.",)
        return {n for n, _ in self.named_parameters() if n.startswith(prefixes)}


def _conv_layer(layer, i: int) -> dict:
    """Validate conv layer i of a pnn spec and fill its defaults (kernel 3, stride 1)."""
    layer = {"kernel": 3, "stride": 1, **layer} if isinstance(layer, dict) else layer
    if not isinstance(layer, dict) or set(layer) != {"width", "kernel", "stride"} or not all(
        isinstance(v, int) and v > 0 for v in layer.values()
    ):
        raise SelfgrowError(f"pnn conv layer {i} must be {{width, kernel, stride}} of positive ints; got {layer!r}.")
    return layer
