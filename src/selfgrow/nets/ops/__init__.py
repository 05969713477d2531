"""Function-preserving growth operators: each is `op(net, **kwargs) -> Growth`.

The input net is never modified; `Growth.net` is a new module whose outputs equal the old
ones (to float rounding) until training moves the new weights, and `Growth.param_map` says
where every old parameter's values sit, so optimizer and retention state can follow
(`carry_optimizer_state`, `remap_tensors`).
"""

from selfgrow.nets.ops.bindgrow import bind_task
from selfgrow.nets.ops.deepen import deepen
from selfgrow.nets.ops.extractor import set_new_extractor
from selfgrow.nets.ops.growth import Growth, compose
from selfgrow.nets.ops.heads import add_classes, add_head
from selfgrow.nets.ops.modular import (
    add_adapter,
    add_module,
    add_task_path,
    branch,
    drop_unused_modules,
    set_task_path,
)
from selfgrow.nets.ops.scale import scale
from selfgrow.nets.ops.state import carry_optimizer_state, remap_tensors
from selfgrow.nets.ops.widen import WIDEN_MODES, fold_gates, widen, widen_to

__all__ = [
    "WIDEN_MODES",
    "Growth",
    "add_adapter",
    "add_classes",
    "add_head",
    "add_module",
    "add_task_path",
    "bind_task",
    "branch",
    "carry_optimizer_state",
    "compose",
    "deepen",
    "drop_unused_modules",
    "fold_gates",
    "remap_tensors",
    "scale",
    "set_new_extractor",
    "set_task_path",
    "widen",
    "widen_to",
]
