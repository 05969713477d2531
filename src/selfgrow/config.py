"""The run configuration: a typed schema read from YAML with CLI overrides, validated with clear errors."""

from __future__ import annotations

import math
import typing
from dataclasses import MISSING, asdict, dataclass, field, fields
from typing import Any, Optional

from selfgrow.errors import SelfgrowError, did_you_mean


@dataclass
class StreamConfig:
    """Which stream to build and at what size; `options` holds builder-specific extras.

    `scenario` null (the default) means the stream's own default scenario (split: class, permuted:
    task, rotated: domain, CTrL: task, YAML: the file's, else task); set task, class or domain to override.
    `max_train_per_class` caps the training samples per class; when it is set and
    `max_val_per_class` is not, validation is capped at round(max_train_per_class * val_fraction /
    (1 - val_fraction)) per class, so that train:val is what `val_fraction` says.
    """

    name: str = "split"
    dataset: str = "digits"
    scenario: Optional[str] = None
    n_tasks: Optional[int] = 5
    classes_per_task: Optional[int] = None
    val_fraction: float = 0.1
    max_train_per_class: Optional[int] = None
    max_val_per_class: Optional[int] = None
    max_test_per_class: Optional[int] = None
    options: dict[str, Any] = field(default_factory=dict)


@dataclass
class NetConfig:
    """The starting network: a named preset with options, or a full spec."""

    preset: str = "mlp-small"
    options: dict[str, Any] = field(default_factory=dict)
    spec: Optional[dict[str, Any]] = None


@dataclass
class GrowthConfig:
    """The grower (how the backbone grows before each task) and its options."""

    name: str = "fixed"
    options: dict[str, Any] = field(default_factory=dict)


@dataclass
class RetentionConfig:
    """One anti-forgetting strategy and its options."""

    name: str
    options: dict[str, Any] = field(default_factory=dict)


@dataclass
class TrainerConfig:
    """Training of each task: the one declaration of the options and defaults of `selfgrow.train.Trainer`
    (which extends it with the run-wide `device` and `seed`), read by the YAML config, the CLI and the Python API."""

    epochs: int = 10
    batch_size: int = 64
    optimizer: str = "adam"
    lr: float = 1e-3
    momentum: float = 0.9
    weight_decay: float = 0.0
    schedule: str = "none"
    patience: Optional[int] = None
    val_every_epoch: bool = True
    lr_grid: Optional[list[float]] = None
    wd_grid: Optional[list[float]] = None
    grid_epochs: Optional[int] = None
    reset_optimizer: bool = True
    curve_batches: int = 10
    eval_batch_size: int = 512
    amp: bool = True
    progress: Optional[bool] = None
    min_epoch_steps: Optional[int] = None


@dataclass
class DistributedConfig:
    """Growth search spread over worker processes sharing one study per task (docs/distributed.md).

    `storage`: journal:PATH or a database URL shared by the workers (None with `workers` > 0: a
    journal file beside the run folder); `workers`: local worker processes to start (0: wait for
    workers started elsewhere); `artifacts`: directory every worker reaches (default beside the
    run folder), or an object store's bucket, s3://BUCKET or gs://BUCKET; `study`: name of the run study workers are pointed at (default: the run name and
    a digest of the config); `heartbeat`: seconds between a worker's beats (a trial is retried
    after two silent intervals); `max_retry`: how often a dead worker's trial is tried again.
    """

    storage: Optional[str] = None
    workers: int = 0
    artifacts: Optional[str] = None
    study: Optional[str] = None
    heartbeat: int = 10
    max_retry: int = 3


@dataclass
class RunConfig:
    """A whole experiment: stream, starting net, method (preset), growth, retention and training."""

    name: str = "run"
    seed: int = 0
    output: str = "runs"
    data_dir: Optional[str] = None
    device: str = "auto"
    method: Optional[str] = None
    mode: str = "shared"
    plugins: list[str] = field(default_factory=list)
    stream: StreamConfig = field(default_factory=StreamConfig)
    net: NetConfig = field(default_factory=NetConfig)
    growth: GrowthConfig = field(default_factory=GrowthConfig)
    retention: list[RetentionConfig] = field(default_factory=list)
    trainer: TrainerConfig = field(default_factory=TrainerConfig)
    distributed: DistributedConfig = field(default_factory=DistributedConfig)


def to_dict(config: RunConfig) -> dict[str, Any]:
    """Plain-data form of a config (what config.yaml stores)."""
    return asdict(config)


def field_type(key: str) -> Any:
    """The annotation of a dotted config key (`trainer.epochs` -> int); None when there is no such field."""
    kind: Any = RunConfig
    for part in key.split("."):
        hints = typing.get_type_hints(kind) if isinstance(kind, type) and hasattr(kind, "__dataclass_fields__") else {}
        if part not in hints:
            return None
        kind = hints[part]
    return kind


def from_dict(data: dict[str, Any]) -> RunConfig:
    """Rebuild a RunConfig from its plain-data form, checked: unknown keys (with a suggestion), missing
    required keys, wrong types and out-of-range sizes each raise SelfgrowError naming key, value and rule."""

    def build(cls: type, values: dict[str, Any], where: str) -> Any:
        if not isinstance(values, dict):
            raise SelfgrowError(f"Config section {where or 'root'!r} must be a mapping, got {values!r}.")
        names = {f.name: f for f in fields(cls)}
        kwargs = {}
        for key, value in values.items():
            if key not in names:
                raise SelfgrowError(
                    f"Unknown config key {where + key!r}; accepted: {', '.join(sorted(names))}.{did_you_mean(key, names)}"
                )
            nested = _NESTED.get((cls, key))
            if nested is list:
                if not isinstance(value, list | None):
                    raise SelfgrowError(f"Config key {where + key!r} = {value!r} must be a list of strategies, "
                                        "e.g. [replay, {name: ewc, options: {lam: 100}}].")
                kwargs[key] = [build(RetentionConfig, _retention_item(v), f"{where}{key}[{i}].")
                               for i, v in enumerate(value or [])]
            elif nested is not None:
                kwargs[key] = build(nested, value or {}, f"{where}{key}.")
            else:
                kwargs[key] = _checked(f"{where}{key}", value, typing.get_type_hints(cls)[key])
        missing = [f.name for f in fields(cls) if f.name not in kwargs and f.default is MISSING
                   and f.default_factory is MISSING]
        if missing:
            raise SelfgrowError(f"Config section {where.rstrip('.') or 'root'!r} lacks the key {missing[0]!r}; "
                                f"accepted keys: {', '.join(sorted(names))}.")
        return cls(**kwargs)

    return build(RunConfig, data, "")


# Cheap range checks on sizes, made while reading the config so a mistake stops before any data is
# loaded; the stream builders and the Trainer check again for callers of the library.
_AT_LEAST = {
    "stream.n_tasks": 1, "stream.classes_per_task": 1, "stream.max_train_per_class": 1,
    "stream.max_val_per_class": 1, "stream.max_test_per_class": 1, "trainer.epochs": 1,
    "trainer.batch_size": 1, "trainer.eval_batch_size": 1, "trainer.patience": 1, "trainer.grid_epochs": 1,
    "trainer.min_epoch_steps": 1,
    "trainer.curve_batches": 0, "trainer.momentum": 0, "trainer.weight_decay": 0,
    "distributed.workers": 0, "distributed.heartbeat": 1, "distributed.max_retry": 0,
}
_ABOVE = {"trainer.lr": 0}
_FRACTIONS = ("stream.val_fraction",)  # in [0, 1): 0 means no validation split


def _checked(key: str, value: Any, kind: Any) -> Any:
    """`value` when it has the field's type and lies in its range; else SelfgrowError naming key, value and rule."""
    accepted = describe_type(kind)
    if not _has_type(value, kind):
        raise SelfgrowError(f"Config key {key!r} = {value!r} has the wrong type; accepted: {accepted}.")
    if value is None or isinstance(value, (bool, str, list, dict)):
        return value
    number = describe_type(int if kind is int or int in typing.get_args(kind) else float)
    if key in _AT_LEAST and value < _AT_LEAST[key]:
        rule = f"{number} >= {_AT_LEAST[key]}"
    elif key in _ABOVE and value <= _ABOVE[key]:
        rule = f"{number} > {_ABOVE[key]}"
    elif key in _FRACTIONS and not 0 <= value < 1:
        rule = f"{number} in [0, 1)"
    else:
        return value
    raise SelfgrowError(f"Config key {key!r} = {value!r} is out of range; accepted: {rule}.")


def _has_type(value: Any, kind: Any) -> bool:
    """Whether `value` fits the annotation `kind` (int for float is fine; bool is not a number; floats finite)."""
    origin, args = typing.get_origin(kind), typing.get_args(kind)
    if kind is Any:
        return True
    if origin is typing.Union:
        return any(_has_type(value, a) for a in args)
    if kind is type(None):
        return value is None
    if origin is list:
        return isinstance(value, list) and all(_has_type(v, args[0]) for v in value)
    if origin is dict:
        return isinstance(value, dict) and all(isinstance(k, str) for k in value)
    if kind is float:
        return isinstance(value, (int, float)) and not isinstance(value, bool) and math.isfinite(value)
    if kind is int:
        return isinstance(value, int) and not isinstance(value, bool)
    return isinstance(value, kind)


def describe_type(kind: Any) -> str:
    """Words for an annotation, as the error messages use them."""
    origin, args = typing.get_origin(kind), typing.get_args(kind)
    if origin is typing.Union:
        return " or ".join(describe_type(a) for a in args)
    if origin is list:
        return f"a list of {describe_type(args[0]).removeprefix('a ').removeprefix('an ')}s"
    if origin is dict:
        return "a mapping"
    words = {int: "an integer", float: "a finite number", str: "a string", bool: "true or false", type(None): "null"}
    return words.get(kind, getattr(kind, "__name__", str(kind)))


def _retention_item(value: Any) -> dict[str, Any]:
    """Accept `- replay` as shorthand for `- {name: replay}`."""
    return {"name": value} if isinstance(value, str) else value


_NESTED = {
    (RunConfig, "stream"): StreamConfig,
    (RunConfig, "net"): NetConfig,
    (RunConfig, "growth"): GrowthConfig,
    (RunConfig, "trainer"): TrainerConfig,
    (RunConfig, "distributed"): DistributedConfig,
    (RunConfig, "retention"): list,
}
