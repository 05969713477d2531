"""Untrusted files: loading a checkpoint never executes pickled code, even when its hashes were forged to match."""

from __future__ import annotations

import hashlib
import json
from pathlib import Path

import pytest
import torch

from selfgrow.errors import SelfgrowError
from selfgrow.train.checkpoint import (
    MANIFEST,
    STATE,
    TENSORS,
    checkpoint_dir,
    load_checkpoint,
    load_latest,
)


class Payload:
    """Unpickling this object would create the file `marker` (stands for arbitrary code)."""

    def __init__(self, marker: Path) -> None:
        self.marker = marker

    def __reduce__(self):
        return Path.touch, (self.marker,)


def _forged_checkpoint(run_dir: Path, marker: Path) -> Path:
    """A checkpoint folder whose tensors.pt holds a malicious pickle and whose manifest hashes match it."""
    folder = checkpoint_dir(run_dir, 0)
    folder.mkdir(parents=True)
    torch.save({"t0": torch.zeros(2), "evil": Payload(marker)}, folder / TENSORS)
    (folder / STATE).write_text(
        json.dumps(
            {"format": 1, "task_index": 0, "learner": {"w": {"__tensor__": "t0"}}}
        )
    )
    digest = {
        name: hashlib.sha256((folder / name).read_bytes()).hexdigest()
        for name in (TENSORS, STATE)
    }
    (folder / MANIFEST).write_text(
        json.dumps({"format": 1, "task_index": 0, "sha256": digest})
    )
    return folder


def test_a_malicious_pickle_in_tensors_pt_is_refused_not_executed(tmp_path):
    marker = tmp_path / "pwned"
    _forged_checkpoint(tmp_path / "run", marker)
    with pytest.raises(
        SelfgrowError, match=r"task_000 cannot be used: .*Weights only load failed"
    ):
        load_checkpoint(tmp_path / "run", 0)
    assert not marker.exists()
    with (
        pytest.warns(RuntimeWarning),
        pytest.raises(SelfgrowError, match="No readable checkpoint"),
    ):
        load_latest(tmp_path / "run")
    assert not marker.exists()
