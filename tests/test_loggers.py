"""Run loggers: TensorBoard event files and csv files read back, and a run killed between logging a task and
checkpointing it resumes to the same logs as an uninterrupted run."""

from __future__ import annotations

import csv
from pathlib import Path

import pytest

from selfgrow import experiment
from selfgrow.config import from_dict
from selfgrow.errors import SelfgrowError
from selfgrow.experiment import run

event_accumulator = pytest.importorskip("tensorboard.backend.event_processing.event_accumulator",
                                        reason="the tensorboard extra is not installed (pip install 'selfgrow[tensorboard]')")

TINY = {
    "seed": 1, "logger": ["tensorboard", "csv"],
    "stream": {"name": "split", "dataset": "digits", "scenario": "class", "n_tasks": 3, "classes_per_task": 2},
    "net": {"preset": "mlp-tiny"},
    "growth": {"name": "schedule", "options": {"width_per_class": 4}},
    "retention": [{"name": "replay", "options": {"budget": 40}}],
    "trainer": {"epochs": 2, "batch_size": 64, "progress": False},
}


def _config(out: Path, name: str = "logged", **changes):
    return from_dict({**TINY, "name": name, "output": str(out), **changes})


def _events(run_dir: Path) -> event_accumulator.EventAccumulator:
    acc = event_accumulator.EventAccumulator(str(run_dir / "tensorboard"), size_guidance={"scalars": 0, "tensors": 0})
    acc.Reload()
    return acc


def _scalars(acc: event_accumulator.EventAccumulator, tag: str) -> list[tuple[int, float]]:
    return [(e.step, e.value) for e in acc.Scalars(tag)]


def _close(actual: list[float], expected: list[float], rel: float) -> None:
    """Losses and accuracies recomputed by a second run (or rounded by csv) agree to `rel`."""
    assert actual == pytest.approx(expected, rel=rel)


def _rows(path: Path) -> list[dict[str, str]]:
    return list(csv.DictReader(path.open()))


def test_tensorboard_and_csv_hold_steps_tasks_growth_and_hparams(tmp_path):
    results = run(_config(tmp_path), quiet=True)
    run_dir = tmp_path / "logged"
    steps = [t["steps"] for t in results.tasks]
    assert all(s > 0 for s in steps)
    acc = _events(run_dir)
    loss = _scalars(acc, "train/loss")
    assert [s for s, _ in loss] == list(range(1, sum(steps) + 1))
    csv_loss = _rows(run_dir / "logs" / "steps.csv")
    assert [int(r["step"]) for r in csv_loss] == [s for s, _ in loss]
    _close([float(r["loss"]) for r in csv_loss], [v for _, v in loss], 1e-5)
    ends = [sum(steps[:i + 1]) for i in range(len(steps))]
    mean_seen = _scalars(acc, "accuracy/mean_seen")
    assert [s for s, _ in mean_seen] == ends
    _close([v for _, v in mean_seen], [sum(r) / len(r) for r in results.accuracy], 1e-6)
    assert [v for _, v in _scalars(acc, "accuracy/task_0")] == pytest.approx([r[0] for r in results.accuracy])
    assert [v for _, v in _scalars(acc, "cost/params")] == [c["params"] for c in results.costs]
    aia = _scalars(acc, "summary/average_incremental_accuracy")[-1][1]
    assert aia == pytest.approx(results.summary()["average_incremental_accuracy"], rel=1e-6)
    texts = [t.tensor_proto.string_val[0].decode() for t in acc.Tensors("growth/text_summary")]
    assert texts == [g["summary"] for g in results.growth]
    assert "_hparams_/experiment" in acc.summary_metadata  # the HParams session of the run
    tasks = _rows(run_dir / "logs" / "tasks.csv")
    assert [int(r["step"]) for r in tasks] == ends
    assert [r["growth"] for r in tasks] == [g["summary"] for g in results.growth]
    hparams = {r["key"]: r["value"] for r in _rows(run_dir / "logs" / "hparams.csv")}
    assert hparams["trainer.epochs"] == "2" and hparams["growth.name"] == "schedule"


def test_a_run_killed_between_logging_and_checkpointing_resumes_to_the_same_logs(tmp_path, monkeypatch):
    whole = tmp_path / "whole"
    run(_config(whole), quiet=True)
    cut = tmp_path / "cut"
    save = experiment._save_task

    def killed_at_task_1(run_dir, task_index, learner, results):
        if task_index == 1:
            raise KeyboardInterrupt  # task 1 is logged and flushed, not checkpointed
        save(run_dir, task_index, learner, results)

    monkeypatch.setattr(experiment, "_save_task", killed_at_task_1)
    with pytest.raises(experiment.RunInterrupted):
        run(_config(cut), quiet=True)
    monkeypatch.setattr(experiment, "_save_task", save)
    run(None, resume_dir=cut / "logged", quiet=True)
    a, b = _events(whole / "logged"), _events(cut / "logged")
    for tag in ("train/loss", "accuracy/mean_seen", "cost/params", "summary/average_incremental_accuracy"):
        left, right = _scalars(a, tag), _scalars(b, tag)
        assert [s for s, _ in left] == [s for s, _ in right], tag
        _close([v for _, v in right], [v for _, v in left], 1e-5)
    for name in ("steps.csv", "tasks.csv"):
        assert _rows(cut / "logged" / "logs" / name) == _rows(whole / "logged" / "logs" / name), name


def test_unknown_logger_is_refused_before_anything_runs(tmp_path):
    with pytest.raises(SelfgrowError, match="Logger 'wandb' is unknown; accepted: csv, tensorboard"):
        run(_config(tmp_path, logger=["wandb"]), quiet=True)
    assert not (tmp_path / "logged").exists()


def test_cli_takes_loggers_space_separated(tmp_path):
    from selfgrow.config_cli import parse_run_args

    assert parse_run_args(["--logger", "tensorboard", "csv"])[0].logger == ["tensorboard", "csv"]
    assert parse_run_args(["--logger", "csv"])[0].logger == ["csv"]
    assert parse_run_args(["--logger=[csv]"])[0].logger == ["csv"]
