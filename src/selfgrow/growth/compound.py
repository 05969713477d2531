"""The `compound` grower: EfficientNet compound scaling (Tan & Le 2019), the coefficient φ searched per task.

EfficientNet scales depth by α^φ, width by β^φ and input resolution by γ^φ under α·β²·γ² ≈ 2,
so FLOPs grow by about 2^φ. Here the names follow the paper (α: depth, β: width). Resolution is
not scaled (γ = 1): the stream fixes the input size and its normalisation, so the constraint
becomes α·β² ≈ 2 and the default β is sqrt(2 / α).

Incremental use: the grower keeps the accumulated coefficient Φ (the sum of the φ chosen so far),
the base sizes of the first net and its inference FLOPs `base_flops` (all in its state, so a
resumed run scales as the uninterrupted one). Before each task the search chooses
φ ∈ {0, φ_step, ..., max_phi}; φ = 0 is no growth, exactly. For φ > 0 the target is
base_flops · 2^Φ' (Φ' = Φ + φ), and the grown net's *measured* inference FLOPs
(`selfgrow.nets.cost.inference_flops`) are brought to it:

1. depth: every depth unit goes to round(d₀·α^Φ') (blocks per stage for ResNets, as EfficientNet
   scales each stage's repeats; the number of layers for layer-list nets (MLP, ConvNet), whose new
   layers go next to the head, at the last depth point), fewer when that depth alone, at the
   current widths, would exceed the target;
2. width: every width group goes to ceil(f·w₀), with one factor f for all groups, solved starting
   from EfficientNet's β^Φ' (bracketing, then false position with bisection steps; FLOPs grow
   monotonically with f) so that the measured FLOPs are as close to the target as integer widths
   allow, never more than `FLOPS_TOLERANCE` (15%) above it.

How this deviates from EfficientNet, and why: EfficientNet rounds each stage's depth up (ceil) and
each width to a multiple of 8 and accepts whatever FLOPs result; on the small nets grown here that
rounding dominates (ceil(1.2) = 2 doubles a one-block stage; an MLP's input layer does not scale
with its hidden width), so φ = 1 cost 1.4x to 3.6x the FLOPs, depending on the net and its input.
Here α keeps the *shape* of the growth (how much of it is depth; the width groups keep their base
ratios) and f makes its *size* match 2^φ: α·β² ≈ 2 holds by measurement rather than by formula, so
β (the `beta` option) only sets where the search for f starts and is reported as the nominal
width factor. Depth rounds to nearest so it does not overshoot. Growth never shrinks a net, so
when a width group (or the depth) is already at or above its share of the target, that φ does not
grow it, and a φ whose target the current net already meets grows nothing. When `max_flops` is
below the target, the target is `max_flops` and is never exceeded (a candidate over the budget
would be neither trained nor chosen), so a φ whose target is above the budget grows the net to the
budget instead of being discarded. FLOPs include the head: classes the stream adds count towards
the target.

A width group created by deepening takes the base width of the group it copies (a known group of
the same current width), else its width divided by the last width factor f. Growth is
function-preserving (`widen` in `mode`, then identity `deepen`), so the candidates inherit every
weight. The plan's reasons hold, under "compound", the target, the measured FLOPs and their ratio
to `base_flops`.

`fit_coefficients`: on the first task the search also chooses α from `alpha_grid` (β = sqrt(2/α)),
as EfficientNet fits α, β by a small grid search at φ = 1; the chosen α (or, when the first
task chose no growth, the α of the most accurate growing candidate) is kept for later tasks.

Finding f costs one FLOP count per step (a forward pass under `torch.utils.flop_counter`, on a net
built from the candidate's spec; the counts are cached per spec by `selfgrow.nets.cost`, and each
point's solution is cached by the grower), typically under ten per φ.
"""

from __future__ import annotations

import json
import math
from dataclasses import dataclass
from typing import Any

import torch

from selfgrow.errors import SelfgrowError
from selfgrow.growth.base import register_grower
from selfgrow.growth.searching import SearchGrower, SearchOptions, deepen_ops, widen_ops, widenable_groups
from selfgrow.options import option, with_default

EPS = 1e-9
FLOPS_TOLERANCE = 0.15  # the grown net's FLOPs may exceed the target by at most this fraction
CLOSE_ENOUGH = 0.01  # the width search stops once the FLOPs are this close to the target
MAX_STEPS = 40  # FLOP counts per width search, at most


@dataclass(frozen=True)
class Scaling:
    """One point's growth of the current net: target widths, layers to insert, and the FLOPs behind them.

    `target_flops`: base_flops · 2^Φ' (or `max_flops` when lower, then `capped`); `flops`: the
    measured inference FLOPs of the net grown to `widths` and `counts`; `width_factor`: the f of
    widths ceil(f·w₀) (0 when no group widens).
    """

    widths: dict[str, int]
    counts: dict[str, int]
    target_flops: float
    flops: int
    width_factor: float
    capped: bool


@dataclass
class CompoundOptions(SearchOptions):
    """The `compound` grower's scaling (see the module docstring) beside the search options (6 trials here)."""

    n_trials: int = with_default(SearchOptions, "n_trials", 6)
    max_phi: float = option(2.0, at_least=0, note="0: never grow")
    phi_step: float = option(1.0, above=0)
    alpha: float = option(1.2, at_least=1, at_most=2, note="so that beta >= 1")
    beta: float | None = option(None, at_least=1, note="null: sqrt(2 / alpha)")
    fit_coefficients: bool = False
    alpha_grid: list[float] = option(factory=lambda: [1.0, 1.2, 1.4, 1.6, 1.8], at_least=1, at_most=2,
                                     note="so that beta >= 1")


@register_grower("compound")
class CompoundGrower(SearchGrower):
    """EfficientNet compound scaling (depth α^φ, width β^φ) to 2^φ measured FLOPs, φ searched per task."""

    Options = CompoundOptions

    def __init__(self, **options: Any) -> None:
        super().__init__(**options)
        self.max_phi = float(self.max_phi)
        self.phi_step = float(self.phi_step)
        self.alpha = float(self.alpha)
        self.beta = float(self.beta) if self.beta is not None else math.sqrt(2 / self.alpha)
        self.alpha_grid = [float(a) for a in self.alpha_grid]
        self.phi_total = 0.0
        self.base_width: dict[str, float] = {}
        self.base_depth: dict[str, float] = {}
        self.base_flops: float | None = None
        self.width_scale = 1.0  # the last width factor: current widths ≈ base widths x this
        self._solved: dict[str, Scaling] = {}

    # ---- search space and growth ------------------------------------------------------------

    def space(self, learner: Any, task: Any, context: Any = None) -> dict[str, Any]:
        from optuna.distributions import CategoricalDistribution, FloatDistribution

        self._register(learner.net)
        steps = math.floor(self.max_phi / self.phi_step + EPS)
        if steps == 0:
            return {}
        space: dict[str, Any] = {"phi": FloatDistribution(0.0, steps * self.phi_step, step=self.phi_step)}
        if self._fitting():
            space["alpha"] = CategoricalDistribution(self.alpha_grid)
        return space

    def no_growth(self, space: dict[str, Any], context: Any = None) -> dict[str, Any]:
        return {"phi": 0.0, **({"alpha": self.alpha_grid[0]} if "alpha" in space else {})}

    def ops_for(self, net: Any, params: dict[str, Any], context: Any = None) -> list[dict[str, Any]]:
        """Widen every group to its solved width, then deepen every depth unit (see `scaling`); φ = 0: none."""
        if float(params["phi"]) <= 0:
            return []
        scaling = self.scaling(net, params)
        return widen_ops(net, scaling.widths, self.mode) + deepen_ops(net, scaling.counts)

    def scaling(self, net: Any, params: dict[str, Any]) -> Scaling:
        """How the point `params` grows `net` to base_flops · 2^Φ' measured FLOPs (see the module docstring)."""
        from selfgrow.nets.cost import inference_flops

        self._register(net)
        alpha = float(params.get("alpha", self.alpha))
        beta = math.sqrt(2 / alpha) if "alpha" in params else self.beta
        phi = self.phi_total + float(params["phi"])
        target = float(self.base_flops) * 2**phi
        upper = target * (1 + FLOPS_TOLERANCE)
        capped = self.max_flops is not None and target > self.max_flops
        if self.max_flops is not None:
            target, upper = min(target, float(self.max_flops)), min(upper, float(self.max_flops))
        key = json.dumps([net.spec, alpha, beta, phi, target, upper, self.base_width, self.base_depth], sort_keys=True)
        if key not in self._solved:
            if float(params["phi"]) <= 0:
                widths, counts, factor = {}, {}, 0.0
            else:
                depths = {point: max(0, math.floor(self.base_depth[unit] * alpha**phi + 0.5) - depth)
                          for unit, (point, depth) in depth_units(net).items()}
                base = {name: self.base_width[name] for name in widenable_groups(net)}
                widths, counts, factor = solve_scaling(net, base, depths, target, upper, start=beta**phi)
            flops = grown_flops(net, widths, counts) if counts or widths else inference_flops(net)
            self._solved[key] = Scaling(widths, counts, target, flops, factor, capped)
        return self._solved[key]

    def chosen(self, net: Any, record: dict[str, Any], outcome: Any, reasons: dict[str, Any]) -> None:
        """Fix α, β after a first-task fit (the most accurate growing candidate's α when none grew)."""
        fitted = None
        if "alpha" in record["params"] and record["params"]["phi"] <= 0:
            growing = [r for r in outcome.finished() if r["params"]["phi"] > 0]
            source = max(growing, key=lambda r: r["accuracy"], default=None)
            fitted = None if source is None else float(source["params"]["alpha"])
        self.advance(net, record["params"], reasons, fitted_alpha=fitted)

    def advance(self, net: Any, params: dict[str, Any], reasons: dict[str, Any],
                fitted_alpha: float | None = None) -> None:
        """The state update after the point `params` was chosen for `net`: Φ += φ, α fixed by a fit, the width factor.

        `fitted_alpha` fixes α when `params` (a fitting point of no growth) does not say it by growing.
        Writes the choice, its target and its measured FLOPs to `reasons["compound"]`.
        """
        scaling = self.scaling(net, params)
        phi = float(params["phi"])
        if "alpha" in params and (phi > 0 or fitted_alpha is not None):
            self.alpha = float(params["alpha"]) if phi > 0 else float(fitted_alpha)
            self.beta = math.sqrt(2 / self.alpha)
        if scaling.width_factor > 0:
            self.width_scale = scaling.width_factor
        self.phi_total += phi
        self._solved.clear()
        reasons["compound"] = {
            "alpha_depth": self.alpha, "beta_width": self.beta, "gamma_resolution": 1.0,
            "alpha_beta2": self.alpha * self.beta**2, "phi": phi, "phi_total": self.phi_total,
            "base_flops": self.base_flops, "target_flops": scaling.target_flops, "flops": scaling.flops,
            "flops_ratio": scaling.flops / self.base_flops, "target_ratio": scaling.target_flops / self.base_flops,
            "width_factor": scaling.width_factor, "capped_by_max_flops": scaling.capped,
        }

    def _fitting(self) -> bool:
        return self.fit_coefficients and not self.history

    def _register(self, net: Any) -> None:
        """Record the base FLOPs (first net seen) and the base size of every width group and depth unit not seen yet.

        A new width group (made by deepening) whose width is a known group's current width copies
        that group's base, so copies keep growing alike; any other gets its width scaled back by
        the last width factor.
        """
        from selfgrow.nets.cost import inference_flops

        units = depth_units(net)  # refuses kinds compound does not scale, before anything is recorded
        if self.base_flops is None:  # a state from before base_flops: the current net scaled back by 2^Φ
            self.base_flops = float(inference_flops(net)) / 2**self.phi_total
        groups = widenable_groups(net)
        copies = {groups[name]: base for name, base in self.base_width.items() if name in groups}
        for name, width in groups.items():
            self.base_width.setdefault(name, copies.get(width, width / self.width_scale))
        for unit, (_, depth) in units.items():
            self.base_depth.setdefault(unit, depth / self.alpha**self.phi_total)

    # ---- state ------------------------------------------------------------------------------

    def state_dict(self) -> dict[str, Any]:
        return {**super().state_dict(), "alpha": self.alpha, "beta": self.beta, "phi_total": self.phi_total,
                "base_width": dict(self.base_width), "base_depth": dict(self.base_depth),
                "base_flops": self.base_flops, "width_scale": self.width_scale}

    def load_state_dict(self, state: dict[str, Any]) -> None:
        super().load_state_dict(state)
        self.alpha = float(state.get("alpha", self.alpha))
        self.beta = float(state.get("beta", self.beta))
        self.phi_total = float(state.get("phi_total", 0.0))
        self.base_width = {k: float(v) for k, v in state.get("base_width", {}).items()}
        self.base_depth = {k: float(v) for k, v in state.get("base_depth", {}).items()}
        self.base_flops = None if state.get("base_flops") is None else float(state["base_flops"])
        self.width_scale = float(state.get("width_scale", self.beta**self.phi_total))
        self._solved.clear()


def solve_scaling(net: Any, base: dict[str, float], depths: dict[str, int], target: float, upper: float,
                  start: float = 1.0) -> tuple[dict[str, int], dict[str, int], float]:
    """Widths ceil(f·base) (never below the current ones) and layer counts whose grown FLOPs are closest to `target`.

    `depths[point]`: the layers to insert at each depth point, reduced (largest count first) while
    they alone exceed `target` at the current widths. Then f is bracketed (from `start`, doubling)
    and narrowed by false position (Illinois) with bisection steps where the integer widths do not
    move; of the two ends the one closer to `target` is kept, the upper one only up to `upper`.
    Returns (widths of the groups that widen, counts, f); f is 0 when no group widens.
    """
    current = widenable_groups(net)
    counted: dict[str, int] = {}

    def flops(widths: dict[str, int], counts: dict[str, int]) -> int:
        key = json.dumps([widths, counts], sort_keys=True)
        if key not in counted:
            counted[key] = grown_flops(net, widths, counts)
        return counted[key]

    counts = dict(depths)
    while sum(counts.values()) and flops({}, counts) > target:
        counts[max(counts, key=lambda point: counts[point])] -= 1
    counts = {point: n for point, n in counts.items() if n}

    def widths_at(f: float) -> dict[str, int]:
        return {name: max(width, math.ceil(f * base[name] - EPS)) for name, width in current.items()}

    lo, flops_lo = 0.0, flops({}, counts)
    if flops_lo >= target or not current:
        return {}, counts, 0.0
    hi = start
    for _ in range(MAX_STEPS):
        flops_hi = flops(widths_at(hi), counts)
        if flops_hi > target:
            break
        lo, flops_lo, hi = hi, flops_hi, 2 * hi
    else:
        raise SelfgrowError(f"compound cannot reach {target:,.0f} inference FLOPs by widening this net.")
    g_lo, g_hi, side = flops_lo - target, flops_hi - target, 0  # false-position values (Illinois halves a stale end)
    for _ in range(MAX_STEPS):
        if min(target - flops_lo, flops_hi - target) <= CLOSE_ENOUGH * target or hi - lo <= 1e-6 * hi:
            break
        f = (lo * g_hi - hi * g_lo) / (g_hi - g_lo)
        if not lo < f < hi or widths_at(f) in (widths_at(lo), widths_at(hi)):
            f = (lo + hi) / 2
        measured = flops(widths_at(f), counts)
        if measured <= target:
            lo, flops_lo, g_lo = f, measured, measured - target
            g_hi, side = (g_hi / 2 if side < 0 else g_hi), -1
        else:
            hi, flops_hi, g_hi = f, measured, measured - target
            g_lo, side = (g_lo / 2 if side > 0 else g_lo), 1
    factor = hi if flops_hi <= upper and flops_hi - target < target - flops_lo else lo
    widths = {name: width for name, width in widths_at(factor).items() if width > current[name]}
    return widths, counts, (factor if widths else 0.0)


def grown_flops(net: Any, widths: dict[str, int], counts: dict[str, int]) -> int:
    """Measured inference FLOPs of `net` widened to `widths`, then deepened by `counts`, without growing its weights.

    The grown spec comes from the nets' own spec edits (`set_path` at each group's spec path, then
    each depth point's `deepening`) on nets built on the meta device (no weights, no random
    draws); `selfgrow.nets.cost.inference_flops` counts it (and caches the count per spec).
    """
    from selfgrow.nets import build
    from selfgrow.nets.cost import inference_flops
    from selfgrow.nets.ops.growth import set_path

    groups = net.width_groups()
    spec = net.spec
    for name, width in widths.items():
        if width > groups[name].width:
            spec = set_path(spec, groups[name].spec_path, int(width))
    with torch.random.fork_rng(devices=[]), torch.device("meta"):
        shadow = build(spec)
        for call in deepen_ops(net, counts):
            shadow = build(shadow.deepening(call["kwargs"]["at"]).spec)
    return int(inference_flops(shadow))


def depth_units(net: Any) -> dict[str, tuple[str, int]]:
    """Depth units: unit name -> (depth point where layers are added, current depth).

    ResNets: one unit per stage (its number of blocks). Layer-list nets (MLP, ConvNet): one unit
    "layers" (the number of layers), grown at the last depth point, next to the head.
    """
    points = [p.name for p in net.depth_points()]
    if net.spec["kind"] == "resnet":
        return {name: (name, stage["blocks"]) for name, stage in zip(points, net.spec["stages"])}
    if net.spec["kind"] in ("mlp", "convnet"):
        return {"layers": (points[-1], len(points))} if points else {}
    raise SelfgrowError(f"compound scales mlp, convnet and resnet nets; this net is {net.spec['kind']!r}.")
