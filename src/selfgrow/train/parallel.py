"""Data-parallel training across the processes of a `torchrun` group (one growth candidate, several ranks).

When a process group of more than one process is initialised (`selfgrow worker` started by
`torchrun --nproc_per_node K`: `join_torchrun_group`), the trainer splits every batch between the
ranks and averages their gradients before each step, so the ranks keep identical weights and the
group trains like one process on the whole batch:

- every rank draws the same batch, replay samples and augmentation (same generators), then keeps
  the rows `rank, rank + K, ...` of the new and of the replayed samples (a part smaller than K is
  kept whole on every rank, each row weighted 1/K);
- its summed cross-entropy is divided by (batch rows / K), so the averaged gradient equals the
  single-process gradient of the whole batch's mean (also for uneven splits); a retention penalty,
  computed on the rank's new rows, is scaled by (its new rows · K / new rows), which makes the
  group's mean exact both for per-sample means (LwF) and for parameter-only terms (EWC);
- gradients are summed in one all-reduce of a flat tensor per step and divided by K; the loss
  value the step guard sees is the group's mean, so all ranks skip or take a step together;
- float buffers (BatchNorm running statistics, computed per rank, as without SyncBatchNorm) are
  averaged before each evaluation and at the end of training, so every rank scores the same net.

Deviation from `DistributedDataParallel`: gradients are reduced after the backward pass in one
collective instead of in buckets overlapped with it. The trainer calls the net in penalties and
per-task heads in ways DDP's wrapper would need `find_unused_parameters` for; one flat all-reduce
is simpler and exact, at the cost of the overlap (small next to a candidate's forward/backward).
"""

from __future__ import annotations

import datetime
import os
from collections.abc import Iterable

import torch

from selfgrow.errors import SelfgrowError
from selfgrow.retention.base import Batch


class DataParallel:
    """This process's place in the group (`rank` of `world`) and the collectives the trainer needs."""

    def __init__(self, rank: int, world: int) -> None:
        self.rank = rank
        self.world = world

    @classmethod
    def current(cls) -> DataParallel | None:
        """The group this process trains in, or None when it trains alone."""
        import torch.distributed as dist

        if not (dist.is_available() and dist.is_initialized()) or dist.get_world_size() < 2:
            return None
        return cls(dist.get_rank(), dist.get_world_size())

    def share(self, batch: Batch) -> tuple[Batch, float]:
        """This rank's rows of `batch` and the weight of each: rows `rank, rank + K, ...` (weight 1), or the
        whole batch on every rank when it has fewer than K rows (weight 1/K, as K ranks count it)."""
        n = len(batch.y)
        if n < self.world:
            return batch, 1.0 / self.world
        rows = torch.arange(self.rank, n, self.world, device=batch.y.device)
        return Batch(*(getattr(batch, f)[rows] for f in ("x", "y", "task", "y_global"))), 1.0

    def penalty_scale(self, mine: int, n: int) -> float:
        """Factor of a retention penalty computed on this rank's `mine` of `n` new rows: the group's mean of
        the scaled penalties is the whole batch's (per-sample means and parameter-only terms alike)."""
        return 1.0 if n < self.world else mine * self.world / n

    def mean(self, value: float, device: torch.device) -> float:
        """The group's mean of a number every rank holds."""
        import torch.distributed as dist

        tensor = torch.tensor([value], dtype=torch.float64, device=device)
        dist.all_reduce(tensor)
        return float(tensor) / self.world

    def average_gradients(self, parameters: Iterable[torch.nn.Parameter]) -> None:
        """Replace each trainable parameter's gradient by the group's mean (a missing one counts as zero)."""
        import torch.distributed as dist

        params = [p for p in parameters if p.requires_grad]
        if not params:
            return
        grads = [p.grad if p.grad is not None else torch.zeros_like(p) for p in params]
        flat = torch.cat([g.reshape(-1) for g in grads])
        dist.all_reduce(flat)
        flat /= self.world
        offset = 0
        for p in params:
            n = p.numel()
            p.grad = flat[offset: offset + n].view_as(p).clone()
            offset += n

    def average_buffers(self, net: torch.nn.Module) -> None:
        """Average the net's float buffers over the group (BatchNorm statistics gathered per rank)."""
        import torch.distributed as dist

        buffers = [b for b in net.buffers() if b.is_floating_point()]
        if not buffers:
            return
        flat = torch.cat([b.reshape(-1) for b in buffers])
        dist.all_reduce(flat)
        flat /= self.world
        offset = 0
        for b in buffers:
            b.copy_(flat[offset: offset + b.numel()].view_as(b))
            offset += b.numel()

    def from_leader(self, blob: bytes | None) -> bytes:
        """Rank 0's `blob` on every rank (other ranks pass None): the group's control messages."""
        import torch.distributed as dist

        device = _collective_device()
        size = torch.tensor([len(blob) if self.rank == 0 and blob is not None else 0], dtype=torch.long, device=device)
        dist.broadcast(size, 0)
        data = torch.zeros(int(size), dtype=torch.uint8, device=device)
        if self.rank == 0 and blob:
            data.copy_(torch.frombuffer(bytearray(blob), dtype=torch.uint8))
        dist.broadcast(data, 0)
        return bytes(data.cpu().numpy().tobytes())


def join_torchrun_group(timeout_hours: float = 24.0) -> DataParallel | None:
    """Initialise the process group `torchrun` describes (WORLD_SIZE > 1 in the environment), else None.

    Backend gloo for CPU tensors and NCCL for CUDA ones; each rank uses GPU LOCAL_RANK when there are
    GPUs. `timeout_hours` bounds how long ranks wait for each other (a worker may idle between tasks).
    """
    import torch.distributed as dist

    world = int(os.environ.get("WORLD_SIZE", "1"))
    if world < 2:
        return None
    if not dist.is_available():
        raise SelfgrowError("This torch build has no torch.distributed; run the worker without torchrun.")
    if torch.cuda.is_available():
        torch.cuda.set_device(int(os.environ.get("LOCAL_RANK", "0")))
    if not dist.is_initialized():
        dist.init_process_group("cpu:gloo,cuda:nccl" if torch.cuda.is_available() else "gloo",
                                timeout=datetime.timedelta(hours=timeout_hours))
    return DataParallel.current()


def _collective_device() -> torch.device:
    """Where control messages travel: the rank's GPU under NCCL, else the CPU (gloo)."""
    import torch.distributed as dist

    if torch.cuda.is_available() and dist.get_backend() == "nccl":
        return torch.device("cuda", torch.cuda.current_device())
    return torch.device("cpu")
