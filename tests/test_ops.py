"""Growth operators: function preservation, trainability of new weights, state carry-over.

Property-based: hypothesis draws a tiny net of every kind (random widths and depths, some
already grown, BatchNorm statistics and gates randomised), then one applicable operator with
random arguments.
"""

from __future__ import annotations

import json

import pytest
import torch
from hypothesis import given, settings
from hypothesis import strategies as st

from selfgrow.nets import build, ops
from selfgrow.nets.modular import ModularNet

KINDS = ("mlp", "resnet", "convnet", "modular")
SHAPE = {"mlp": [1, 4, 4], "resnet": [2, 6, 6], "convnet": [2, 8, 8], "modular": [2, 6, 6]}
SETTINGS = settings(max_examples=12, deadline=None, derandomize=True)
widths = st.integers(3, 6)


def draw_head(data, kind: str) -> dict:
    if kind == "modular" or data.draw(st.booleans()):
        return {"kind": "multi", "classes": data.draw(st.lists(st.integers(2, 4), min_size=1, max_size=2))}
    return {"kind": "single", "classes": data.draw(st.integers(2, 4)), "cosine": data.draw(st.booleans())}


def draw_spec(data, kind: str) -> dict:
    spec = {"kind": kind, "input_shape": SHAPE[kind], "head": draw_head(data, kind)}
    if kind == "mlp":
        spec["hidden"] = data.draw(st.lists(widths, min_size=1, max_size=2))
    elif kind == "resnet":
        n = data.draw(st.integers(1, 2))
        spec["stages"] = [{"width": data.draw(widths), "blocks": data.draw(st.integers(1, 2)),
                           "stride": 1 if s == 0 else 2} for s in range(n)]
    elif kind == "convnet":
        n = data.draw(st.integers(1, 2))
        spec["conv"] = [{"width": data.draw(widths), "kernel": 3, "padding": 1,
                         "pool": data.draw(st.sampled_from([1, 2]))} for _ in range(n)]
        spec["fc"] = data.draw(st.lists(widths, max_size=1))
    else:
        n_tasks = len(spec["head"]["classes"])
        spec["modules"] = [{"type": "stem", "width": data.draw(widths)},
                           {"type": "blocks", "width": data.draw(widths), "stride": 2}]
        spec["library"] = [data.draw(st.integers(1, 2)) for _ in range(2)]
        spec["paths"] = [[data.draw(st.integers(0, n - 1)) for n in spec["library"]] for _ in range(n_tasks)]
    return spec


def candidate_ops(net) -> list[tuple]:
    """Every (operator, fixed kwargs, strategy-drawn kwargs) applicable to `net`."""
    cands = []
    cosine = net.spec["head"]["cosine"]
    for name, g in net.width_groups().items():
        modes = ["gated"] if g.gated else ["zero", "split"] + (["gated"] if g.gateable else [])
        if g.feeds_head and cosine:
            modes = []  # not function-preserving and trainable at once (see ops.widen)
        cands += [(ops.widen, {"layer": name, "mode": m}) for m in modes]
        if g.gated:
            cands.append((ops.fold_gates, {"layer": name}))
    for point in net.depth_points():
        if not net.spec["gates"].get(point.name):
            cands.append((ops.deepen, {"at": point.name}))
    if isinstance(net, ModularNet):
        cands += [(ops.add_module, {}), (ops.add_task_path, {}), (ops.branch, {}),
                  (ops.drop_unused_modules, {})]
    elif net.spec["head"]["kind"] == "multi":
        cands.append((ops.add_head, {}))
    else:
        cands.append((ops.add_classes, {}))
    if not net.spec["gates"] and not cosine and not isinstance(net, ModularNet):
        cands.append((ops.scale, {}))
    return cands


def draw_growth(data, net, min_units: int = 1) -> ops.Growth:
    """Apply one randomly drawn applicable operator with random arguments (adding at least
    `min_units` units when widening)."""
    op, kwargs = data.draw(st.sampled_from(candidate_ops(net)), label="operator")
    kwargs = dict(kwargs)
    n_tasks = len(net.spec["head"]["classes"]) if net.spec["head"]["kind"] == "multi" else 1
    if op is ops.widen:
        kwargs["by"] = data.draw(st.integers(min_units, 3))
        if kwargs["mode"] == "split":
            kwargs["break_symmetry"] = data.draw(st.booleans())
    elif op is ops.deepen and net.kind == "resnet":
        stage = net.spec["stages"][int(kwargs["at"].split(".")[1])]
        lowest = 1 if kwargs["at"] != "stage.0" else 0
        kwargs["position"] = data.draw(st.integers(lowest, stage["blocks"]))
    elif op is ops.add_module:
        kwargs["depth"] = data.draw(st.integers(0, len(net.spec["library"]) - 1))
    elif op is ops.add_task_path:
        kwargs["path"] = [data.draw(st.integers(0, n - 1)) for n in net.spec["library"]]
        kwargs["n_classes"] = data.draw(st.integers(1, 3))
    elif op is ops.branch:
        kwargs["source_task"] = data.draw(st.integers(0, n_tasks - 1))
        kwargs["reuse_depth"] = data.draw(st.integers(0, len(net.spec["library"])))
        kwargs["n_classes"] = data.draw(st.integers(1, 3))
    elif op is ops.add_head:
        kwargs["n_classes"] = data.draw(st.integers(1, 3))
    elif op is ops.add_classes:
        kwargs["n"] = data.draw(st.integers(1, 3))
    elif op is ops.scale:
        kwargs["width_mult"] = data.draw(st.sampled_from([1.5, 2.0]))
        kwargs["depth_add"] = data.draw(st.integers(0, 1))
    return op(net, **kwargs)


def randomize_(net) -> None:
    """Non-trivial BatchNorm affine/statistics and ε-gates, so preservation cannot hold by luck;
    positive biases so that tiny random nets are not dead ReLU chains."""
    with torch.no_grad():
        for m in net.modules():
            if isinstance(m, (torch.nn.Linear, torch.nn.Conv2d)) and m.bias is not None:
                m.bias.uniform_(0.1, 0.5)
            if isinstance(m, torch.nn.BatchNorm2d):
                m.weight.uniform_(0.5, 1.5)
                m.bias.uniform_(0.1, 0.5)
                m.running_mean.normal_(0, 0.2)
                m.running_var.uniform_(0.5, 2.0)
        for name, p in net.named_parameters():
            if name.endswith(".eps"):
                p.normal_()


def draw_net(data, kind: str):
    """A tiny random net, sometimes already grown once (so gates, inserted blocks... occur);
    seeds torch from the drawn data so every example is reproducible."""
    torch.manual_seed(data.draw(st.integers(0, 2**16), label="torch seed"))
    net = build(draw_spec(data, kind))
    if data.draw(st.booleans(), label="grown before"):
        net = draw_growth(data, net).net
    randomize_(net)
    return net


def old_tasks(net) -> list[int | None]:
    head = net.spec["head"]
    return list(range(len(head["classes"]))) if head["kind"] == "multi" else [None]


def frozen_status_kept(old, new, task) -> bool:
    """Whether `task`'s modules are frozen in both nets or in neither (modular nets only)."""
    if not isinstance(old, ModularNet):
        return True
    path = old.path(task)
    return all(((d, m) in old.frozen_modules()) == ((d, m) in new.frozen_modules()) for d, m in enumerate(path))


def assert_same_function(old, new, x: torch.Tensor, training: bool) -> None:
    """Old tasks' outputs agree to 1e-5 (one forward each); extra classes are ignored."""
    old.train(training)
    new.train(training)
    for task in old_tasks(old):
        if training and not frozen_status_kept(old, new, task):
            continue  # the previous task's modules just became frozen: BN switches to running stats
        with torch.no_grad():
            before, after = old(x, task), new(x, task)
        assert torch.allclose(after[:, : before.shape[1]], before, atol=1e-5, rtol=0), (
            (after[:, : before.shape[1]] - before).abs().max()
        )


@pytest.mark.parametrize("kind", KINDS)
@SETTINGS
@given(data=st.data())
def test_every_operator_keeps_the_function_in_train_and_eval_mode(kind, data):
    net = draw_net(data, kind)
    growth = draw_growth(data, net)
    x = torch.randn(6, *SHAPE[kind])
    assert_same_function(net, growth.net, x, training=False)
    assert_same_function(net, growth.net, x, training=True)


def new_entry_masks(growth: ops.Growth) -> dict[str, torch.Tensor]:
    """For each grown parameter, True where the entry did not exist in the old net."""
    masks = {n: torch.ones_like(p, dtype=torch.bool) for n, p in growth.net.named_parameters()}
    for new_name, index in growth.param_map.values():
        masks[new_name][index] = False
    return masks


NO_NEW_WEIGHTS = (ops.add_module, ops.drop_unused_modules, ops.fold_gates)


@pytest.mark.parametrize("kind", KINDS)
@SETTINGS
@given(data=st.data())
def test_new_weights_get_gradients_and_one_step_on_them_changes_the_output(kind, data):
    """Eval mode throughout, so BatchNorm statistics cannot be what changes the output.
    Widening adds >= 2 units: a single new ReLU unit can be dead on every input of a tiny net."""
    net = draw_net(data, kind)
    growth = draw_growth(data, net, min_units=2)
    if growth.op["op"] in {f.__name__ for f in NO_NEW_WEIGHTS}:
        return  # nothing new to train (an unused module, pruning, gate folding)
    grown = growth.net.eval()
    task = old_tasks(grown)[-1]
    x = torch.randn(16, *SHAPE[kind])
    logits = grown(x, task)
    torch.nn.functional.cross_entropy(logits, torch.randint(logits.shape[1], (16,))).backward()
    masks = new_entry_masks(growth)
    grads = [p.grad[masks[n]] for n, p in grown.named_parameters() if p.grad is not None]
    assert sum(float(g.abs().sum()) for g in grads) > 0
    with torch.no_grad():
        for name, p in grown.named_parameters():
            if p.grad is not None:
                p -= 0.5 * p.grad * masks[name]  # move only the new entries
        assert not torch.equal(grown(x, task), logits)
