"""Shared fixtures: the real data root (skip cleanly without it) and deterministic seeding."""

from __future__ import annotations

import os
from pathlib import Path

import pytest
import torch

REPO = Path(__file__).resolve().parents[1]


def shared_data_root() -> Path | None:
    """The offline dataset folder: SELFGROW_DATA, else ../shared/datasets beside the repo."""
    env = os.environ.get("SELFGROW_DATA")
    candidates = [Path(env)] if env else []
    candidates.append(REPO.parent / "shared" / "datasets")
    for c in candidates:
        if (c / "mnist" / "train.npz").exists():
            return c
    return None


@pytest.fixture
def real_data_root() -> Path:
    root = shared_data_root()
    if root is None:
        pytest.skip("the offline datasets (../shared/datasets or SELFGROW_DATA) are not present")
    return root


@pytest.fixture(scope="session", autouse=True)
def _knowledge_base_of_the_session(tmp_path_factory):
    """Searches record into a journal of the test session (and its subprocesses), never into ~/.cache."""
    os.environ["SELFGROW_META"] = f"journal:{tmp_path_factory.mktemp('meta') / 'meta.journal'}"


@pytest.fixture(scope="session", autouse=True)
def _one_thread():
    """Tiny test nets run fastest on one thread; more threads only contend on a loaded machine."""
    torch.set_num_threads(1)


@pytest.fixture(autouse=True)
def _deterministic():
    torch.manual_seed(0)
    yield
