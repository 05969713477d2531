"""Every shipped bench file parses and every run it describes is a valid config (nothing is run); a file without
`methods` is one run's config (e.g. the grow-sequence search's) and must be a valid run config."""

from __future__ import annotations

from pathlib import Path

import pytest

import yaml

from selfgrow.bench import load_bench
from selfgrow.config import from_dict

BENCH_FILES = sorted((Path(__file__).resolve().parents[1] / "benchmarks").glob("*.yaml"))


def test_there_are_bench_files():
    assert len(BENCH_FILES) >= 10


@pytest.mark.parametrize("path", BENCH_FILES, ids=lambda p: p.stem)
def test_bench_file_is_valid(path, tmp_path):
    data = yaml.safe_load(path.read_text())
    if "methods" not in data:
        assert from_dict(data).stream.name
        return
    bench = load_bench(path, output=tmp_path)
    assert bench.jobs() and all(config["output"].startswith(str(tmp_path)) for _, _, config in bench.jobs())
