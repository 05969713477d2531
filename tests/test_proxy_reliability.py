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


def test_the_naswot_filter_trains_and_picks_only_the_candidates_at_or_above_the_median_score():
    from proxy_fidelity import summarise

    truth, proxy, flops, naswot = [0.9, 0.8, 0.7, 0.6], [0.5, 0.9, 0.6, 0.8], [4, 3, 2, 1], [4.0, 1.0, 3.0, 2.0]
    records = [{"task": 0, "full": [{"test": t, "score": t, "se": 0.1}], "flops": f, "zero_cost": {"NASWOT": n},
                "proxies": {"25% data": [{"epochs": e, "score": p, "se": 0.1} for e in (2, 4)]}}
               for t, p, f, n in zip(truth, proxy, flops, naswot)]
    rows = {row[1]: row for row in summarise(records, 0)}
    unfiltered, filtered = rows["25% data, 2 epochs"], rows["NASWOT filter, then 25% data, 2 epochs"]
    assert unfiltered[5] == pytest.approx(0.1)  # candidate 1 scores best and is 0.1 below the truth's best
    # candidates 0 and 2 pass (NASWOT 4 and 3 >= the median 2.5); ranked 0.5, -, 0.6, - against the truth 0.9 .. 0.6:
    # 3 concordant, 2 discordant pairs, one tie in the filtered ranking: tau-b = 1 / sqrt(5 x 6)
    assert filtered[2] == 2 and filtered[3] == pytest.approx(1 / math.sqrt(30))
    # the best pick is candidate 2 (0.6); within one standard error of it parsimony takes the cheaper, 2, and
    # capacity the costlier, 0
    assert filtered[5:8] == pytest.approx([0.2, 0.2, 0.0])
