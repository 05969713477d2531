"""Named architectures: `preset(name, input_shape, head)` returns a spec ready for `build`.

- mlp-pmnist: the thesis' Permuted-MNIST MLP (Table 5.3a: two hidden layers of 1000).
- mlp-small / mlp-tiny: one hidden layer of 64 / 16, to start small.
- resnet18-reduced: the thesis' reduced ResNet-18 (Table 5.3b): 3x3 stem + 4 stages of 2
  BasicBlocks, 64 channels everywhere, strides 1, 2, 2, 2, 1x1 projection on each stage's first
  block after the first stage (the table's 1856 / 147968 / 152192 / 152192 / 78208 + 73984
  parameters per module).
- resnet-narrow8 / resnet-narrow16: the same layout at 8 / 16 channels (to grow from).
- modular-resnet-narrow16: resnet-narrow16 as MNTDP modules (the stem, then one module per stage),
  for MNTDP on the streams the plain net is benched on (CTrL S_long).
- resnet-tiny: 2 stages of 1 block at 8 channels (tests, quick experiments).
- convnet-l2g: the Split-CIFAR-100 ConvNet of Learn-to-Grow / L2BG (3 conv + 2 fc); the
  channel and kernel sizes are those of Table 5.3c (HAT's AlexNet-like net: conv 64/4x4,
  128/3x3, 256/2x2, each + ReLU + 2x2 max-pool, fc 2048, 2048), as the L2BG text gives none;
  HAT's dropout is not part of the net.
- modular-resnet18-reduced / modular-mlp-pmnist: MNTDP modular nets whose modules are the
  blocks of the two tables (one module per block, the head per task).
- resnet-ctrl / modular-resnet-ctrl: the CPU-sized CTrL backbone of our reduced CTrL benches, as
  one net and as MNTDP modules (stem 16, then one block each at 16, 32 and 64 channels with
  strides 1, 2, 2: 25 MFLOPs and 78k parameters for a 3x32x32 input, 16x fewer FLOPs than the
  thesis' reduced ResNet-18).
"""

from __future__ import annotations

import copy

from selfgrow.errors import unknown_name


def _resnet(width: int, blocks: int = 2, strides=(1, 2, 2, 2)) -> dict:
    return {
        "kind": "resnet",
        "stages": [{"width": width, "blocks": blocks, "stride": s} for s in strides],
    }


def _modular_resnet(width: int, blocks: int = 2, strides=(1, 2, 2, 2)) -> dict:
    """`_resnet` cut into MNTDP modules: the stem, then one module per stage."""
    stages = ({"type": "blocks", "width": width, "blocks": blocks, "stride": s} for s in strides)
    return {"kind": "modular", "modules": [{"type": "stem", "width": width}, *stages]}


_CTRL_STAGES = [
    {"width": 16, "blocks": 1, "stride": 1},
    {"width": 32, "blocks": 1, "stride": 2},
    {"width": 64, "blocks": 1, "stride": 2},
]

_THESIS_RESNET_MODULES = [
    {"type": "stem", "width": 64},
    {"type": "blocks", "width": 64, "blocks": 2, "stride": 1},
    {"type": "blocks", "width": 64, "blocks": 2, "stride": 2},
    {"type": "blocks", "width": 64, "blocks": 2, "stride": 2},
    {"type": "blocks", "width": 64, "blocks": 1, "stride": 2},
    {"type": "blocks", "width": 64, "blocks": 1, "stride": 1},
]

PRESETS: dict[str, dict] = {
    "mlp-pmnist": {"kind": "mlp", "hidden": [1000, 1000]},
    "mlp-small": {"kind": "mlp", "hidden": [64]},
    "mlp-tiny": {"kind": "mlp", "hidden": [16]},
    "resnet18-reduced": _resnet(64),
    "resnet-narrow8": _resnet(8),
    "resnet-narrow16": _resnet(16),
    "modular-resnet-narrow16": _modular_resnet(16),
    "resnet-tiny": _resnet(8, blocks=1, strides=(1, 2)),
    "convnet-l2g": {
        "kind": "convnet",
        "conv": [
            {"width": 64, "kernel": 4, "pool": 2},
            {"width": 128, "kernel": 3, "pool": 2},
            {"width": 256, "kernel": 2, "pool": 2},
        ],
        "fc": [2048, 2048],
    },
    "modular-resnet18-reduced": {"kind": "modular", "modules": _THESIS_RESNET_MODULES},
    "resnet-ctrl": {"kind": "resnet", "stem": {"width": 16}, "stages": _CTRL_STAGES},
    "modular-resnet-ctrl": {
        "kind": "modular",
        "modules": [{"type": "stem", "width": 16}, *({"type": "blocks", **stage} for stage in _CTRL_STAGES)],
    },
    "modular-mlp-pmnist": {
        "kind": "modular",
        "modules": [{"type": "linear", "width": 1000}, {"type": "linear", "width": 1000}],
    },
}


def preset(name: str, input_shape: list[int] | tuple[int, ...], head: dict) -> dict:
    """The spec of preset `name` for inputs of `input_shape` [C, H, W] with head spec `head`."""
    if name not in PRESETS:
        raise unknown_name("net preset", name, PRESETS)
    return {**copy.deepcopy(PRESETS[name]), "input_shape": list(input_shape), "head": dict(head)}
