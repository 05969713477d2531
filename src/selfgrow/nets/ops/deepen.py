"""Function-preserving deepening: insert an identity-initialised layer or residual block."""

from __future__ import annotations

from selfgrow.nets.base import GrowableNet
from selfgrow.nets.ops.growth import Growth, growth_from, transplant


def deepen(net: GrowableNet, at: str, **options) -> Growth:
    """Insert a layer at depth point `at` (see `net.depth_points()`), initialised so the net's
    function is unchanged; options are kind-specific (see the kind's `deepening`)."""
    plan = net.deepening(at, **options)
    new, copied = transplant(net, plan.spec, plan.rename)
    plan.make_identity(new)
    return growth_from(net, new, copied, {"op": "deepen", "at": at, **options})
