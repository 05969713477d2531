"""`selfgrow list`: datasets (with availability at the data root), streams, methods, growers, retention, nets."""

from __future__ import annotations

from selfgrow.report.table import format_table

SECTIONS = ("datasets", "streams", "methods", "growers", "retention", "nets")


def print_listing(what: str = "all", data_dir: str | None = None) -> None:
    """Print one section, or all of them, as tables."""
    for section in SECTIONS if what == "all" else (what,):
        print(f"\n{section.upper()}")
        print(_TABLES[section](data_dir))


def datasets_table(data_dir: str | None) -> str:
    from selfgrow import data

    rows = []
    for name in data.DATASETS:
        info = data.dataset_info(name, data_dir)
        rows.append([name, info.get("status"), info.get("size_mb"), info.get("train"), info.get("test"),
                     info.get("input_shape"), info.get("classes")])
    root = data.data_root(data_dir)
    return f"data root: {root}\n" + format_table(rows, ["dataset", "status", "MB", "train", "test", "shape", "classes"])


def streams_table(_: str | None) -> str:
    from selfgrow.streams import describe_streams

    rows = [[s["name"], s["tasks"], s["classes_per_task"], s["samples"], s["summary"]] for s in describe_streams()]
    return format_table(rows, ["stream", "tasks", "classes/task", "samples", "what"])


def methods_table(_: str | None) -> str:
    from selfgrow.methods import describe_methods

    return format_table([[k, v] for k, v in describe_methods().items()], ["method", "what"])


def growers_table(_: str | None) -> str:
    from selfgrow.growth import GROWERS

    rows = [[name, _first_line(cls.__doc__), ", ".join(_options(cls))] for name, cls in GROWERS.items()]
    return format_table(rows, ["grower", "what", "options"])


def retention_table(_: str | None) -> str:
    from selfgrow.retention import RETENTION

    rows = [[name, _first_line(cls.__doc__), ", ".join(_options(cls))] for name, cls in RETENTION.items()]
    return format_table(rows, ["retention", "what", "options"])


def nets_table(_: str | None) -> str:
    from selfgrow.nets import NET_KINDS, PRESETS

    rows = [[name, spec["kind"], "preset"] for name, spec in PRESETS.items()]
    rows += [[kind, kind, "kind (net.spec)"] for kind in NET_KINDS]
    return format_table(rows, ["name", "kind", "use as"])


def _first_line(doc: str | None) -> str:
    return (doc or "").strip().splitlines()[0] if doc else ""


def _options(cls: type) -> list[str]:
    """The class's options, each with its default when it declares them (`selfgrow.options`)."""
    from selfgrow.options import Configurable, option_defaults
    from selfgrow.registry import accepted_options

    names = accepted_options(cls)
    defaults = option_defaults(cls.Options) if issubclass(cls, Configurable) else {}
    return [f"{name}={defaults[name]!r}" if name in defaults else name for name in names]


_TABLES = {
    "datasets": datasets_table,
    "streams": streams_table,
    "methods": methods_table,
    "growers": growers_table,
    "retention": retention_table,
    "nets": nets_table,
}
