"""Figures that draw a grower's own reasons (paths of a modular net, RSA conflicts, Taylor scores).

Each module of this package defines `figures(results, plots_dir) -> dict[str, Path]`: the titled
figures it can draw from the run's growth log, none when the run holds no plan of its grower.
The report collects them all, so a grower brings its figures by adding one module here.
"""

from __future__ import annotations

import importlib
import pkgutil
from pathlib import Path

from selfgrow.report.results import Results


def plans_of(results: Results, grower: str) -> list[dict]:
    """The run's growth plans made by `grower` (the registered name the learner writes in each plan)."""
    return [plan for plan in results.growth if plan.get("grower") == grower]


def grower_figures(results: Results, plots_dir: Path) -> dict[str, Path]:
    """Every figure that this package's modules draw for the run, in module-name order."""
    drawn: dict[str, Path] = {}
    for info in sorted(pkgutil.iter_modules(__path__), key=lambda m: m.name):
        module = importlib.import_module(f"{__name__}.{info.name}")
        drawn.update(module.figures(results, Path(plots_dir)))
    return drawn
