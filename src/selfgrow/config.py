"""The run configuration: a typed schema read from YAML with CLI overrides, validated with clear errors."""

from __future__ import annotations

from dataclasses import asdict, dataclass, field, fields
from typing import Any, Optional


@dataclass
class StreamConfig:
    """Which stream to build and at what size; `options` holds builder-specific extras."""

    name: str = "split"
    dataset: str = "digits"
    scenario: str = "class"
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
    """Training of each task (the fields of `selfgrow.train.Trainer` less `device` and `seed`, which are run-wide)."""

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
    stream: StreamConfig = field(default_factory=StreamConfig)
    net: NetConfig = field(default_factory=NetConfig)
    growth: GrowthConfig = field(default_factory=GrowthConfig)
    retention: list[RetentionConfig] = field(default_factory=list)
    trainer: TrainerConfig = field(default_factory=TrainerConfig)


def to_dict(config: RunConfig) -> dict[str, Any]:
    """Plain-data form of a config (what config.yaml stores)."""
    return asdict(config)


def from_dict(data: dict[str, Any]) -> RunConfig:
    """Rebuild a RunConfig from its plain-data form, rejecting unknown keys with a suggestion."""
    from selfgrow.errors import SelfgrowError, closest

    def build(cls: type, values: dict[str, Any], where: str) -> Any:
        if not isinstance(values, dict):
            raise SelfgrowError(f"Config section {where or 'root'!r} must be a mapping, got {values!r}.")
        names = {f.name: f for f in fields(cls)}
        kwargs = {}
        for key, value in values.items():
            if key not in names:
                hint = closest(key, names)
                suggestion = f" Did you mean {hint!r}?" if hint else ""
                raise SelfgrowError(
                    f"Unknown config key {where + key!r}; accepted: {', '.join(sorted(names))}.{suggestion}"
                )
            nested = _NESTED.get((cls, key))
            if nested is list:
                kwargs[key] = [build(RetentionConfig, _retention_item(v), f"{where}{key}[{i}].")
                               for i, v in enumerate(value or [])]
            elif nested is not None:
                kwargs[key] = build(nested, value or {}, f"{where}{key}.")
            else:
                kwargs[key] = value
        return cls(**kwargs)

    return build(RunConfig, data, "")


def _retention_item(value: Any) -> dict[str, Any]:
    """Accept `- replay` as shorthand for `- {name: replay}`."""
    return {"name": value} if isinstance(value, str) else value


_NESTED = {
    (RunConfig, "stream"): StreamConfig,
    (RunConfig, "net"): NetConfig,
    (RunConfig, "growth"): GrowthConfig,
    (RunConfig, "trainer"): TrainerConfig,
    (RunConfig, "retention"): list,
}
