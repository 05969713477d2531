"""Progress bars for long phases (search trials, candidate rungs, MNTDP paths, bench runs) with a remaining-time estimate."""

from __future__ import annotations

import sys

from tqdm import tqdm


def progress_bar(total: int, desc: str, unit: str, show: bool | None = None) -> tqdm:
    """A tqdm bar over `total` units that shows the elapsed and the estimated remaining time; drawn when `show`
    (None: only when stderr is a terminal, so logs and tests stay clean) and cleared when closed."""
    visible = sys.stderr.isatty() if show is None else bool(show)
    return tqdm(total=total, desc=desc, unit=unit, leave=False, disable=not visible, dynamic_ncols=True,
                bar_format="{desc}: {n_fmt}/{total_fmt} {unit}s [{elapsed}<{remaining}]{postfix}")
