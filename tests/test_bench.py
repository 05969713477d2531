"""`selfgrow bench`: side-by-side comparison over seeds, resume of finished runs, outputs, errors."""

from __future__ import annotations

import json
import math

import pytest
import yaml

from selfgrow.bench import load_bench, run_bench
from selfgrow.cli import main
from selfgrow.report.bench_plots import pareto_front

BENCH = {
    "name": "tiny",
    "base": {
        "stream": {"name": "split", "dataset": "digits", "scenario": "task", "n_tasks": 2, "classes_per_task": 2},
        "net": {"preset": "mlp-tiny"},
        "trainer": {"epochs": 2, "batch_size": 32, "optimizer": "adam", "lr": 0.003, "progress": False},
    },
    "methods": {"finetune": {"method": "finetune"}, "independent": {"method": "independent"}},
    "seeds": [0, 1],
    "transfer_reference": "independent",
}


def write(tmp_path, **changes):
    spec = {**BENCH, **changes, "output": str(tmp_path / "out")}
    path = tmp_path / "bench.yaml"
    path.write_text(yaml.safe_dump(spec))
    return path


def test_bench_compares_methods_over_seeds_and_writes_outputs(tmp_path, capsys):
    assert main(["bench", "--config", str(write(tmp_path))]) == 0
    out = tmp_path / "out"
    comparison = json.loads((out / "comparison.json").read_text())
    rows = {r["method"]: r for r in comparison["rows"]}
    assert set(rows) == {"finetune", "independent"}
    for row in rows.values():
        assert row["seeds"] == 2 and row["stats"]["average_accuracy"]["n"] == 2
    # the mean over seeds is the mean of the two runs' own results
    accs = [json.loads((out / "finetune" / f"seed{s}" / "results.json").read_text())["summary"]["average_accuracy"]
            for s in (0, 1)]
    assert math.isclose(rows["finetune"]["stats"]["average_accuracy"]["mean"], sum(accs) / 2)
    assert rows["independent"]["stats"]["transfer"]["mean"] == 0.0  # T(S) of the reference against itself
    assert rows["independent"]["stats"]["params"]["mean"] > rows["finetune"]["stats"]["params"]["mean"]
    assert (out / "comparison.csv").read_text().startswith("method,seeds,average_accuracy_mean")
    assert sorted(p.name for p in (out / "plots").iterdir()) == [
        "accuracy_over_tasks.png", "accuracy_vs_flops.png", "accuracy_vs_params.png"]
    table = capsys.readouterr().out
    assert "±" in table and "finetune" in table and "transfer T(S)" in table


def test_every_row_names_the_rule_and_objectives_of_its_growth(tmp_path, capsys):
    searched = {"growth": {"name": "searched", "options": {"width_factors": [1.0, 2.0], "n_trials": 2, "epochs": 1,
                                                          "halving_batch": 2, "max_deepen": 0}}}
    path = write(tmp_path, seeds=[0], methods={"finetune": {"method": "finetune"}, "searched": searched},
                 transfer_reference=None)
    comparison = run_bench(load_bench(path), quiet=False)
    rows = {r["method"]: r["selection"] for r in comparison["rows"]}
    assert rows["finetune"] == "rule: fixed: the backbone never grows"
    assert rows["searched"].startswith("rule: cheapest candidate within 1 standard errors of the best score (parsimony)")
    for objective in ("score:", "plasticity:", "stability:", "cost: inference FLOPs"):
        assert objective in rows["searched"]
    printed = capsys.readouterr().out
    assert "Growth, per method:\n- finetune: rule: fixed" in printed and "- searched: rule: cheapest" in printed


def test_rerun_reads_finished_runs_back_instead_of_recomputing(tmp_path):
    path = write(tmp_path, seeds=[0])
    first = run_bench(load_bench(path), quiet=True)
    results = tmp_path / "out" / "finetune" / "seed0" / "results.json"
    stamp = results.stat().st_mtime_ns
    second = run_bench(load_bench(path), quiet=True, resume=True)  # reuse needs resume (RELIABILITY.md)
    assert results.stat().st_mtime_ns == stamp
    assert first["rows"] == second["rows"]


def test_a_changed_method_refuses_the_old_run_folder(tmp_path, capsys):
    """A finished run is read back only for the same configuration, never under an edited method."""
    path = write(tmp_path, seeds=[0])
    run_bench(load_bench(path), quiet=True)
    changed = {**BENCH["methods"], "finetune": {"method": "finetune", "trainer": {"epochs": 3}}}
    assert main(["bench", "--config", str(write(tmp_path, seeds=[0], methods=changed)), "--resume"]) == 2
    err = capsys.readouterr().err
    assert "holds a run of another configuration" in err and "trainer.epochs" in err


def test_parallel_workers_give_the_same_numbers_as_sequential(tmp_path):
    sequential = run_bench(load_bench(write(tmp_path, seeds=[0]), tmp_path / "seq"), quiet=True)
    parallel = run_bench(load_bench(write(tmp_path, seeds=[0]), tmp_path / "par", workers=2), quiet=True)
    for a, b in zip(sequential["rows"], parallel["rows"]):
        assert a["stats"]["average_accuracy"] == b["stats"]["average_accuracy"]


@pytest.mark.parametrize("changes, message", [
    ({"methodz": {}}, "Did you mean 'methods'?"),
    ({"methods": {}}, "lists no `methods`"),
    ({"transfer_reference": "indep"}, "is not one of the methods"),
    ({"methods": {"x": {"method": "ewx"}}, "transfer_reference": None}, "Did you mean 'ewc'?"),
])
def test_bad_bench_files_exit_2_with_one_sentence(tmp_path, capsys, changes, message):
    assert main(["bench", "--config", str(write(tmp_path, **changes))]) == 2
    err = capsys.readouterr().err.strip()
    assert message in err and len(err.splitlines()) == 1


def test_pareto_front_on_hand_made_points():
    # (cost, accuracy): b dominates a (cheaper and better); d is dominated by c
    points = [(10, 0.5), (5, 0.6), (20, 0.9), (30, 0.8), (40, 0.95)]
    assert pareto_front(points) == [1, 2, 4]
