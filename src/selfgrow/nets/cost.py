"""Cost accounting: parameters, FLOPs (FlopCounterMode: 1 multiply-add = 2 FLOPs), bytes.

FLOP counts come from `torch.utils.flop_counter.FlopCounterMode`, which counts matmuls and
convolutions (and their backward passes) at 2 FLOPs per multiply-accumulate; element-wise ops
(ReLU, BatchNorm, pooling, additions) are not counted. Counts depend only on the spec (and the
task, for nets whose path depends on it), so they are cached per (spec, task).
"""

from __future__ import annotations

import json

import torch
from torch.utils.flop_counter import FlopCounterMode

from selfgrow.nets.base import GrowableNet, build

_FLOP_CACHE: dict[tuple[str, str, int | None], int] = {}


def count_params(net: GrowableNet, task: int | None = None) -> int:
    """Number of parameters; with `task`, only those one task's forward pass uses (its head
    and, for modular nets, its path)."""
    names = net.task_parameter_names(task)
    return sum(p.numel() for n, p in net.named_parameters() if n in names)


def nbytes(net: GrowableNet) -> int:
    """Bytes held by the weights and buffers (BatchNorm statistics included)."""
    return sum(t.numel() * t.element_size() for t in [*net.parameters(), *net.buffers()])


def inference_flops(net: GrowableNet, task: int | None = None, sub_network: bool = True) -> int:
    """FLOPs (2 per multiply-add) of one forward pass of one input; `task` picks the head
    (required for multi-head nets, defaults to the last task). A net with per-task unit masks
    (Firefly's continual mode) counts the sub-network the task's masks select, as a net of only
    those units computes it; `sub_network=False` counts the whole master net, whose masked units
    multiply by zero (what this implementation computes: the compute a run spends)."""
    task = default_task(net, task)
    return _cached_spec(task_spec(net, task) if sub_network else net.spec, task, "inference", _inference)


def task_spec(net: GrowableNet, task: int | None) -> dict:
    """The spec of what `task`'s forward pass uses: the net's own, or for an MLP with unit masks the MLP
    whose hidden widths are the units the task's masks keep (gates dropped: their products are not counted)."""
    if not net.spec.get("unit_masks") or task is None:
        return net.spec
    hidden = [int(mask.active(task).sum()) for mask in net.unit_masks]
    return {**net.spec, "hidden": hidden, "unit_masks": False, "gates": {}}


def training_flops_per_sample(net: GrowableNet, task: int | None = None) -> int:
    """FLOPs (2 per multiply-add) of forward + backward for one training sample, measured on a
    backward pass with every parameter trainable (frozen weights would save part of it)."""
    return _cached(net, task, "training", _training)


def training_flops_per_class(net: GrowableNet) -> int:
    """Training FLOPs per sample that one more output of a single head adds (0 for other heads): what each new class
    of a class-incremental stream costs every later training sample."""
    head = net.spec["head"]
    if head["kind"] != "single":
        return 0
    wider = {**net.spec, "head": {**head, "classes": head["classes"] + 1}}
    return _cached_spec(wider, None, "training", _training) - _cached(net, None, "training", _training)


def _cached(net: GrowableNet, task, what: str, count) -> int:
    return _cached_spec(net.spec, default_task(net, task), what, count)


def _cached_spec(spec: dict, task, what: str, count) -> int:
    key = (json.dumps(spec, sort_keys=True), what, task)
    if key not in _FLOP_CACHE:
        # A fresh net built from the spec (the real net's BN statistics stay untouched), probed under a
        # forked RNG so that cache hits and misses leave the global random stream identical.
        with torch.random.fork_rng(devices=[]):
            _FLOP_CACHE[key] = int(count(build(spec), task))
    return _FLOP_CACHE[key]


def default_task(net: GrowableNet, task: int | None) -> int | None:
    """The task whose head a FLOP count uses: the given one, else the last head of a multi head."""
    head = net.spec["head"]
    if task is None and head["kind"] == "multi":
        return len(head["classes"]) - 1
    return task


def _inference(net: GrowableNet, task) -> int:
    net.eval()
    x = torch.zeros(1, *net.input_shape)
    with FlopCounterMode(display=False) as counter, torch.no_grad():
        net(x, task)
    return counter.get_total_flops()


def _training(net: GrowableNet, task) -> int:
    """Batch of 2 (train-mode BatchNorm needs more than one value per channel), halved."""
    net.train()
    x = torch.rand(2, *net.input_shape)
    with FlopCounterMode(display=False) as counter:
        net(x, task).sum().backward()
    return counter.get_total_flops() // 2
