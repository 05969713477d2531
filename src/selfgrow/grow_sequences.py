"""L2BG's global optimisation over grow sequences (seed 001: "Grow Sequences", "Global Optimization", and its
Split-CIFAR experiment): every trial learns the whole stream again with the `bindgrow` grower.

A trial is one grow sequence π = [(t, b_t, δ)]_t: the grow coefficient δ is sampled from U{low, ..., high}
in steps of `delta_step` and shared by every task, and each b_t is bound by the grower's conflict model
(RSA, or its `guide`), as in the paper's low-budget setting (fixed task order, shared δ, 20 trials). After
the last task a trial is scored by the two objectives of the paper's black box F(π): the average multi-task
gain Δ_π over all tasks (their validation accuracy in the final JointNet against their single-task
baselines E_φ, `growth.bindgrow.gain`), maximised, and the JointNet's parameter count, minimised. The
sampler is NSGA-II (the paper's) by default; the result is every distinct sequence run, the Pareto front,
and the sequence the project's selection rule picks on it (`search.pareto.select`, "knee" by default: the
paper reads a balanced solution off its front).

This is the paper's scenario (b), every task's training data available throughout; `bindgrow` alone is
scenario (a), streaming, searching each task's δ on that task's data only (greedy, per task).
`run_sequence(config, None)` runs that greedy search once and scores it the same way, for comparison.

Deviations from the paper, and why:
- Bindings are not searched (the paper's experiment computes them dynamically, as here).
- The grid holds (high - low) / step + 1 sequences (21 by default); a δ sampled again is not re-run: its
  trial is told the earlier result at no cost (as the growth search does), so 20 trials may run fewer
  distinct sequences. The sampler still counts the repeat as a trial.
- Test accuracy is recorded beside each sequence for the report; only validation accuracy chooses.

Resume: with `storage` (a journal file by default in the CLI) finished trials are kept; a search killed
during a trial resumes by failing that trial and running the remaining ones.
"""

from __future__ import annotations

import copy
import json
import time
from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import Any

from selfgrow.config import RunConfig
from selfgrow.errors import SelfgrowError
from selfgrow.search.pareto import pareto_front, select

SEQUENCE_ATTR = "grow_sequence"  # user attribute of a told trial: its SequenceTrial as JSON


@dataclass
class SequenceTrial:
    """One grow sequence run to the end of the stream: its δ (None: the grower's per-task search), objectives,
    per-task results and what it cost."""

    delta: float | None
    gain: float
    params: int
    val_accuracy: list[float]
    test_accuracy: list[float]
    gain_per_task: dict[str, float]
    baselines: dict[str, float]  # task -> single-task baseline error E_φ
    bindings: list[int | None]
    nuclei: list[list[int]]
    train_flops: float
    seconds: float
    trials: list[int] = field(default_factory=list)  # the study's trial numbers that asked for this sequence

    @property
    def mean_val_accuracy(self) -> float:
        return sum(self.val_accuracy) / len(self.val_accuracy)

    @property
    def mean_test_accuracy(self) -> float:
        return sum(self.test_accuracy) / len(self.test_accuracy)

    def to_dict(self) -> dict[str, Any]:
        return asdict(self)

    @classmethod
    def from_dict(cls, data: dict[str, Any]) -> SequenceTrial:
        return cls(**data)


@dataclass
class SequenceSearch:
    """The distinct sequences run (in order of first request), the indices of their Pareto front (by params),
    the rule's choice among them, and how many trials the sampler asked."""

    sequences: list[SequenceTrial]
    front: list[int]
    chosen: int
    rule: str
    n_trials: int

    def to_dict(self) -> dict[str, Any]:
        return {"rule": self.rule, "n_trials": self.n_trials, "front": self.front, "chosen": self.chosen,
                "sequences": [s.to_dict() for s in self.sequences]}

    def table(self) -> str:
        """A markdown table of every sequence by δ: objectives, accuracies, front membership, the choice."""
        lines = ["| δ | gain Δ (val) | params | val acc | test acc | trials | front |",
                 "|---|---|---|---|---|---|---|"]
        for i in sorted(range(len(self.sequences)), key=lambda k: self.sequences[k].delta or 0.0):
            s = self.sequences[i]
            mark = "chosen" if i == self.chosen else ("yes" if i in self.front else "")
            lines.append(f"| {s.delta:.2f} | {s.gain:+.4f} | {s.params:,} | {s.mean_val_accuracy:.4f} | "
                         f"{s.mean_test_accuracy:.4f} | {len(s.trials)} | {mark} |")
        return "\n".join(lines)


def run_sequence(config: RunConfig, delta: float | None) -> SequenceTrial:
    """Learn the stream of `config` (a bindgrow run) with the grow coefficient `delta` for every task (None: the
    grower's own per-task search), and score the final JointNet."""
    from selfgrow.experiment import task_cost
    from selfgrow.factories import apply_method, build_learner, build_stream, seed_everything
    from selfgrow.growth.bindgrow.gain import multitask_gain, task_gains
    from selfgrow.nets.cost import count_params

    config = _with_delta(apply_method(config), delta)
    started = time.perf_counter()
    seed_everything(config.seed)
    stream = build_stream(config)
    if len(stream) < 2:
        raise SelfgrowError(f"A grow sequence needs a stream of at least 2 tasks; {stream.name!r} has {len(stream)}.")
    learner = build_learner(config, stream)
    bindings, nuclei, flops = [], [], 0.0
    for task in stream.tasks:
        record = learner.learn(task)
        reasons = record.plan.reasons
        bindings.append(reasons.get("binding"))
        nuclei.append(list(reasons.get("nucleus", [])))
        flops += task_cost(learner, task.index, record)["train_flops"]
    val = learner.evaluate(stream.tasks, "val")
    val_by_task = {str(t.index): acc for t, acc in zip(stream.tasks, val)}
    baselines = learner.grower.baselines
    return SequenceTrial(
        delta=delta, gain=multitask_gain(val_by_task, baselines), params=int(count_params(learner.net)),
        val_accuracy=val, test_accuracy=learner.evaluate(stream.tasks, "test"),
        gain_per_task=task_gains(val_by_task, baselines), baselines={str(t): e for t, e in sorted(baselines.items())},
        bindings=bindings, nuclei=nuclei, train_flops=flops,
        seconds=time.perf_counter() - started,
    )


def search_grow_sequences(config: RunConfig, n_trials: int = 20, delta_range: tuple[float, float] = (0.0, 1.0),
                          delta_step: float = 0.05, sampler: str = "nsga2", population_size: int = 4,
                          rule: str = "knee", storage: str | None = None, study_name: str = "grow-sequences",
                          on_trial: Any = None) -> SequenceSearch:
    """Search grow sequences with a shared δ (see the module docstring); `on_trial(number, sequence, reused)` is
    called after each trial. A `storage` that holds the study already continues it."""
    import optuna
    from optuna.distributions import FloatDistribution
    from optuna.trial import TrialState

    from selfgrow.search.samplers import make_sampler
    from selfgrow.search.storage import make_storage

    _check(config, n_trials, delta_range, delta_step, rule, population_size)
    optuna.logging.set_verbosity(optuna.logging.WARNING)
    study = optuna.create_study(study_name=study_name, storage=make_storage(storage), load_if_exists=True,
                                directions=["maximize", "minimize"],
                                sampler=make_sampler(sampler, config.seed, population_size=population_size))
    for stale in study.get_trials(deepcopy=False, states=(TrialState.RUNNING,)):  # a killed search's last trial
        study.tell(stale.number, state=TrialState.FAIL)
    done = _finished(study)
    space = {"delta": FloatDistribution(delta_range[0], delta_range[1], step=delta_step)}
    while sum(len(s.trials) for s in done.values()) < n_trials:
        trial = study.ask(space)
        delta = round(float(trial.params["delta"]), 9)  # Optuna's grid floats, e.g. 0.6000000000000001
        reused = delta in done
        sequence = done[delta] if reused else run_sequence(config, delta)
        sequence.trials.append(trial.number)
        done[delta] = sequence
        trial.set_user_attr(SEQUENCE_ATTR, json.dumps(sequence.to_dict()))
        study.tell(trial, [sequence.gain, float(sequence.params)])
        if on_trial is not None:
            on_trial(trial.number, sequence, reused)
    sequences = sorted(done.values(), key=lambda s: s.trials[0])
    points = [(s.gain, float(s.params)) for s in sequences]
    return SequenceSearch(sequences, pareto_front(points), select(points, rule), rule, n_trials)


def search_in_folder(config: RunConfig, quiet: bool = False, **options: Any) -> tuple[SequenceSearch, Path]:
    """`search_grow_sequences` with its journal, config, results (`sequences.json`) and table (`sequences.md`) in
    the folder `output/name` of `config`; a folder of an earlier search of the same config continues it."""
    import yaml

    from selfgrow import config as config_schema
    from selfgrow.atomic import atomic_write_text
    from selfgrow.experiment import saved_config_differences
    from selfgrow.factories import apply_method

    given = {**_defaults(search_grow_sequences), **options}
    _check(config, given["n_trials"], given["delta_range"], given["delta_step"], given["rule"],
           given["population_size"])  # before anything is written
    folder = Path(config.output) / config.name
    journal = folder / "sequences.journal"
    if journal.exists() and (folder / "config.yaml").exists():
        differing = saved_config_differences(folder, config)
        if differing:
            raise SelfgrowError(f"{str(folder)!r} holds a grow-sequence search of another config (it differs in "
                                f"{', '.join(differing)}); choose another --name or --output.")
    folder.mkdir(parents=True, exist_ok=True)
    atomic_write_text(folder / "config.yaml", yaml.safe_dump(config_schema.to_dict(apply_method(config)), sort_keys=False))

    def say(number: int, sequence: SequenceTrial, reused: bool) -> None:
        if not quiet:
            how = "the same sequence as before" if reused else f"{sequence.seconds:.0f} s"
            print(f"trial {number}: delta {sequence.delta:.2f}: gain {sequence.gain:+.4f}, params {sequence.params:,} "
                  f"({how})", flush=True)

    search = search_grow_sequences(config, storage=f"journal:{journal}", on_trial=say, **options)
    atomic_write_text(folder / "sequences.json", json.dumps(search.to_dict(), indent=1))
    atomic_write_text(folder / "sequences.md", search.table() + "\n")
    return search, folder


def _defaults(function: Any) -> dict[str, Any]:
    """The keyword defaults of `function`."""
    import inspect

    return {name: p.default for name, p in inspect.signature(function).parameters.items()
            if p.default is not inspect.Parameter.empty}


def _finished(study: Any) -> dict[float, SequenceTrial]:
    """The sequences of the study's complete trials by δ, each with every trial number that asked for it."""
    from optuna.trial import TrialState

    done: dict[float, SequenceTrial] = {}
    for trial in study.get_trials(deepcopy=False, states=(TrialState.COMPLETE,)):
        record = SequenceTrial.from_dict(json.loads(trial.user_attrs[SEQUENCE_ATTR]))
        known = done.setdefault(record.delta, record)
        known.trials = sorted(set(known.trials) | {trial.number})
    return done


def _with_delta(config: RunConfig, delta: float | None) -> RunConfig:
    """`config` with bindgrow's `delta` set (None: searched per task); the config given is not changed."""
    config = copy.deepcopy(config)
    options = dict(config.growth.options or {})
    options["delta"] = delta
    config.growth.options = options
    return config


def _check(config: RunConfig, n_trials: int, delta_range: tuple[float, float], delta_step: float, rule: str,
           population_size: int) -> None:
    """One-sentence errors for a search that cannot run."""
    from selfgrow.factories import apply_method

    if apply_method(config).growth.name != "bindgrow":
        raise SelfgrowError(f"Grow sequences are bindgrow's; this config grows with {config.growth.name!r}: "
                            "set growth.name: bindgrow.")
    if not isinstance(n_trials, int) or n_trials < 1:
        raise SelfgrowError(f"n_trials={n_trials!r} is invalid; accepted: an integer >= 1.")
    from selfgrow.growth import build_grower

    # the grid, the rule and the population are bindgrow's own options: its checks say what is accepted
    build_grower("bindgrow", delta_range=list(delta_range), delta_step=delta_step, rule=rule,
                 population_size=population_size)


__all__ = ["SequenceSearch", "SequenceTrial", "run_sequence", "search_grow_sequences", "search_in_folder"]
