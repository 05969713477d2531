"""Defects found by trying selfgrow as a new user (issue 15, section 2): each test failed before its fix."""

from __future__ import annotations

import contextlib
import io
import json
import re
from pathlib import Path
from unittest import mock

import pytest
import yaml
from postgres_fixtures import free_port, throwaway_postgres

from selfgrow import experiment, factories
from selfgrow.cli import main
from selfgrow.config import from_dict, to_dict
from selfgrow.errors import SelfgrowError
from selfgrow.growth import build_grower

TINY_TRAINER = {"epochs": 1, "batch_size": 64, "progress": False, "curve_batches": 0}


def _cli(*args: str) -> tuple[int, str, str]:
    """`selfgrow ARGS` in-process: (exit code, stdout, stderr)."""
    out, err = io.StringIO(), io.StringIO()
    with contextlib.redirect_stdout(out), contextlib.redirect_stderr(err):
        code = main(list(args))
    return code, out.getvalue(), err.getvalue().strip()


def _one_sentence(code: int, err: str, *names: str) -> None:
    assert code == 2, err
    assert len(err.splitlines()) == 1 and "Traceback" not in err, err
    for name in names:
        assert name in err, (name, err)


# ---- 1. the stream's own default scenario ----------------------------------------------------------


@pytest.mark.parametrize("name, expected", [("split", "class"), ("permuted", "task"), ("rotated", "domain")])
def test_the_config_keeps_each_streams_own_default_scenario(tmp_path, name, expected):
    config = from_dict({"stream": {"name": name, "dataset": "digits", "n_tasks": 2}})
    assert factories.build_stream(config).scenario == expected
    explicit = from_dict({"stream": {"name": name, "dataset": "digits", "n_tasks": 2, "scenario": "class"}})
    assert factories.build_stream(explicit).scenario == "class"  # an explicit choice still wins
    # a run folder saved before the fix (scenario: class written out) resumes only where class was the default
    (tmp_path / "config.yaml").write_text(yaml.safe_dump(to_dict(explicit)))
    differing = experiment.saved_config_differences(tmp_path, config)
    assert differing == ([] if expected == "class" else ["stream.scenario"])


def test_a_rotated_run_is_domain_incremental_and_its_first_line_says_so(tmp_path):
    code, out, err = _cli("run", "--stream.name", "rotated", "--stream.dataset", "digits", "--stream.n_tasks", "2",
                          "--net.preset", "mlp-tiny", "--trainer.epochs", "1", "--trainer.progress", "false",
                          "--output", str(tmp_path), "--name", "rot")
    assert code == 0, err
    first = out.splitlines()[0]
    assert "scenario domain (the stream's default)" in first, first
    results = json.loads((tmp_path / "rot" / "results.json").read_text())
    assert results["run"]["scenario"] == "domain"
    params = [c["params"] for c in results["costs"]]
    assert params[0] == params[1], params  # one shared 10-class head: no new head slice per rotation


# ---- 2. storages that cannot be opened -------------------------------------------------------------


def test_storages_that_cannot_be_opened_are_one_sentence(tmp_path):
    blocker = tmp_path / "a_file"
    blocker.write_text("")
    port = free_port()
    cases = [
        (f"postgresql://user@127.0.0.1:{port}/db", ["postgresql+psycopg2://***@127.0.0.1", "accepted"]),
        (f"postgresql+psycopg2://user:secret@127.0.0.1:{port}/db", ["Cannot open the study database", "accepted"]),
        (f"mysql://user@127.0.0.1:{port}/db", ["'MySQLdb'", "is not installed", "accepted"]),
        (f"journal:{blocker}/study.log", ["Cannot open the journal file", "a_file", "accepted"]),
    ]
    for url, names in cases:
        code, _, err = _cli("worker", "--storage", url, "--study", "x", "--idle-timeout", "1")
        _one_sentence(code, err, *names)
        assert "secret" not in err


def test_plain_postgresql_urls_map_to_the_installed_driver():
    from selfgrow.search.storage import database_url

    def installed(*names):
        return lambda name: object() if name in names else None

    with mock.patch("importlib.util.find_spec", installed("psycopg2")):
        assert database_url("postgresql://u@h/db") == "postgresql+psycopg2://u@h/db"
        assert database_url("postgres://u:p@h:5432/db") == "postgresql+psycopg2://u:p@h:5432/db"
        assert database_url("postgresql+psycopg2://u@h/db") == "postgresql+psycopg2://u@h/db"
        assert database_url("sqlite:///x.db") == "sqlite:///x.db"
    with mock.patch("importlib.util.find_spec", installed("psycopg", "psycopg2")):
        assert database_url("postgresql://u@h/db") == "postgresql://u@h/db"  # SQLAlchemy's own default works


@pytest.fixture(scope="module")
def password_postgres():
    """A throwaway PostgreSQL cluster on 127.0.0.1 that wants the password 'right'; its (plain) URL base."""
    with throwaway_postgres(password="right") as where:
        yield where


def test_a_plain_postgresql_url_opens_and_a_wrong_password_is_one_sentence(password_postgres):
    from selfgrow.search.storage import make_storage

    storage = make_storage(f"postgresql://selfgrow:right@{password_postgres}", heartbeat=10)
    assert storage.url.startswith("postgresql+psycopg2://")
    code, _, err = _cli("worker", "--storage", f"postgresql://selfgrow:wrong@{password_postgres}", "--study", "x",
                        "--idle-timeout", "1")
    _one_sentence(code, err, "Cannot open the study database", "password authentication failed", "accepted")
    assert "wrong" not in err


# ---- 3. a search that never searches ---------------------------------------------------------------


@pytest.mark.parametrize("grower", ["compound", "searched", "bindgrow"])
@pytest.mark.parametrize("n_trials", [0, -1])
def test_a_search_without_trials_is_refused(grower, n_trials):
    with pytest.raises(SelfgrowError, match=rf"n_trials={n_trials}.*accepted: an integer >= 1"):
        build_grower(grower, n_trials=n_trials)


def test_a_compound_run_with_zero_trials_exits_2(tmp_path):
    code, _, err = _cli("run", "--growth.name", "compound", "--growth.options", '{"n_trials": 0}',
                        "--output", str(tmp_path))
    _one_sentence(code, err, "grower 'compound' option n_trials=0", "accepted: an integer >= 1")


# ---- 4. validation capped with the training set -----------------------------------------------------


def _per_class(labels) -> set[int]:
    return set(labels.bincount().tolist())


def test_capped_training_caps_validation_in_proportion(tmp_path):
    from selfgrow.streams import build

    stream = build("split", dataset="digits", n_tasks=5, max_train_per_class=45)
    for task in stream:
        assert _per_class(task.y_train) == {45}
        assert _per_class(task.y_val) == {5}  # round(45 * 0.1 / 0.9): train:val = 9:1 as val_fraction 0.1 says
    assert "val <= 5/class" in stream.description
    halves = build("rotated", dataset="digits", n_tasks=1, max_train_per_class=30, val_fraction=0.5)
    assert _per_class(halves[0].y_val) == {30}
    explicit = build("split", dataset="digits", n_tasks=5, max_train_per_class=45, max_val_per_class=12)
    assert _per_class(explicit[0].y_val) == {12}  # an explicit validation cap wins
    composed = build("yaml", tasks=[{"dataset": "digits", "classes": [0, 1]}], max_train_per_class=45)
    assert _per_class(composed[0].y_val) == {5}


def test_the_run_states_train_val_and_test_sizes_first(tmp_path):
    code, out, err = _cli("run", "--stream.n_tasks", "2", "--stream.max_train_per_class", "45", "--net.preset",
                          "mlp-tiny", "--trainer.epochs", "1", "--trainer.progress", "false",
                          "--output", str(tmp_path), "--name", "caps")
    assert code == 0, err
    head = "\n".join(out.splitlines()[:2])
    assert re.search(r"train 450, val 50, test [0-9,]+ samples", head), head


# ---- 5. one number format for counts ---------------------------------------------------------------


def test_counts_have_thousands_separators_on_every_row():
    from selfgrow.bench import comparison_table
    from selfgrow.report.html import _fmt
    from selfgrow.report.table import format_table

    table = format_table([[0, 1871], [1, 17035]], ["after", "params"])
    assert "1,871" in table and "17,035" in table and "1871" not in table
    assert _fmt(1871) == "1,871"
    comparison = {"keys": ["average_accuracy", "params"], "columns": ["avg acc", "params"], "rows": [
        {"method": "a", "stats": {"average_accuracy": {"mean": 0.5, "std": 0.0, "n": 1},
                                  "params": {"mean": 871.0, "std": 0.0, "n": 1}}},
        {"method": "b", "stats": {"params": {"mean": 1871.0, "std": 12.0, "n": 2}}}]}
    text = comparison_table(comparison)
    assert "871.0000" not in text and re.search(r"\b871\b", text) and "1,871 ± 12" in text


# ---- 6-8. selfgrow bench ------------------------------------------------------------------------------


def _bench_file(tmp_path: Path, dataset: str = "digits") -> Path:
    spec = {
        "name": "tiny",
        "base": {"stream": {"name": "split", "dataset": dataset, "n_tasks": 2, "classes_per_task": 2},
                 "net": {"preset": "mlp-tiny"}, "trainer": TINY_TRAINER},
        "methods": {"finetune": {"method": "finetune"}, "ewc": {"method": "ewc"}},
        "seeds": [0],
        "output": str(tmp_path / "out"),
    }
    path = tmp_path / "bench.yaml"
    path.write_text(yaml.safe_dump(spec, sort_keys=False))
    return path


def test_bench_only_with_an_unknown_label_is_refused(tmp_path):
    code, _, err = _cli("bench", "--config", str(_bench_file(tmp_path)), "--only", "naive")
    _one_sentence(code, err, "'naive'", "finetune, ewc")
    assert not (tmp_path / "out").exists()


def test_bench_accepts_data_dir(tmp_path):
    code, _, err = _cli("bench", "--config", str(_bench_file(tmp_path, "mnist")), "--data-dir",
                        str(tmp_path / "nowhere"), "--only", "finetune")
    _one_sentence(code, err, "is not prepared in", "nowhere", "--data-dir")


def test_bench_rerun_into_a_used_folder_needs_resume_and_says_what_it_reused(tmp_path):
    path = _bench_file(tmp_path)
    code, out, err = _cli("bench", "--config", str(path), "--only", "finetune")
    assert code == 0, err
    code, _, err = _cli("bench", "--config", str(path), "--only", "finetune")
    _one_sentence(code, err, str(tmp_path / "out"), "--resume", "--output")
    code, out, err = _cli("bench", "--config", str(path), "--only", "finetune", "--resume")
    assert code == 0, err
    results = tmp_path / "out" / "finetune" / "seed0" / "results.json"
    from datetime import datetime

    day = datetime.fromtimestamp(results.stat().st_mtime).strftime("%Y-%m-%d")
    row = next(line for line in out.splitlines() if line.startswith("finetune seed 0"))
    assert "reused" in row and day in row and "since start" not in row, row


# ---- 9. top-level help ---------------------------------------------------------------------------------


def test_top_level_help_lists_every_subcommand():
    for flag in ("--help", "-h"):
        code, out, _ = _cli(flag)
        assert code == 0
        for command in ("run", "worker", "bench", "list", "data", "report"):
            assert re.search(rf"^\s+{command}\s+\w", out, re.MULTILINE), (command, out)
