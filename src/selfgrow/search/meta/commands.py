"""`selfgrow meta list | show | export | import`: read and move the growth knowledge base."""

from __future__ import annotations

import argparse
import json

from selfgrow.search.meta.base import DEFAULT, PREFIX, KnowledgeBase
from selfgrow.report.table import format_table
from selfgrow.search.storage import redact


def main(argv: list[str]) -> int:
    """Parse the action and its arguments, run it; returns the exit code."""
    parser = argparse.ArgumentParser(prog="selfgrow meta", description="The growth knowledge base: every finished "
                                     "growth search (meta-features, candidates, choice, outcome).")
    parser.add_argument("--base", default=DEFAULT, help="journal:PATH, a database URL or a PATH (default: "
                        "$SELFGROW_META, else journal:~/.cache/selfgrow/search/meta.journal)")
    sub = parser.add_subparsers(dest="action", required=True)
    sub.add_parser("list", help="one line per recorded search")
    show = sub.add_parser("show", help="one recorded search in full, as JSON")
    show.add_argument("key", help="the name `list` prints (RUN/taskK)")
    export = sub.add_parser("export", help="write every entry to a JSON-lines file")
    export.add_argument("file")
    imported = sub.add_parser("import", help="add the entries of a JSON-lines file written by export")
    imported.add_argument("file")
    args = parser.parse_args(argv)
    base = KnowledgeBase(args.base)
    if args.action == "list":
        print(f"knowledge base: {redact(base.location)}")
        print(format_table([_row(e) for e in base.entries()],
                           ["entry", "grower", "task", "candidates", "chosen", "score", "after task", "latest"]))
    elif args.action == "show":
        print(json.dumps(base.entry(args.key).to_dict(), indent=1, sort_keys=True))
    elif args.action == "export":
        print(f"{base.export(args.file)} entries written to {args.file}")
    else:
        print(f"{base.import_file(args.file)} entries added to {redact(base.location)}")
    return 0


def _row(entry: object) -> list[object]:
    chosen = next((c for c in entry.candidates if c["params"] == entry.chosen and c.get("status") == "complete"), {})
    return [entry.key[len(PREFIX):], entry.grower, entry.task_key or entry.task, len(entry.candidates),
            json.dumps(entry.chosen), chosen.get("accuracy"), entry.outcome.get("after_task"),
            entry.outcome.get("latest")]
