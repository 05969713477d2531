"""The `compound` grower: EfficientNet compound scaling (Tan & Le 2019), the coefficient φ searched per task.

EfficientNet scales depth by α^φ, width by β^φ and input resolution by γ^φ under α·β²·γ² ≈ 2,
so FLOPs grow by about 2^φ. Here the names follow the paper (α: depth, β: width). Resolution is
not scaled (γ = 1): the stream fixes the input size and its normalisation, so the constraint
becomes α·β² ≈ 2 and the default β is sqrt(2 / α).

Incremental use: the grower keeps the accumulated coefficient Φ (the sum of the φ chosen so far)
and the base sizes of the first net. Before each task the search chooses φ ∈ {0, φ_step, ...,
max_phi} (0: no growth); the net then grows to width ceil(w₀·β^(Φ+φ)) in every width group and
depth ceil(d₀·α^(Φ+φ)): blocks per stage for ResNets (as EfficientNet scales each stage's
repeats), the number of layers for layer-list nets (MLP, ConvNet), whose new layers go next to
the head (the last depth point). A width group created by deepening takes the base width of the
group it copies (else w / β^Φ of its width when first seen). Growth is function-preserving (`widen` in `mode`, then
identity `deepen`), so the candidates inherit every weight.

`fit_coefficients`: on the first task the search also chooses α from `alpha_grid` (β = sqrt(2/α)),
as EfficientNet fits α, β by a small grid search at φ = 1; the chosen α (or, when the first
task chose no growth, the α of the most accurate growing candidate) is kept for later tasks.
"""

from __future__ import annotations

import math
from typing import Any

from selfgrow.errors import SelfgrowError
from selfgrow.growth.base import register_grower
from selfgrow.growth.searching import SearchGrower, deepen_ops, widen_ops, widenable_groups

EPS = 1e-9


@register_grower("compound")
class CompoundGrower(SearchGrower):
    """EfficientNet compound scaling (depth α^φ, width β^φ, α·β² ≈ 2), φ per task by multi-objective search.

    `search_options` are those of `SearchGrower` (n_trials defaults to 6 here).
    """

    def __init__(
        self,
        max_phi: float = 2.0,
        phi_step: float = 1.0,
        alpha: float = 1.2,
        beta: float | None = None,
        fit_coefficients: bool = False,
        alpha_grid: list[float] | None = None,
        **search_options: Any,
    ) -> None:
        super().__init__(**{"n_trials": 6, **search_options})
        if not isinstance(max_phi, (int, float)) or max_phi < 0:
            raise SelfgrowError(f"compound max_phi={max_phi!r} is invalid; accepted: a number >= 0 (0: never grow).")
        if not isinstance(phi_step, (int, float)) or phi_step <= 0:
            raise SelfgrowError(f"compound phi_step={phi_step!r} is invalid; accepted: a number > 0.")
        grid = [1.0, 1.2, 1.4, 1.6, 1.8] if alpha_grid is None else list(alpha_grid)
        for a in [alpha, *grid]:
            if not isinstance(a, (int, float)) or not 1 <= a <= 2:
                raise SelfgrowError(f"compound alpha {a!r} is invalid; accepted: numbers in [1, 2] (so that beta >= 1).")
        if beta is not None and (not isinstance(beta, (int, float)) or beta < 1):
            raise SelfgrowError(f"compound beta={beta!r} is invalid; accepted: null (sqrt(2 / alpha)) or a number >= 1.")
        self.max_phi = float(max_phi)
        self.phi_step = float(phi_step)
        self.alpha = float(alpha)
        self.beta = float(beta) if beta is not None else math.sqrt(2 / alpha)
        self.fit_coefficients = bool(fit_coefficients)
        self.alpha_grid = [float(a) for a in grid]
        self.phi_total = 0.0
        self.base_width: dict[str, float] = {}
        self.base_depth: dict[str, float] = {}

    # ---- search space and growth ------------------------------------------------------------

    def space(self, learner: Any, task: Any) -> dict[str, Any]:
        from optuna.distributions import CategoricalDistribution, FloatDistribution

        self._register(learner.net)
        steps = math.floor(self.max_phi / self.phi_step + EPS)
        if steps == 0:
            return {}
        space: dict[str, Any] = {"phi": FloatDistribution(0.0, steps * self.phi_step, step=self.phi_step)}
        if self._fitting():
            space["alpha"] = CategoricalDistribution(self.alpha_grid)
        return space

    def no_growth(self, space: dict[str, Any]) -> dict[str, Any]:
        return {"phi": 0.0, **({"alpha": self.alpha_grid[0]} if "alpha" in space else {})}

    def ops_for(self, net: Any, params: dict[str, Any]) -> list[dict[str, Any]]:
        """Widen every group to ceil(w₀·β^Φ'), then deepen every depth unit to ceil(d₀·α^Φ'), Φ' = Φ + φ."""
        alpha = float(params.get("alpha", self.alpha))
        beta = math.sqrt(2 / alpha) if "alpha" in params else self.beta
        phi = self.phi_total + float(params["phi"])
        widths = {name: math.ceil(self.base_width[name] * beta**phi - EPS) for name in widenable_groups(net)}
        counts = {}
        for unit, (point, depth) in depth_units(net).items():
            counts[point] = max(0, math.ceil(self.base_depth[unit] * alpha**phi - EPS) - depth)
        return widen_ops(net, widths, self.mode) + deepen_ops(net, counts)

    def chosen(self, net: Any, record: dict[str, Any], outcome: Any, reasons: dict[str, Any]) -> None:
        """Fix α, β after a first-task fit; add the chosen φ to Φ."""
        if "alpha" in record["params"]:
            growing = [r for r in outcome.finished() if r["params"]["phi"] > 0]
            source = record if record["params"]["phi"] > 0 else max(growing, key=lambda r: r["accuracy"], default=None)
            if source is not None:
                self.alpha = float(source["params"]["alpha"])
                self.beta = math.sqrt(2 / self.alpha)
        self.phi_total += float(record["params"]["phi"])
        reasons["compound"] = {"alpha_depth": self.alpha, "beta_width": self.beta, "gamma_resolution": 1.0,
                               "alpha_beta2": self.alpha * self.beta**2, "phi": float(record["params"]["phi"]),
                               "phi_total": self.phi_total}

    def _fitting(self) -> bool:
        return self.fit_coefficients and not self.history

    def _register(self, net: Any) -> None:
        """Record the base size of every width group and depth unit not seen yet.

        A new width group (made by deepening) whose width is a known group's current width copies
        that group's base, so copies keep growing alike; any other gets its width scaled back by β^Φ.
        """
        scale = self.beta**self.phi_total
        copies = {math.ceil(base * scale - EPS): base for base in self.base_width.values()}
        for name, width in widenable_groups(net).items():
            self.base_width.setdefault(name, copies.get(width, width / scale))
        for unit, (_, depth) in depth_units(net).items():
            self.base_depth.setdefault(unit, depth / self.alpha**self.phi_total)

    # ---- state ------------------------------------------------------------------------------

    def state_dict(self) -> dict[str, Any]:
        return {**super().state_dict(), "alpha": self.alpha, "beta": self.beta, "phi_total": self.phi_total,
                "base_width": dict(self.base_width), "base_depth": dict(self.base_depth)}

    def load_state_dict(self, state: dict[str, Any]) -> None:
        super().load_state_dict(state)
        self.alpha = float(state.get("alpha", self.alpha))
        self.beta = float(state.get("beta", self.beta))
        self.phi_total = float(state.get("phi_total", 0.0))
        self.base_width = {k: float(v) for k, v in state.get("base_width", {}).items()}
        self.base_depth = {k: float(v) for k, v in state.get("base_depth", {}).items()}


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
