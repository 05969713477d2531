"""Operators of the MNTDP modular net: new modules and adapters, new task paths, routing the newest task, pruning
unused modules."""

from __future__ import annotations

from selfgrow.errors import SelfgrowError
from selfgrow.nets.base import GrowableNet
from selfgrow.nets.modular import ModularNet, check_path
from selfgrow.nets.ops.growth import Growth, compose, growth_from, transplant


def _modular(net: GrowableNet, op: str) -> ModularNet:
    if not isinstance(net, ModularNet):
        raise SelfgrowError(f"{op} needs a 'modular' net; got kind {net.kind!r}.")
    return net


def add_module(net: GrowableNet, depth: int) -> Growth:
    """Append a freshly initialised module at `depth`; no path uses it yet, so every task's
    function is unchanged. Its index is `growth.op["index"]`."""
    net = _modular(net, "add_module")
    library = list(net.spec["library"])
    if not isinstance(depth, int) or not 0 <= depth < len(library):
        raise SelfgrowError(f"add_module depth must be an int in 0..{len(library) - 1}; got {depth!r}.")
    library[depth] += 1
    new, copied = transplant(net, {**net.spec, "library": library})
    return growth_from(net, new, copied, {"op": "add_module", "depth": depth, "index": library[depth] - 1})


def add_adapter(net: GrowableNet, depth: int, base: int) -> Growth:
    """Append an adapter of module `base` at `depth` (Learn to Grow's adaptation: base(x) + a(x), `a` starting at
    0); no path uses it yet, so every task's function is unchanged. Its index is `growth.op["index"]`."""
    net = _modular(net, "add_adapter")
    library = list(net.spec["library"])
    if not isinstance(depth, int) or not 0 <= depth < len(library):
        raise SelfgrowError(f"add_adapter depth must be an int in 0..{len(library) - 1}; got {depth!r}.")
    if not isinstance(base, int) or not 0 <= base < library[depth] or (depth, base) in net.adapter_bases():
        raise SelfgrowError(f"add_adapter base must be a plain module of depth {depth} (0..{library[depth] - 1}, not "
                            f"an adapter); got {base!r}.")
    index = library[depth]
    library[depth] += 1
    spec = {**net.spec, "library": library, "adapters": net.spec["adapters"] + [[depth, index, base]]}
    new, copied = transplant(net, spec)
    return growth_from(net, new, copied, {"op": "add_adapter", "depth": depth, "base": base, "index": index})


def add_task_path(net: GrowableNet, path: list[int], n_classes: int) -> Growth:
    """Define the path of a new task over existing modules and give it a fresh head.

    The old tasks' outputs are unchanged in eval mode; in train mode the previous task's
    modules become frozen (eval-mode BatchNorm), which is MNTDP's freezing, not a grown layer.
    """
    net = _modular(net, "add_task_path")
    check_path(path, net.spec["library"], "add_task_path path")
    if not isinstance(n_classes, int) or n_classes < 1:
        raise SelfgrowError(f"add_task_path n_classes must be a positive int; got {n_classes!r}.")
    head = net.spec["head"]
    spec = {**net.spec, "paths": net.spec["paths"] + [list(path)],
            "head": {**head, "classes": head["classes"] + [n_classes]}}
    new, copied = transplant(net, spec)
    return growth_from(net, new, copied, {"op": "add_task_path", "path": list(path), "n_classes": n_classes})


def set_task_path(net: GrowableNet, task: int, path: list[int]) -> Growth:
    """Route the newest task (the one about to be learnt) through `path` of existing modules.

    Only the newest task may be rerouted: every earlier task keeps its function in train and
    eval mode (its modules stay frozen, as they depend only on the earlier paths). The newest
    task's own output changes, which is the point: MNTDP picks the path of the task it learns.
    """
    net = _modular(net, "set_task_path")
    last = len(net.spec["paths"]) - 1
    if last < 0:
        raise SelfgrowError("set_task_path needs a task to route, but the net has no head yet (add one first).")
    if not isinstance(task, int) or isinstance(task, bool) or task != last:
        raise SelfgrowError(f"set_task_path can only route the newest task ({last}); got task {task!r}.")
    check_path(path, net.spec["library"], "set_task_path path")
    spec = {**net.spec, "paths": net.spec["paths"][:-1] + [list(path)]}
    new, copied = transplant(net, spec)
    return growth_from(net, new, copied, {"op": "set_task_path", "task": task, "path": list(path)})


def branch(net: GrowableNet, source_task: int, reuse_depth: int, n_classes: int) -> Growth:
    """MNTDP candidate: reuse `source_task`'s modules below `reuse_depth`, add a new module at
    every depth from `reuse_depth` up, and make that path (plus a new head) the new task."""
    net = _modular(net, "branch")
    source = net.path(source_task)
    if not isinstance(reuse_depth, int) or not 0 <= reuse_depth <= len(source):
        raise SelfgrowError(f"branch reuse_depth must be an int in 0..{len(source)}; got {reuse_depth!r}.")
    growth, path = None, list(source)
    for depth in range(reuse_depth, len(source)):
        step = add_module(growth.net if growth else net, depth)
        path[depth] = step.op["index"]
        growth = compose(growth, step) if growth else step
    step = add_task_path(growth.net if growth else net, path, n_classes)
    return compose(growth, step) if growth else step


def drop_unused_modules(net: GrowableNet) -> Growth:
    """Remove modules no task path uses (MNTDP discards the candidates it did not select);
    every task's function is unchanged, module indices are compacted."""
    net = _modular(net, "drop_unused_modules")
    bases = net.adapter_bases()
    used = [sorted({m for path in net.spec["paths"] for m in (path[d], bases.get((d, path[d])))} - {None})
            for d in range(len(net.spec["library"]))]
    if any(not u for u in used):
        raise SelfgrowError("drop_unused_modules needs at least one task path (it would empty the library).")
    position = [{old: new for new, old in enumerate(u)} for u in used]
    spec = {**net.spec, "library": [len(u) for u in used],
            "paths": [[position[d][m] for d, m in enumerate(path)] for path in net.spec["paths"]],
            "adapters": [[d, position[d][m], position[d][base]] for d, m, base in net.spec["adapters"]
                         if m in position[d]]}

    def rename(name: str) -> str | None:
        if not name.startswith("library."):
            return name
        _, d, m, rest = name.split(".", 3)
        new = position[int(d)].get(int(m))
        return None if new is None else f"library.{d}.{new}.{rest}"

    new, copied = transplant(net, spec, rename)
    return growth_from(net, new, copied, {"op": "drop_unused_modules"})
