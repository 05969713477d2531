"""The run configuration: a typed schema read from YAML with CLI overrides, validated with clear errors."""

from __future__ import annotations

import typing
from dataclasses import MISSING, asdict, dataclass, field, fields
from typing import Any, Optional

from selfgrow.errors import SelfgrowError, did_you_mean
from selfgrow.options import accepted, describe_type, has_type, option, within

OPTIMIZERS = ("sgd", "adam")
SCHEDULES = ("none", "cosine", "cosine_steps", "step")


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
    n_tasks: Optional[int] = option(5, at_least=1)
    classes_per_task: Optional[int] = option(None, at_least=1)
    val_fraction: float = option(0.1, at_least=0, below=1, note="0: no validation split")
    max_train_per_class: Optional[int] = option(None, at_least=1)
    max_val_per_class: Optional[int] = option(None, at_least=1)
    max_test_per_class: Optional[int] = option(None, at_least=1)
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

    epochs: int = option(10, at_least=1)
    batch_size: int = option(64, at_least=1)
    optimizer: str = option("adam", choices=OPTIMIZERS)
    lr: float = option(1e-3, above=0)
    momentum: float = option(0.9, at_least=0)
    weight_decay: float = option(0.0, at_least=0)
    schedule: str = option("none", choices=SCHEDULES)
    patience: Optional[int] = option(None, at_least=1)
    val_every_epoch: bool = True
    lr_grid: Optional[list[float]] = option(None, above=0, nonempty=True)
    wd_grid: Optional[list[float]] = option(None, at_least=0, nonempty=True)
    grid_epochs: Optional[int] = option(None, at_least=1, note="at most epochs")
    reset_optimizer: bool = True
    curve_batches: int = option(10, at_least=0)
    eval_batch_size: int = option(512, at_least=1)
    amp: bool = True
    progress: Optional[bool] = None
    min_epoch_steps: Optional[int] = option(None, at_least=1)


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
    workers: int = option(0, at_least=0)
    artifacts: Optional[str] = None
    study: Optional[str] = None
    heartbeat: int = option(10, at_least=1)
    max_retry: int = option(3, at_least=0)


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
    logger: list[str] = field(default_factory=list)
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
                kwargs[key] = _checked(f"{where}{key}", value, typing.get_type_hints(cls)[key], names[key].metadata)
        missing = [f.name for f in fields(cls) if f.name not in kwargs and f.default is MISSING
                   and f.default_factory is MISSING]
        if missing:
            raise SelfgrowError(f"Config section {where.rstrip('.') or 'root'!r} lacks the key {missing[0]!r}; "
                                f"accepted keys: {', '.join(sorted(names))}.")
        return cls(**kwargs)

    return build(RunConfig, data, "")


def _checked(key: str, value: Any, kind: Any, checks: Any) -> Any:
    """`value` when it has the field's type and satisfies its declared checks (`selfgrow.options.option`), made
    while reading the config so a mistake stops before any data is loaded; else SelfgrowError naming key, value
    and rule."""
    if not has_type(value, kind):
        raise SelfgrowError(f"Config key {key!r} = {value!r} has the wrong type; accepted: {describe_type(kind)}.")
    if not within(value, checks):
        raise SelfgrowError(f"Config key {key!r} = {value!r} is out of range; accepted: {accepted(kind, checks)}.")
    return value


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
