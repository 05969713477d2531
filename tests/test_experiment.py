"""End-to-end runs through the CLI: run folder contents, resume after SIGKILL, config errors."""

from __future__ import annotations

import json
import os
import signal
import subprocess
import sys
import time
from pathlib import Path

import pytest
import yaml

from selfgrow.cli import main

TINY = {
    "name": "tiny",
    "seed": 3,
    "stream": {"name": "split", "dataset": "digits", "scenario": "class", "n_tasks": 5},
    "net": {"preset": "mlp-tiny"},
    "growth": {"name": "schedule", "options": {"width_per_class": 4}},
    "retention": [{"name": "replay", "options": {"budget": 60}}, {"name": "lwf"}],
    "trainer": {"epochs": 3, "batch_size": 32, "optimizer": "adam", "lr": 0.003, "progress": False},
}


def _write_config(tmp_path: Path, **changes) -> Path:
    config = json.loads(json.dumps(TINY))
    for key, value in changes.items():
        config[key] = value
    config["output"] = str(tmp_path / "runs")
    path = tmp_path / "config.yaml"
    path.write_text(yaml.safe_dump(config))
    return path


def _selfgrow(*args: str, **kwargs) -> subprocess.Popen:
    return subprocess.Popen([sys.executable, "-m", "selfgrow.cli", *args], stdout=subprocess.PIPE,
                            stderr=subprocess.PIPE, text=True, **kwargs)


def test_run_writes_the_run_folder(tmp_path, capsys):
    config = _write_config(tmp_path)
    assert main(["run", "--config", str(config)]) == 0
    run_dir = tmp_path / "runs" / "tiny"
    for name in ("config.yaml", "results.json", "metrics.csv", "growth.jsonl", "report.html"):
        assert (run_dir / name).is_file(), name
    assert sorted(p.name for p in (run_dir / "plots").iterdir()) == [
        "accuracy_cost.png", "accuracy_matrix.png", "architecture.png", "growth_timeline.png"]
    results = json.loads((run_dir / "results.json").read_text())
    assert [len(row) for row in results["accuracy"]] == [1, 2, 3, 4, 5]
    assert all(0.0 <= a <= 1.0 for row in results["accuracy"] for a in row)
    params = [c["params"] for c in results["costs"]]
    assert params == sorted(params) and params[-1] > params[0]  # the schedule grew the net
    growth = [json.loads(line) for line in (run_dir / "growth.jsonl").read_text().splitlines()]
    assert [g["summary"].split(":")[0] for g in growth] == [f"Task {i}" for i in range(5)]
    assert "widened hidden.0 from 16 to 24 units" in growth[1]["summary"]  # 4 units per class seen, 2 new classes
    assert len((run_dir / "metrics.csv").read_text().splitlines()) == 6
    html = (run_dir / "report.html").read_text()
    assert html.count("data:image/png;base64,") == 4
    assert html.count("<p class='growth'>Task ") == 5 and html.count("(JSON)</summary>") == 5
    out = capsys.readouterr().out
    assert "average_incremental_accuracy" in out and "report.html" in out


def test_cli_overrides_and_refuses_to_overwrite(tmp_path, capsys):
    config = _write_config(tmp_path)
    assert main(["run", "--config", str(config), "--stream.n_tasks", "2", "--trainer.epochs", "1"]) == 0
    results = json.loads((tmp_path / "runs" / "tiny" / "results.json").read_text())
    assert len(results["accuracy"]) == 2
    assert main(["run", "--config", str(config)]) == 2
    assert "already holds a run" in capsys.readouterr().err


def test_resume_after_sigkill_equals_uninterrupted_run(tmp_path):
    config = _write_config(tmp_path, trainer={**TINY["trainer"], "epochs": 20})
    reference = _selfgrow("run", "--config", str(config), "--name", "reference")
    killed = _selfgrow("run", "--config", str(config), "--name", "killed")
    run_dir = tmp_path / "runs" / "killed"
    deadline = time.time() + 240
    while not (run_dir / "checkpoints" / "task_002").exists():  # task 3 (index 2 done) is under way
        assert killed.poll() is None and time.time() < deadline, killed.communicate()
        time.sleep(0.01)
    time.sleep(0.2)
    os.kill(killed.pid, signal.SIGKILL)
    killed.wait()
    assert not (run_dir / "checkpoints" / "task_003").exists(), "the kill came after task 3 had finished"
    resumed = _selfgrow("run", "--resume", str(run_dir))
    out, err = resumed.communicate(timeout=300)
    assert resumed.returncode == 0, err
    ref_out, ref_err = reference.communicate(timeout=300)
    assert reference.returncode == 0, ref_err
    a = json.loads((run_dir / "results.json").read_text())
    b = json.loads((tmp_path / "runs" / "reference" / "results.json").read_text())
    assert a["accuracy"] == b["accuracy"]
    assert [c["params"] for c in a["costs"]] == [c["params"] for c in b["costs"]]


def test_resume_refuses_a_different_config_unless_forced(tmp_path, capsys):
    config = _write_config(tmp_path, stream={**TINY["stream"], "n_tasks": 2})
    assert main(["run", "--config", str(config), "--trainer.epochs", "1"]) == 0
    run_dir = tmp_path / "runs" / "tiny"
    assert main(["run", "--config", str(config), "--trainer.epochs", "2", "--resume", str(run_dir)]) == 2
    err = capsys.readouterr().err
    assert "trainer.epochs" in err and "--force" in err


@pytest.mark.parametrize(
    "args, expected",
    [
        (["--stream.name", "splt"], "Did you mean 'split'?"),
        (["--stream.dataset", "mnst"], "Did you mean 'mnist'?"),
        (["--trainer.epochz", "3"], "Did you mean '--trainer.epochs'?"),
        (["--stream.n_tasks", "3"], "n_tasks"),
        (["--method", "ewx"], "Did you mean 'ewc'?"),
        (["--growth.name", "schedul"], "Did you mean 'schedule'?"),
        (["--net.preset", "mlp-smal"], "Did you mean 'mlp-small'?"),
    ],
)
def test_bad_config_exits_2_with_one_sentence(tmp_path, capsys, args, expected):
    config = _write_config(tmp_path)
    assert main(["run", "--config", str(config), *args]) == 2
    err = capsys.readouterr().err.strip()
    assert expected in err
    assert "Traceback" not in err and len(err.splitlines()) == 1


def test_unknown_key_in_config_file(tmp_path, capsys):
    config = _write_config(tmp_path)
    text = config.read_text().replace("n_tasks:", "n_taks:")
    config.write_text(text)
    assert main(["run", "--config", str(config)]) == 2
    assert "Did you mean 'n_tasks'?" in capsys.readouterr().err


def test_list_shows_datasets_and_availability(real_data_root, capsys):
    assert main(["list", "datasets", "--data-dir", str(real_data_root)]) == 0
    out = capsys.readouterr().out
    lines = {line.split()[0]: line for line in out.splitlines() if line and line.split()[0] in
             ("mnist", "fashion_mnist", "cifar10", "cifar100", "svhn")}
    for name in ("mnist", "fashion_mnist", "cifar10"):
        assert "ready" in lines[name]
    for name in ("cifar100", "svhn"):
        assert "not downloaded" in lines[name]


def test_list_all_sections(capsys):
    assert main(["list"]) == 0
    out = capsys.readouterr().out
    for section in ("DATASETS", "STREAMS", "METHODS", "GROWERS", "RETENTION", "NETS"):
        assert section in out
    for name in ("s_minus", "icarl", "schedule", "ewc", "resnet18-reduced"):
        assert name in out


def test_data_dir_flag_accepts_both_spellings():
    from selfgrow.config_cli import parse_run_args

    assert parse_run_args(["--data-dir", "/a"])[0].data_dir == "/a"
    assert parse_run_args(["--data_dir=/b"])[0].data_dir == "/b"


def test_report_redraws_a_run_folder_and_refuses_a_folder_without_results(tmp_path, capsys):
    config = _write_config(tmp_path, stream={**TINY["stream"], "n_tasks": 2}, trainer={**TINY["trainer"], "epochs": 1})
    assert main(["run", "--config", str(config)]) == 0
    run_dir = tmp_path / "runs" / "tiny"
    (run_dir / "report.html").unlink()
    assert main(["report", str(run_dir)]) == 0
    assert (run_dir / "report.html").read_text().count("data:image/png;base64,") == 4
    assert main(["report", str(tmp_path)]) == 2
    assert "No results.json" in capsys.readouterr().err


@pytest.mark.parametrize("options, expected", [({}, 3), ({"seed": 7}, 7)], ids=["run-seed", "own-seed"])
def test_a_grower_that_draws_random_numbers_takes_the_run_seed_unless_it_sets_its_own(options, expected):
    from selfgrow.config import from_dict
    from selfgrow.factories import grower_options

    config = from_dict({**TINY, "growth": {"name": "searched", "options": options}})
    assert grower_options(config)["seed"] == expected
    assert "seed" not in grower_options(from_dict(TINY))  # schedule draws nothing: no seed option
