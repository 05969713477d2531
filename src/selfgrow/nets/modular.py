"""Modular network of MNTDP (Veniat et al., thesis ch. 5.5): a library of modules per depth,
one path (a module per depth) and one head per task.

Spec: `{"kind": "modular", "input_shape": [C, H, W], "modules": [template per depth],
"library": [modules at each depth], "paths": [[module index per depth] per task],
"head": {"kind": "multi", "classes": [...]}}`. Templates: `{"type": "stem", "width": w,
"kernel": 3, "stride": 1}` (conv + BN + ReLU), `{"type": "blocks", "width": w, "blocks": n,
"stride": s}` (BasicBlocks; projection shortcut on the first block when the stride or width
changes), `{"type": "linear", "width": w}` (Linear + ReLU; the input is flattened first).
Conv features are globally average-pooled before the head. `"adapters": [[depth, index, base], ...]`
makes library module `index` of `depth` an adapter of module `base` of that depth (Learn to Grow's
"adaptation", Li et al. 2019): it outputs base(x) + a(x), with `a` a small additive function of the
module's input (a 1x1 convolution with the module's stride for conv modules, a rank-`adapter_rank`
linear map for linear ones, default rank 8), zero-initialised so that an adapted path computes what
the base does until it trains. Defaults: one module per depth;
a task without a path (e.g. a head just added by `ops.add_head`, as the learner does for each
new task) runs the path of the task before it, task 0 module 0 at every depth. So a new task
starts on frozen trunk modules with only its head to train, until a grower routes it through
other modules (`ops.set_task_path`).

Modules used by any task except the last are **frozen**: `frozen_parameter_names()` lists
their parameters (and the older heads) for the trainer, and `train()` keeps them in eval
mode so their BatchNorm statistics never move (MNTDP does not forget by construction). The
base of an adapter is frozen too, whichever path uses the adapter: adapting never changes it.
"""

from __future__ import annotations

import math

import torch
from torch import nn

from selfgrow.errors import SelfgrowError
from selfgrow.nets.base import GrowableNet, register_net
from selfgrow.nets.groups import GrowthPoint
from selfgrow.nets.heads import build_head
from selfgrow.nets.resnet import BasicBlock, Stage, conv_bn

MODULE_TYPES = ("stem", "blocks", "linear")


class Stem(nn.Module):
    """conv + BN + ReLU (named `conv_bn`)."""

    def __init__(self, c_in: int, width: int, kernel: int, stride: int):
        super().__init__()
        self.conv_bn = conv_bn(c_in, width, kernel, stride)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return torch.relu(self.conv_bn(x))


class Adapter(nn.Module):
    """The additive part of an adapted module: a 1x1 convolution (conv modules) or a rank-r linear map
    (linear modules) of the module's input, its output weights zero so that it starts at 0."""

    def __init__(self, template: dict, c_in: int, flat: int, rank: int):
        super().__init__()
        if template["type"] == "linear":
            self.map = nn.Sequential(nn.Flatten(1), nn.Linear(flat, rank, bias=False), nn.Linear(rank, template["width"]))
        else:
            stride = template.get("stride", 1)
            self.map = nn.Sequential(nn.Conv2d(c_in, template["width"], 1, stride=stride, bias=False))
        nn.init.zeros_(self.map[-1].weight)
        if getattr(self.map[-1], "bias", None) is not None:
            nn.init.zeros_(self.map[-1].bias)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.map(x)


class LinearReLU(nn.Module):
    """Flatten + Linear + ReLU."""

    def __init__(self, c_in: int, width: int):
        super().__init__()
        self.linear = nn.Linear(c_in, width)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return torch.relu(self.linear(x.flatten(1)))


def _template(t, d: int) -> dict:
    """Validate the module template of depth d and fill its defaults."""
    if not isinstance(t, dict) or t.get("type") not in MODULE_TYPES:
        raise SelfgrowError(f"modular module {d} must be a dict with type in {MODULE_TYPES}; got {t!r}.")
    defaults = {"stem": {"kernel": 3, "stride": 1}, "blocks": {"blocks": 1, "stride": 1}, "linear": {}}
    t = {**defaults[t["type"]], **t}
    for key, value in t.items():
        if key != "type" and (not isinstance(value, int) or value < 1):
            raise SelfgrowError(f"modular module {d} {key!r} must be a positive int; got {value!r}.")
    return t


@register_net("modular")
class ModularNet(GrowableNet):
    """Library of modules per depth; `forward(x, task)` runs task's path and head."""

    @classmethod
    def normalize_spec(cls, spec: dict) -> dict:
        templates = spec.get("modules")
        if not isinstance(templates, list) or not templates:
            raise SelfgrowError(f"modular 'modules' must be a non-empty list of templates; got {templates!r}.")
        spec["modules"] = [_template(t, d) for d, t in enumerate(templates)]
        types = [t["type"] for t in spec["modules"]]
        if "linear" in types and any(t != "linear" for t in types[types.index("linear"):]):
            raise SelfgrowError(f"modular conv modules cannot follow linear ones; got types {types}.")
        if "stem" in types[1:]:
            raise SelfgrowError(f"a modular 'stem' module can only be the first; got types {types}.")
        if spec["head"]["kind"] != "multi":
            raise SelfgrowError("A modular net needs a 'multi' head (one per task path).")
        depth, n_tasks = len(templates), len(spec["head"]["classes"])
        spec.setdefault("library", [1] * depth)
        library, paths = spec["library"], spec.setdefault("paths", [])
        if not isinstance(library, list) or len(library) != depth or not all(
            isinstance(n, int) and n >= 1 for n in library
        ):
            raise SelfgrowError(f"modular 'library' must list {depth} positive module counts; got {library!r}.")
        if not isinstance(paths, list) or len(paths) > n_tasks:
            raise SelfgrowError(
                f"modular 'paths' must be a list of at most one path per head ({n_tasks}); got {paths!r}."
            )
        for t, path in enumerate(paths):
            check_path(path, library, f"path of task {t}")
        spec["adapters"] = _adapters(spec.get("adapters", []), library)
        rank = spec.setdefault("adapter_rank", 8)
        if not isinstance(rank, int) or isinstance(rank, bool) or rank < 1:
            raise SelfgrowError(f"modular 'adapter_rank' must be a positive int; got {rank!r}.")
        spec["paths"] = [list(p) for p in paths] + [
            list(paths[-1]) if paths else [0] * depth for _ in range(n_tasks - len(paths))
        ]
        return spec

    def __init__(self, spec: dict):
        super().__init__(spec)
        c_in = spec["input_shape"][0]
        flat = math.prod(spec["input_shape"])
        depths = []
        self._bases = {(d, m): base for d, m, base in spec["adapters"]}  # the spec is fixed: operators build new nets
        for d, (template, count) in enumerate(zip(spec["modules"], spec["library"])):
            depths.append(nn.ModuleList(Adapter(template, c_in, flat, spec["adapter_rank"]) if (d, m) in self._bases
                                        else self._module(template, c_in, flat) for m in range(count)))
            c_in = flat = template["width"]
        self.library = nn.ModuleList(depths)
        self.feature_dim = c_in
        self.head = build_head(spec["head"], self.feature_dim)

    @staticmethod
    def _module(t: dict, c_in: int, flat: int) -> nn.Module:
        if t["type"] == "stem":
            return Stem(c_in, t["width"], t["kernel"], t["stride"])
        if t["type"] == "linear":
            return LinearReLU(flat, t["width"])
        blocks = [BasicBlock(c_in if b == 0 else t["width"], t["width"], t["width"],
                             t["stride"] if b == 0 else 1,
                             b == 0 and (t["stride"] != 1 or c_in != t["width"]), nn.Identity())
                  for b in range(t["blocks"])]
        return Stage(blocks)

    def path(self, task: int | None) -> list[int]:
        """The module index per depth of `task` (an int in 0..tasks-1)."""
        paths = self.spec["paths"]
        if task is None or not 0 <= int(task) < len(paths):
            raise SelfgrowError(f"A modular net needs a task id in 0..{len(paths) - 1}; got {task!r}.")
        return paths[int(task)]

    def features(self, x: torch.Tensor, task: int | None = None) -> torch.Tensor:
        return self.path_features(x, self.path(task))

    def path_features(self, x: torch.Tensor, path: list[int] | tuple[int, ...]) -> torch.Tensor:
        """Features of `x` through any path of library modules (one index per depth), e.g. a
        candidate path that no task uses yet (MNTDP-S trains several through shared modules)."""
        h = x
        for d, m in enumerate(check_length(path, len(self.library))):
            h = self.run_module(d, m, h)
        return h.mean(dim=(2, 3)) if h.dim() == 4 else h

    def run_module(self, depth: int, index: int, h: torch.Tensor) -> torch.Tensor:
        """Module `index` of `depth` on `h`; an adapter adds its output to its base's."""
        base = self._bases.get((depth, index))
        if base is None:
            return self.library[depth][index](h)
        return self.library[depth][base](h) + self.library[depth][index](h)

    def adapter_bases(self) -> dict[tuple[int, int], int]:
        """(depth, adapter index) -> index of the module it adapts."""
        return dict(self._bases)

    def frozen_modules(self) -> set[tuple[int, int]]:
        """(depth, index) of every module used by a task other than the last one, and every adapted base."""
        used = {(d, m) for path in self.spec["paths"][:-1] for d, m in enumerate(path)}
        bases = self.adapter_bases()
        return used | {(d, bases[(d, m)]) for path in self.spec["paths"] for d, m in enumerate(path) if (d, m) in bases}

    def frozen_parameter_names(self) -> set[str]:
        """Parameters MNTDP never updates again: frozen modules and the older tasks' heads."""
        prefixes = [f"library.{d}.{m}." for d, m in self.frozen_modules()]
        prefixes += [f"head.heads.{t}." for t in range(len(self.spec["paths"]) - 1)]
        return {n for n, _ in self.named_parameters() if n.startswith(tuple(prefixes))}

    def train(self, mode: bool = True) -> ModularNet:
        """Train mode for everything except frozen modules, whose BN statistics stay fixed."""
        super().train(mode)
        if mode:
            for d, m in self.frozen_modules():
                self.library[d][m].eval()
        return self

    def task_parameter_names(self, task: int | None) -> set[str]:
        if task is None:
            return super().task_parameter_names(None)
        bases = self.adapter_bases()
        path = self.path(task)
        prefixes = tuple(f"library.{d}.{m}." for d, m in enumerate(path))
        prefixes += tuple(f"library.{d}.{bases[(d, m)]}." for d, m in enumerate(path) if (d, m) in bases)
        prefixes += (f"head.heads.{int(task)}.",)
        return {n for n, _ in self.named_parameters() if n.startswith(prefixes)}

    def growth_points(self) -> list[GrowthPoint]:
        return [GrowthPoint("module", f"depth.{d}", n, {"template": t})
                for d, (t, n) in enumerate(zip(self.spec["modules"], self.spec["library"]))]


def check_length(path, depth: int) -> list[int] | tuple[int, ...]:
    """`path` if it names one module per depth."""
    if len(path) != depth:
        raise SelfgrowError(f"A modular path needs one module index per depth ({depth}); got {list(path)!r}.")
    return path


def _adapters(adapters, library: list[int]) -> list[list[int]]:
    """Validate the adapter entries [depth, index, base]: existing modules, a base that is not an adapter."""
    if not isinstance(adapters, list):
        raise SelfgrowError(f"modular 'adapters' must be a list of [depth, index, base]; got {adapters!r}.")
    out, indices = [], set()
    for entry in adapters:
        ok = isinstance(entry, (list, tuple)) and len(entry) == 3 and all(
            isinstance(v, int) and not isinstance(v, bool) for v in entry)
        if ok:
            d, m, base = entry
            ok = 0 <= d < len(library) and 0 <= m < library[d] and 0 <= base < library[d] and m != base
        if not ok or (entry[0], entry[1]) in indices:
            raise SelfgrowError(f"modular adapter {entry!r} is invalid; accepted: [depth, index, base] naming two "
                                f"distinct modules of the library {library}, each adapter once.")
        indices.add((d, m))
        out.append([d, m, base])
    if any((d, base) in indices for d, _, base in out):
        raise SelfgrowError(f"modular adapters {adapters!r} adapt an adapter; accepted: bases that are plain modules.")
    return out


def check_path(path, library: list[int], what: str) -> list[int]:
    """Validate a path (one existing module index per depth)."""
    if not isinstance(path, list) or len(path) != len(library) or not all(
        isinstance(m, int) and 0 <= m < n for m, n in zip(path, library)
    ):
        raise SelfgrowError(
            f"{what} must list one module index per depth within the library sizes {library}; got {path!r}."
        )
    return path
