"""How far full training tells candidates apart in the proxy-fidelity probe (`benchmarks/proxy_fidelity.py`)."""

from __future__ import annotations

import math
import sys
from pathlib import Path

import pytest

sys.path.insert(0, str(Path(__file__).resolve().parents[1] / "benchmarks"))
from proxy_fidelity import extrapolated_proxies, reliability  # noqa: E402


def _records(task: int, runs: list[list[float]]) -> list[dict]:
    return [{"task": task, "full": [{"test": t} for t in tests]} for tests in runs]


def test_icc_of_candidates_far_apart_against_their_seeds():
    # means 0.81, 0.71, 0.61: std 0.1, MSB = 2 x 0.01 = 0.02; each pair 0.02 apart: MSW = 0.0002
    row = reliability(_records(1, [[0.80, 0.82], [0.70, 0.72], [0.60, 0.62]]), 1)
    assert row[:3] == [1, 3, 2]
    assert row[3] == pytest.approx(0.61) and row[4] == pytest.approx(0.81)
    assert row[5] == pytest.approx(0.1) and row[6] == pytest.approx(math.sqrt(0.0002))
    assert row[7] == pytest.approx((0.02 - 0.0002) / (0.02 + 0.0002))


def test_icc_is_negative_when_seeds_differ_more_than_candidates():
    # equal means: MSB = 0, so (0 - MSW) / (0 + (2 - 1) MSW) = -1
    row = reliability(_records(0, [[0.8, 0.7], [0.7, 0.8]]) + _records(1, [[0.5, 0.5]]), 0)
    assert row[1] == 2 and row[5] == pytest.approx(0.0) and row[7] == pytest.approx(-1.0)


def test_one_seed_gives_no_icc():
    row = reliability(_records(0, [[0.8], [0.7]]), 0)
    assert row[2] == 1 and math.isnan(row[7]) and row[3:5] == [0.7, 0.8]


def test_extrapolation_reads_the_line_at_the_full_trainings_epochs():
    runs = [{"epochs": e, "score": 0.6 + 0.1 * math.log2(e / 4), "se": 0.02} for e in (2, 4, 6)]
    entry = extrapolated_proxies({"25% data": runs}, full_epochs=12)["25% data, extrapolated"][0]
    assert entry["score"] == pytest.approx(0.6 + 0.1 * math.log2(12))
