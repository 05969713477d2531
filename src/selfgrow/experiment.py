"""The run loop: build the stream and the learner from a config, learn task by task, record, checkpoint, report.

A run folder holds config.yaml, results.json, metrics.csv, growth.jsonl, checkpoints/, report.html
and plots/, and with `logger` also tensorboard/ (event files) or logs/ (csv). Every file is written atomically after each finished task, so a killed run resumes
from its last finished task (`resume_dir`) and ends with the same numbers as an uninterrupted one.
"""

from __future__ import annotations

import contextlib
import copy
import json
import sys
import time
from pathlib import Path
from typing import Any

import yaml
from tqdm import tqdm

from selfgrow import config as config_schema
from selfgrow.atomic import atomic_write_text, remove_leftovers
from selfgrow.config import RunConfig
from selfgrow.errors import SelfgrowError
from selfgrow.factories import apply_method, build_learner, build_stream, seed_everything
from selfgrow.plugins import load_plugins
from selfgrow.report import Results, write_report
from selfgrow.report.explain import growth_sentence
from selfgrow.report.loggers import RunLog, check_loggers
from selfgrow.report.table import format_table
from selfgrow.streams.task import Stream
from selfgrow.train.interrupt import check as check_interrupt
from selfgrow.train.interrupt import deferred_interrupts
from selfgrow.train.records import TaskRecord


def run(config: RunConfig | None, resume_dir: str | Path | None = None, force: bool = False,
        quiet: bool = False) -> Results:
    """Run (or resume) the experiment described by `config`; returns its results.

    With `resume_dir`, the run continues after its last finished task; `config` may be None (use
    the saved one) or must equal the saved one unless `force`.
    """
    if resume_dir is not None:
        run_dir = Path(resume_dir)
        config = _resume_config(run_dir, config, force)
    elif config is None:
        raise SelfgrowError("No configuration given; pass --config FILE or --resume RUN_DIR.")
    else:
        run_dir = Path(config.output) / config.name
        if (run_dir / "results.json").exists() or (run_dir / "checkpoints").exists():
            raise SelfgrowError(
                f"Run folder {str(run_dir)!r} already holds a run; resume it with --resume {run_dir}, "
                "or choose another --name or --output."
            )
    check_loggers(config.logger)
    load_plugins(config.plugins)  # a user's own components register before anything is built
    config = apply_method(config)
    seed_everything(config.seed)
    stream = build_stream(config)
    learner = build_learner(config, stream)
    results = Results(run=_run_info(config, stream))
    start = 0
    try:
        run_dir.mkdir(parents=True, exist_ok=True)
        remove_leftovers(run_dir)  # of writes a kill interrupted
        atomic_write_text(run_dir / "config.yaml", yaml.safe_dump(config_schema.to_dict(config), sort_keys=False))
    except OSError as err:
        raise SelfgrowError(f"Cannot write the run folder {str(run_dir)!r} ({err.strerror or err}); "
                            "choose a writable --output, or free space.") from err
    if resume_dir is not None:
        start, results = _restore(run_dir, learner, stream, results)
        _write_results(run_dir, results)  # a kill between checkpoint and result files left these behind
    chosen = "set by stream.scenario" if config.stream.scenario else "the stream's default"
    _say(quiet, f"{stream.name}: {len(stream)} tasks, scenario {stream.scenario} ({chosen}); run folder {run_dir}")
    _say(quiet, sizes_line(stream))
    tasks = tqdm(stream.tasks[start:], desc="tasks", unit="task", initial=start, total=len(stream),
                 disable=quiet or not sys.stderr.isatty(), leave=False)
    log = RunLog(config.logger, run_dir, results)
    learner.on_step = log.on_step
    try:
        with deferred_interrupts(), _distributed_search(config, run_dir, quiet) as backend:
            learner.search_backend = backend  # the growth searches run on it (None: in this process)
            _learn_all(tasks, learner, stream, results, run_dir, quiet, log)
    except KeyboardInterrupt:
        from selfgrow.train.checkpoint import checkpoint_indices

        saved = checkpoint_indices(run_dir)
        kept = f"the checkpoint after task {saved[-1]} is in {run_dir}" if saved else f"no task had finished in {run_dir}"
        raise RunInterrupted(f"Interrupted; {kept}. Continue with: selfgrow run --resume {run_dir}") from None
    finally:
        log.close()
    try:
        report = write_report(run_dir, results)
    except OSError as err:
        raise SelfgrowError(f"Every task is saved in {run_dir}, but the report could not be written "
                            f"({err.strerror or err}); free space and run: selfgrow report {run_dir}") from err
    _say(quiet, "\n" + summary_table(results) + f"\n\nreport: {report}")
    return results


def _distributed_search(config: RunConfig, run_dir: Path, quiet: bool) -> contextlib.AbstractContextManager:
    """Spread the growth searches over workers while the tasks run, when `config.distributed` asks for it."""
    from selfgrow.search.distributed import coordinating, settings_for

    settings = settings_for(config, run_dir)
    return coordinating(config, settings, quiet) if settings else contextlib.nullcontext()


class RunInterrupted(KeyboardInterrupt):
    """Ctrl-C during a run; the message says what is saved and how to resume."""


def _learn_all(tasks: Any, learner: Any, stream: Stream, results: Results, run_dir: Path, quiet: bool,
               log: RunLog) -> None:
    """Learn, evaluate, record, log and checkpoint each remaining task (logs first: see `report.loggers`)."""
    for task in tasks:
        check_interrupt()  # a Ctrl-C during the last save stops here, with that task kept
        started = time.perf_counter()
        record = learner.learn(task)
        learned = time.perf_counter()
        accuracies = learner.evaluate(stream.seen(task.index))
        done = time.perf_counter()
        fit = record.fit
        growth = {**record.plan.explain(), "applied": copy.deepcopy(record.growth), "task": task.index,
                  "spec_before": copy.deepcopy(record.spec_before)}
        growth["summary"] = growth_sentence(growth, record.spec)
        results.record(
            task={**task.summary(), "skipped_steps": fit.skipped_steps, "lr_drops": fit.lr_drops,
                  "steps": log.task_steps()},
            accuracies=accuracies,
            cost=task_cost(learner, task.index, record),
            growth=growth,
            timing={"learn": learned - started, "evaluate": done - learned, "total": done - started},
            curve=fit.batch_curve,
        )
        log.task_done(results)
        _save_task(run_dir, task.index, learner, results)
        if fit.skipped_steps:
            _say(quiet, f"task {task.index}: {fit.skipped_steps} steps had a NaN/inf loss and were skipped; "
                        f"learning rate halved {fit.lr_drops} times")
        _say(quiet, f"task {task.index} ({task.name}): mean accuracy over seen tasks "
                    f"{sum(accuracies) / len(accuracies):.3f}, params {results.costs[-1]['params']:,}")
        _say(quiet, "  " + growth["summary"])


def task_cost(learner: Any, task_index: int, record: TaskRecord) -> dict[str, Any]:
    """Parameters, inference FLOPs of one input of the task, training FLOPs spent (`record`'s fit and search), bytes held."""
    from selfgrow.nets import cost

    nets = learner.nets if learner.independent else [learner.net]
    net = nets[task_index] if learner.independent else learner.net
    head_task = 0 if learner.independent else (task_index if learner.scenario == "task" else None)
    weights = sum(cost.nbytes(n) for n in nets)
    memory = sum(r.memory_bytes() for r in learner.retention) + learner.grower.memory_bytes(learner)
    return {
        "params": sum(cost.count_params(n) for n in nets),
        "inference_flops": cost.inference_flops(net, head_task),
        "train_flops": record.fit.train_flops + float(record.plan.search_flops),
        "bytes_weights": weights,
        "bytes_memory": memory,
        "bytes_total": weights + memory,
        "spec": learner.net.spec,
        "frozen": copy.deepcopy(record.frozen),
    }


def summary_table(results: Results) -> str:
    """The end-of-run table: accuracy matrix rows, then the headline metrics."""
    n = results.n_done
    rows = [[i, results.tasks[i].get("name", i)] + [results.accuracy[i][j] if j <= i else None for j in range(n)]
            + [sum(results.accuracy[i]) / (i + 1), results.costs[i]["params"]] for i in range(n)]
    table = format_table(rows, ["after", "task"] + [f"T{j}" for j in range(n)] + ["mean", "params"])
    metrics = [[k, v] for k, v in results.summary().items()]
    return table + "\n\n" + format_table(metrics, ["metric", "value"])


def _save_task(run_dir: Path, task_index: int, learner: Any, results: Results) -> None:
    """Checkpoint first, then the result files: a resume never sees results ahead of its checkpoint."""
    from selfgrow.train import save_checkpoint

    try:
        save_checkpoint(run_dir, task_index, learner, results.to_dict())
        _write_results(run_dir, results)
    except OSError as err:
        kept = f"the files of task {task_index - 1} are intact" if task_index else "no task was saved"
        raise SelfgrowError(
            f"Could not write task {task_index} to {run_dir} ({err.strerror or err}); {kept}. "
            f"Free space (or fix permissions) and continue with: selfgrow run --resume {run_dir}"
        ) from err


def _write_results(run_dir: Path, results: Results) -> None:
    """results.json, metrics.csv and growth.jsonl, each atomically."""
    results.save(run_dir)
    lines = "".join(json.dumps(g, default=str) + "\n" for g in results.growth)
    atomic_write_text(run_dir / "growth.jsonl", lines)


def _restore(run_dir: Path, learner: Any, stream: Stream, fresh: Results) -> tuple[int, Results]:
    """Load the newest checkpoint into the learner; returns the next task index and the results so far."""
    from selfgrow.train import load_latest, restore

    latest = load_latest(run_dir)
    if latest is None:
        return 0, fresh
    index, state = latest
    saved = Results.from_dict(restore(learner, state, stream.tasks))
    saved.run = fresh.run
    return index + 1, saved


def _resume_config(run_dir: Path, given: RunConfig | None, force: bool) -> RunConfig:
    """The saved config of a run folder; a different given config is refused unless `force`."""
    path = run_dir / "config.yaml"
    if not path.exists():
        raise SelfgrowError(f"{str(run_dir)!r} is not a run folder (no config.yaml); give a folder written by `selfgrow run`.")
    saved = config_schema.from_dict(yaml.safe_load(path.read_text()))
    if given is None:
        return saved
    given = apply_method(given)
    differing = saved_config_differences(run_dir, given)
    if differing and not force:
        raise SelfgrowError(
            f"The given config differs from the one in {str(run_dir)!r} in {', '.join(differing)}; "
            "drop those options, or add --force to resume with the new values."
        )
    return given


def saved_config_differences(run_dir: Path, config: RunConfig) -> list[str]:
    """Dotted names of the fields where `config` differs from the one saved in `run_dir`; `output` and
    `data_dir` (folders may move), `logger` (what is written beside the run) and `distributed` (who trains the
    candidates: the same trials give the same run) aside."""
    saved = config_schema.to_dict(config_schema.from_dict(yaml.safe_load((Path(run_dir) / "config.yaml").read_text())))
    given = config_schema.to_dict(apply_method(config))
    for values in (saved, given):  # `scenario: null` and the stream's default scenario run the same stream
        values["stream"]["scenario"] = _effective_scenario(values["stream"])
    return [f for f in _differences(saved, given)
            if f not in ("output", "data_dir", "logger") and not f.startswith("distributed.")]


def _effective_scenario(stream: dict[str, Any]) -> str | None:
    """The scenario a stream section runs: its own, else its builder's default (None: the builder takes none,
    or its default depends on a file)."""
    import inspect

    from selfgrow import streams

    entry = streams.STREAMS.get(stream.get("name"))
    if entry is None:
        return stream.get("scenario")
    parameter = inspect.signature(entry.builder).parameters.get("scenario")
    if parameter is None:
        return None
    return stream.get("scenario") or (None if parameter.default is inspect.Parameter.empty else parameter.default)


def sizes_line(stream: Stream) -> str:
    """The samples the stream holds, summed over its tasks (what a person checks a reduced run by)."""
    train, val, test = (sum(len(getattr(t, f"y_{part}")) for t in stream.tasks) for part in ("train", "val", "test"))
    caps = stream.description.partition(" Reduced size: ")[2].rstrip(".")
    return (f"train {train:,}, val {val:,}, test {test:,} samples over the {len(stream)} tasks"
            + (f" (reduced size: {caps})" if caps else ""))


def _differences(a: dict[str, Any], b: dict[str, Any], prefix: str = "") -> list[str]:
    """Dotted names of the fields where two plain-data configs differ."""
    out = []
    for key in sorted(set(a) | set(b)):
        va, vb = a.get(key), b.get(key)
        if isinstance(va, dict) and isinstance(vb, dict):
            out += _differences(va, vb, f"{prefix}{key}.")
        elif va != vb:
            out.append(prefix + key)
    return out


def _run_info(config: RunConfig, stream: Stream) -> dict[str, Any]:
    return {
        "name": config.name,
        "method": config.method,
        "stream": stream.name,
        "scenario": stream.scenario,
        "description": stream.description,
        "seed": config.seed,
        "tasks": len(stream),
        "config": config_schema.to_dict(config),
    }


def _say(quiet: bool, message: str) -> None:
    """A line for the person watching; written through tqdm so it does not break a progress bar."""
    if not quiet:
        tqdm.write(message, file=sys.stdout)


__all__ = ["RunInterrupted", "apply_method", "build_learner", "build_stream", "run", "seed_everything", "summary_table", "task_cost"]
