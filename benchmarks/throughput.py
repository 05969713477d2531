"""Engine overhead: training images/s of `Trainer.fit` against a bare forward/backward/step loop.

Both sides train the same net (same spec and initial weights) on the same in-memory tensors with
the same batch size and SGD settings; `Trainer.fit` adds what the engine does per batch (index
shuffling, batch assembly, per-batch augmentation and normalisation, retention hooks, non-finite
loss guard, progress). Validation is off in both (an empty validation split), so the ratio is
the per-batch overhead. Each side is timed `--repeats` times, interleaved; the best time counts.

    python benchmarks/throughput.py                 # every shipped backbone (net preset)
    python benchmarks/throughput.py --only mlp-small --repeats 5
"""

from __future__ import annotations

import argparse
import platform
import time

import torch
import torch.nn.functional as F

from selfgrow.nets import build, preset
from selfgrow.nets.cost import training_flops_per_sample
from selfgrow.nets.presets import PRESETS
from selfgrow.report.table import format_table
from selfgrow.streams.task import Task
from selfgrow.train import Trainer
from selfgrow.train.batches import to_input

BATCH = 64
EPOCH_FLOPS = 1.5e11  # training FLOPs of one timed epoch: the number of images follows from it
CIFAR_AUGMENT = {"crop_padding": 4, "hflip": True}


def backbones() -> dict[str, tuple[tuple[int, int, int], dict]]:
    """Every preset with its input: MLPs on 1x28x28 (MNIST), conv nets on 3x32x32 with the CIFAR augmentation."""
    out = {}
    for name, spec in PRESETS.items():
        modules = spec.get("modules", [])
        flat = spec["kind"] == "mlp" or (modules and all(m["type"] == "linear" for m in modules))
        out[name] = ((1, 28, 28), {}) if flat else ((3, 32, 32), CIFAR_AUGMENT)
    return out


def n_images(name: str, shape: tuple[int, int, int]) -> int:
    """Images for an epoch of about EPOCH_FLOPS, a multiple of the batch within [512, 32768]."""
    net = build(preset(name, shape, {"kind": "multi", "classes": [10]}))
    n = EPOCH_FLOPS / training_flops_per_sample(net)
    return int(min(32768, max(512, n // BATCH * BATCH)))


def make_task(shape: tuple[int, int, int], n: int, augment: dict) -> Task:
    """A 10-class task of random images (the content does not change the speed)."""
    g = torch.Generator().manual_seed(0)
    x = torch.rand(n, *shape, generator=g)
    y = torch.randint(0, 10, (n,), generator=g)
    empty_x, empty_y = x[:0], y[:0]
    c = shape[0]
    return Task(0, "speed", list(range(10)), [str(i) for i in range(10)], x, y, empty_x, empty_y, x[:64], y[:64],
                mean=(0.5,) * c, std=(0.25,) * c, augment=augment)


def new_net(name: str, task: Task) -> torch.nn.Module:
    torch.manual_seed(0)
    return build(preset(name, task.input_shape, {"kind": "multi", "classes": [10]}))


def bare_loop(net: torch.nn.Module, task: Task) -> float:
    """One epoch of the plainest loop on the same tensors (augment + normalise per batch, as the engine does)."""
    optimizer = torch.optim.SGD(net.parameters(), lr=0.01, momentum=0.9)
    g = torch.Generator().manual_seed(0)
    net.train()
    start = time.perf_counter()
    order = torch.randperm(len(task.y_train), generator=g)
    for i in range(0, len(order), BATCH):
        idx = order[i : i + BATCH]
        x = to_input(task.x_train[idx], task, g)
        loss = F.cross_entropy(net(x, task=0), task.y_train[idx])
        optimizer.zero_grad(set_to_none=True)
        loss.backward()
        optimizer.step()
    return time.perf_counter() - start


def engine(net: torch.nn.Module, task: Task) -> float:
    """One epoch of `Trainer.fit` (no validation, no retention), timed around the call."""
    trainer = Trainer(epochs=1, batch_size=BATCH, optimizer="sgd", lr=0.01, momentum=0.9, device="cpu",
                      progress=False, curve_batches=0, val_every_epoch=False)
    start = time.perf_counter()
    trainer.fit(net, task, "task")
    return time.perf_counter() - start


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--only", nargs="*", default=None)
    parser.add_argument("--repeats", type=int, default=3)
    args = parser.parse_args()
    rows = []
    for name, (shape, augment) in backbones().items():
        if args.only and name not in args.only:
            continue
        n = n_images(name, shape)
        task = make_task(shape, n, augment)
        engine(new_net(name, task), task)  # warm-up: FLOP counting (cached per spec), allocator, threads
        bare, fit = [], []
        for _ in range(args.repeats):
            bare.append(bare_loop(new_net(name, task), task))
            fit.append(engine(new_net(name, task), task))
        bare_ips, fit_ips = n / min(bare), n / min(fit)
        rows.append([name, "x".join(map(str, shape)), n, BATCH, round(bare_ips), round(fit_ips), fit_ips / bare_ips,
                     "met" if fit_ips / bare_ips >= 0.85 else "not met"])
    print(f"{platform.processor() or platform.machine()}, {torch.get_num_threads()} torch threads, torch "
          f"{torch.__version__}, best of {args.repeats}")
    print(format_table(rows, ["backbone", "input", "images", "batch", "bare img/s", "fit img/s", "fit / bare", ">= 0.85"]))


if __name__ == "__main__":
    main()
