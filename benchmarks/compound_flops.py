"""Does compound scaling deliver the FLOPs it promises? Measured inference-FLOPs ratio per preset at phi 1 and 2.

For every preset `compound` scales (MLP, ConvNet, ResNet kinds), at the inputs the presets are used
with (MLP 1x28x28, ResNet and ConvNet 3x32x32) and a 10-class head, the net is grown by a fresh
compound grower (default alpha 1.2) to phi = 1 and phi = 2 and its inference FLOPs are counted
(`selfgrow.nets.cost.inference_flops`). EfficientNet's promise, and the grower's target, is
2^phi times the base; the grower accepts up to 15% above it.

    python benchmarks/compound_flops.py
"""

from __future__ import annotations

from types import SimpleNamespace

import torch

from selfgrow.growth import GrowthPlan, build_grower
from selfgrow.nets import build, cost, preset
from selfgrow.nets.presets import PRESETS
from selfgrow.report.table import format_table

SHAPES = {"mlp": (1, 28, 28), "resnet": (3, 32, 32), "convnet": (3, 32, 32)}


def main() -> None:
    rows = []
    for name, spec in PRESETS.items():
        if spec["kind"] not in SHAPES:
            continue
        torch.manual_seed(0)
        net = build(preset(name, SHAPES[spec["kind"]], {"kind": "single", "classes": 10}))
        base = cost.inference_flops(net)
        ratios = []
        for phi in (1.0, 2.0):
            grower = build_grower("compound")
            grower.space(SimpleNamespace(net=net), None)
            grown = GrowthPlan(ops=grower.ops_for(net, {"phi": phi})).apply(net)[0]
            ratios.append(cost.inference_flops(grown) / base)
        rows.append([name, "x".join(map(str, SHAPES[spec["kind"]])), base, *ratios])
    print(format_table(rows, ["preset", "input", "base FLOPs", "phi 1 (target 2)", "phi 2 (target 4)"]))


if __name__ == "__main__":
    main()
