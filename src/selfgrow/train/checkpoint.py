"""Per-task checkpoints a killed run resumes from: atomic, hash-verified, loadable without executing pickle.

Layout: `run_dir/checkpoints/task_XXX/` holds `tensors.pt` (a flat dict name -> tensor, read with
`torch.load(weights_only=True)`), `state.json` (everything else as plain data, tensors replaced by
`{"__tensor__": name}` references) and `manifest.json` (format, task index, sha256 of both files),
written last. The folder is assembled under a temporary name and renamed into place, so a
checkpoint either exists whole or not at all; a checkpoint whose hashes do not match is skipped
with a warning in favour of the previous one. Only the newest `KEEP` checkpoints are kept.
"""

from __future__ import annotations

import hashlib
import io
import json
import os
import pickle
import random
import re
import shutil
import warnings
from collections.abc import Sequence
from pathlib import Path
from typing import Any

import numpy as np
import torch

from selfgrow.errors import SelfgrowError
from selfgrow.streams.task import Task

FORMAT = 1
KEEP = 2
TENSORS, STATE, MANIFEST = "tensors.pt", "state.json", "manifest.json"
_NAME = re.compile(r"^task_(\d+)$")


def checkpoint_dir(run_dir: str | Path, task_index: int) -> Path:
    """Folder of the checkpoint written after task `task_index`."""
    return Path(run_dir) / "checkpoints" / f"task_{task_index:03d}"


def save_checkpoint(run_dir: str | Path, task_index: int, learner: Any, results: dict[str, Any]) -> Path:
    """Write the learner, the global RNG states and `results` after task `task_index`; returns the folder."""
    state = {
        "format": FORMAT,
        "task_index": task_index,
        "learner": learner.state_dict(),
        "rng": rng_state(),
        "results": results,
    }
    tensors: dict[str, torch.Tensor] = {}
    plain = split_tensors(state, tensors)
    buffer = io.BytesIO()
    torch.save(tensors, buffer)
    files = {TENSORS: buffer.getvalue(), STATE: json.dumps(plain).encode()}
    manifest = {
        "format": FORMAT,
        "task_index": task_index,
        "sha256": {name: hashlib.sha256(data).hexdigest() for name, data in files.items()},
    }
    final = checkpoint_dir(run_dir, task_index)
    final.parent.mkdir(parents=True, exist_ok=True)
    tmp = final.parent / f".{final.name}.tmp-{os.getpid()}"
    shutil.rmtree(tmp, ignore_errors=True)
    tmp.mkdir()
    try:
        for name, data in files.items():
            _write_synced(tmp / name, data)
        _write_synced(tmp / MANIFEST, json.dumps(manifest, indent=1).encode())
        _fsync_dir(tmp)
    except BaseException:
        shutil.rmtree(tmp, ignore_errors=True)  # a failed write (e.g. disk full) leaves the older checkpoints alone
        raise
    if final.exists():
        stale = final.parent / f".{final.name}.old-{os.getpid()}"
        os.replace(final, stale)
        os.replace(tmp, final)
        shutil.rmtree(stale)
    else:
        os.replace(tmp, final)
    _fsync_dir(final.parent)
    _prune(final.parent)
    return final


def load_checkpoint(run_dir: str | Path, task_index: int) -> dict[str, Any]:
    """The verified state saved after task `task_index` (SelfgrowError when missing or corrupt)."""
    folder = checkpoint_dir(run_dir, task_index)
    try:
        manifest = json.loads((folder / MANIFEST).read_text())
        if manifest.get("format") != FORMAT:
            raise ValueError(f"format {manifest.get('format')!r} is not {FORMAT}")
        raw = {}
        for name in (TENSORS, STATE):
            raw[name] = (folder / name).read_bytes()
            if hashlib.sha256(raw[name]).hexdigest() != manifest["sha256"][name]:
                raise ValueError(f"{name} does not match its sha256")
        tensors = torch.load(io.BytesIO(raw[TENSORS]), weights_only=True, map_location="cpu")
        return join_tensors(json.loads(raw[STATE]), tensors)
    except (OSError, ValueError, KeyError, RuntimeError, EOFError, pickle.UnpicklingError) as error:
        raise SelfgrowError(f"Checkpoint {folder} cannot be used: {error}.") from error


def checkpoint_indices(run_dir: str | Path) -> list[int]:
    """Task indices that have a checkpoint folder, oldest first."""
    root = Path(run_dir) / "checkpoints"
    if not root.is_dir():
        return []
    return sorted(int(m.group(1)) for p in root.iterdir() if (m := _NAME.match(p.name)) and p.is_dir())


def load_latest(run_dir: str | Path) -> tuple[int, dict[str, Any]] | None:
    """(task index, state) of the newest readable checkpoint, None when there is none.

    A corrupt newest checkpoint is skipped with a warning; when checkpoints exist but none is
    readable, SelfgrowError says so.
    """
    indices = checkpoint_indices(run_dir)
    for index in reversed(indices):
        try:
            return index, load_checkpoint(run_dir, index)
        except SelfgrowError as error:
            warnings.warn(f"{error} Falling back to the previous checkpoint.", RuntimeWarning, stacklevel=2)
    if indices:
        raise SelfgrowError(f"No readable checkpoint in {Path(run_dir) / 'checkpoints'}; start the run afresh.")
    return None


def restore(learner: Any, state: dict[str, Any], tasks: Sequence[Task] | None = None) -> dict[str, Any]:
    """Put a loaded state back into `learner` and the global RNGs; returns the saved results.

    `tasks` (the stream's tasks) re-links the tasks the learner has seen.
    """
    learner.load_state_dict(state["learner"], tasks)
    set_rng_state(state["rng"])
    return state["results"]


# ---- RNG states ---------------------------------------------------------------------------------


def rng_state() -> dict[str, Any]:
    """The global RNG states: torch CPU (and CUDA when initialised), numpy, python `random`."""
    kind, keys, pos, has_gauss, cached = np.random.get_state()
    version, internal, gauss_next = random.getstate()
    return {
        "torch": torch.get_rng_state(),
        "cuda": torch.cuda.get_rng_state_all() if torch.cuda.is_available() and torch.cuda.is_initialized() else [],
        "numpy": {"kind": kind, "keys": keys.tolist(), "pos": pos, "has_gauss": has_gauss, "cached": cached},
        "python": {"version": version, "internal": list(internal), "gauss_next": gauss_next},
    }


def set_rng_state(state: dict[str, Any]) -> None:
    """Restore what `rng_state` returned (CUDA states only where this machine has the same GPUs)."""
    torch.set_rng_state(state["torch"])
    if state["cuda"] and torch.cuda.is_available() and len(state["cuda"]) == torch.cuda.device_count():
        torch.cuda.set_rng_state_all(state["cuda"])
    n = state["numpy"]
    np.random.set_state((n["kind"], np.asarray(n["keys"], dtype=np.uint32), n["pos"], n["has_gauss"], n["cached"]))
    p = state["python"]
    random.setstate((p["version"], tuple(p["internal"]), p["gauss_next"]))


# ---- plain data <-> JSON + flat tensors ---------------------------------------------------------


def split_tensors(obj: Any, tensors: dict[str, torch.Tensor]) -> Any:
    """JSON-ready copy of `obj` with each tensor moved into `tensors` and replaced by a reference."""
    if isinstance(obj, torch.Tensor):
        key = f"t{len(tensors)}"
        tensors[key] = obj.detach().cpu().clone()
        return {"__tensor__": key}
    if isinstance(obj, np.ndarray):
        return {"__ndarray__": split_tensors(torch.from_numpy(np.ascontiguousarray(obj)), tensors)["__tensor__"]}
    if isinstance(obj, dict):
        if all(isinstance(k, str) for k in obj):
            return {k: split_tensors(v, tensors) for k, v in obj.items()}
        return {"__items__": [[split_tensors(k, tensors), split_tensors(v, tensors)] for k, v in obj.items()]}
    if isinstance(obj, (list, tuple)):
        return [split_tensors(v, tensors) for v in obj]
    if isinstance(obj, np.generic):
        return obj.item()
    if obj is None or isinstance(obj, (bool, int, float, str)):
        return obj
    raise SelfgrowError(f"Cannot checkpoint a value of type {type(obj).__name__}; state must be plain data and tensors.")


def join_tensors(obj: Any, tensors: dict[str, torch.Tensor]) -> Any:
    """Inverse of `split_tensors` (tuples come back as lists)."""
    if isinstance(obj, dict):
        if set(obj) == {"__tensor__"}:
            return tensors[obj["__tensor__"]]
        if set(obj) == {"__ndarray__"}:
            return tensors[obj["__ndarray__"]].numpy()
        if set(obj) == {"__items__"}:
            return {_hashable(join_tensors(k, tensors)): join_tensors(v, tensors) for k, v in obj["__items__"]}
        return {k: join_tensors(v, tensors) for k, v in obj.items()}
    if isinstance(obj, list):
        return [join_tensors(v, tensors) for v in obj]
    return obj


def _hashable(key: Any) -> Any:
    return tuple(_hashable(k) for k in key) if isinstance(key, list) else key


# ---- files --------------------------------------------------------------------------------------


def _write_synced(path: Path, data: bytes) -> None:
    with open(path, "wb") as f:
        f.write(data)
        f.flush()
        os.fsync(f.fileno())


def _fsync_dir(path: Path) -> None:
    """Persist a folder's entries (renames) where the platform allows opening folders."""
    try:
        fd = os.open(path, os.O_RDONLY)
    except OSError:
        return
    try:
        os.fsync(fd)
    except OSError:
        pass
    finally:
        os.close(fd)


def _prune(root: Path) -> None:
    """Keep the newest `KEEP` checkpoints; drop older ones and leftovers of interrupted saves."""
    indices = checkpoint_indices(root.parent)
    for index in indices[:-KEEP]:
        shutil.rmtree(checkpoint_dir(root.parent, index), ignore_errors=True)
    for leftover in root.glob(".task_*"):
        shutil.rmtree(leftover, ignore_errors=True)
