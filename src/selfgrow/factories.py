"""The run's factories: a config's method preset merged in, its stream and its learner, and the seeding.

They sit below both the run loop (`selfgrow.experiment`) and the search's workers
(`selfgrow.search.worker`), which build the same learner from the same config.
"""

from __future__ import annotations

import random
from typing import Any

import numpy as np
import torch

from selfgrow import config as config_schema
from selfgrow.config import RunConfig
from selfgrow.errors import SelfgrowError
from selfgrow.streams.task import Stream


def apply_method(config: RunConfig) -> RunConfig:
    """Merge a method preset into the config.

    The method's `net` section always applies (PNN, expandable-rep and fixed-small/large are
    defined by their net); its other sections fill the config only where it still holds the
    schema default, so explicit settings (e.g. a different EWC strength) win.
    """
    if not config.method:
        return config
    from selfgrow.methods import resolve_method

    fragment = resolve_method(config.method)
    default = RunConfig()
    values = config_schema.to_dict(config)
    for key, value in fragment.items():
        if key == "trainer":
            for name, v in value.items():
                if values["trainer"][name] == getattr(default.trainer, name):
                    values["trainer"][name] = v
        elif key == "net" or values[key] == config_schema.to_dict(default)[key]:
            values[key] = value
    return config_schema.from_dict(values)


def seed_everything(seed: int) -> None:
    """Seed python, numpy and torch so the same config gives the same numbers on CPU."""
    random.seed(seed)
    np.random.seed(seed % 2**32)
    torch.manual_seed(seed)


def build_stream(config: RunConfig) -> Stream:
    """The stream of the config; typed stream fields are passed when the builder takes them."""
    from selfgrow import streams

    section = config.stream
    if section.name not in streams.STREAMS:
        from selfgrow.errors import unknown_name

        raise unknown_name("stream", section.name, streams.STREAMS)
    accepted = set(streams.STREAMS[section.name].options())
    defaults = config_schema.StreamConfig()
    options: dict[str, Any] = {}
    for field_name, value in config_schema.to_dict(section).items():
        if field_name in ("name", "options") or value is None:
            continue
        if field_name in accepted:
            options[field_name] = value
        elif value != getattr(defaults, field_name):
            raise SelfgrowError(
                f"Stream {section.name!r} does not take stream.{field_name} (= {value!r}); "
                f"accepted: {', '.join(sorted(accepted))}."
            )
    for key in ("seed", "data_dir"):
        if key in accepted:
            options[key] = getattr(config, key)
    options.update(section.options)
    return streams.build(section.name, **options)


def build_learner(config: RunConfig, stream: Stream) -> Any:
    """The learner of the config: starting net, grower, retention strategies and trainer."""
    from selfgrow.growth import build_grower
    from selfgrow.nets import build, preset
    from selfgrow.retention import build_retention
    from selfgrow.train import Learner, Trainer

    if config.mode not in ("shared", "independent"):
        raise SelfgrowError(f"Unknown mode {config.mode!r}; accepted: shared, independent.")
    head = {"kind": "multi", "classes": []} if stream.scenario == "task" else {"kind": "single", "classes": 0}
    head.update(config.net.options.get("head", {}))
    if config.net.spec is not None:
        spec = {"input_shape": list(stream[0].input_shape), "head": head, **config.net.spec}
    else:
        spec = preset(config.net.preset, stream[0].input_shape, head)
    spec.update({k: v for k, v in config.net.options.items() if k != "head"})
    net = build(spec)
    trainer = Trainer(seed=config.seed, device=config.device, **config_schema.to_dict(config.trainer))
    return Learner(
        net,
        build_grower(config.growth.name, **grower_options(config)),
        [build_retention(r.name, **r.options) for r in config.retention],
        trainer,
        scenario=stream.scenario,
        independent=config.mode == "independent",
        stream_tasks=len(stream),
    )


def grower_options(config: RunConfig) -> dict[str, Any]:
    """The grower's options; a grower that draws random numbers gets the run's seed unless the config sets its own."""
    from selfgrow.growth import GROWERS
    from selfgrow.registry import accepted_options

    options = dict(config.growth.options)
    if "seed" not in options and "seed" in accepted_options(GROWERS.get_class(config.growth.name)):
        options["seed"] = config.seed
    return options
