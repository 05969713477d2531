"""Per-batch tensor transforms: channel statistics, random crop with padding + horizontal flip, normalisation.

All work on whole (B, C, H, W) batches on any device, without per-sample Python loops.
"""

from __future__ import annotations

import functools

from collections.abc import Sequence

import torch
import torch.nn.functional as F

from selfgrow.errors import SelfgrowError

STATS_CHUNK = 4096


def channel_stats(x: torch.Tensor) -> tuple[tuple[float, ...], tuple[float, ...]]:
    """Per-channel mean and (population) std of (N, C, H, W) images, uint8 read as value/255.

    uint8 images are summarised exactly from per-channel histograms of their 256 values; float
    images by float64 sums over chunks of samples. Neither makes a float copy of the whole set.
    """
    if x.ndim != 4 or len(x) == 0:
        raise SelfgrowError(f"channel_stats needs a non-empty (N, C, H, W) batch; got shape {tuple(x.shape)}.")
    if x.dtype == torch.uint8:
        histograms = torch.stack([torch.bincount(x[:, c].reshape(-1), minlength=256) for c in range(x.shape[1])])
        levels = torch.arange(256, dtype=torch.float64, device=x.device) / 255.0
        total, total_sq = histograms.double() @ levels, histograms.double() @ levels.square()
    else:
        total = torch.zeros(x.shape[1], dtype=torch.float64, device=x.device)
        total_sq = torch.zeros_like(total)
        for chunk in x.split(STATS_CHUNK):
            values = chunk.to(torch.float64)
            total += values.sum(dim=(0, 2, 3))
            total_sq += values.square().sum(dim=(0, 2, 3))
    count = x.numel() // x.shape[1]
    mean = total / count
    std = (total_sq / count - mean.square()).clamp(min=0).sqrt()
    return tuple(mean.tolist()), tuple(std.tolist())


def augment_batch(
    x: torch.Tensor, generator: torch.Generator, crop_padding: int = 0, hflip: bool = False
) -> torch.Tensor:
    """Random crop after zero padding by `crop_padding` pixels, and random horizontal flip (p = 0.5), per sample.

    The random offsets and flips are drawn from `generator` (on its own device, then moved to
    x's), so a seeded generator gives the same augmentation on CPU and CUDA. Crop and flip are
    one gather over the flattened padded image: output[b, :, i, j] = padded[b, :, row_b + i, col_b(j)].
    """
    if not isinstance(crop_padding, int) or crop_padding < 0:
        raise SelfgrowError(f"crop_padding {crop_padding!r} is not accepted; give an int >= 0.")
    if crop_padding == 0 and not hflip:
        return x
    batch, channels, height, width = x.shape
    pad = crop_padding
    offsets = torch.randint(0, 2 * pad + 1, (2, batch), generator=generator, device=generator.device).to(x.device)
    padded = F.pad(x, (pad, pad, pad, pad)) if pad else x
    rows = offsets[0, :, None] + torch.arange(height, device=x.device)  # (B, H)
    steps = torch.arange(width, device=x.device)
    if hflip:
        flips = (torch.rand(batch, generator=generator, device=generator.device) < 0.5).to(x.device)
        steps = torch.where(flips[:, None], width - 1 - steps, steps)  # (B, W)
    cols = offsets[1, :, None] + steps  # (B, W)
    flat = (rows[:, :, None] * (width + 2 * pad) + cols[:, None, :]).reshape(batch, 1, height * width)
    picked = padded.reshape(batch, channels, -1).gather(2, flat.expand(batch, channels, height * width))
    return picked.reshape(batch, channels, height, width)


def normalize(x: torch.Tensor, mean: Sequence[float], std: Sequence[float]) -> torch.Tensor:
    """(x - mean) / std per channel for a float (B, C, H, W) batch."""
    if len(mean) != x.shape[1] or len(std) != x.shape[1]:
        raise SelfgrowError(
            f"normalize got {len(mean)} means and {len(std)} stds for {x.shape[1]} channels; give one per channel."
        )
    return (x - _channel_tensor(tuple(mean), x.dtype, x.device)) / _channel_tensor(tuple(std), x.dtype, x.device)


@functools.lru_cache(maxsize=64)
def _channel_tensor(values: tuple[float, ...], dtype: torch.dtype, device: torch.device) -> torch.Tensor:
    """Per-channel statistics as a (1, C, 1, 1) tensor, built once per (values, dtype, device): this runs every batch."""
    return torch.as_tensor(values, dtype=dtype, device=device).view(1, -1, 1, 1)
