"""The tables a held-out search of the tabular warm-start bench looks up (`benchmarks/meta_tabular.py`)."""

from __future__ import annotations

import sys
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parents[1] / "benchmarks"))
from meta_tabular import searched_tables  # noqa: E402


def test_a_held_out_run_replaces_the_held_out_streams_tables_and_their_second_trainings_only():
    built = {(name, task): f"{name}@{task}" for task in (1, 2)
             for name in ("mnist", "mnist-holdout", "mnist.run4", "mnist.run4-holdout", "fashion", "mnist.rotated")}
    view = searched_tables(built, ["mnist"], [1, 2], 4)
    assert view["mnist", 1] == "mnist.run4@1" and view["mnist-holdout", 2] == "mnist.run4-holdout@2"
    assert view["fashion", 1] == "fashion@1" and view["mnist.rotated", 2] == "mnist.rotated@2"  # the base's tables
    assert built["mnist", 1] == "mnist@1"  # the base's own table is kept for its past runs
    assert searched_tables(built, ["mnist"], [1, 2], 0) is built
