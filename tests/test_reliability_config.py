"""Reliability of config and CLI input: every mistake exits 2 with one sentence, before any work is done."""

from __future__ import annotations

import contextlib
import io
from pathlib import Path
from unittest import mock

import pytest
import yaml
from hypothesis import given, settings
from hypothesis import strategies as st

from selfgrow import experiment
from selfgrow.cli import main
from selfgrow.config import RunConfig, from_dict, to_dict
from selfgrow.errors import SelfgrowError

SIZES = [
    "trainer.epochs",
    "trainer.batch_size",
    "trainer.eval_batch_size",
    "stream.n_tasks",
    "stream.classes_per_task",
    "stream.max_train_per_class",
    "trainer.patience",
]
INTEGERS = [*SIZES, "seed"]
FLOATS = [
    "trainer.lr",
    "trainer.momentum",
    "trainer.weight_decay",
    "stream.val_fraction",
]
FEW = settings(max_examples=15, deadline=None, derandomize=True)


def _run_cli(*args: str, work: Path | None = None) -> tuple[int, str]:
    """`selfgrow run ARGS` in-process: (exit code, stderr).

    Without `work` (an output folder), building the stream fails the test: the error must come first.
    """

    def refuse(config):
        raise AssertionError("the stream was built although the config is invalid")

    err = io.StringIO()
    with contextlib.ExitStack() as stack:
        stack.enter_context(contextlib.redirect_stderr(err))
        stack.enter_context(contextlib.redirect_stdout(io.StringIO()))
        if not work:
            stack.enter_context(mock.patch.object(experiment, "build_stream", refuse))
        code = main(
            ["run", *args, "--output", str(work or "/nonexistent/never-written")]
        )
    return code, err.getvalue().strip()


def _assert_one_sentence(code: int, err: str, *names: str) -> None:
    assert code == 2, err
    assert len(err.splitlines()) == 1 and "Traceback" not in err, err
    assert "accepted" in err or "Did you mean" in err, err
    for name in names:
        assert name in err, (name, err)


@FEW
@given(key=st.sampled_from(SIZES), value=st.integers(max_value=0))
def test_zero_or_negative_sizes_are_refused(key, value):
    code, err = _run_cli(f"--{key}", str(value))
    _assert_one_sentence(code, err, repr(key), str(value), ">= 1")


@FEW
@given(
    key=st.sampled_from(INTEGERS),
    value=st.text("abcxyz.", min_size=1, max_size=4) | st.floats(0.5, 9.5),
)
def test_non_integers_for_integer_fields_are_refused(key, value):
    code, err = _run_cli(f"--{key}", str(value))
    _assert_one_sentence(code, err, repr(key), "an integer")


@FEW
@given(
    key=st.sampled_from(FLOATS),
    value=st.sampled_from(["nan", "inf", "-inf", "-0.5", "-3", "fast"]),
)
def test_bad_numbers_are_refused(key, value):
    code, err = _run_cli(f"--{key}={value}")
    _assert_one_sentence(code, err, repr(key))


@pytest.mark.parametrize("value", ["1", "1.5", "-0.1"])
def test_val_fraction_outside_zero_one_is_refused(value):
    code, err = _run_cli(f"--stream.val_fraction={value}")
    _assert_one_sentence(code, err, "'stream.val_fraction'", value, "in [0, 1)")


@FEW
@given(section=st.sampled_from(["trainer", "stream"]), data=st.data())
def test_misspelt_flags_suggest_the_intended_one(section, data):
    names = sorted(to_dict(RunConfig())[section])
    name = data.draw(st.sampled_from([n for n in names if len(n) >= 7]))
    cut = data.draw(st.integers(1, len(name) - 2))
    code, err = _run_cli(f"--{section}.{name[:cut] + name[cut + 1 :]}", "1")
    _assert_one_sentence(code, err, f"Did you mean '--{section}.{name}'?")


@FEW
@given(data=st.data())
def test_misspelt_keys_in_a_config_mapping_suggest_the_intended_one(data):
    name = data.draw(
        st.sampled_from([n for n in to_dict(RunConfig())["trainer"] if len(n) >= 7])
    )
    cut = data.draw(st.integers(1, len(name) - 2))
    with pytest.raises(SelfgrowError, match=f"Did you mean {name!r}"):
        from_dict({"trainer": {name[:cut] + name[cut + 1 :]: 1}})


@FEW
@given(
    key=st.sampled_from(["epochs", "lr", "amp", "lr_grid", "optimizer"]),
    value=st.one_of(
        st.booleans(),
        st.text(max_size=3),
        st.lists(st.integers(), max_size=2),
        st.dictionaries(st.text(max_size=2), st.integers(), max_size=1),
    ),
)
def test_wrong_types_in_a_config_mapping_name_key_and_accepted_type(key, value):
    """The Python API (a dict or a YAML file's contents) gets the same checks as the CLI."""
    kind = type(getattr(RunConfig().trainer, key))
    valid = isinstance(value, kind) and not (kind is int and isinstance(value, bool))
    if key == "lr_grid":
        valid = value is None or (
            isinstance(value, list) and all(not isinstance(v, bool) for v in value)
        )
    if valid:
        return
    with pytest.raises(
        SelfgrowError, match=rf"'trainer.{key}' = .* has the wrong type; accepted: "
    ):
        from_dict({"trainer": {key: value}})


def test_a_yaml_file_with_a_wrong_type_and_one_without_a_mapping(tmp_path):
    path = tmp_path / "config.yaml"
    path.write_text(yaml.safe_dump({"trainer": {"epochs": "many"}}))
    _assert_one_sentence(
        *_run_cli("--config", str(path)), "'trainer.epochs'", "'many'", "an integer"
    )
    path.write_text(yaml.safe_dump({"retention": "replay"}))
    with pytest.raises(SelfgrowError, match="'retention' = 'replay' must be a list"):
        from_dict(yaml.safe_load(path.read_text()))


def test_a_retention_entry_without_a_name_is_refused():
    with pytest.raises(
        SelfgrowError,
        match=r"'retention\[0\]' lacks the key 'name'; accepted keys: name, options",
    ):
        from_dict({"retention": [{"options": {"budget": 10}}]})


def test_debug_shows_the_traceback_instead():
    with pytest.raises(SelfgrowError, match="'trainer.epochs' = 0"):
        main(["run", "--trainer.epochs", "0", "--debug"])


@pytest.mark.parametrize("args, names", [
    (["--stream.n_tasks", "3"], ["n_tasks 3", "10 classes", "accepted: [1, 2, 5, 10]"]),
    (["--stream.n_tasks", "2", "--stream.classes_per_task", "6"], ["classes_per_task", "6"]),
])  # fmt: skip
def test_class_counts_that_do_not_split(tmp_path, args, names):
    code, err = _run_cli(*args, work=tmp_path)
    assert code == 2 and len(err.splitlines()) == 1, err
    assert all(n in err for n in names), err


def test_missing_data_root_says_what_is_missing_and_how_to_get_it(tmp_path):
    code, err = _run_cli(
        "--stream.dataset",
        "mnist",
        "--data_dir",
        str(tmp_path / "nonexistent"),
        work=tmp_path,
    )
    assert code == 2 and len(err.splitlines()) == 1, err
    assert (
        "missing train.npz" in err
        and "selfgrow data download mnist" in err
        and "nonexistent" in err
    )


def test_strategy_options_of_the_wrong_type_are_one_sentence(tmp_path):
    path = tmp_path / "config.yaml"
    path.write_text(
        yaml.safe_dump(
            {"retention": [{"name": "replay", "options": {"budget": "lots"}}]}
        )
    )
    code, err = _run_cli("--config", str(path), work=tmp_path)
    assert code == 2 and len(err.splitlines()) == 1, err
    assert (
        "retention strategy 'replay' option budget='lots' is invalid; accepted: null or an integer >= 0"
        in err
    )
