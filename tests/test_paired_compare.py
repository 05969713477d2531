"""`selfgrow compare`: bench rows paired seed by seed, over several bench output folders."""

from __future__ import annotations

import math

import pytest

from selfgrow.cli import main
from selfgrow.errors import SelfgrowError
from selfgrow.report import Results
from selfgrow.report.paired import collect, metric_values, paired_difference, paired_rows, paired_table

# one-task runs: the average incremental accuracy is the single accuracy
OURS = {0: 0.60, 1: 0.70, 2: 0.65}
THEIRS = {0: 0.58, 1: 0.66, 2: 0.64}


def write_run(folder, label: str, seed: int, accuracy: float, tasks: int = 1) -> None:
    run_dir = folder / label / f"seed{seed}"
    run_dir.mkdir(parents=True)
    results = Results(run={"tasks": tasks, "seed": seed})
    results.record({"index": 0}, [accuracy], {"params": 10, "inference_flops": 123456}, {}, {"total": 1.0})
    results.save(run_dir)


def test_paired_difference_matches_hand_computed_values():
    # differences 0.02, 0.04, 0.01: mean 0.023333, std sqrt(0.00046667 / 2) = 0.015275, t = mean / (std / sqrt 3);
    # stds of the two rows 0.05 and 0.041633, pooled sqrt((0.0025 + 0.0017333) / 2) = 0.046007
    paired = paired_difference(OURS, THEIRS)
    assert paired["seeds"] == [0, 1, 2]
    assert paired["mean"] == pytest.approx(0.0233333, abs=1e-6)
    assert paired["std"] == pytest.approx(0.0152753, abs=1e-6)
    assert paired["t"] == pytest.approx(2.6457513, abs=1e-5)
    assert paired["in_stds"] == pytest.approx(0.0233333 / 0.0460072, abs=1e-5)


def test_only_shared_seeds_are_paired_and_one_seed_is_not_enough():
    assert paired_difference({**OURS, 7: 0.9}, THEIRS)["seeds"] == [0, 1, 2]
    assert paired_difference({0: 0.6}, THEIRS) is None
    same = paired_difference({0: 0.75, 1: 0.5}, {0: 0.5, 1: 0.25})  # exactly the same difference on every seed
    assert same["std"] == 0.0 and same["t"] == math.inf


def test_seeds_split_over_folders_join_into_one_row(tmp_path):
    first, second = tmp_path / "seeds01", tmp_path / "seeds2"
    for seed in (0, 1):
        write_run(first, "ours", seed, OURS[seed])
        write_run(first, "theirs", seed, THEIRS[seed])
    write_run(second, "ours", 2, OURS[2])
    write_run(second, "theirs", 2, THEIRS[2])
    values = metric_values(collect([first, second]).runs, "average_incremental_accuracy")
    assert values == {"ours": OURS, "theirs": THEIRS}
    rows = {row["method"]: row for row in paired_rows(values, "theirs")}
    assert rows["ours"]["mean"] == pytest.approx(0.65)
    assert rows["ours"]["std"] == pytest.approx(0.05)
    assert rows["ours"]["paired"]["mean"] == pytest.approx(0.0233333, abs=1e-6)
    assert "paired" not in rows["theirs"]
    text = paired_table(list(rows.values()), "theirs")
    assert "+0.0233 ± 0.0153 (3)" in text and "(reference)" in text and "0-2" in text


def test_unfinished_runs_are_left_out_and_counted(tmp_path):
    write_run(tmp_path, "ours", 0, 0.6)
    write_run(tmp_path, "ours", 1, 0.1, tasks=5)  # killed after its first of 5 tasks
    found = collect([tmp_path])
    assert list(found.runs["ours"]) == [0]
    assert [path.name for path in found.unfinished] == ["seed1"]


def test_bad_input_is_refused_in_one_sentence(tmp_path):
    write_run(tmp_path / "a", "ours", 0, 0.6)
    write_run(tmp_path / "b", "ours", 0, 0.7)
    with pytest.raises(SelfgrowError, match="ours seed 0 is in both"):
        collect([tmp_path / "a", tmp_path / "b"])
    with pytest.raises(SelfgrowError, match="is not a folder"):
        collect([tmp_path / "missing"])
    (tmp_path / "empty").mkdir()
    with pytest.raises(SelfgrowError, match="holds no bench run"):
        collect([tmp_path / "empty"])
    runs = collect([tmp_path / "a"]).runs
    with pytest.raises(SelfgrowError, match="Unknown metric 'avg_inc'; accepted: tasks_done"):
        metric_values(runs, "avg_inc")
    with pytest.raises(SelfgrowError, match="Unknown reference method 'theirs'; accepted: ours"):
        paired_rows(metric_values(runs, "average_incremental_accuracy"), "theirs")


def test_command_prints_the_paired_table(tmp_path, capsys):
    for seed in OURS:
        write_run(tmp_path, "ours", seed, OURS[seed])
        write_run(tmp_path, "theirs", seed, THEIRS[seed])
    assert main(["compare", str(tmp_path), "--reference", "theirs"]) == 0
    out = capsys.readouterr().out
    assert "average_incremental_accuracy" in out and "+0.0233 ± 0.0153 (3)" in out and "2.65" in out
    assert main(["compare", str(tmp_path), "--reference", "theirs", "--metric", "inference_flops"]) == 0
    assert "1.235e+05 ± 0.000e+00" in capsys.readouterr().out  # counts in scientific notation
    assert main(["compare", str(tmp_path), "--reference", "nobody"]) == 2
    assert "Unknown reference method" in capsys.readouterr().err
