"""stratified_split: deterministic, stratified per class, every class keeps a training sample."""

from __future__ import annotations

import numpy as np
import pytest
import torch
from hypothesis import given, settings
from hypothesis import strategies as st

from selfgrow.data import stratified_split
from selfgrow.errors import SelfgrowError


def test_same_seed_same_split_other_seed_other_split():
    y = torch.arange(200) % 4
    a_train, a_val = stratified_split(y, 0.3, seed=1)
    b_train, b_val = stratified_split(y, 0.3, seed=1)
    _, c_val = stratified_split(y, 0.3, seed=2)
    assert torch.equal(a_train, b_train) and torch.equal(a_val, b_val)
    assert not torch.equal(a_val, c_val)


def test_counts_per_class_follow_the_fraction():
    y = np.repeat([0, 1, 2], [10, 20, 3])
    train, val = stratified_split(y, 0.25, seed=0)
    assert torch.bincount(torch.as_tensor(y)[val], minlength=3).tolist() == [2, 5, 1]  # round(2.5)=2 (half to even)
    assert train.dtype == torch.int64 and torch.equal(train, torch.sort(train).values)


def test_single_sample_class_stays_in_training():
    y = torch.tensor([0, 0, 0, 0, 1])
    train, val = stratified_split(y, 0.5, seed=0)
    assert 4 in train.tolist() and len(val) == 2


def test_zero_fraction_gives_an_empty_validation_set():
    train, val = stratified_split(torch.tensor([0, 1, 1]), 0.0, seed=0)
    assert train.tolist() == [0, 1, 2] and val.numel() == 0


@pytest.mark.parametrize("fraction", [-0.1, 1.0, 2])
def test_fraction_outside_unit_interval_is_rejected(fraction):
    with pytest.raises(SelfgrowError, match="outside the accepted range"):
        stratified_split(torch.tensor([0, 1]), fraction, seed=0)


@settings(max_examples=60, deadline=None)
@given(st.lists(st.integers(0, 5), min_size=1, max_size=60), st.floats(0, 0.95), st.integers(0, 99))
def test_split_is_a_stratified_partition(labels, fraction, seed):
    y = torch.tensor(labels)
    train, val = stratified_split(y, fraction, seed)
    assert sorted(train.tolist() + val.tolist()) == list(range(len(labels)))
    counts = torch.bincount(y, minlength=6)
    val_counts = torch.bincount(y[val], minlength=6)
    expected = torch.minimum(torch.round(counts * fraction).long(), (counts - 1).clamp(min=0))
    assert torch.equal(val_counts, expected)
    assert torch.equal(torch.bincount(y[train], minlength=6) > 0, counts > 0)
