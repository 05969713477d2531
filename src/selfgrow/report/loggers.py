"""Run loggers (`--logger tensorboard`, `--logger csv`): per-step loss, per-task accuracy rows, cost, growth events
and the run's hyper-parameters, written while the run goes so it can be watched and compared with other runs.

Steps are numbered over the whole run from 1: the k-th training step of the run is step k, and a task's
rows are written at the step number of its last step (a task trained without steps of the learner's own,
e.g. a grower-trained candidate, takes one step number so that its rows stand apart). A task's rows are
written and flushed before its checkpoint, so on resume everything from the first step after the last
checkpointed task on is discarded (TensorBoard's `purge_step`, the csv files rewritten) and written again:
a resumed run's logs equal an uninterrupted run's.
"""

from __future__ import annotations

import csv
import io
import json
import math
from pathlib import Path
from typing import Any

from selfgrow.atomic import atomic_write_text
from selfgrow.errors import SelfgrowError
from selfgrow.report.results import Results

LOGGERS = ("csv", "tensorboard")
# the run's headline metrics, logged after every task as they stand (wall time is left out: it does not repeat)
SUMMARY = ("average_accuracy", "average_incremental_accuracy", "forgetting", "max_forgetting", "train_flops_total",
           "transfer")


def check_loggers(names: list[str]) -> list[str]:
    """The logger names, checked: unknown ones raise one sentence naming what is accepted."""
    for name in names:
        if name not in LOGGERS:
            raise SelfgrowError(f"Logger {name!r} is unknown; accepted: {', '.join(LOGGERS)} (several: --logger '[csv, tensorboard]').")
    return list(dict.fromkeys(names))


def task_steps(task_record: dict[str, Any]) -> int:
    """The step numbers a finished task takes on the run's axis (its training steps, at least one)."""
    return max(1, int(task_record.get("steps", 0)))


def flat_hparams(config: dict[str, Any], prefix: str = "") -> dict[str, Any]:
    """The config as flat `section.key -> number, bool or str` (lists and None as text), for TensorBoard's HParams."""
    out: dict[str, Any] = {}
    for key, value in config.items():
        name = f"{prefix}{key}"
        if isinstance(value, dict) and value:
            out.update(flat_hparams(value, name + "."))
        elif isinstance(value, (bool, int, float, str)):
            out[name] = value
        else:
            out[name] = json.dumps(value, default=str)
    return out


class RunLog:
    """Fans a run's events out to its loggers and numbers the steps over the run (also without loggers, so a
    run resumed with a logger numbers its steps as an uninterrupted one would)."""

    def __init__(self, names: list[str], run_dir: Path, results: Results) -> None:
        self.step = sum(task_steps(t) for t in results.tasks)  # steps of the tasks already done (a resume)
        self.task_start = self.step
        self.loggers = [_build(name, Path(run_dir), self.step, results) for name in check_loggers(names)]

    def on_step(self, loss: float) -> None:
        """One training step's loss (the learner's `on_step`)."""
        self.step += 1
        if math.isfinite(loss):
            for logger in self.loggers:
                logger.loss(self.step, loss)

    def task_steps(self) -> int:
        """The training steps of the task now ending (what its task record keeps as "steps")."""
        return self.step - self.task_start

    def task_done(self, results: Results) -> None:
        """Write the rows of the task just recorded (its record holding `task_steps()`) and flush."""
        self.step = self.task_start + task_steps(results.tasks[-1])
        for logger in self.loggers:
            logger.task(self.step, results)
            logger.flush()
        self.task_start = self.step

    def close(self) -> None:
        for logger in self.loggers:
            logger.close()


def _build(name: str, run_dir: Path, resume_step: int, results: Results) -> Any:
    if name == "tensorboard":
        return TensorBoardLogger(run_dir / "tensorboard", resume_step, results)
    return CsvLogger(run_dir / "logs", resume_step, results)


def _task_rows(results: Results, i: int) -> tuple[dict[str, float], str]:
    """Scalars (accuracies, mean, cost, summary metrics so far) and the growth sentence of task i."""
    acc = results.accuracy[i]
    cost = results.costs[i]
    scalars = {f"accuracy/task_{j}": a for j, a in enumerate(acc)}
    scalars["accuracy/mean_seen"] = sum(acc) / len(acc)
    scalars.update({"cost/params": cost.get("params", 0), "cost/inference_flops": cost.get("inference_flops", 0),
                    "cost/train_flops": cost.get("train_flops", 0),
                    "cost/memory_mb": cost.get("bytes_total", 0) / 2**20})
    scalars.update({f"summary/{k}": float(v) for k, v in results.first(i + 1).summary().items() if k in SUMMARY})
    return scalars, str(results.growth[i].get("summary", ""))


class TensorBoardLogger:
    """Event files under run_dir/tensorboard: `train/loss` per step; per task `accuracy/*`, `cost/*`, `summary/*`
    and the growth sentence (text `growth`); the config as HParams with the summary metrics as its metrics."""

    def __init__(self, log_dir: Path, resume_step: int, results: Results) -> None:
        try:
            from torch.utils.tensorboard import SummaryWriter
            from torch.utils.tensorboard.summary import hparams
        except ImportError as err:
            raise SelfgrowError("The tensorboard logger needs the tensorboard package; install it with "
                                "pip install 'selfgrow[tensorboard]', or drop --logger tensorboard.") from err
        fresh = resume_step == 0
        self.writer = SummaryWriter(str(log_dir), purge_step=None if fresh else resume_step + 1)
        if fresh:  # the HParams session is written once; a resume keeps the first one
            metrics = {f"summary/{k}": 0.0 for k in SUMMARY if k != "transfer"}
            config = flat_hparams(results.run.get("config", {}))
            for summary in hparams(config, metrics):
                self.writer.file_writer.add_summary(summary)

    def loss(self, step: int, value: float) -> None:
        self.writer.add_scalar("train/loss", value, step)

    def task(self, step: int, results: Results) -> None:
        i = results.n_done - 1
        scalars, sentence = _task_rows(results, i)
        for tag, value in scalars.items():
            self.writer.add_scalar(tag, value, step)
        self.writer.add_scalar("task", i, step)
        self.writer.add_text("growth", sentence, step)

    def flush(self) -> None:
        self.writer.flush()

    def close(self) -> None:
        self.writer.close()


class CsvLogger:
    """run_dir/logs: steps.csv (step, loss), tasks.csv (a row per task: step, accuracies, cost, summary, growth)
    and hparams.csv (the flat config)."""

    def __init__(self, log_dir: Path, resume_step: int, results: Results) -> None:
        log_dir.mkdir(parents=True, exist_ok=True)
        self.steps_path, self.tasks_path = log_dir / "steps.csv", log_dir / "tasks.csv"
        atomic_write_text(log_dir / "hparams.csv", _csv([["key", "value"], *flat_hparams(results.run.get("config", {})).items()]))
        kept = [["step", "loss"]]
        if resume_step and self.steps_path.exists():  # rows of the task a kill cut short go; a torn last line too
            for row in list(csv.reader(io.StringIO(self.steps_path.read_text())))[1:]:
                if len(row) == 2 and row[0].isdigit() and int(row[0]) <= resume_step:
                    kept.append(row)
        atomic_write_text(self.steps_path, _csv(kept))
        self.header: list[str] = ["step", "task"]
        self.rows: list[list[Any]] = []  # one per finished task, computed once
        step = 0
        for i, task in enumerate(results.tasks):
            step += task_steps(task)
            self._add_row(results, i, step)
        self._write_tasks()
        self.steps = self.steps_path.open("a", newline="")
        self.writer = csv.writer(self.steps)

    def loss(self, step: int, value: float) -> None:
        self.writer.writerow([step, f"{value:.6g}"])

    def task(self, step: int, results: Results) -> None:
        self._add_row(results, results.n_done - 1, step)
        self._write_tasks()

    def _add_row(self, results: Results, i: int, step: int) -> None:
        scalars, sentence = _task_rows(results, i)
        named = {k: v for k, v in scalars.items() if not k.startswith("accuracy/task_")}
        self.header = ["step", "task", *named, "accuracies", "growth"]
        self.rows.append([step, i, *[f"{v:.6g}" for v in named.values()],
                          " ".join(f"{a:.4f}" for a in results.accuracy[i]), sentence])

    def _write_tasks(self) -> None:
        """tasks.csv whole, atomically: it always agrees with what is checkpointed or about to be."""
        atomic_write_text(self.tasks_path, _csv([self.header, *self.rows]))

    def flush(self) -> None:
        self.steps.flush()

    def close(self) -> None:
        self.steps.close()


def _csv(rows: list[list[Any]] | list[Any]) -> str:
    buffer = io.StringIO()
    csv.writer(buffer).writerows(rows)
    return buffer.getvalue()
