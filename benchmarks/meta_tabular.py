"""Does the knowledge base shorten a search whose scores repeat? Leave one dataset out on tables (issue 18).

The meta_wide bench (`meta_warm_start.py --config benchmarks/meta_wide.yaml`) measures warm start on real runs,
where every candidate's score is a fresh noisy training: a second cold search reaches the first's best only about
half as fast, so an effect must beat that spread. Here the same setting is made tabular, as `sampler_search.py`
does for one task (NAS-Bench style): before tasks 1-3 of each stream of `meta_wide.yaml` (Split-MNIST, Split-
Fashion-MNIST and digits, each also in its seeded class order, `.shuffled`; the earlier tasks learnt without
growth, from the 8/8 MLP) every point of the row's space (each hidden layer widened 1x/2x/4x/8x, 0-1 layers
inserted at each depth point: 64 points) is trained once as the search's last rung trains a candidate (2 epochs
on half the task) into a table, with the task's meta-features, and once more from other random streams into a
held-out table (the held-out datasets only). Searches then look their candidates up, so warm and cold differ only
in their choices, and many seeds cost seconds. `--datasets ... cifar10` adds Split-CIFAR-10 in the same setting
(meta_wide's MNIST rows with CIFAR-10's images, 32x32x3 into the same MLP) as a fourth dataset.

Protocol, per held-out dataset (`--datasets`: mnist, fashion and digits by default) and task: *cold* searches (the
default sampler, cost-gp, 16 trials in batches of 4, the no-growth point enqueued first as the grower does) on
every stream record into a knowledge base through `KnowledgeLink.record`; the base of the **other datasets'**
streams is consulted through `KnowledgeLink.consult` (the k nearest past tasks by meta-features, each by its
nearest search; a base holds `--base-seeds` cold runs of each stream and task, as meta_wide's holds its 3 seeds,
and each run records its stream's name as the task's identity; any distance qualifies by default, as meta_wide's
max_distance 10 let every past search qualify there, `--max-distance` sets the grower's cut-off; digits lies at
about 1.5 from the MNIST-sized searches, however many runs of each task the base holds): *warm* enqueues their
transferred chosen and best points after the no-growth point, *warm+prior* also hands their candidates to cost-gp
as its prior (`warm_start: {prior: true}`); *bad* and *bad+prior* consult the misleading twin of the base
(`meta_warm_start.misleading`: scores mirrored, chosen and best replaced by the worst); *surrogate* tries the
random-forest surrogate's 2 best points first and lets it screen the sampler's points (`warm_start: {k: 0,
surrogate: 2}`, fitted on every past search within the distance), *warm+surrogate* and *bad+surrogate* add its
proposals and screen to warm's and bad's points (`{k, surrogate: 2}`); *warm after* enqueues warm's points after
the first 4 trials instead of first; *by scores* and *bad by scores* consult past tasks by how they rank the first
4 trials (`similar: scores`), *warm, then by scores* adds those after warm's points; *consensus* and *bad consensus*
try the 6 points predicted best over every past task within the distance (`consensus: 6`) right after no growth,
*consensus, then warm* adds warm's points after them; *oracle warm* enqueues, as warm does, the chosen and best
points of the k past tasks whose tables rank the held-out task's points most alike (a perfect choice of past
tasks, at any distance); *rerun* consults, with `own: alone` (the grower's default until 2026-12-07; every kind
here consults so unless it says otherwise), a base that also holds 3 earlier runs of the held-out stream itself,
each a cold search of the task's second table (a stream run again with other seeds: its own past, not its scores): the task's own earlier runs are consulted alone, every one of their searches pooled
into a model whose 2k best points are enqueued (`own`); the second table shares the stream's samples and the net
trained on the earlier tasks with the first, so *rerun, whole run* does the same with earlier runs that each search
the table of the stream run again with another run seed (other samples, the earlier tasks trained anew, other
candidate draws: as a user's earlier runs with other seeds), *rerun, whole run, own first* consults the same base
with `own: first` (the earlier runs' pooled points, then the k nearest other tasks' chosen and best points), *rerun,
whole run, not own* with `own: off` (the earlier runs one past task among the k nearest, by its nearest search), and
*twin, whole run* is the twin (below) of the first of those tables; *rerun, other start* does the same with earlier
runs of the stream grown from a net twice as wide (16/16: the same task identity, other scores; does `own` mislead
when the setting changed?), *rerun, other start, target* with `transfer: target` (their widening factors carried as the
widths they grew to, the earlier runs then the task's own; every search records and passes its table's widths, as
the grower does, `table_sizes`); *rerun, not own* consults the same base as warm does
(`own: false`: the k nearest past tasks' chosen and best points); *twin* enqueues the 6 best points of that second
table, the most any base could know of the task before its search (an upper bound for every warm start); *pooled* and
*bad pooled* consult the others' and the misleading base with `propose: pooled` (the 2k points predicted best over
the k nearest past tasks' searches, pooled per task, all tried right after no growth), *pooled, guarded*, *bad
pooled, guarded* and *ctrl out, pooled, guarded* add `guard: agreement` (the pooled points past the first 4 trials
held back until those trials' first scores agree with the pool, Kendall tau > 0); the same three *..., beside the
sampler* add `guard: sampler` (only the pool's first point enqueued beside no growth, the rest once it beats the
sampler's points of the first 4 trials); *stream out* and *stream out, pooled* consult, as warm and
pooled do, a base of every stream but the held-out one, its own dataset's other class order included (the issue's
"leave one stream out", where the others' base leaves the whole dataset out); *ctrl out* and *ctrl out, pooled* do
the same in a pool that also holds each dataset's CTrL-style streams (`variant_stream`: its images rotated, its
pixels permuted, a quarter of its training images; each in the base by 3 cold runs, never held out; with
`--more-variants` also turned by 15 and 45 degrees, permuted by two more seeds and half of its images; *ctrl out,
pooled, cheapest first* enqueues the same points in the order of their inference FLOPs), and *near:
rotated*, *near: permuted* and *near: fewer* consult the stream-out base plus that one variant of the held-out
stream (the issue's "CTrL-style streams" in the base); *again* is cold with another seed,
the control (`--kinds` runs a subset; cold always runs). Measures over seeds: trials (and search FLOPs, each trial at
its point's inference FLOPs, which rank training costs) until the best table score so far is within EPS of the
cold search's final best (one search that never gets there counts its full budget), the same to the lower of the
pair's two final bests (the symmetric measure), and each search's best find and the parsimony rule's pick
re-measured on the held-out table (what a search's choice is worth, free of the table's lucky draws).

What this leaves out of a real warm start: the within-run warm start (the last tasks' chosen points; a table has
no run), halving (one rung: a looked-up score does not change with epochs), and a net grown by earlier choices
(every table's net is the start's). Every table is one run of its stream, run seed 0 (its samples, its earlier tasks'
training), shared by the base and the held-out searches; `--held-out-run N` has the held-out searches look up their
stream run with seed N instead, as a new run consults the knowledge of earlier ones (BENCHMARKS.md, "Another run of
the stream": two runs rank a task's points far less alike than two trainings in one run).

    python benchmarks/meta_tabular.py                       # tables under bench_runs/meta_tabular, then searches
    python benchmarks/meta_tabular.py --k 4 --output bench_runs/meta_tabular_k4   # tables copied there first
    python benchmarks/meta_tabular.py --k 4 --datasets mnist fashion digits cifar10 --output bench_runs/meta_tabular4_k4
    python benchmarks/meta_tabular.py --k 3 --held-out-run 4 --kinds again warm "rerun, whole run"   # another run
"""

from __future__ import annotations

import argparse
import itertools
import json
import math
import statistics
import types
from pathlib import Path
from typing import Any

from meta_warm_start import EPS, dataset, fresh_base, until, write_bases
from proxy_fidelity import kendall_tau
from sampler_search import (HOLDOUT_SEED_OFFSET, build_table, cached_table, paired_difference, point_key, run_sampler,
                            table_space, table_values)

from selfgrow.growth import build_grower
from selfgrow.nets import build
from selfgrow.report.table import format_table
from selfgrow.search import select
from selfgrow.search.engine import Later
from selfgrow.search.meta import KnowledgeBase
from selfgrow.search.meta.features import task_identity
from selfgrow.search.meta.link import KnowledgeLink, WarmStart
from selfgrow.search.meta.transfer import transfer

ROOT = Path(__file__).resolve().parent
BENCH = ROOT / "meta_wide.yaml"
DATASETS = ("mnist", "fashion", "digits")
MNIST_ROWS = {"cifar10": "mnist-cold", "cifar10.shuffled": "mnist.shuffled-cold"}  # meta_wide's rows, another dataset
SPACE = {"width_factors": [1.0, 2.0, 4.0, 8.0], "max_deepen": 1}  # meta_wide.yaml's space
EPOCHS, FRACTION = 2, 0.5  # meta_wide.yaml's last rung and data fraction
AGAIN_SEED = 1_000  # the control's seed offset
EARLIER_SEED = 2_000  # the seed offset of the earlier runs of a held-out stream (the rerun kind's base)
TWIN_POINTS = 6  # the twin kind's points: as many as the warm start's k = 3 past tasks propose
KINDS = ("cold", "again", "warm", "warm+prior", "bad", "bad+prior", "surrogate", "warm+surrogate", "bad+surrogate",
         "warm after", "by scores", "bad by scores", "warm, then by scores", "bad, then bad by scores", "consensus",
         "bad consensus", "consensus, then warm", "bad consensus, then bad", "oracle warm", "rerun", "rerun, not own",
         "rerun, other start", "rerun, other start, target", "rerun, whole run", "rerun, whole run, own first",
         "rerun, whole run, not own", "twin", "twin, whole run", "pooled", "bad pooled", "stream out",
         "stream out, pooled", "ctrl out", "ctrl out, pooled",
         "ctrl out, pooled, cheapest first", "pooled, guarded", "bad pooled, guarded", "ctrl out, pooled, guarded",
         "pooled, beside the sampler", "bad pooled, beside the sampler", "ctrl out, pooled, beside the sampler",
         "near: rotated", "near: permuted", "near: fewer")
CONSENSUS = 6  # the consensus kinds' points: as many as the warm start's k = 3 past tasks propose
PROPOSALS = 2  # the surrogate's proposals, as the real-run surrogate bench (meta_surrogate.yaml) tries
VARIANTS = ("rotated", "permuted", "fewer")  # the CTrL-style streams beside each dataset's (see `variant_stream`)
MORE_VARIANTS = ("rotated15", "rotated45", "permuted2", "permuted3", "half")  # `--more-variants`: a larger pool
DATA_NAMES = {"mnist": "mnist", "fashion": "fashion_mnist", "digits": "digits", "cifar10": "cifar10"}
FEWER = {"digits": (40, 18)}  # training / validation images per class of the fewer variant; (50, 50) elsewhere
HALF = {"digits": (80, 18)}  # the same for the half variant; (100, 50) elsewhere
OTHER_START = {"hidden": [16, 16]}  # the rerun, other start kind's earlier runs: the stream from twice as wide a net
WHOLE_RUN = ".run{seed}"  # the table suffix of a held-out stream run again with run seed `seed` (1, 2, ...)


def streams(held_out: list[str]) -> list[str]:
    """Each dataset's stream and its seeded class order."""
    return [name for held in held_out for name in (held, f"{held}.shuffled")]


def variants(held_out: list[str], more: bool = False) -> list[str]:
    """The CTrL-style streams beside each dataset's natural-order stream ("mnist.rotated", ...); with `more`, also
    `MORE_VARIANTS`."""
    return [f"{held}.{variant}" for held in held_out for variant in (*VARIANTS, *(MORE_VARIANTS if more else ()))]


def variant_stream(held: str, variant: str) -> dict[str, Any]:
    """The stream options, over meta_wide's row of `held`, of its CTrL-style `variant` (the same classes in the same
    order): *rotated*, every image turned by 30 degrees (*rotatedN*: N degrees; an input perturbation, as CTrL's
    S_in perturbs the input); *permuted*, the pixels shuffled by one seeded permutation (*permutedN*: of seed N;
    CTrL's own S_in, to an MLP the same problem drawn anew); *fewer*, a quarter of the training images per class,
    *half*, half of them (CTrL's S_minus and S_plus vary the data)."""
    name = DATA_NAMES[held]
    if variant in ("fewer", "half"):
        train, val = (FEWER if variant == "fewer" else HALF).get(held, (50, 50) if variant == "fewer" else (100, 50))
        return {**(row(held)[1] or {}), "max_train_per_class": train, "max_val_per_class": val}
    kind, number = variant.rstrip("0123456789"), variant[len(variant.rstrip("0123456789")):]
    change = ({"rotation": int(number or 30)} if kind == "rotated" else {"permutation_seed": int(number or 1)})
    tasks = [{"dataset": name, "classes": [2 * i, 2 * i + 1], **change} for i in range(5)]
    return {"name": "yaml", "dataset": "digits", "options": {"tasks": tasks}}  # digits: the config's default


def row(stream: str) -> tuple[str, dict[str, Any] | None]:
    """meta_wide's method of `stream` and the stream options over its own (CIFAR-10: an MNIST row with its dataset,
    32x32x3 flattened)."""
    if stream in MNIST_ROWS:
        return MNIST_ROWS[stream], {"dataset": dataset(stream)}
    return f"{stream}-cold", None


def tables(output: Path, tasks: list[int], held_out: list[str], more: bool = False, whole_runs: int = 0,
           held_out_run: int = 0) -> dict[tuple[str, int], dict[str, Any]]:
    """Every stream's table before each of `tasks` (built when absent), the held-out datasets' second tables under
    (stream + "-holdout", task), their tables from another start (`OTHER_START`, under stream + ".start16"), from
    `whole_runs` runs of the stream with other run seeds (`WHOLE_RUN`: other samples, other earlier training, other
    candidate draws) and, with `held_out_run`, from that run seed and its second training (the held-out searches'
    tables, `searched_tables`), and their CTrL-style variants' (`variant_stream`; with `more`, `MORE_VARIANTS` too)."""
    out = {}

    def add(key: str, path: str, stream: str, **options: Any) -> None:
        method, stream_options = row(stream)
        for task in tasks:
            out[key, task] = cached_table(output / path.format(task=task), lambda t=task: build_table(
                BENCH, method, SPACE, EPOCHS, FRACTION, output, task_index=t, features=True,
                **{"stream_options": stream_options, **options}))

    for stream in streams(held_out):
        add(stream, stream + "-task{task}.json", stream)
        if stream in held_out:
            add(stream + "-holdout", stream + "-task{task}-holdout.json", stream, seed_offset=HOLDOUT_SEED_OFFSET)
    for held in held_out:
        add(held + ".start16", held + ".start16-task{task}.json", held, net_options=OTHER_START)
        for seed in run_seeds(whole_runs, held_out_run):
            suffix = WHOLE_RUN.format(seed=seed)
            add(held + suffix, held + suffix + "-task{task}.json", held, run_seed=seed,
                seed_offset=HOLDOUT_SEED_OFFSET + seed)
        if held_out_run:
            suffix = WHOLE_RUN.format(seed=held_out_run)
            add(held + suffix + "-holdout", held + suffix + "-task{task}-holdout.json", held, run_seed=held_out_run,
                seed_offset=2 * HOLDOUT_SEED_OFFSET + held_out_run)
    for name in variants(held_out, more):
        held, variant = name.split(".", 1)
        add(name, name + "-task{task}.json", held, stream_options=variant_stream(held, variant))
    return out


def run_seeds(whole_runs: int, held_out_run: int) -> list[int]:
    """The run seeds of a held-out stream's other runs: the earlier ones, 1..`whole_runs`, and the searched one."""
    return [*range(1, whole_runs + 1), *([held_out_run] if held_out_run else [])]


def searched_tables(built: dict, held_out: list[str], tasks: list[int], run: int) -> dict:
    """The tables the held-out searches look up: `built`, with each held-out stream's table and second training taken
    from its run with run seed `run` (0: the run of the base's tables, whose samples and trained net they share)."""
    if not run:
        return built
    suffix = WHOLE_RUN.format(seed=run)
    return {**built, **{(held + second, task): built[held + suffix + second, task]
                        for held in held_out for task in tasks for second in ("", "-holdout")}}


def baseline(table: dict[str, Any]) -> dict[str, Any]:
    """The no-growth point of a table's space."""
    return {k: (1.0 if k.startswith("widen:") else 0) for k in table["points"][0]["params"]}


def best_and_pick(records: list[dict]) -> tuple[dict, dict]:
    """A search's best complete candidate (the cheaper on a tie) and the parsimony rule's pick among them."""
    complete = [r for r in records if r["status"] == "complete"]
    best = max(complete, key=lambda r: (r["accuracy"], -r["cost"]))
    pick = complete[select([(r["accuracy"], r["cost"]) for r in complete], "parsimony",
                           errors=[r["se"] for r in complete])]
    return best, pick


def table_sizes(table: dict[str, Any]) -> dict[str, float]:
    """The widths the table's widening factors act on (its net's, as a recording `searched` grower gives them)."""
    return build_grower("searched").sizes(build(table["space_net"]), table_space(table))


def identity(stream: str, task: int) -> str:
    """The task identity a recording grower gives the stream's task (`features.task_identity`; a table has no class
    names)."""
    return task_identity(types.SimpleNamespace(index=task, name=stream, class_names=[]))


def entries_of(folder: Path, base: str) -> list[Any]:
    """The entries of the knowledge base `<base>.journal` in `folder`."""
    return KnowledgeBase(str(folder / f"{base}.journal")).entries()


def record_colds(colds: dict[tuple[str, int, int], list[dict]], built: dict, folder: Path, base_seeds: int,
                 held_out: list[str], more: bool = False) -> None:
    """Write the cold searches of seeds below `base_seeds` into their stream's knowledge base (made anew), as a
    recording grower would: a base holds a few past runs of each stream, not every seed this bench compares."""
    folder.mkdir(parents=True, exist_ok=True)
    links = {}
    for stream in [*streams(held_out), *variants(held_out, more)]:
        path = folder / f"{stream}.journal"
        path.unlink(missing_ok=True)
        links[stream] = KnowledgeLink("searched", str(path), WarmStart(), 0)
    for (stream, task, seed), records in colds.items():
        if seed >= base_seeds:
            continue
        table, link = built[stream, task], links[stream]
        link.run = f"{stream}-seed{seed}"
        best, pick = best_and_pick(records)
        link.record(types.SimpleNamespace(index=task, name=stream, class_names=[]), table_space(table), records,
                    pick["params"], best["params"], table["features"], table_sizes(table))


def write_rerun_bases(built: dict, folder: Path, tasks: list[int], base_seeds: int, trials: int,
                      held_out: list[str]) -> None:
    """Per held-out stream, `<stream>-rerun.journal`: the other datasets' base plus `base_seeds` earlier cold runs
    of the stream itself, each searching its **second** table (the same tasks trained from other random draws), as
    a base holds a stream's earlier seeds when it is run again: its own past is near, but not the same scores (the
    second table shares the stream's samples and the net trained on the earlier tasks, only each candidate's draws
    differ); `<stream>-rerun other start.journal`, the same with earlier runs of the stream from another net
    (`OTHER_START`: the same task identity, other scores); and `<stream>-rerun whole run.journal`, earlier run `seed`
    searching the table of the stream run again with run seed `seed` + 1 (`WHOLE_RUN`: as a user's earlier runs with
    other seeds drew other samples and trained the earlier tasks anew)."""
    earlier_runs = (("rerun", lambda seed: "-holdout"), ("rerun other start", lambda seed: ".start16"),
                    ("rerun whole run", lambda seed: WHOLE_RUN.format(seed=seed + 1)))  # base, earlier runs' tables
    for held, (base, earlier) in itertools.product(held_out, earlier_runs):
        path = folder / f"{held}-{base}.journal"
        fresh_base(path, entries_of(folder, f"{held}-others"))
        link = KnowledgeLink("searched", str(path), WarmStart(), 0)
        for task in tasks:
            for seed in range(base_seeds):
                table = built[held + earlier(seed), task]
                records = run_sampler(table, table_space(table), "cost-gp", seed + EARLIER_SEED, trials,
                                      enqueue=[baseline(table)])
                link.run = f"{held}-earlier-seed{seed}"
                best, pick = best_and_pick(records)
                link.record(types.SimpleNamespace(index=task, name=held, class_names=[]), table_space(table), records,
                            pick["params"], best["params"], table["features"], table_sizes(table))


def write_stream_out_bases(folder: Path, held_out: list[str]) -> None:
    """Per held-out stream, `<stream>-streams.journal`: every other stream's cold base, its own dataset's other class
    order included (the issue's "leave one stream out"; the others' base leaves the whole dataset out)."""
    for held in held_out:
        others = [stream for stream in streams(held_out) if stream != held]
        fresh_base(folder / f"{held}-streams.journal", [e for stream in others for e in entries_of(folder, stream)])


def write_ctrl_bases(folder: Path, held_out: list[str], more: bool = False) -> None:
    """Per held-out stream, `<stream>-ctrl.journal`: every other stream's cold base among the datasets' streams and
    their CTrL-style variants (its own included: leave one stream out of a pool of related streams; with `more`,
    `MORE_VARIANTS` too), and, per
    variant, `<stream>-near <variant>.journal`: the stream-out base and that one variant of the held-out stream."""
    for held in held_out:
        pool = [stream for stream in [*streams(held_out), *variants(held_out, more)] if stream != held]
        fresh_base(folder / f"{held}-ctrl.journal", [e for stream in pool for e in entries_of(folder, stream)])
        out = entries_of(folder, f"{held}-streams")
        for variant in VARIANTS:
            fresh_base(folder / f"{held}-near {variant}.journal", [*out, *entries_of(folder, f"{held}.{variant}")])


def twin_points(built: dict, held: str, task: int, second: str = "-holdout") -> list[dict]:
    """The `TWIN_POINTS` best points of the held-out task's second table (the cheaper on a tie; `second`: its suffix,
    e.g. the stream run again, `WHOLE_RUN`): what a base that knew this very task, trained once more, would enqueue;
    no knowledge base can know more of the task, in that second training's setting, before its search."""
    points = sorted(built[held + second, task]["points"], key=lambda p: (-p["score"], p["flops"]))
    return [dict(p["params"]) for p in points[:TWIN_POINTS]]


def consultations(built: dict, folder: Path, tasks: list[int], k: int, max_distance: float,
                  held_out: list[str], base_tables: dict | None = None) -> dict[tuple[str, int, str], Any]:
    """(held-out stream, task, "others" or "bad") -> what that base offers the stream's search before the task
    (`built`: the tables the searches look up, `searched_tables`; `base_tables`: the base's, by default the same)."""
    out = {}
    for held in held_out:
        for task in tasks:
            table = built[held, task]
            def consult(base: str, **options: Any) -> Any:
                options = {"own": "alone", **options}  # as every kind was measured (the default until 2026-12-07)
                link = KnowledgeLink("searched", None, WarmStart(source=str(folder / f"{held}-{base}.journal"), k=k,
                                                                 max_distance=max_distance, **options), 0)
                return link.consult(table_space(table), table["features"], baseline(table),
                                    task_key=identity(held, task), sizes=table_sizes(table))

            for base in ("others", "bad"):
                out[held, task, base] = consult(base, surrogate=PROPOSALS, prior=True)
                out[held, task, base + " by scores"] = consult(base, similar="scores", consensus=CONSENSUS)
                out[held, task, base + " pooled"] = consult(base, propose="pooled")
                out[held, task, base + " pooled, guarded"] = consult(base, propose="pooled", guard="agreement")
                out[held, task, base + " pooled, beside the sampler"] = consult(base, propose="pooled", guard="sampler")
            out[held, task, "oracle"] = oracle_points(base_tables or built, folder / f"{held}-others.journal", table, k)
            out[held, task, "stream out"] = consult("streams")
            out[held, task, "stream out, pooled"] = consult("streams", propose="pooled")
            out[held, task, "ctrl out"] = consult("ctrl")
            out[held, task, "ctrl out, pooled"] = consult("ctrl", propose="pooled")
            out[held, task, "ctrl out, pooled, guarded"] = consult("ctrl", propose="pooled", guard="agreement")
            out[held, task, "ctrl out, pooled, beside the sampler"] = consult("ctrl", propose="pooled", guard="sampler")
            for variant in VARIANTS:
                out[held, task, f"near: {variant}"] = consult(f"near {variant}")
            out[held, task, "rerun"] = consult("rerun")
            out[held, task, "rerun, not own"] = consult("rerun", own=False)
            out[held, task, "rerun, other start"] = consult("rerun other start")
            out[held, task, "rerun, other start, target"] = consult("rerun other start", transfer="target")
            out[held, task, "rerun, whole run"] = consult("rerun whole run")
            out[held, task, "rerun, whole run, own first"] = consult("rerun whole run", own="first")
            out[held, task, "rerun, whole run, not own"] = consult("rerun whole run", own="off")
    return out


def oracle_points(built: dict, journal: Path, table: dict[str, Any], k: int) -> list[dict]:
    """The chosen and best points of the base's searches (their tables in `built`) of the `k` past tasks whose tables
    rank the held-out task's points (`table`) most alike (Kendall tau over every point; each past task by its first
    run's search, any distance): what a perfect choice of past tasks would enqueue."""
    entries = {(e.run.rsplit("-seed", 1)[0], e.task): e for e in reversed(KnowledgeBase(str(journal)).entries())}
    mine = ordered_scores(table)
    best = sorted(entries, key=lambda name: -kendall_tau(mine, ordered_scores(built[name])))[:k]
    return [dict(point) for name in best for point in (entries[name].chosen, entries[name].best)]


def searches(built: dict, consulted: dict, tasks: list[int], seeds: int, trials: int, held_out: list[str],
             kinds: list[str]) -> dict:
    """(kind, held-out stream, task, seed) -> the search's records, for each of `kinds` but cold (`consulted`: what
    `consultations` returned)."""
    out = {}
    for held in held_out:
        for task in tasks:
            table = built[held, task]
            space, start = table_space(table), baseline(table)
            for seed in range(seeds):
                def run(enqueue, seed=seed, **options):
                    return run_sampler(table, space, "cost-gp", seed, trials, enqueue=enqueue, **options)

                plans = {"again": lambda: run([start], seed=seed + AGAIN_SEED)}
                for kind, base in (("warm", "others"), ("bad", "bad")):
                    offered = consulted[held, task, base]
                    enqueue = [start, *offered.nearest]  # as the grower enqueues them: no growth first
                    screen = offered.surrogate.hopeless if offered.surrogate is not None else None
                    scored = consulted[held, task, base + " by scores"]
                    by_scores = "by scores" if base == "others" else "bad by scores"
                    agreed = scored.consensus  # the grower tries them right after no growth
                    plans.update({
                        kind: lambda e=enqueue: run(e),
                        f"{kind}+prior": lambda e=enqueue, o=offered: run(e, prior=o.prior),
                        f"{kind}+surrogate": lambda e=enqueue, o=offered, sc=screen: run([*o.proposed, *e], screen=sc),
                        by_scores: lambda sc=scored: run([start], later=sc.later),
                        f"{kind}, then {by_scores}": lambda e=enqueue, sc=scored: run(e, later=sc.later),
                        ("consensus" if base == "others" else "bad consensus"): lambda a=agreed: run([start, *a]),
                        f"consensus, then {kind}" if base == "others" else "bad consensus, then bad":
                            lambda a=agreed, o=offered: run([start, *a, *o.nearest]),
                    })
                    if base == "others":
                        oracle = consulted[held, task, "oracle"]
                        plans["oracle warm"] = lambda o=oracle: run([start, *o])
                        for name in ("rerun", "rerun, not own", "rerun, other start", "rerun, other start, target",
                                     "rerun, whole run", "rerun, whole run, own first",
                                     "rerun, whole run, not own", "stream out",
                                     "stream out, pooled", "ctrl out",
                                     *(f"near: {variant}" for variant in VARIANTS)):
                            plans[name] = lambda r=consulted[held, task, name]: run([start, *r.nearest])
                        flops = table_values(table, "flops")
                        cheapest = sorted(consulted[held, task, "ctrl out, pooled"].nearest,
                                          key=lambda p: flops[point_key(p)])
                        plans["ctrl out, pooled, cheapest first"] = lambda c=cheapest: run([start, *c])
                        plans["twin"] = lambda t=twin_points(built, held, task): run([start, *t])
                        plans["twin, whole run"] = lambda: run([start, *twin_points(built, held, task,
                                                                                  WHOLE_RUN.format(seed=1))])
                        for name, key in (("pooled", "others pooled"), ("bad pooled", "bad pooled"),
                                          ("ctrl out, pooled", "ctrl out, pooled")):
                            for guard in ("", ", guarded", ", beside the sampler"):
                                plans[name + guard] = lambda o=consulted[held, task, key + guard]: run(
                                    [start, *o.nearest], later=o.later)
                        after = Later(4, lambda _, p=offered.nearest: p)
                        plans["surrogate"] = lambda o=offered, sc=screen: run([*o.proposed, start], screen=sc)
                        plans["warm after"] = lambda a=after: run([start], later=a)
                for kind in kinds:
                    if kind != "cold":
                        out[kind, held, task, seed] = plans[kind]()
    return out


def best_score(records: list[dict]) -> float:
    """The search's best complete score."""
    return max(r["accuracy"] for r in records if r["status"] == "complete")


def remeasured(records: list[dict], holdout: dict[str, float]) -> tuple[float, float]:
    """The held-out table's scores of the search's best find and of the parsimony rule's pick."""
    best, pick = best_and_pick(records)
    return holdout[point_key(best["params"])], holdout[point_key(pick["params"])]


def report(runs: dict, built: dict, tasks: list[int], seeds: int, held_out: list[str],
           kinds: list[str]) -> list[list[Any]]:
    """One row per kind over the `held_out` datasets: trials and FLOPs to cold's best (and how many times fewer than
    cold), not reached, the symmetric measure, the re-measured best find and parsimony pick, the points the surrogate
    turned away untrained, and the search-seed noise: the standard errors of "x fewer trials" and "x fewer FLOPs" and,
    when the control ran, the paired difference in trials from it (`again`, another cold seed: what noise reads)."""
    rows, trials, flops = [], {}, {}
    for kind in kinds:
        to_cold, symmetric_pairs, finds, screened = [], [], [], 0
        for held in held_out:
            for task in tasks:
                holdout = table_values(built[held + "-holdout", task], "score")
                for seed in range(seeds):
                    cold, ours = runs["cold", held, task, seed], runs[kind, held, task, seed]
                    to_cold.append(until({"candidates": ours}, best_score(cold)))
                    target = min(best_score(cold), best_score(ours))
                    symmetric_pairs.append((until({"candidates": cold}, target)[0],
                                            until({"candidates": ours}, target)[0]))
                    finds.append(remeasured(ours, holdout))
                    screened += sum(r["status"] == "screened" for r in ours)
        trials[kind] = [r[0] for r in to_cold]  # in the same (held out, task, seed) order for every kind: paired
        flops[kind] = [r[1] for r in to_cold]
        rows.append([kind, len(to_cold), statistics.fmean(r[0] for r in to_cold), sum(r[1] for r in to_cold),
                     sum(not r[2] for r in to_cold),
                     statistics.fmean(c for c, _ in symmetric_pairs) / statistics.fmean(o for _, o in symmetric_pairs),
                     statistics.fmean(f[0] for f in finds), statistics.fmean(f[1] for f in finds), screened])
    cold_trials, cold_flops = rows[0][2], rows[0][3]
    for row in rows:
        row[3:4] = [row[3], cold_trials / row[2], cold_flops / row[3]]
        row.append(ratio_se(trials["cold"], trials[row[0]]))
        row.append(seed_noise(trials[row[0]], trials["again"]) if "again" in trials else "")
        row.append(ratio_se(flops["cold"], flops[row[0]]))
    return rows


def ratio_se(reference: list[float], ours: list[float]) -> float:
    """The standard error of mean(reference) / mean(ours) over paired searches (the delta method): 0 for a kind
    against itself."""
    n = len(ours)
    if n < 2:
        return math.nan
    a, b = statistics.fmean(reference), statistics.fmean(ours)
    var_a, var_b = statistics.variance(reference), statistics.variance(ours)
    cov = statistics.covariance(reference, ours)
    return abs(a / b) * math.sqrt(max(var_a / a ** 2 + var_b / b ** 2 - 2 * cov / (a * b), 0.0) / n)


def seed_noise(ours: list[float], again: list[float]) -> str:
    """Trials to cold's best minus the control's, paired search by search: mean ± its standard error, and the
    paired t; a kind within noise of a second cold search reads |t| < 2."""
    mean, se = paired_difference([[x] for x in ours], [[x] for x in again], 0)
    return f"{mean:+.2f} ± {se:.2f} (t {mean / se:+.1f})" if se > 0 else f"{mean:+.2f}"


def consulted_rows(consulted: dict) -> list[list[Any]]:
    """Which past searches (stream and task, by their run's name) the warm and rerun searches consult, and at what
    meta-feature distance."""
    return [[held, task, base, ", ".join(f"{c['entry'].split('/')[-2].rsplit('-seed', 1)[0]} task {c['task']} "
                                   f"({c['distance']:.2f})" for c in offered.reasons["consulted"])]
            for (held, task, base), offered in consulted.items()
            if base in ("others", "rerun", "rerun, not own", "rerun, other start", "stream out", "ctrl out")]


def guard_rows(consulted: dict, built: dict) -> list[list[Any]]:
    """What each guarded pool's check found after the search's first trials (the same for every seed: those trials are
    no growth and the pool's first points, whose table scores it lists): the tau between its prediction and their
    scores, and whether the points it held back were tried."""
    rows = []
    for (held, task, base), offered in consulted.items():
        guard = (offered.reasons or {}).get("pooled", {}).get("guard") if base.endswith(", guarded") else None
        if guard is not None:
            table = built[held, task]
            scores = table_values(table, "score")
            first = [scores[point_key(p)] for p in (baseline(table), *offered.nearest)]
            rows.append([held, task, base, ", ".join(f"{score:.3f}" for score in first), len(guard["held back"]),
                         guard.get("tau", "never asked"), guard.get("enqueued", "")])
    return rows


def ordered_scores(table: dict[str, Any]) -> list[float]:
    """A table's scores in one order of its points (their parameters as sorted JSON), for rank correlations."""
    return [p["score"] for p in sorted(table["points"], key=lambda p: point_key(p["params"]))]


def transfer_taus(built: dict, tasks: list[int], held_out: list[str], whole_runs: int = 0,
                  held_out_run: int = 0) -> list[list[Any]]:
    """Kendall tau between the tables of every pair of streams before the same task (how far rankings transfer),
    between each held-out table and its second training (how far they repeat), its runs with other run seeds (how far
    they repeat when the stream is run again; the searched run's, `held_out_run`, also against its second training),
    and its CTrL-style variants'."""
    rows, runs = [], run_seeds(whole_runs, held_out_run)
    for task in tasks:
        def scores(name: str) -> list[float]:
            return ordered_scores(built[name, task])
        names = streams(held_out)
        for i, a in enumerate(names):
            rows += [[task, a, b, kendall_tau(scores(a), scores(b))] for b in names[i + 1:] if dataset(a) != dataset(b)]
        rows += [[task, held, other, kendall_tau(scores(held), scores(name))] for held in held_out
                 for other, name in (("(its second training)", held + "-holdout"),
                                     *((f"{held}{WHOLE_RUN.format(seed=seed)}",) * 2 for seed in runs),
                                     *((f"{held}.{v}",) * 2 for v in VARIANTS))]
        rows += [[task, run, "(its second training)", kendall_tau(scores(run), scores(run + "-holdout"))]
                 for run in (f"{held}{WHOLE_RUN.format(seed=held_out_run)}" for held in held_out if held_out_run)]
        rows += [row for held in held_out for row in other_start_taus(built[held, task], built[held + ".start16", task],
                                                                      task, held)]
    return rows


def other_start_taus(table: dict[str, Any], other: dict[str, Any], task: int, held: str) -> list[list[Any]]:
    """Kendall tau between a held-out table and its table from another start (`OTHER_START`) over the points whose
    widths the other start's points reach exactly as target widths (`transfer: target`), each paired once as the
    target widths pair them and once by the same relative actions."""
    space, sizes, other_sizes = table_space(table), table_sizes(table), table_sizes(other)
    scores, relative = table_values(table, "score"), table_values(other, "score")
    pairs = []
    for point in other["points"]:
        moved = transfer(point["params"], list(point["params"]), space, other_sizes, sizes)
        if all(moved[k] * sizes[k] == point["params"][k] * other_sizes[k] for k in sizes):
            key = point_key(moved)
            pairs.append((scores[key], point["score"], relative[key]))
    mine, as_target, as_relative = zip(*pairs)
    return [[task, held, f"{held}.start16 ({len(pairs)} points as target widths)", kendall_tau(mine, as_target)],
            [task, held, f"{held}.start16 (the same points by relative actions)", kendall_tau(mine, as_relative)]]


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--tasks", type=int, nargs="+", default=[1, 2, 3])
    parser.add_argument("--seeds", type=int, default=20)
    parser.add_argument("--trials", type=int, default=16)
    parser.add_argument("--k", type=int, default=2, help="past searches consulted (default 2, as meta_wide)")
    parser.add_argument("--base-seeds", type=int, default=3,
                        help="cold searches per stream and task recorded into the base (default 3, as meta_wide's "
                             "runs)")
    parser.add_argument("--max-distance", type=float, default=math.inf,
                        help="farthest meta-feature distance consulted (default: any; see the module docstring)")
    parser.add_argument("--datasets", nargs="+", choices=[*DATASETS, "cifar10"], default=list(DATASETS),
                        help="the held-out datasets, each with its shuffled stream (default: meta_wide's three)")
    parser.add_argument("--output", type=Path, default=Path("bench_runs/meta_tabular"))
    parser.add_argument("--kinds", nargs="+", choices=KINDS, default=list(KINDS),
                        help="the searches to run and report (default: all; cold is always run, the others' reference)")
    parser.add_argument("--held-out-run", type=int, default=0,
                        help="the held-out searches look up the tables of their stream run with this run seed (other "
                             "samples, other training of the earlier tasks) instead of the base's run, seed 0")
    parser.add_argument("--more-variants", action="store_true",
                        help=f"the ctrl kinds' pool also holds each dataset's {', '.join(MORE_VARIANTS)} variants")
    args = parser.parse_args()
    if 0 < args.held_out_run <= args.base_seeds or args.held_out_run < 0:
        parser.error(f"--held-out-run {args.held_out_run} is one of the earlier runs (1 to --base-seeds "
                     f"{args.base_seeds}) or negative; accepted: 0 (the base's run) or a run seed above --base-seeds")
    args.kinds = ["cold", *(kind for kind in args.kinds if kind != "cold")]
    args.output.mkdir(parents=True, exist_ok=True)
    held_out = args.datasets
    built = tables(args.output, args.tasks, held_out, args.more_variants, args.base_seeds, args.held_out_run)
    view = searched_tables(built, held_out, args.tasks, args.held_out_run)

    def cold(looked_up: dict, stream: str, task: int, seed: int) -> list[dict]:
        table = looked_up[stream, task]
        return run_sampler(table, table_space(table), "cost-gp", seed, args.trials, enqueue=[baseline(table)])

    searched = {(held, task, seed): cold(view, held, task, seed)
                for held in held_out for task in args.tasks for seed in range(args.seeds)}
    colds = {key: searched[key] if view is built and key in searched else cold(built, *key)  # the base's past runs
             for key in itertools.product([*streams(held_out), *variants(held_out, args.more_variants)], args.tasks,
                                          range(args.base_seeds))}
    folder = args.output / "bases"
    record_colds(colds, built, folder, args.base_seeds, held_out, args.more_variants)
    write_bases({s: folder / f"{s}.journal" for s in streams(held_out)}, held_out, folder)
    write_rerun_bases(built, folder, args.tasks, args.base_seeds, args.trials, held_out)
    write_stream_out_bases(folder, held_out)
    write_ctrl_bases(folder, held_out, args.more_variants)
    runs = {("cold", s, t, seed): records for (s, t, seed), records in searched.items()}
    consulted = consultations(view, folder, args.tasks, args.k, args.max_distance, held_out, built)
    runs.update(searches(view, consulted, args.tasks, args.seeds, args.trials, held_out, args.kinds))
    print(format_table(transfer_taus(built, args.tasks, held_out, args.base_seeds, args.held_out_run),
                       ["task", "stream", "other stream", "Kendall tau of scores"]))
    print(f"eps = {EPS}; {args.seeds} seeds x {len(held_out)} held-out datasets x tasks {args.tasks}; "
          f"{args.trials} trials per search")
    print(format_table(consulted_rows(consulted), ["held out", "task", "base", "consulted (distance)"]))
    print(format_table(guard_rows(consulted, view), ["held out", "task", "base", "first scores (no growth first)",
                                                      "held back", "guard's tau", "tried"]))
    headers = ["search", "searches", "trials to cold's best", "search FLOPs to it", "x fewer trials",
               "x fewer FLOPs", "not reached", "symmetric: x fewer trials", "best find, re-measured",
               "parsimony pick, re-measured", "screened", "x fewer trials: SE", "trials - again's (paired SE, t)",
               "x fewer FLOPs: SE"]
    summary = {}
    for scope in (held_out, *([held] for held in held_out)):
        rows = report(runs, view, args.tasks, args.seeds, scope, args.kinds)
        print("held out:", ", ".join(scope))
        print(format_table(rows, headers))
        summary[" ".join(scope)] = rows
    run = f"-run{args.held_out_run}" if args.held_out_run else ""
    name = f"summary-k{args.k}-d{args.max_distance:g}-b{args.base_seeds}-{'-'.join(held_out)}{run}.json"
    (args.output / name).write_text(json.dumps(summary, indent=1))


if __name__ == "__main__":
    main()
