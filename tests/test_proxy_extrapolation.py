"""Learning-curve extrapolation in the proxy-fidelity probe (`benchmarks/proxy_fidelity.py`)."""

from __future__ import annotations

import math
import sys
from pathlib import Path

import pytest

sys.path.insert(0, str(Path(__file__).resolve().parents[1] / "benchmarks"))
from proxy_fidelity import extrapolated_proxies, extrapolation_weights  # noqa: E402


def test_a_score_linear_in_log_epochs_is_extrapolated_exactly():
    line = [0.5 + 0.1 * math.log(t) for t in (1, 2, 3)]
    weights = extrapolation_weights([1, 2, 3], 6)
    assert sum(weights) == pytest.approx(1.0)  # a constant curve stays where it is
    assert sum(w * s for w, s in zip(weights, line)) == pytest.approx(0.5 + 0.1 * math.log(6))


def test_two_points_give_the_line_through_them():
    # s(1) = 0.6, s(2) = 0.7: 0.1 per doubling, so 6 epochs reads 0.6 + 0.1 * log2(6)
    weights = extrapolation_weights([1, 2], 6)
    assert weights[0] * 0.6 + weights[1] * 0.7 == pytest.approx(0.6 + 0.1 * math.log2(6))


def test_one_epoch_count_is_refused():
    with pytest.raises(ValueError, match="two distinct epoch counts"):
        extrapolation_weights([2, 2], 6)


def test_the_quarter_data_run_is_read_in_full_data_epochs():
    # "25% data" after 2, 4, 6 epochs has trained 0.5, 1, 1.5 full-data epochs; a run rising 0.1 per doubling of them
    runs = [{"epochs": e, "score": 0.6 + 0.1 * math.log2(e / 4), "se": 0.02, "test": 0.5} for e in (2, 4, 6)]
    got = extrapolated_proxies({"25% data": runs})
    assert list(got) == ["25% data, extrapolated"]
    entry = got["25% data, extrapolated"][0]
    assert entry["score"] == pytest.approx(0.6 + 0.1 * math.log2(6)) and entry["test"] == pytest.approx(0.5)
    assert entry["epochs"] == 6 and entry["se"] > 0.02  # extrapolating past the data widens the error


def test_a_per_candidate_learning_rate_takes_the_best_validation_score_at_each_epoch_count():
    from proxy_fidelity import best_lr_proxies

    def run(*scores):
        return [{"epochs": e, "score": s, "se": 0.01, "test": s - 0.1} for e, s in zip((2, 4, 6), scores)]

    measured = {"25% data": run(0.6, 0.7, 0.8), "25% data, lr 1e-3": run(0.65, 0.7, 0.75),
                "25% data, lr 4e-3": run(0.5, 0.72, 0.8)}
    best = best_lr_proxies(measured)["25% data, best of 3 lrs"]
    assert [e["score"] for e in best] == [0.65, 0.72, 0.8]  # a tie (0.8) keeps the first listed run
    assert best[1]["test"] == pytest.approx(0.62) and best[2] is not measured["25% data"][2]
    assert best_lr_proxies({"25% data": run(0.6, 0.7, 0.8)}) == {}  # not every learning rate measured
