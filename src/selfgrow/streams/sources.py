"""The datasets a stream is built from: loaded lazily, once per build, or given directly."""

from __future__ import annotations

import hashlib
import os
from collections.abc import Mapping

from selfgrow.data.arrays import DatasetArrays
from selfgrow.data.registry import load


class Sources:
    """Datasets by name, each loaded at most once (a 100-task stream loads each dataset once).

    `given` maps names to ready `DatasetArrays` (tests, or data already in memory); other names
    go through `selfgrow.data.load(name, data_dir)`. A `DatasetArrays` passed where a name is
    expected is used as is.
    """

    def __init__(self, data_dir: str | os.PathLike | None = None, given: Mapping[str, DatasetArrays] | None = None) -> None:
        self.data_dir = data_dir
        self._loaded: dict[str, DatasetArrays] = dict(given or {})

    def get(self, dataset: str | DatasetArrays, **options) -> DatasetArrays:
        """The dataset called `dataset` (loading it on first use), or `dataset` itself."""
        if isinstance(dataset, DatasetArrays):
            return dataset
        key = dataset if not options else f"{dataset}{sorted(options.items())}"
        if key not in self._loaded:
            self._loaded[key] = load(dataset, data_dir=self.data_dir, **options)
        return self._loaded[key]


def seed_for(seed: int, *parts: object) -> int:
    """A sub-seed derived from the stream seed and some names; the same on every run and machine."""
    text = "/".join(map(str, (seed, *parts))).encode()
    return int.from_bytes(hashlib.sha256(text).digest()[:7], "little")
