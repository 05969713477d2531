"""Comparing recomputed outputs across CPUs (no tests here).

A value that is a copy (a frozen weight slice, an untouched parameter, a checkpoint round trip, data)
is compared exactly. An output recomputed through a grown net, matrices of other shapes or another
dtype is not bitwise stable across CPUs (the BLAS kernels sum in a different order), so it is compared
with `assert_same_function`; `leaking` moves an old part of a net by `LEAK` to show that the
comparison still catches a real change.
"""

from __future__ import annotations

import contextlib

import torch

ULPS = 32  # a few rounding steps per layer of the small test nets, with room for other summation orders
LEAK = 1e-4  # a change of an old output the comparisons must catch


def tolerance(expected: torch.Tensor) -> float:
    """ULPS * eps(dtype) * max(1, max |expected|): rounding error is relative to the output scale, and
    floored at 1 so outputs near 0 get the error of the O(1) values they were computed from
    (float32: 3.8e-6, float64: 7.1e-15 for outputs up to 1 in size; both far below LEAK)."""
    scale = max(1.0, float(expected.detach().abs().max())) if expected.numel() else 1.0
    return ULPS * torch.finfo(expected.dtype).eps * scale


def assert_same_function(actual: torch.Tensor, expected: torch.Tensor, msg: str | None = None) -> None:
    """`actual` equals `expected` up to rounding (see `tolerance`); same shape, dtype and device; NaN fails."""
    if not expected.is_floating_point():
        raise TypeError(f"assert_same_function compares floating-point outputs, got {expected.dtype}")
    prefix = f"{msg}: " if msg is not None else ""
    actual, expected = actual.detach(), expected.detach()
    for what in ("shape", "dtype", "device"):
        got, want = getattr(actual, what), getattr(expected, what)
        assert got == want, f"{prefix}{what} {got} is not {want}"
    tol = tolerance(expected)
    diff = (actual - expected).abs().flatten()
    worst = int(diff.nan_to_num(float("inf")).argmax()) if diff.numel() else 0
    assert not diff.numel() or float(diff.max()) <= tol, (
        f"{prefix}not the same function up to rounding: |difference| {float(diff[worst]):.3g} > {tol:.2g} "
        f"at flat index {worst} ({float(actual.flatten()[worst]):.17g} vs {float(expected.flatten()[worst]):.17g})"
    )


@contextlib.contextmanager
def leaking(parameter: torch.Tensor, by: float = LEAK):
    """Inside the block `parameter` (e.g. an old task's head bias) is moved by `by`; its exact value is back after."""
    with torch.no_grad():
        saved = parameter.detach().clone()
        parameter.add_(by)
    try:
        yield parameter
    finally:
        with torch.no_grad():
            parameter.copy_(saved)
