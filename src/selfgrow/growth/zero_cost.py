"""Scores of a grown net without training, and the search's first filter built on them.

NASWOT (Mellor, Turner, Storkey and Crowley 2021, "Neural Architecture Search without Training"): on a batch of
inputs, each ReLU unit's on/off pattern is a binary code per input; the kernel K[i, j] counts the units on which
inputs i and j agree (both active or both inactive) and the score is log|K|. A net whose ReLUs separate the inputs
well scores high. The paper takes the codes of the untrained net at initialisation; here they are those of the net
grown from the learner's trained one (growth keeps what the net has learnt), as the searched growers would train it.
BENCHMARKS.md ("The proxy target at full size") measured it against full training on Split-CIFAR-10.

`NaswotFilter` is a searched grower's `zero_cost: naswot`: every point the sampler proposes is scored first and
screened, untrained, when its score is below the median of the points scored before it in the same search.
"""

from __future__ import annotations

import copy
import json
import statistics
from typing import Any, Callable

import torch
from torch.overrides import TorchFunctionMode

NASWOT_BATCH = 128  # inputs per score, as Mellor et al. (their Table 2 uses 128)
RELUS = frozenset({torch.relu, torch.relu_, torch.nn.functional.relu, torch.nn.functional.relu_,
                   torch.Tensor.relu, torch.Tensor.relu_})
ZERO_COST_SCORES = ("naswot",)


class _ReluCodes(TorchFunctionMode):
    """Records, for every ReLU a forward pass applies (functional, method or module), which of its units each input
    activates."""

    def __init__(self) -> None:
        super().__init__()
        self.codes: list[torch.Tensor] = []

    def __torch_function__(self, func: Any, types: Any, args: tuple = (), kwargs: dict | None = None) -> Any:
        out = func(*args, **(kwargs or {}))
        if func in RELUS:
            self.codes.append((out > 0).flatten(1).to(torch.float64))
        return out


def naswot(net: torch.nn.Module, x: torch.Tensor) -> float:
    """NASWOT's score of `net` on batch `x`: log|K| with K[i, j] the number of ReLU units on which inputs i and j
    agree, over every ReLU of the forward pass (in training mode, as the net trains; -inf when two inputs share a
    code); `net` is left untouched (a copy runs)."""
    copied = copy.deepcopy(net).train()
    recorder = _ReluCodes()
    with torch.no_grad(), recorder:
        copied(x)
    if not recorder.codes:
        raise ValueError(f"NASWOT scores the ReLUs of a net, and {type(net).__name__} applied none; accepted: a net "
                         "whose forward pass applies ReLU.")
    c = torch.cat(recorder.codes, dim=1)
    return float(torch.linalg.slogdet(c @ c.T + (1 - c) @ (1 - c).T)[1])


def naswot_batch(task: Any) -> torch.Tensor:
    """The `NASWOT_BATCH` training inputs a task's scores are taken on: drawn with the task's index as seed (the same
    inputs for every candidate of a search), normalised as training normalises them, without augmentation."""
    from selfgrow.train.batches import to_input

    picked = torch.randperm(len(task.x_train), generator=torch.Generator().manual_seed(task.index))[:NASWOT_BATCH]
    return to_input(task.x_train[picked], task)


class NaswotFilter:
    """A search's first filter (the engine's `screen`): a sampled point whose grown net's NASWOT score is below the
    median of every point scored before it in this search (the enqueued points, scored first, then each sampled one)
    is turned away untrained; the scores' forward passes are its `flops`.

    `grown(params)`: the net the point grows to, drawn from the point's own random stream (so a score does not depend
    on the order of the search); `flops_of(net)`: one input's inference FLOPs.
    """

    def __init__(self, grown: Callable[[dict[str, Any]], torch.nn.Module], x: torch.Tensor,
                 flops_of: Callable[[torch.nn.Module], float], enqueued: list[dict[str, Any]]) -> None:
        self.grown, self.x, self.flops_of = grown, x, flops_of
        self.scores: dict[str, float] = {}
        self.flops = 0.0
        self.screened = 0
        for params in enqueued:
            self.score(params)

    def score(self, params: dict[str, Any]) -> float:
        """The point's NASWOT score (computed once per point; its forward pass counted in `flops`)."""
        key = _key(params)
        if key not in self.scores:
            net = self.grown(params)
            x = self.x.to(next(net.parameters()).device)
            self.scores[key] = naswot(net, x)
            self.flops += float(self.flops_of(net)) * len(x)
        return self.scores[key]

    def __call__(self, params: dict[str, Any], records: list[dict[str, Any]]) -> str | None:
        """Why the point is not worth training (its score below the median of those before it), else None."""
        key = _key(params)
        before = [v for k, v in self.scores.items() if k != key]
        score = self.score(params)
        if not before:
            return None
        median = statistics.median(before)
        if score >= median:
            return None
        self.screened += 1
        return f"NASWOT {score:.2f} below the median {median:.2f} of the {len(before)} other point(s) scored"

    def describe(self) -> dict[str, Any]:
        """What the filter did, for the plan's reasons."""
        return {"score": "naswot", "batch": len(self.x), "scored": len(self.scores), "screened": self.screened,
                "flops": self.flops}


def _key(params: dict[str, Any]) -> str:
    """A point's identity among the filter's scores."""
    return json.dumps(params, sort_keys=True)


__all__ = ["NASWOT_BATCH", "NaswotFilter", "ZERO_COST_SCORES", "naswot", "naswot_batch"]
