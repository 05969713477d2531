"""Batch transforms: channel statistics, random crop with zero padding + horizontal flip, normalisation."""

from __future__ import annotations

import pytest
import torch
import torch.nn.functional as F

from selfgrow.data import transforms
from selfgrow.data.transforms import augment_batch, channel_stats, normalize
from selfgrow.errors import SelfgrowError


def batch(n=16, c=3, h=5, w=6):
    return torch.rand(n, c, h, w, generator=torch.Generator().manual_seed(7)) + 0.1  # no zeros: padding is visible


def windows(image: torch.Tensor, pad: int) -> list[torch.Tensor]:
    """Every crop of the zero-padded image with the image's size."""
    padded = F.pad(image, (pad, pad, pad, pad))
    _, h, w = image.shape
    return [padded[:, i : i + h, j : j + w] for i in range(2 * pad + 1) for j in range(2 * pad + 1)]


def test_no_padding_and_no_flip_is_identity():
    x = batch()
    assert torch.equal(augment_batch(x, torch.Generator().manual_seed(0), crop_padding=0, hflip=False), x)


def test_crop_keeps_shape_and_each_output_is_a_window_of_the_padded_input():
    x, pad = batch(40), 2
    out = augment_batch(x, torch.Generator().manual_seed(0), crop_padding=pad)
    assert out.shape == x.shape
    positions = []
    for image, crop in zip(x, out):
        matches = [k for k, window in enumerate(windows(image, pad)) if torch.equal(window, crop)]
        assert len(matches) == 1
        positions.append(matches[0])
    assert len(set(positions)) > 10  # offsets vary across samples (25 possible)


def test_flip_mirrors_exactly_the_chosen_samples_and_leaves_the_rest():
    x = batch(200)
    out = augment_batch(x, torch.Generator().manual_seed(3), hflip=True)
    flipped = torch.tensor([torch.equal(o, i.flip(-1)) for o, i in zip(out, x)])
    kept = torch.tensor([torch.equal(o, i) for o, i in zip(out, x)])
    assert torch.all(flipped ^ kept)
    assert 60 < int(flipped.sum()) < 140


def test_crop_and_flip_together_give_a_window_of_the_padded_or_mirrored_input():
    x, pad = batch(30), 1
    out = augment_batch(x, torch.Generator().manual_seed(5), crop_padding=pad, hflip=True)
    for image, crop in zip(x, out):
        candidates = windows(image, pad) + windows(image.flip(-1), pad)
        assert any(torch.equal(c, crop) for c in candidates)


def test_same_seed_same_augmentation():
    x = batch()
    a = augment_batch(x, torch.Generator().manual_seed(11), crop_padding=4, hflip=True)
    b = augment_batch(x, torch.Generator().manual_seed(11), crop_padding=4, hflip=True)
    c = augment_batch(x, torch.Generator().manual_seed(12), crop_padding=4, hflip=True)
    assert torch.equal(a, b) and not torch.equal(a, c)


@pytest.mark.skipif(not torch.cuda.is_available(), reason="needs CUDA")
def test_cuda_batch_matches_cpu_for_the_same_cpu_generator():
    x = batch()
    cpu = augment_batch(x, torch.Generator().manual_seed(1), crop_padding=4, hflip=True)
    gpu = augment_batch(x.cuda(), torch.Generator().manual_seed(1), crop_padding=4, hflip=True)
    assert gpu.device.type == "cuda" and torch.equal(gpu.cpu(), cpu)


def test_negative_padding_is_rejected():
    with pytest.raises(SelfgrowError, match="crop_padding -1"):
        augment_batch(batch(), torch.Generator(), crop_padding=-1)


def test_normalize_applies_per_channel_formula():
    x = torch.tensor([0.0, 0.5, 1.0]).view(1, 1, 1, 3).repeat(1, 2, 1, 1)
    out = normalize(x, mean=(0.5, 0.25), std=(0.25, 0.5))
    assert out[0, 0, 0].tolist() == [-2.0, 0.0, 2.0]
    assert out[0, 1, 0].tolist() == [-0.5, 0.5, 1.5]
    with pytest.raises(SelfgrowError, match="one per channel"):
        normalize(x, mean=(0.5,), std=(0.25,))


def test_channel_stats_on_hand_computed_values():
    x = torch.tensor([[[[0, 255]], [[51, 51]]]], dtype=torch.uint8)  # channel 0: 0 and 1; channel 1: 0.2 twice
    mean, std = channel_stats(x)
    assert mean == pytest.approx((0.5, 0.2)) and std == pytest.approx((0.5, 0.0), abs=1e-7)


def test_channel_stats_accumulate_over_chunks_like_a_direct_computation(monkeypatch):
    monkeypatch.setattr(transforms, "STATS_CHUNK", 3)
    x = torch.rand(10, 2, 4, 4, generator=torch.Generator().manual_seed(0), dtype=torch.float64)
    mean, std = channel_stats(x)
    assert mean == pytest.approx(x.mean(dim=(0, 2, 3)).tolist())
    assert std == pytest.approx(x.transpose(0, 1).reshape(2, -1).std(dim=1, unbiased=False).tolist())


def test_channel_stats_of_uint8_equal_those_of_the_scaled_floats():
    x = torch.randint(0, 256, (7, 3, 5, 5), generator=torch.Generator().manual_seed(1), dtype=torch.uint8)
    mean, std = channel_stats(x)
    float_mean, float_std = channel_stats(x.double() / 255)
    assert mean == pytest.approx(float_mean, abs=1e-12) and std == pytest.approx(float_std, abs=1e-12)
