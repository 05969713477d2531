"""Reliability of runs: Ctrl-C, SIGKILL at any moment (also mid-write), corrupt checkpoints, disk full, resume checks."""

from __future__ import annotations

import errno
import json
import os
import random
import shutil
import signal
import subprocess
import sys
import time
from pathlib import Path
from unittest import mock

import pytest
import yaml

from selfgrow import atomic
from selfgrow.cli import main
from selfgrow.config import from_dict
from selfgrow.experiment import run
from selfgrow.train.checkpoint import checkpoint_indices, load_checkpoint

CONFIG = {
    "name": "reference",
    "seed": 3,
    "stream": {
        "name": "split",
        "dataset": "digits",
        "scenario": "class",
        "n_tasks": 3,
        "classes_per_task": 2,
    },
    "net": {"preset": "mlp-tiny"},
    "growth": {"name": "schedule", "options": {"width_per_class": 2}},
    "retention": [{"name": "replay", "options": {"budget": 40}}],
    "trainer": {
        "epochs": 3,
        "batch_size": 32,
        "optimizer": "adam",
        "lr": 0.003,
        "curve_batches": 2,
        "progress": False,
    },
}
# One thread in every process: the numbers of in-process and subprocess runs must agree exactly.
ENV = {
    **os.environ,
    "OMP_NUM_THREADS": "1",
    "MKL_NUM_THREADS": "1",
    "PYTHONUNBUFFERED": "1",
}


def _config(folder: Path, name: str = "run", **trainer) -> dict:
    config = json.loads(json.dumps(CONFIG))
    config.update(name=name, output=str(folder))
    config["trainer"].update(trainer)
    return config


def _config_file(folder: Path, config: dict) -> Path:
    path = folder / f"{config['name']}.yaml"
    path.write_text(yaml.safe_dump(config))
    return path


def _numbers(run_dir: Path) -> tuple[list, list]:
    results = json.loads((run_dir / "results.json").read_text())
    return results["accuracy"], [c["params"] for c in results["costs"]]


@pytest.fixture(scope="module")
def reference(tmp_path_factory) -> Path:
    """The uninterrupted run every interrupted one must end up equal to."""
    folder = tmp_path_factory.mktemp("reference")
    run(from_dict(_config(folder, "reference")), quiet=True)
    return folder / "reference"


def _selfgrow(*args: str) -> subprocess.Popen:
    return subprocess.Popen(
        [sys.executable, "-m", "selfgrow.cli", *args],
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        text=True,
        env=ENV,
    )


def test_sigint_saves_the_finished_tasks_and_says_how_to_resume(tmp_path):
    config = _config(
        tmp_path, epochs=40
    )  # long tasks: the signal lands during training
    run_dir = tmp_path / "run"
    process = _selfgrow("run", "--config", str(_config_file(tmp_path, config)))
    deadline = time.time() + 120
    while not (
        run_dir / "growth.jsonl"
    ).exists():  # the last file of task 0's save: task 1 is under way
        assert process.poll() is None and time.time() < deadline, process.communicate()
        time.sleep(0.005)
    process.send_signal(signal.SIGINT)
    _, err = process.communicate(timeout=60)
    assert process.returncode == 130, err
    assert "Traceback" not in err
    assert err.strip().splitlines()[-1] == (
        f"selfgrow run: Interrupted; the checkpoint after task 0 is in {run_dir}. "
        f"Continue with: selfgrow run --resume {run_dir}"
    )
    assert (
        checkpoint_indices(run_dir) == [0]
        and load_checkpoint(run_dir, 0)["task_index"] == 0
    )
    assert len(json.loads((run_dir / "results.json").read_text())["accuracy"]) == 1
    # The advice works (with fewer epochs here, accepted by --force, to keep the test short).
    shorter = _config_file(
        tmp_path, {**config, "trainer": {**config["trainer"], "epochs": 1}}
    )
    assert (
        main(["run", "--resume", str(run_dir), "--config", str(shorter), "--force"])
        == 0
    )
    assert len(json.loads((run_dir / "results.json").read_text())["accuracy"]) == 3


def test_sigkill_at_random_moments_then_resume_equals_the_uninterrupted_run(
    tmp_path, reference
):
    """Two kills at random delays after start-up (seeded), each followed by `--resume`, then a last resume."""
    config_file = _config_file(tmp_path, _config(tmp_path))
    run_dir = tmp_path / "run"
    delays = random.Random(7)
    args = ["run", "--config", str(config_file)]
    for _ in range(2):
        process = _selfgrow(*args)
        assert process.stdout.readline(), (
            process.communicate()
        )  # the first line: stream and learner are built
        time.sleep(delays.uniform(0.0, 1.0))
        process.send_signal(signal.SIGKILL)
        process.wait()
        args = ["run", "--resume", str(run_dir)]
    assert main(args) == 0
    assert _numbers(run_dir) == _numbers(reference)


def test_kill_at_every_kind_of_write_point_leaves_a_resumable_folder(
    tmp_path, reference
):
    """A forked child dies (os._exit, no clean-up) just before its N-th fsync or rename, for N spread over a
    whole run: mid-checkpoint, between checkpoint and results, mid-report. Resuming gives the reference numbers."""
    total = _count_write_points(tmp_path / "count")
    points = sorted({1, 2, *range(3, total + 1, max(1, total // 7)), total})
    for n in points:
        folder = tmp_path / f"kill_{n}"
        pid = os.fork()
        if pid == 0:  # pragma: no cover - runs in the child
            try:
                _run_dying_at(folder, n)
            finally:
                os._exit(1)
        _, status = os.waitpid(pid, 0)
        assert os.WEXITSTATUS(status) == 137, f"the child did not reach write point {n}"
        run_dir = folder / "run"
        config = from_dict(_config(folder))
        if (run_dir / "config.yaml").exists():
            run(config, resume_dir=run_dir, quiet=True)
        else:  # died before anything was saved: nothing to resume, a fresh start is accepted
            run(config, quiet=True)
        assert _numbers(run_dir) == _numbers(reference), (
            f"killed at write point {n} of {total}"
        )
        assert not list(run_dir.rglob(".*tmp*")), (
            "leftover temporary files after the resume"
        )


def _write_points(on_call) -> mock._patch:
    """Patch os.fsync and os.replace (every atomic write and checkpoint uses both) to call `on_call` first."""
    real_fsync, real_replace = os.fsync, os.replace

    def fsync(fd):
        on_call()
        return real_fsync(fd)

    def replace(src, dst):
        on_call()
        return real_replace(src, dst)

    return mock.patch.multiple(os, fsync=fsync, replace=replace)


def _count_write_points(folder: Path) -> int:
    calls = []
    with _write_points(lambda: calls.append(1)):
        run(from_dict(_config(folder)), quiet=True)
    return len(calls)


def _run_dying_at(folder: Path, n: int) -> None:  # pragma: no cover - runs in the child
    calls = []

    def maybe_die():
        calls.append(1)
        if len(calls) == n:
            os._exit(137)

    with _write_points(maybe_die):
        run(from_dict(_config(folder)), quiet=True)


def test_corrupt_latest_checkpoint_falls_back_with_a_warning_through_the_cli(
    tmp_path, reference, capsys
):
    run_dir = tmp_path / "copy"
    shutil.copytree(reference, run_dir)
    tensors = run_dir / "checkpoints" / "task_002" / "tensors.pt"
    data = bytearray(tensors.read_bytes())
    data[len(data) // 2] ^= 0xFF
    tensors.write_bytes(bytes(data))
    with pytest.warns(
        RuntimeWarning,
        match=r"task_002 cannot be used: tensors.pt does not match its sha256.*previous",
    ):
        assert main(["run", "--resume", str(run_dir)]) == 0
    assert _numbers(run_dir) == _numbers(
        reference
    )  # task 2 was learned again from task 1's checkpoint
    assert (
        load_checkpoint(run_dir, 2)["task_index"] == 2
    )  # and its checkpoint rewritten whole


def test_resume_lists_every_differing_field_and_force_accepts_them(
    tmp_path, reference, capsys
):
    run_dir = tmp_path / "copy"
    shutil.copytree(reference, run_dir)
    changed = _config(tmp_path, "reference", epochs=4)
    changed["seed"] = 5
    config_file = _config_file(tmp_path, changed)
    assert main(["run", "--resume", str(run_dir), "--config", str(config_file)]) == 2
    err = capsys.readouterr().err.strip()
    assert (
        len(err.splitlines()) == 1
        and "in seed, trainer.epochs;" in err
        and "--force" in err
    )
    assert (
        main(["run", "--resume", str(run_dir), "--config", str(config_file), "--force"])
        == 0
    )
    saved = yaml.safe_load((run_dir / "config.yaml").read_text())
    assert saved["seed"] == 5 and saved["trainer"]["epochs"] == 4


def _disk_full_after(marker: Path):
    """os.fsync raising ENOSPC once `marker` exists (a full disk from then on)."""
    real_fsync = os.fsync

    def fsync(fd):
        if marker.exists():
            raise OSError(errno.ENOSPC, os.strerror(errno.ENOSPC))
        return real_fsync(fd)

    return mock.patch.object(os, "fsync", fsync)


def test_disk_full_keeps_the_previous_files_and_says_so(tmp_path, reference, capsys):
    config = _config(tmp_path)
    run_dir = tmp_path / "run"
    with _disk_full_after(
        run_dir / "growth.jsonl"
    ):  # growth.jsonl is the last file of task 0's save
        assert main(["run", "--config", str(_config_file(tmp_path, config))]) == 2
    err = capsys.readouterr().err.strip()
    assert err == (
        f"selfgrow run: error: Could not write task 1 to {run_dir} (No space left on device); the files of task 0 "
        f"are intact. Free space (or fix permissions) and continue with: selfgrow run --resume {run_dir}"
    )
    assert (
        checkpoint_indices(run_dir) == [0]
        and load_checkpoint(run_dir, 0)["task_index"] == 0
    )
    assert len(json.loads((run_dir / "results.json").read_text())["accuracy"]) == 1
    assert len((run_dir / "growth.jsonl").read_text().splitlines()) == 1
    assert not list(run_dir.rglob(".*tmp*")), "a failed write left temporary files"
    assert main(["run", "--resume", str(run_dir)]) == 0
    assert _numbers(run_dir) == _numbers(reference)


def test_a_failed_atomic_write_keeps_the_old_file(tmp_path):
    target = tmp_path / "results.json"
    target.write_text("old")
    with _disk_full_after(tmp_path), pytest.raises(OSError, match="No space left"):
        atomic.atomic_write_text(target, "new")
    assert target.read_text() == "old" and [p.name for p in tmp_path.iterdir()] == [
        "results.json"
    ]


def test_an_unwritable_output_folder_is_one_sentence(tmp_path, capsys):
    from selfgrow.cli import main

    blocker = tmp_path / "file"
    blocker.write_text("not a folder")
    args = ["run", "--stream.dataset", "digits", "--stream.n_tasks", "1", "--trainer.epochs", "1",
            "--output", str(blocker)]
    assert main(args) == 2
    err = capsys.readouterr().err.strip()
    assert "Cannot write the run folder" in err and "writable --output" in err and len(err.splitlines()) == 1


def test_a_report_that_cannot_be_written_keeps_the_run_and_says_how_to_redraw(tmp_path, capsys, monkeypatch):
    import errno

    from selfgrow import experiment
    from selfgrow.cli import main

    def full(*_args, **_kwargs):
        raise OSError(errno.ENOSPC, "No space left on device")

    monkeypatch.setattr(experiment, "write_report", full)
    args = ["run", "--stream.dataset", "digits", "--stream.n_tasks", "1", "--stream.classes_per_task", "2",
            "--trainer.epochs", "1", "--output", str(tmp_path), "--name", "r"]
    assert main(args) == 2
    err = capsys.readouterr().err.strip()
    assert "No space left on device" in err and f"selfgrow report {tmp_path / 'r'}" in err
    assert (tmp_path / "r" / "results.json").is_file()


def test_ctrl_c_is_deferred_to_the_next_batch_and_a_second_one_stops_at_once():
    import os

    from selfgrow.train.interrupt import check, deferred_interrupts

    with deferred_interrupts():
        os.kill(os.getpid(), signal.SIGINT)  # the first Ctrl-C only asks for a stop ...
        time.sleep(0.01)
        with pytest.raises(KeyboardInterrupt):
            check()  # ... which the next batch boundary turns into KeyboardInterrupt
        with pytest.raises(KeyboardInterrupt):
            os.kill(os.getpid(), signal.SIGINT)  # a second one stops at once
            time.sleep(0.1)
    check()  # outside the block nothing is pending
