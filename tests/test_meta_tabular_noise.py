"""The noise columns of the tabular warm-start bench (`benchmarks/meta_tabular.py`) on hand-computed searches."""

from __future__ import annotations

import math
import sys
from pathlib import Path

import pytest

sys.path.insert(0, str(Path(__file__).resolve().parents[1] / "benchmarks"))
from meta_tabular import ratio_se, seed_noise  # noqa: E402


def test_a_ratio_of_perfectly_paired_searches_has_no_error():
    # every search of ours takes half the reference's trials: the ratio is 2 whatever the seed
    assert ratio_se([2.0, 4.0, 6.0], [1.0, 2.0, 3.0]) == pytest.approx(0.0, abs=1e-12)


def test_the_ratio_error_follows_the_delta_method():
    # means 2 and 2, reference constant, ours' variance 4/3, no covariance: sqrt((4/3) / 2^2 / 4) = sqrt(1/12)
    assert ratio_se([2.0, 2.0, 2.0, 2.0], [1.0, 3.0, 1.0, 3.0]) == pytest.approx(math.sqrt(1 / 12))
    assert math.isnan(ratio_se([2.0], [1.0]))


def test_the_difference_from_the_control_is_paired_search_by_search():
    # differences 2 and 3: mean 2.5, std 0.707, standard error 0.5, t 5
    assert seed_noise([3.0, 5.0], [1.0, 2.0]) == "+2.50 ± 0.50 (t +5.0)"
    # the same difference on every search: no spread to divide by
    assert seed_noise([3.0, 4.0], [1.0, 2.0]) == "+2.00"
