"""Data-parallel training under torchrun (`selfgrow.train.parallel`): two ranks train like one process on the
whole batch; a torchrun group serves a distributed growth search as one worker."""

from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path

import pytest
import torch

from selfgrow.retention.base import Batch
from selfgrow.train.parallel import DataParallel

ENV_THREADS = {"OMP_NUM_THREADS": "1"}
RANK_SCRIPT = Path(__file__).parent / "parallel_rank.py"


def _torchrun(*args: str, nproc: int = 2) -> list[str]:
    return [sys.executable, "-m", "torch.distributed.run", "--standalone", "--nproc_per_node", str(nproc), *args]


def _batch(n: int) -> Batch:
    return Batch(torch.arange(n).float()[:, None], torch.arange(n), torch.zeros(n, dtype=torch.long), torch.arange(n))


def test_ranks_share_the_rows_of_a_batch_and_weight_a_small_batch_kept_whole():
    shares = [DataParallel(rank, 3).share(_batch(8)) for rank in range(3)]
    assert [s.y.tolist() for s, _ in shares] == [[0, 3, 6], [1, 4, 7], [2, 5]]
    assert all(weight == 1.0 for _, weight in shares)
    small, weight = DataParallel(1, 3).share(_batch(2))
    assert small.y.tolist() == [0, 1] and weight == pytest.approx(1 / 3)


@pytest.mark.parametrize("scenario", ["class", "task"])
def test_two_ranks_train_like_one_process_on_the_whole_batch(tmp_path, scenario):
    env = {**os.environ, **ENV_THREADS}
    alone, group = tmp_path / "alone", tmp_path / "group"
    alone.mkdir(), group.mkdir()
    subprocess.run([sys.executable, str(RANK_SCRIPT), str(alone), scenario], check=True, env=env, timeout=300)
    done = subprocess.run(_torchrun(str(RANK_SCRIPT), str(group), scenario), env=env, timeout=300,
                          capture_output=True, text=True)
    assert done.returncode == 0, done.stderr[-3000:]
    rows = [json.loads((folder / f"rank{r}.json").read_text())["trained_rows"] for folder, r in
            ((alone, 0), (group, 0), (group, 1))]
    assert rows[1] + rows[2] == rows[0]  # the ranks split every batch of new samples ...
    assert rows[0] * 0.4 < rows[2] <= rows[1] < rows[0] * 0.6  # ... 4 and 3 of each 7
    single = torch.load(alone / "rank0.pt")
    ranks = [torch.load(group / f"rank{r}.pt") for r in (0, 1)]
    for name, value in single.items():
        assert torch.equal(ranks[0][name], ranks[1][name]), name  # the ranks hold one net
        assert torch.allclose(ranks[0][name], value, atol=1e-5), name  # the one the whole batch trains (SGD: Adam magnifies float noise)
