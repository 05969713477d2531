"""Uniform scaling of a whole net (EfficientNet-style compound scaling steps)."""

from __future__ import annotations

import math

from selfgrow.errors import SelfgrowError
from selfgrow.nets.base import GrowableNet
from selfgrow.nets.ops.deepen import deepen
from selfgrow.nets.ops.growth import Growth, compose
from selfgrow.nets.ops.widen import widen_to


def scale(net: GrowableNet, width_mult: float = 1.0, depth_add: int = 0, mode: str = "zero") -> Growth:
    """Widen every width group to ceil(width * width_mult) (widen `mode`), then insert
    `depth_add` identity layers at every depth point; the function is kept throughout.

    Depth points are visited last-first so that inserting at one does not rename the others.
    """
    if not isinstance(width_mult, (int, float)) or width_mult < 1:
        raise SelfgrowError(f"scale width_mult must be a number >= 1; got {width_mult!r}.")
    if not isinstance(depth_add, int) or depth_add < 0:
        raise SelfgrowError(f"scale depth_add must be an int >= 0; got {depth_add!r}.")
    growth: Growth | None = None

    def step(result: Growth) -> None:
        nonlocal growth
        growth = compose(growth, result) if growth else result

    for name, group in net.width_groups().items():
        target = math.ceil(group.width * width_mult)
        if target > group.width:
            step(widen_to(growth.net if growth else net, name, target, mode=mode))
    for point in reversed(net.depth_points()):
        for _ in range(depth_add):
            step(deepen(growth.net if growth else net, point.name))
    if growth is None:
        raise SelfgrowError(f"scale(width_mult={width_mult}, depth_add={depth_add}) does not grow this net.")
    return growth
