"""Grow a narrow ResNet from width 8 to 32 in steps, keeping its function at every step.

Run: `python examples/grow_resnet.py`. Each step widens every width group (residual streams
and block interiors) with a function-preserving operator, checks that the outputs did not
move, carries the Adam state over, trains a few steps on random data (so the next growth
starts from trained weights, as in a real stream), and prints the spec, parameters and FLOPs.
"""

from __future__ import annotations

import json

import torch

from selfgrow.nets import build, cost, ops, preset

STEPS = [(16, "split"), (24, "zero"), (32, "split")]


def train_a_little(net, optimizer, steps: int = 3) -> None:
    """A few Adam steps on random images and labels (stand-in for a task's data)."""
    net.train()
    for _ in range(steps):
        optimizer.zero_grad()
        loss = torch.nn.functional.cross_entropy(net(torch.rand(16, 3, 32, 32), 0), torch.randint(10, (16,)))
        loss.backward()
        optimizer.step()


def widen_everything(net, width: int, mode: str) -> ops.Growth:
    """Widen every width group of `net` to `width` (one composed Growth)."""
    growth = None
    for name in net.width_groups():
        step = ops.widen_to(growth.net if growth else net, name, width, mode=mode)
        growth = ops.compose(growth, step) if growth else step
    return growth


def report(step: str, net) -> None:
    stages = [{k: s[k] for k in ("width", "blocks", "hidden")} for s in net.spec["stages"]]
    print(f"{step}: stages={json.dumps(stages)}")
    print(f"    params={cost.count_params(net):,}  inference FLOPs={cost.inference_flops(net, 0):,}"
          f"  training FLOPs/sample={cost.training_flops_per_sample(net, 0):,}  (FLOPs = 2 x MACs)")


def main() -> None:
    torch.manual_seed(0)
    net = build(preset("resnet-narrow8", [3, 32, 32], {"kind": "multi", "classes": [10]}))
    optimizer = torch.optim.Adam(net.parameters(), lr=1e-3)
    train_a_little(net, optimizer)
    report("start", net)
    probe = torch.rand(4, 3, 32, 32)
    for width, mode in STEPS:
        growth = widen_everything(net, width, mode)
        net.eval()
        growth.net.eval()
        with torch.no_grad():
            moved = (growth.net(probe, 0) - net(probe, 0)).abs().max().item()
        new_optimizer = torch.optim.Adam(growth.net.parameters(), lr=1e-3)
        ops.carry_optimizer_state(optimizer, growth, new_optimizer)
        net, optimizer = growth.net, new_optimizer
        report(f"widen to {width} ({mode}, max output change {moved:.1e})", net)
        train_a_little(net, optimizer)
    growth = ops.deepen(net, "stage.3")
    with torch.no_grad():
        moved = (growth.net.eval()(probe, 0) - net.eval()(probe, 0)).abs().max().item()
    report(f"deepen stage.3 (max output change {moved:.1e})", growth.net)


if __name__ == "__main__":
    main()
