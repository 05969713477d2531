"""Growable networks: specs, backbones, heads, growth operators (`selfgrow.nets.ops`), cost."""

from selfgrow.nets import mlp as _mlp  # noqa: F401  (importing registers the built-in kinds)
from selfgrow.nets import convnet as _convnet  # noqa: F401
from selfgrow.nets import modular as _modular  # noqa: F401
from selfgrow.nets import resnet as _resnet  # noqa: F401
from selfgrow.nets.base import NET_KINDS, Gate, GrowableNet, build, normalize_spec, register_net
from selfgrow.nets.groups import DepthPoint, GrowthPoint, Port, WidthGroup
from selfgrow.nets.heads import CosineLinear, MultiHead, SingleHead, build_head
from selfgrow.nets.presets import PRESETS, preset

__all__ = [
    "NET_KINDS",
    "PRESETS",
    "CosineLinear",
    "DepthPoint",
    "Gate",
    "GrowableNet",
    "GrowthPoint",
    "MultiHead",
    "Port",
    "SingleHead",
    "WidthGroup",
    "build",
    "build_head",
    "normalize_spec",
    "preset",
    "register_net",
]
