"""`selfgrow run` argument parsing: YAML config plus dotted CLI overrides (jsonargparse), clear errors."""

from __future__ import annotations

import argparse
import re
from dataclasses import fields
from typing import Any

from jsonargparse import ActionConfigFile, ArgumentParser

from selfgrow.config import RunConfig, field_type, from_dict
from selfgrow.options import describe_type
from selfgrow.errors import SelfgrowError, did_you_mean


def run_parser() -> ArgumentParser:
    """The parser of `selfgrow run`: every RunConfig field is a flag (`--trainer.epochs 3`)."""
    parser = ArgumentParser(
        prog="selfgrow run",
        exit_on_error=False,
        allow_abbrev=False,  # a misspelt prefix must be reported, not silently expanded
        description="Train a learner over a stream, growing it as tasks arrive; writes a run folder.",
    )
    parser.add_argument("--config", action=ActionConfigFile, help="YAML file with the run configuration")
    parser.add_argument("--resume", default=None, help="continue the run folder RUN_DIR after its last finished task")
    parser.add_argument("--force", action="store_true", help="with --resume: accept a config that differs")
    parser.add_class_arguments(RunConfig, None)
    return parser


def parse_run_args(argv: list[str]) -> tuple[RunConfig | None, argparse.Namespace]:
    """Parse argv into a validated RunConfig and the run options (resume, force).

    The config is None when only `--resume` (and `--force`) are given: the run folder's own config is used.
    """
    parser = run_parser()
    argv = _listed_flags([_undash(arg) for arg in argv])
    try:
        namespace = parser.parse_args(argv)
    except argparse.ArgumentError as err:
        raise SelfgrowError(_one_sentence(str(err))) from None
    values: dict[str, Any] = namespace.as_dict()
    options = argparse.Namespace(resume=values.pop("resume"), force=values.pop("force"))
    values.pop("config", None)
    values.pop("__path__", None)
    only_resume = all(a.split("=")[0] in ("--resume", "--force") or a == options.resume for a in argv)
    return (None if options.resume and only_resume else from_dict(values)), options


_DASHED = {
    "--data-dir": "--data_dir",  # the spelling ARCHITECTURE.md and `selfgrow list` use
    "--storage": "--distributed.storage",  # the short flags of a distributed run (docs/distributed.md)
    "--workers": "--distributed.workers",
    "--artifacts": "--distributed.artifacts",
}


LISTED_FLAGS = ("--plugins", "--logger")  # list options that also take their items space-separated


def _listed_flags(argv: list[str]) -> list[str]:
    """`--plugins a.py b.py` or `--logger csv tensorboard` -> `--plugins [a.py, b.py]`; a written list stays."""
    out, i = [], 0
    while i < len(argv):
        flag, sep, value = argv[i].partition("=")
        if flag not in LISTED_FLAGS:
            out.append(argv[i])
            i += 1
            continue
        items = [value] if sep else []
        i += 1
        while not sep and i < len(argv) and not argv[i].startswith("-"):
            items.append(argv[i])
            i += 1
        listed = len(items) == 1 and items[0].lstrip().startswith("[")
        out += [flag, items[0] if listed else "[" + ", ".join(items) + "]"]
    return out


def _undash(arg: str) -> str:
    """`--data-dir[=X]` -> `--data_dir[=X]`, `--storage URL` -> `--distributed.storage URL`, ...; others unchanged."""
    flag, sep, value = arg.partition("=")
    return _DASHED.get(flag, flag) + sep + value


def _one_sentence(message: str) -> str:
    """Turn a jsonargparse error into one sentence, suggesting the closest valid key."""
    flat = " ".join(message.split())
    group = re.search(r"Group '([\w.]+)' does not accept option '(\w+)'", flat)
    if group:
        section, key = group.groups()
        accepted = _section_fields(section)
        return f"Unknown config key '{section}.{key}'; accepted: {', '.join(accepted)}.{did_you_mean(key, accepted)}"
    unknown = re.search(r"[Uu]nrecognized arguments: (\S+)", flat)
    if unknown:
        flag = unknown.group(1)
        return f"Unknown option {flag!r}; see `selfgrow run --help` for the accepted ones.{did_you_mean(flag, _all_flags())}"
    missing = re.search(r"argument (--[\w.]+): expected one argument", flat)
    if missing:
        flag = missing.group(1)
        return f"Option {flag} needs a value; accepted: {flag} VALUE, or {flag}=VALUE for values starting with '-'."
    typed = re.search(r'Parser key "([\w.]+)": (.*)', flat)
    if typed:
        key, detail = typed.groups()
        kind = field_type(key)
        if " value: " in detail and kind is not None:
            given = detail.rsplit(" value: ", 1)[1].strip()
            return f"Bad value for {key!r}: {given!r}; accepted: {describe_type(kind)}."
        return f"Bad value for {key!r}: {detail.strip().rstrip('.')}."
    return flat.rstrip(".") + "."


def _section_fields(section: str) -> list[str]:
    cls: Any = RunConfig
    for part in section.split("."):
        cls = {f.name: f.type for f in fields(cls)}.get(part)
        cls = _DATACLASSES.get(cls if isinstance(cls, str) else getattr(cls, "__name__", ""), None)
        if cls is None:
            return []
    return sorted(f.name for f in fields(cls))


def _all_flags() -> list[str]:
    flags = []
    for f in fields(RunConfig):
        sub = _DATACLASSES.get(f.type if isinstance(f.type, str) else getattr(f.type, "__name__", ""))
        flags += [f"--{f.name}.{g.name}" for g in fields(sub)] if sub else [f"--{f.name}"]
    return flags


def _dataclasses() -> dict[str, type]:
    from selfgrow import config

    names = ("StreamConfig", "NetConfig", "GrowthConfig", "TrainerConfig", "DistributedConfig")
    return {name: getattr(config, name) for name in names}


_DATACLASSES = _dataclasses()
