"""tests/tolerance.py: one-ulp differences pass, a LEAK fails, the output scale and dtype set the bound."""

from __future__ import annotations

import pytest
import torch
from tolerance import LEAK, ULPS, assert_same_function, leaking, tolerance


@pytest.mark.parametrize("dtype", [torch.float32, torch.float64])
def test_one_ulp_passes_and_a_leak_fails(dtype):
    expected = torch.linspace(-0.9, 0.9, 7, dtype=dtype)
    ulp_up = torch.nextafter(expected, torch.full_like(expected, 2.0))
    assert not torch.equal(ulp_up, expected)
    assert_same_function(ulp_up, expected)
    assert_same_function(expected + 4 * torch.finfo(dtype).eps, expected)
    with pytest.raises(AssertionError, match="not the same function up to rounding"):
        assert_same_function(expected + LEAK, expected)
    moved = expected.clone()
    moved[3] += LEAK  # one entry is enough
    with pytest.raises(AssertionError):
        assert_same_function(moved, expected)


@pytest.mark.parametrize("dtype", [torch.float32, torch.float64])
def test_the_bound_is_ulps_times_eps_times_the_output_scale_at_least_one(dtype):
    eps = torch.finfo(dtype).eps
    assert tolerance(torch.tensor([0.01, -0.5], dtype=dtype)) == ULPS * eps  # small outputs: the floor of 1
    assert tolerance(torch.tensor([3.0, -200.0], dtype=dtype)) == ULPS * eps * 200
    big = torch.tensor([-200.0, 100.0, 3.0], dtype=dtype)
    assert_same_function(big + 100 * eps, big)  # one ulp of 200 is 128 eps
    with pytest.raises(AssertionError):
        assert_same_function(big + 2 * ULPS * eps * 200, big)
    assert tolerance(torch.tensor([1.0], dtype=torch.float32)) < LEAK / 10
    assert tolerance(torch.tensor([1.0], dtype=torch.float64)) < 1e-12


def test_dtype_shape_and_non_float_outputs_are_not_glossed_over():
    x = torch.rand(3, 2)
    with pytest.raises(AssertionError):
        assert_same_function(x.double(), x)
    with pytest.raises(AssertionError):
        assert_same_function(x[:2], x)
    with pytest.raises(TypeError):
        assert_same_function(torch.arange(3), torch.arange(3))
    with pytest.raises(AssertionError, match="task 4"):
        assert_same_function(x + 1, x, msg="task 4")
    with pytest.raises(AssertionError):
        assert_same_function(torch.full_like(x, float("nan")), x)


def test_leaking_moves_a_parameter_and_puts_back_its_exact_value():
    layer = torch.nn.Linear(3, 2)
    bias = layer.bias.detach().clone()
    x = torch.rand(5, 3)
    before = layer(x)
    with leaking(layer.bias):
        assert torch.allclose(layer(x) - before, torch.full_like(before, LEAK), atol=1e-6)
    assert torch.equal(layer.bias, bias) and layer.bias.requires_grad
    with pytest.raises(RuntimeError), leaking(layer.bias):
        raise RuntimeError  # restored on errors too
    assert torch.equal(layer.bias, bias)
