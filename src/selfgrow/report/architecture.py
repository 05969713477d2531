"""A net's spec read as drawable blocks, and what changed between two specs (new blocks, new units).

Every net kind is read as blocks placed on a grid: `depth` runs from the input to the head, `index`
tells blocks at the same depth apart (the modules of a modular net, the columns of a PNN, the
extractors of an expandable net; always 0 for a plain stack of layers). Each block names the
prefix of its parameters so that measured quantities (the share of frozen weights) attach to it.
"""

from __future__ import annotations

from dataclasses import dataclass, replace
from typing import Any


@dataclass(frozen=True)
class Block:
    """One layer, stage or module of a net as the report draws it."""

    name: str  # the name growers use for it: "hidden.0", "stage.1", "module 2.1", "column 1"
    label: str  # what is written on it: "hidden.0 · 47"
    width: int  # units or channels
    unit: str  # "units" or "channels"
    params: tuple[str, ...]  # prefixes of its parameter names
    depth: int
    index: int = 0
    blocks: int = 1  # residual blocks in a ResNet stage


def blocks_of(spec: dict[str, Any]) -> list[Block]:
    """The blocks of a net spec, input side first; [] for a kind this module does not know."""
    reader = _READERS.get(spec.get("kind", ""))
    return reader(spec) if reader else []


def task_path(spec: dict[str, Any], task: int) -> list[Block]:
    """The blocks task `task`'s forward pass runs through ([] when every block serves every task)."""
    blocks = blocks_of(spec)
    kind = spec.get("kind")
    if kind in ("modular", "jointnet") and task < len(spec.get("paths", [])):
        path = spec["paths"][task]
        return [b for b in blocks if b.index == path[b.depth]]
    if kind in ("pnn", "expandable"):
        return [b for b in blocks if b.index <= task]
    return []


def changes(before: dict[str, Any] | None, after: dict[str, Any], applied: list[dict[str, Any]]) -> dict[str, int | str]:
    """Per block of `after`: "new" (it did not exist before) or the number of units it gained (0: unchanged).

    Plain stacks are aligned through the `deepen` operators applied (an inserted layer shifts the
    names of the layers after it); grids by (depth, index). Without `before` everything is unchanged.
    """
    now = blocks_of(after)
    if before is None:
        return {b.name: 0 for b in now}
    old = blocks_of(before)
    if after.get("kind") in ("mlp", "convnet"):
        old = _insert_deepened(old, applied)
        if len(old) != len(now):
            return {b.name: 0 for b in now}
        return {b.name: "new" if a is None else max(0, b.width - a.width) for a, b in zip(old, now)}
    by_place = {(b.depth, b.index): b for b in old}
    out: dict[str, int | str] = {}
    for b in now:
        a = by_place.get((b.depth, b.index))
        out[b.name] = "new" if a is None else max(0, b.width - a.width)
    return out


def added_blocks(before: dict[str, Any] | None, after: dict[str, Any]) -> dict[str, int]:
    """ResNet stages that gained residual blocks, with how many."""
    if before is None or after.get("kind") != "resnet" or before.get("kind") != "resnet":
        return {}
    old = {b.name: b.blocks for b in blocks_of(before)}
    return {b.name: b.blocks - old[b.name] for b in blocks_of(after) if b.blocks > old.get(b.name, b.blocks)}


def _insert_deepened(old: list[Block], applied: list[dict[str, Any]]) -> list[Block | None]:
    """`old` with a None placed after each layer a `deepen` operator inserted behind, in the operators' order.

    `deepen(at="hidden.i")` inserts after the i-th layer of its family ("hidden", "conv", "fc") as the net
    is at that moment, so names are counted in the list as it grows.
    """
    blocks: list[tuple[str, Block | None]] = [(b.name.rpartition(".")[0], b) for b in old]
    for call in applied:
        family, _, pos = str(call.get("at", "")).rpartition(".")
        if call.get("op") != "deepen" or not pos.isdigit():
            continue
        members = [i for i, (f, _) in enumerate(blocks) if f == family]
        if int(pos) < len(members):
            blocks.insert(members[int(pos)] + 1, (family, None))
    return [b for _, b in blocks]


def _mlp(spec: dict[str, Any]) -> list[Block]:
    return [Block(f"hidden.{i}", f"hidden.{i} · {w}", int(w), "units", (f"layers.{i}.",), i)
            for i, w in enumerate(spec.get("hidden", []))]


def _convnet(spec: dict[str, Any]) -> list[Block]:
    convs = [Block(f"conv.{i}", f"conv.{i} · {c['width']}", int(c["width"]), "channels", (f"convs.{i}.",), i)
             for i, c in enumerate(spec.get("conv", []))]
    return convs + [Block(f"fc.{i}", f"fc.{i} · {w}", int(w), "units", (f"fcs.{i}.",), len(convs) + i)
                    for i, w in enumerate(spec.get("fc", []))]


def _resnet(spec: dict[str, Any]) -> list[Block]:
    stages = spec.get("stages", [])
    stem = spec.get("stem", {}).get("width", stages[0]["width"] if stages else 0)
    out = [Block("stem", f"stem · {stem}", int(stem), "channels", ("stem.",), 0)]
    for s, st in enumerate(stages):
        n = int(st.get("blocks", 1))
        out.append(Block(f"stage.{s}", f"stage.{s} · {st['width']} × {n}", int(st["width"]), "channels",
                         (f"stages.{s}.",), s + 1, blocks=n))
    return out


def _modular(spec: dict[str, Any]) -> list[Block]:
    out = []
    for d, module in enumerate(spec.get("modules", [])):
        for m in range(int(spec.get("library", [1] * (d + 1))[d])):
            kind = module.get("type", "module")
            out.append(Block(f"module {d}.{m}", f"{kind} · {module.get('width', '?')}", int(module.get("width", 0)),
                             "channels" if kind != "linear" else "units", (f"library.{d}.{m}.",), d, m))
    return out


def _pnn(spec: dict[str, Any]) -> list[Block]:
    layers = [("conv", c["width"]) for c in spec.get("conv", [])] + [("hidden", w) for w in spec.get("hidden", [])]
    columns = len(spec.get("head", {}).get("classes", [])) or 1
    return [Block(f"column {k} layer {i}", f"c{k} {kind} · {w}", int(w), "channels" if kind == "conv" else "units",
                  (f"columns.{k}.layers.{i}.", f"columns.{k}.laterals.{i}."), i, k)
            for k in range(columns) for i, (kind, w) in enumerate(layers)]


def _expandable(spec: dict[str, Any]) -> list[Block]:
    count = len(spec.get("extractor_classes", [])) or 1
    extractors = spec.get("extractors") or [spec.get("extractor", {})] * count
    return [replace(b, name=f"extractor {k} {b.name}", label=f"e{k} {b.label}", index=k,
                    params=tuple(f"extractors.{k}.{p}" for p in b.params))
            for k, extractor in enumerate(extractors)
            for b in blocks_of({**extractor, "input_shape": spec.get("input_shape")})]


_READERS = {"mlp": _mlp, "convnet": _convnet, "resnet": _resnet, "modular": _modular, "jointnet": _modular,
            "pnn": _pnn, "expandable": _expandable}
