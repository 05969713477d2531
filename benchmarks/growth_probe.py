"""Helpers of the growth benchmarks that look inside a search (proxy fidelity, sampler comparison).

`probe_learner` builds the learner of one method of a bench file with a grower of our own in place
(one that measures candidates and grows nothing), `space_points` lists every point of a grower's
space, and `with_heads` adds the heads a task needs, as `Learner.learn` does before it asks the
grower, so candidates can be measured on a task outside a run.
"""

from __future__ import annotations

import itertools
import json
from pathlib import Path
from typing import Any

import yaml

from selfgrow.bench import merge
from selfgrow.config import from_dict
from selfgrow.factories import apply_method, build_learner, build_stream, seed_everything


def probe_learner(bench_file: Path, method: str, output: Path, grower: Any,
                  net_options: dict[str, Any] | None = None,
                  stream_options: dict[str, Any] | None = None, seed: int | None = None,
                  trainer_options: dict[str, Any] | None = None) -> tuple[Any, Any]:
    """(learner, stream) of `method` in `bench_file` (seed of its base, or `seed`: the run's, which also draws the
    stream's samples), with `grower` as the grower, `net_options` over its net's options, `stream_options` over
    its stream's and `trainer_options` over its trainer's."""
    spec = yaml.safe_load(bench_file.read_text())
    plain = merge(spec["base"], spec["methods"][method])
    if net_options:
        plain["net"] = {**plain["net"], "options": {**plain["net"].get("options", {}), **net_options}}
    if stream_options:
        plain["stream"] = {**plain["stream"], **stream_options}
    if trainer_options:
        plain["trainer"] = {**plain["trainer"], **trainer_options}
    plain.update(name="probe", output=str(output))
    if seed is not None:
        plain["seed"] = seed
    config = apply_method(from_dict(plain))
    seed_everything(config.seed)
    stream = build_stream(config)
    learner = build_learner(config, stream)
    learner.grower = grower
    return learner, stream


def space_points(grower: Any, learner: Any, task: Any) -> list[dict[str, Any]]:
    """Every distinct point of the grower's space before `task` (a grid over categorical and stepped parameters);
    points that grow the same net (e.g. compound's phi 0 with any alpha) appear once."""
    axes = []
    for name, dist in grower.search_space(learner, task).items():
        if hasattr(dist, "choices"):
            axes.append([(name, c) for c in dist.choices])
        else:
            step = getattr(dist, "step", None) or 1
            n = round((dist.high - dist.low) / step)
            axes.append([(name, dist.low + k * step) for k in range(n + 1)])
    out, keys = [], set()
    for combo in itertools.product(*axes):
        params = dict(combo)
        key = json.dumps(grower.ops_for(learner.net, params), sort_keys=True)
        if key not in keys:
            keys.add(key)
            out.append(params)
    return out


def with_heads(learner: Any, task: Any) -> Any:
    """The learner with the heads `task` needs added, as `Learner.learn` does before it asks the grower."""
    train_task, scenario = learner._training_view(task)
    learner._adopt(learner._head_growths(learner.net, train_task, scenario))
    return learner
