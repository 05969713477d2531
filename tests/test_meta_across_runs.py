"""Warm-start kinds averaged over runs of the held-out streams (`benchmarks/meta_across_runs.py`)."""

from __future__ import annotations

import math
import sys
from pathlib import Path

import pytest

sys.path.insert(0, str(Path(__file__).resolve().parents[1] / "benchmarks"))
from meta_across_runs import paired, rows, run_values  # noqa: E402

SCOPE = "mnist fashion digits"


def summary(values: dict[str, tuple[float, float]]) -> dict[str, list[list]]:
    """A meta_tabular summary whose rows hold only kind, x fewer trials and x fewer FLOPs (the columns read)."""
    return {SCOPE: [[kind, 180, 0, 0, trials, flops, 0] for kind, (trials, flops) in values.items()],
            "mnist": [[kind, 60, 0, 0, 9.0, 9.0, 0] for kind in values]}


def test_runs_are_paired_and_their_spread_is_the_error():
    runs = [summary({"again": (0.9, 1.0), "warm": (1.5, 1.4)}), summary({"again": (1.0, 0.8), "warm": (1.1, 1.0)}),
            summary({"again": (0.8, 0.9), "warm": (1.3, 0.7), "twin": (2.0, 2.0)})]
    assert run_values(runs, SCOPE, 4) == {"again": [0.9, 1.0, 0.8], "warm": [1.5, 1.1, 1.3]}  # twin: one run only
    table = {row[0]: row for row in rows(runs, SCOPE, "again")}
    assert set(table) == {"again", "warm"}
    # warm: mean 1.3, sample std 0.2, SE 0.2 / sqrt 3; FLOPs 1.4, 1.0, 0.7: mean 1.0333, std 0.3512
    assert table["warm"][2:5] == ["1.50 1.10 1.30", f"1.30 ± {0.2 / math.sqrt(3):.2f}", "1.03 ± 0.20"]
    # paired differences 0.6, 0.1, 0.5: mean 0.4, std 0.2646, SE 0.1528, t 2.62, ahead on 3 runs
    assert table["warm"][5] == "+0.40 ± 0.15 (t +2.6; ahead on 3)" and table["again"][5:] == ["", ""]
    # FLOPs paired: 0.4, 0.2, -0.2: mean 0.1333, std 0.3055, SE 0.1764, t 0.76, ahead on 2
    assert table["warm"][6] == "+0.13 ± 0.18 (t +0.8; ahead on 2)"
    assert rows(runs, "mnist", "again")[0][3] == "9.00 ± 0.00"


def test_paired_counts_the_runs_ahead_and_has_no_t_without_spread():
    assert paired([1.0, 2.0], [1.5, 1.0])[3] == 1
    mean, se, t, ahead = paired([1.2, 1.2], [1.0, 1.0])
    assert mean == pytest.approx(0.2) and se == 0 and math.isnan(t) and ahead == 2


def test_a_missing_reference_or_scope_is_refused_in_one_sentence():
    runs = [summary({"again": (0.9, 1.0), "warm": (1.5, 1.4)})]
    with pytest.raises(SystemExit, match="--reference 'cold' is not a kind of every summary; accepted: one of"):
        rows(runs, SCOPE, "cold")
    with pytest.raises(SystemExit, match="a summary has no scope 'cifar10'; accepted: one of"):
        rows(runs, "cifar10", "again")
