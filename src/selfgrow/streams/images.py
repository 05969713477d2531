"""Whole-batch image transforms that define tasks: shape fitting, rotation, pixel permutation, colour."""

from __future__ import annotations

import math

import torch
import torch.nn.functional as F

from selfgrow.errors import SelfgrowError, unknown_name

# Seven rainbow colours for Rainbow-MNIST backgrounds (RGB in [0, 1]). No channel reaches 1, so
# the white digit strokes stay visible in every channel and no channel is constant.
RAINBOW = {
    "red": (0.8, 0.1, 0.1),
    "orange": (0.8, 0.45, 0.1),
    "yellow": (0.8, 0.8, 0.1),
    "green": (0.1, 0.6, 0.1),
    "blue": (0.1, 0.2, 0.8),
    "indigo": (0.3, 0.1, 0.5),
    "violet": (0.6, 0.2, 0.8),
}


def to_float(x: torch.Tensor) -> torch.Tensor:
    """uint8 images -> float32 in [0, 1]."""
    return x.to(torch.float32).div_(255.0)


def fit_shape(x: torch.Tensor, shape: tuple[int, int, int]) -> torch.Tensor:
    """Bring float images (N, C, H, W) to `shape` = (C', H', W').

    Grey images are replicated to three channels, colour images averaged to grey; a different
    resolution is reached by bilinear resampling (as CTrL, which rescales every task to 32x32).
    """
    channels, height, width = shape
    if x.shape[1] != channels:
        if x.shape[1] == 1:
            x = x.expand(-1, channels, -1, -1)
        elif channels == 1:
            x = x.mean(dim=1, keepdim=True)
        else:
            raise SelfgrowError(f"Cannot turn {x.shape[1]}-channel images into {channels} channels; accepted: 1 or 3.")
    if tuple(x.shape[2:]) != (height, width):
        x = F.interpolate(x, size=(height, width), mode="bilinear", align_corners=False).clamp_(0.0, 1.0)
    return x.contiguous()


def rotate(x: torch.Tensor, degrees: float) -> torch.Tensor:
    """Rotate every image about its centre by `degrees` (counter-clockwise); corners fill with 0."""
    if degrees % 360 == 0:
        return x
    theta = math.radians(degrees)
    cos, sin = math.cos(theta), math.sin(theta)
    # affine_grid maps output to input coordinates (x right, y down): the inverse rotation goes here.
    matrix = torch.tensor([[cos, -sin, 0.0], [sin, cos, 0.0]], dtype=x.dtype, device=x.device)
    grid = F.affine_grid(matrix.expand(len(x), 2, 3), list(x.shape), align_corners=False)
    return F.grid_sample(x, grid, mode="bilinear", padding_mode="zeros", align_corners=False)


def pixel_permutation(n_pixels: int, generator: torch.Generator) -> torch.Tensor:
    """A seeded random order of the pixel positions of one image."""
    return torch.randperm(n_pixels, generator=generator)


def permute_pixels(x: torch.Tensor, permutation: torch.Tensor) -> torch.Tensor:
    """Shuffle pixel positions (the same for every channel and image)."""
    return x.flatten(2)[:, :, permutation].reshape(x.shape)


def colour(value: str | list[float] | tuple[float, ...]) -> tuple[float, float, float]:
    """An RGB triple in [0, 1] from a rainbow colour name or a list of three numbers."""
    if isinstance(value, str):
        if value not in RAINBOW:
            raise unknown_name("colour", value, RAINBOW)
        return RAINBOW[value]
    rgb = tuple(float(v) for v in value)
    if len(rgb) != 3 or not all(0.0 <= v <= 1.0 for v in rgb):
        raise SelfgrowError(f"Colour {value!r} is not accepted; give a name ({', '.join(RAINBOW)}) or 3 numbers in [0, 1].")
    return rgb  # type: ignore[return-value]


def on_background(x: torch.Tensor, rgb: tuple[float, float, float]) -> torch.Tensor:
    """Paint grey (N, 1, H, W) digit images as white strokes over a coloured background.

    Rainbow-MNIST style: the grey level m of each pixel mixes white and the background colour,
    pixel = m * white + (1 - m) * background; the result has three channels.
    """
    if x.shape[1] != 1:
        raise SelfgrowError(f"A background colour applies to grey-scale images only; these have {x.shape[1]} channels.")
    background = torch.tensor(rgb, dtype=x.dtype, device=x.device).view(1, 3, 1, 1)
    return x + (1.0 - x) * background
