"""The `selfgrow` command: run, worker, bench, compare, list, data download, report, meta, sequences.

Every user mistake (a `SelfgrowError`) ends with exit code 2 and one sentence on stderr; `--debug`
shows the traceback instead.
"""

from __future__ import annotations

import argparse
import os
import sys
from collections.abc import Sequence
from pathlib import Path

from selfgrow.errors import SelfgrowError
from selfgrow.plugins import load_plugins


def main(argv: Sequence[str] | None = None) -> int:
    """Entry point of the console script; returns the process exit code."""
    argv = list(sys.argv[1:] if argv is None else argv)
    debug = "--debug" in argv
    if debug:
        argv.remove("--debug")
    parser = _top_parser()
    if not argv or argv[0] in ("-h", "--help"):
        parser.print_help()
        return 0
    command, rest = argv[0], argv[1:]
    handlers = {"run": _cmd_run, "worker": _cmd_worker, "bench": _cmd_bench, "compare": _cmd_compare,
                "list": _cmd_list, "data": _cmd_data, "report": _cmd_report, "meta": _cmd_meta,
                "sequences": _cmd_sequences}
    if command not in handlers:
        from selfgrow.errors import unknown_name

        print(f"selfgrow: {unknown_name('command', command, handlers)}", file=sys.stderr)
        return 2
    try:
        return handlers[command](rest)
    except SelfgrowError as err:
        if debug:
            raise
        print(f"selfgrow {command}: error: {err}", file=sys.stderr)
        return 2
    except KeyboardInterrupt as interrupt:
        print(f"selfgrow {command}: {interrupt or 'interrupted.'}", file=sys.stderr)
        return 130


COMMANDS = {
    "run": "train a learner over a stream, growing it as tasks arrive; writes a run folder",
    "worker": "train the growth candidates of distributed runs (a shared journal file or database)",
    "bench": "compare methods on one stream with the same seeds, side by side",
    "compare": "compare DIR...: bench rows seed by seed (paired differences) over bench output folders",
    "list": "datasets (and whether they are prepared), streams, methods, growers, retention, nets",
    "data": "data download NAME: fetch a dataset, verify its checksums, prepare it",
    "report": "report RUN_DIR: redraw the plots and report.html of a run folder",
    "meta": "meta list | show KEY | export FILE | import FILE: the growth knowledge base of past searches",
    "sequences": "search bindgrow's grow sequences globally (L2BG): each trial re-learns the stream with a shared delta",
}


def _top_parser() -> argparse.ArgumentParser:
    """The parser whose help `selfgrow --help` prints (each command parses its own arguments)."""
    parser = argparse.ArgumentParser(
        prog="selfgrow",
        usage="selfgrow [-h] COMMAND [ARGS] [--debug]",
        description="Incremental learning with self-growing networks.",
        epilog="`selfgrow COMMAND --help` shows a command's options. Add --debug to see tracebacks instead of "
        "one-line errors.",
    )
    commands = parser.add_subparsers(title="commands", metavar="COMMAND")
    for name, summary in COMMANDS.items():
        commands.add_parser(name, help=summary)
    return parser


PLUGINS_HELP = ("modules to import first, whose growers, strategies or nets register themselves: module names "
                "or .py paths (docs/extending.md)")


def _cmd_run(argv: list[str]) -> int:
    from selfgrow.config_cli import parse_run_args
    from selfgrow.experiment import run

    config, options = parse_run_args(argv)
    run(config, resume_dir=options.resume, force=options.force)
    return 0


def _cmd_worker(argv: list[str]) -> int:
    from selfgrow.search.worker import serve

    parser = argparse.ArgumentParser(
        prog="selfgrow worker",
        description="Train the growth candidates of distributed runs: asks the run's current task study for trials, "
        "trains and scores them, tells the results and uploads each candidate's weights (docs/distributed.md).",
    )
    parser.add_argument("--storage", required=True, help="the run's storage: journal:PATH or a database URL")
    parser.add_argument("--study", required=True, help="the run study's name (the coordinator prints it)")
    parser.add_argument("--artifacts", default=None, help="artifact directory, s3://BUCKET or gs://BUCKET (default: the one the run recorded)")
    parser.add_argument("--name", default=None, help="worker name in the records (default: HOST-PID)")
    parser.add_argument("--threads", type=int, default=None, help="torch threads (default: torch's)")
    parser.add_argument("--idle-timeout", type=float, default=None,
                        help="stop after this many seconds without work (default: wait until the run finishes)")
    parser.add_argument("--parent", type=int, default=None, help=argparse.SUPPRESS)  # local workers: the run's pid
    args = parser.parse_args(argv)
    if args.threads is not None and args.threads < 1:
        raise SelfgrowError(f"--threads {args.threads} is invalid; accepted: an integer >= 1.")
    trained = serve(args.storage, args.study, args.artifacts, args.name, args.threads, args.idle_timeout, args.parent)
    print(f"selfgrow worker: trained {trained} trials")
    if int(os.environ.get("WORLD_SIZE", "1")) > 1:
        # A torchrun rank leaves without the interpreter's teardown: there, after the group is closed and every
        # result is written, torch's C++ threads sometimes abort the process ("terminate called without an
        # active exception", about 1 run in 8 of the two-rank test), which torchrun reports as a failed worker.
        sys.stdout.flush()
        sys.stderr.flush()
        os._exit(0)
    return 0


def _cmd_bench(argv: list[str]) -> int:
    from selfgrow.bench import load_bench, run_bench

    parser = argparse.ArgumentParser(prog="selfgrow bench", description="Compare methods on one stream, same seeds.")
    parser.add_argument("--config", required=True, help="bench YAML: base, methods, seeds, workers, ...")
    parser.add_argument("--output", default=None, help="folder of the runs and the comparison")
    parser.add_argument("--workers", type=int, default=None, help="parallel processes (default: the file's, else 1)")
    parser.add_argument("--only", nargs="*", default=None, help="run only these method labels")
    parser.add_argument("--data-dir", "--data_dir", dest="data_dir", default=None,
                        help="data root of every run (default: $SELFGROW_DATA, else ~/.cache/selfgrow)")
    parser.add_argument("--resume", action="store_true",
                        help="use an output folder that holds runs of this bench: read finished runs back, resume "
                        "killed ones (without it such a folder is refused)")
    parser.add_argument("--plugins", nargs="*", default=None, help=PLUGINS_HELP)
    args = parser.parse_args(argv)
    run_bench(load_bench(args.config, args.output, args.workers, args.data_dir, args.plugins), args.only,
              resume=args.resume)
    return 0


def _cmd_compare(argv: list[str]) -> int:
    from selfgrow.report.paired import DEFAULT_METRIC, collect, metric_values, paired_rows, paired_table

    parser = argparse.ArgumentParser(prog="selfgrow compare",
                                     description="Bench rows compared seed by seed over bench output folders.")
    parser.add_argument("folders", nargs="+", help="output folders of `selfgrow bench` (seeds of one method may be "
                        "split between them)")
    parser.add_argument("--reference", default=None, help="the method every other is paired with, seed by seed")
    parser.add_argument("--metric", default=DEFAULT_METRIC, help=f"a run summary's key (default {DEFAULT_METRIC})")
    parser.add_argument("--only", nargs="*", default=None, help="these method labels only (the reference is kept)")
    args = parser.parse_args(argv)
    found = collect(args.folders)
    values = metric_values(found.runs, args.metric)
    if args.only:
        values = {label: v for label, v in values.items() if label in args.only or label == args.reference}
    print(f"{args.metric}, over the finished runs of {', '.join(args.folders)}"
          + (f" ({len(found.unfinished)} unfinished left out)" if found.unfinished else ""))
    print(paired_table(paired_rows(values, args.reference), args.reference))
    return 0


def _cmd_list(argv: list[str]) -> int:
    from selfgrow.listing import SECTIONS, print_listing

    parser = argparse.ArgumentParser(prog="selfgrow list", description="List what selfgrow knows about.")
    parser.add_argument("what", nargs="?", default="all", choices=["all", *SECTIONS])
    parser.add_argument("--data-dir", default=None, help="data root (default: $SELFGROW_DATA, else ~/.cache/selfgrow)")
    parser.add_argument("--plugins", nargs="*", default=[], help=PLUGINS_HELP)
    args = parser.parse_args(argv)
    load_plugins(args.plugins)
    print_listing(args.what, args.data_dir)
    return 0


def _cmd_data(argv: list[str]) -> int:
    from selfgrow import data

    parser = argparse.ArgumentParser(prog="selfgrow data", description="Manage datasets in the data root.")
    sub = parser.add_subparsers(dest="action", required=True)
    dl = sub.add_parser("download", help="fetch official files, verify checksums, convert to the prepared format")
    dl.add_argument("name")
    dl.add_argument("--data-dir", default=None)
    dl.add_argument("--mirror", default=None, help="base URL serving the official file names (default: official)")
    args = parser.parse_args(argv)
    path = data.download(args.name, data_dir=args.data_dir, base_url=args.mirror)
    print(f"{args.name}: ready in {path}")
    return 0


def _cmd_report(argv: list[str]) -> int:
    from selfgrow.report import Results, write_report

    parser = argparse.ArgumentParser(prog="selfgrow report", description="Re-draw the report of a run folder.")
    parser.add_argument("run_dir", type=Path)
    args = parser.parse_args(argv)
    if not (args.run_dir / "results.json").exists():
        raise SelfgrowError(f"No results.json in {str(args.run_dir)!r}; give a run folder written by `selfgrow run`.")
    print(write_report(args.run_dir, Results.load(args.run_dir)))
    return 0


def _cmd_sequences(argv: list[str]) -> int:
    from selfgrow.config_cli import parse_run_args
    from selfgrow.grow_sequences import search_in_folder
    from selfgrow.search.pareto import RULES
    from selfgrow.search.samplers import SAMPLERS

    parser = argparse.ArgumentParser(
        prog="selfgrow sequences",
        description="L2BG's global optimisation: every trial learns the whole stream of a bindgrow config with one "
        "grow coefficient delta shared by all tasks; objectives: the final multi-task gain (validation) and the "
        "parameter count. The other options are those of `selfgrow run` (--config FILE, --trainer.epochs 3, ...).",
    )
    parser.add_argument("--trials", type=int, default=20, help="grow sequences asked of the sampler (default: 20, the paper's)")
    parser.add_argument("--sampler", default="nsga2", choices=[s for s in SAMPLERS if s != "cost-gp"],
                        help="default: nsga2 (the paper's); not cost-gp, which needs a point's cost before its trial")
    parser.add_argument("--population", type=int, default=4, help="NSGA-II's generation size (default: 4)")
    parser.add_argument("--rule", default="knee", choices=RULES, help="how the front's point is chosen (default: knee)")
    parser.add_argument("--delta-range", type=float, nargs=2, default=[0.0, 1.0], metavar=("LOW", "HIGH"))
    parser.add_argument("--delta-step", type=float, default=0.05, help="the grid of delta (default: 0.05, the paper's)")
    args, rest = parser.parse_known_args(argv)
    config, options = parse_run_args(rest)
    if config is None or options.resume:
        raise SelfgrowError("selfgrow sequences takes --config FILE (and run options), not --resume; run it again "
                            "with the same config to continue a killed search.")
    search, folder = search_in_folder(config, n_trials=args.trials, sampler=args.sampler,
                                      population_size=args.population, rule=args.rule,
                                      delta_range=tuple(args.delta_range), delta_step=args.delta_step)
    chosen = search.sequences[search.chosen]
    print(f"\n{search.table()}\n\nchosen by {search.rule}: delta {chosen.delta:.2f} (gain {chosen.gain:+.4f}, "
          f"params {chosen.params:,}); results in {folder / 'sequences.json'}")
    return 0


def _cmd_meta(argv: list[str]) -> int:
    from selfgrow.search.meta.commands import main as meta_main

    return meta_main(argv)


if __name__ == "__main__":  # pragma: no cover
    sys.exit(main())
