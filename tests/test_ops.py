"""Growth operators: function preservation, trainability of new weights, state carry-over.

Property-based: hypothesis draws a tiny net of every kind (random widths and depths, some
already grown, BatchNorm statistics and gates randomised), then one applicable operator with
random arguments.
"""

from __future__ import annotations

import json

import pytest
import torch
from hypothesis import assume, event, given, settings
from hypothesis import strategies as st

from selfgrow.errors import SelfgrowError
from selfgrow.nets import build, ops
from selfgrow.nets.modular import Adapter, ModularNet

KINDS = ("mlp", "resnet", "convnet", "modular")
SHAPE = {"mlp": [1, 4, 4], "resnet": [2, 6, 6], "convnet": [2, 8, 8], "modular": [2, 6, 6]}
SETTINGS = settings(max_examples=5, deadline=None, derandomize=True)
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
        if spec["library"][1] == 2 and data.draw(st.booleans(), label="adapter"):
            spec["adapters"] = [[1, 1, 0]]  # Learn to Grow's adaptation of module 0
    return spec


def label(op, kwargs) -> str:
    """'widen zero', 'deepen', 'head' (add_head or add_classes)... as used in OPERATORS."""
    if op in (ops.add_head, ops.add_classes):
        return "head"
    return f"{op.__name__} {kwargs.get('mode', '')}".strip()


OPERATORS = {kind: ["widen zero", "widen split", "widen gated", "fold_gates", "deepen", "head", "scale"]
             for kind in ("mlp", "resnet", "convnet")}
OPERATORS["modular"] = ["add_module", "add_adapter", "add_task_path", "branch", "drop_unused_modules"]
CASES = [(kind, op) for kind, names in OPERATORS.items() for op in names]


def candidate_ops(net) -> list[tuple]:
    """Every (operator, fixed kwargs) applicable to `net`; other kwargs are drawn later."""
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
        cands += [(ops.add_module, {}), (ops.add_adapter, {}), (ops.add_task_path, {}), (ops.branch, {}),
                  (ops.drop_unused_modules, {})]
    elif net.spec["head"]["kind"] == "multi":
        cands.append((ops.add_head, {}))
    else:
        cands.append((ops.add_classes, {}))
    if not net.spec["gates"] and not cosine and not isinstance(net, ModularNet):
        cands.append((ops.scale, {}))
    return cands


def draw_growth(data, net, min_units: int = 1, only: str | None = None) -> ops.Growth:
    """Apply one randomly drawn applicable operator (labelled `only` when given) with random
    arguments, adding at least `min_units` units when widening."""
    candidates = [c for c in candidate_ops(net) if only is None or label(*c) == only]
    assume(candidates)  # e.g. no widenable group left under a cosine head
    op, kwargs = data.draw(st.sampled_from(candidates), label="operator")
    event(label(op, kwargs))
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
    elif op is ops.add_adapter:
        kwargs["depth"] = data.draw(st.integers(0, len(net.spec["library"]) - 1))
        adapted = {m for d, m, _ in net.spec["adapters"] if d == kwargs["depth"]}
        kwargs["base"] = data.draw(st.sampled_from([m for m in range(net.spec["library"][kwargs["depth"]])
                                                    if m not in adapted]))
    elif op is ops.add_task_path:
        kwargs["path"] = [data.draw(st.integers(0, n - 1)) for n in net.spec["library"]]
        kwargs["n_classes"] = data.draw(st.integers(2, 3))
    elif op is ops.branch:
        kwargs["source_task"] = data.draw(st.integers(0, n_tasks - 1))
        kwargs["reuse_depth"] = data.draw(st.integers(0, len(net.spec["library"])))
        kwargs["n_classes"] = data.draw(st.integers(2, 3))
    elif op is ops.add_head:
        kwargs["n_classes"] = data.draw(st.integers(2, 3))
    elif op is ops.add_classes:
        kwargs["n"] = data.draw(st.integers(1, 3))
    elif op is ops.scale:
        kwargs["width_mult"] = data.draw(st.sampled_from([1.5, 2.0]))
        kwargs["depth_add"] = data.draw(st.integers(0, 1))
    elif op is ops.fold_gates and data.draw(st.booleans(), label="select units"):
        group = net.width_groups()[kwargs["layer"]]
        kwargs["keep"] = data.draw(st.lists(st.integers(0, group.gated - 1), min_size=1, unique=True))
        with torch.no_grad():  # Firefly zeroes the ε of the units it does not select
            eps = dict(net.named_parameters())[group.gate_param]
            dropped = [i for i in range(group.gated) if i not in kwargs["keep"]]
            eps[dropped] = 0
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
        for m in net.modules():
            if isinstance(m, Adapter):  # adapters start at 0; a trained one adds to its base
                for p in m.parameters():
                    p.normal_(0, 0.3)


def draw_net(data, kind: str, then: str | None = None):
    """A tiny random net, sometimes already grown once (so gates, inserted blocks... occur),
    with ε-gates when operator `then` is 'fold_gates'; seeds torch from the drawn data so
    every example is reproducible."""
    torch.manual_seed(data.draw(st.integers(0, 2**16), label="torch seed"))
    net = build(draw_spec(data, kind))
    if data.draw(st.booleans(), label="grown before"):
        net = draw_growth(data, net).net
    if then == "fold_gates" and not net.spec["gates"]:
        net = draw_growth(data, net, only="widen gated").net
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


@pytest.mark.parametrize("kind, operator", CASES)
@SETTINGS
@given(data=st.data())
def test_every_operator_keeps_the_function_in_train_and_eval_mode(kind, operator, data):
    net = draw_net(data, kind, then=operator)
    growth = draw_growth(data, net, only=operator)
    x = torch.randn(6, *SHAPE[kind])
    assert_same_function(net, growth.net, x, training=False)
    assert_same_function(net, growth.net, x, training=True)


def new_entry_masks(growth: ops.Growth) -> dict[str, torch.Tensor]:
    """For each grown parameter, True where the entry did not exist in the old net."""
    masks = {n: torch.ones_like(p, dtype=torch.bool) for n, p in growth.net.named_parameters()}
    for new_name, index in growth.param_map.values():
        masks[new_name][index] = False
    return masks


NO_NEW_WEIGHTS = ("add_module", "add_adapter", "drop_unused_modules", "fold_gates")  # unused / removed / folded


@pytest.mark.parametrize("kind, operator", [c for c in CASES if c[1] not in NO_NEW_WEIGHTS])
@SETTINGS
@given(data=st.data())
def test_new_weights_get_gradients_and_one_step_on_them_changes_the_output(kind, operator, data):
    """Eval mode throughout, so BatchNorm statistics cannot be what changes the output.
    Widening adds >= 2 units: a single new ReLU unit can be dead on every input of a tiny net."""
    net = draw_net(data, kind)
    growth = draw_growth(data, net, min_units=2, only=operator)
    grown = growth.net.eval()
    task = old_tasks(grown)[-1]
    x = torch.randn(16, *SHAPE[kind])
    logits = grown(x, task)
    torch.nn.functional.cross_entropy(logits, torch.randint(logits.shape[1], (16,))).backward()
    masks = new_entry_masks(growth)
    grads = [p.grad[masks[n]] for n, p in grown.named_parameters() if p.grad is not None]
    norm = sum(float(g.square().sum()) for g in grads) ** 0.5
    assert norm > 0
    with torch.no_grad():
        for name, p in grown.named_parameters():
            if p.grad is not None:
                p -= 0.5 * p.grad * masks[name] / norm  # a normalised step on the new entries only
        assert not torch.equal(grown(x, task), logits)


def train_steps(net, optimizer, kind: str, steps: int = 2) -> None:
    """A few optimizer steps on random data for the net's last task."""
    net.train()
    task = old_tasks(net)[-1]
    for _ in range(steps):
        optimizer.zero_grad()
        logits = net(torch.randn(8, *SHAPE[kind]), task)
        torch.nn.functional.cross_entropy(logits, torch.randint(logits.shape[1], (8,))).backward()
        optimizer.step()


@pytest.mark.parametrize("kind", KINDS)
@pytest.mark.parametrize("optimizer", ["adam", "sgd"])
@settings(max_examples=4, deadline=None, derandomize=True)
@given(data=st.data())
def test_optimizer_state_of_old_parameters_survives_growth(kind, optimizer, data):
    make = {"adam": lambda p: torch.optim.Adam(p, lr=1e-3),
            "sgd": lambda p: torch.optim.SGD(p, lr=1e-2, momentum=0.9)}[optimizer]
    net = draw_net(data, kind)
    old_opt = make(net.parameters())
    train_steps(net, old_opt, kind)
    growth = draw_growth(data, net)
    new_opt = make(growth.net.parameters())
    ops.carry_optimizer_state(old_opt, growth, new_opt)
    new_params = dict(growth.net.named_parameters())
    carried = 0
    for name, p in net.named_parameters():
        if p not in old_opt.state or name not in growth.param_map:
            continue
        new_name, index = growth.param_map[name]
        old_state, new_state = old_opt.state[p], new_opt.state[new_params[new_name]]
        for key, value in old_state.items():
            if value.dim() == 0:
                assert torch.equal(new_state[key], value)  # Adam's step
            else:
                assert torch.equal(new_state[key][index], value)
                outside = torch.ones_like(new_state[key], dtype=torch.bool)
                outside[index] = False
                assert not new_state[key][outside].any()
        carried += 1
    assert carried > 0 or growth.op["op"] == "drop_unused_modules"
    train_steps(growth.net, new_opt, kind, steps=1)  # the carried state fits the new shapes


@pytest.mark.parametrize("kind", KINDS)
@settings(max_examples=6, deadline=None, derandomize=True)
@given(data=st.data())
def test_remap_tensors_places_old_values_and_zeros_elsewhere(kind, data):
    net = draw_net(data, kind)
    importance = {n: torch.rand_like(p) + 1 for n, p in net.named_parameters()}
    growth = draw_growth(data, net)
    remapped = ops.remap_tensors(importance, growth)
    new_params = dict(growth.net.named_parameters())
    for old_name, (new_name, index) in growth.param_map.items():
        assert remapped[new_name].shape == new_params[new_name].shape
        assert torch.equal(remapped[new_name][index], importance[old_name])
        assert remapped[new_name].sum() == pytest.approx(float(importance[old_name].sum()), rel=1e-5)
    for name in growth.new_parameter_names():
        assert not remapped[name].any()


@pytest.mark.parametrize("kind", KINDS)
@settings(max_examples=6, deadline=None, derandomize=True)
@given(data=st.data())
def test_spec_round_trip_after_any_sequence_of_operators(kind, data):
    net = draw_net(data, kind)
    for _ in range(data.draw(st.integers(1, 3), label="operators")):
        net = draw_growth(data, net).net
    net.train()
    net(torch.randn(4, *SHAPE[kind]), old_tasks(net)[-1])  # move BN statistics
    randomize_(net)
    twin = build(json.loads(json.dumps(net.spec)))
    twin.load_state_dict(net.state_dict())
    x = torch.randn(5, *SHAPE[kind])
    for training in (False, True):
        net.train(training)
        twin.train(training)
        for task in old_tasks(net):
            assert torch.equal(twin(x, task), net(x, task))


# ---- targeted behaviour of single operators -------------------------------------------------


def mlp(hidden=(4, 5), head=None):
    return build({"kind": "mlp", "input_shape": [1, 3, 3], "hidden": list(hidden),
                  "head": head or {"kind": "single", "classes": 3}})


def test_widen_zero_gives_random_incoming_and_zero_outgoing_weights():
    net = mlp()
    grown = ops.widen(net, "hidden.0", 3, mode="zero").net
    assert torch.equal(grown.layers[0].weight[:4], net.layers[0].weight)
    assert grown.layers[0].weight[4:].abs().min() > 0
    assert not grown.layers[1].weight[:, 4:].any()
    assert grown.spec["hidden"] == [7, 5]


def test_widen_split_copies_units_and_divides_outgoing_weights():
    net = mlp()
    growth = ops.widen(net, "hidden.1", 2, mode="split", sources=[3, 3], break_symmetry=False)
    grown = growth.net
    w_in, w_out = grown.layers[1].weight, grown.head.classifier.weight
    assert torch.equal(w_in[5], w_in[3]) and torch.equal(w_in[6], w_in[3])
    old_out = net.head.classifier.weight
    for k in (3, 5, 6):  # unit 3 and its two copies share its old outgoing weights equally
        assert torch.allclose(w_out[:, k], old_out[:, 3] / 3)
    assert torch.equal(w_out[:, :3], old_out[:, :3])


def test_split_with_symmetry_breaking_gives_copies_different_gradients():
    net = mlp()
    x = torch.rand(8, 1, 3, 3)
    unit = int(net.features(x).sum(0).argmax())  # an active unit
    grown = ops.widen(net, "hidden.1", 1, mode="split", sources=[unit]).net
    w_out = grown.head.classifier.weight
    assert torch.allclose(w_out[:, unit] + w_out[:, 5], net.head.classifier.weight[:, unit], atol=1e-6)
    grown(x).square().sum().backward()
    g = grown.layers[1].weight.grad
    assert g[unit].abs().sum() > 0
    assert not torch.allclose(g[unit], g[5])  # unequal shares -> the copies drift apart


def test_gated_widen_adds_zero_gates_that_get_gradients_and_fold_exactly():
    net = mlp()
    growth = ops.widen(net, "hidden.0", 2, mode="gated")
    grown = growth.net
    assert grown.spec["gates"] == {"hidden.0": 2}
    assert torch.equal(grown.gates[0].eps, torch.zeros(2))
    assert grown.layers[1].weight[:, 4:].abs().min() > 0  # outgoing random: the gate does the hiding
    x = torch.rand(8, 1, 3, 3)
    grown(x).square().sum().backward()
    assert grown.gates[0].eps.grad.abs().min() > 0
    assert grown.layers[0].weight.grad[4:].abs().sum() == 0  # scaled by eps = 0, as in Firefly
    with torch.no_grad():
        grown.gates[0].eps.copy_(torch.tensor([0.7, -1.3]))
    again = ops.widen(grown, "hidden.0", 1, mode="gated").net  # a gated group grows its gate
    assert torch.allclose(again.gates[0].eps, torch.tensor([0.7, -1.3, 0.0]))
    folded = ops.fold_gates(grown, "hidden.0")
    assert folded.net.spec["gates"] == {} and "gates.0.eps" not in dict(folded.net.named_parameters())
    assert torch.allclose(folded.net(x), grown(x), atol=1e-6)


def test_operators_refuse_what_they_cannot_do_exactly():
    gated = ops.widen(mlp(), "hidden.0", 1, mode="gated").net
    with pytest.raises(SelfgrowError, match="fold them"):
        ops.widen(gated, "hidden.0", 1, mode="zero")
    with pytest.raises(SelfgrowError, match="fold them"):
        ops.deepen(gated, "hidden.0")
    cosine = mlp(head={"kind": "single", "classes": 3, "cosine": True})
    with pytest.raises(SelfgrowError, match="cosine"):
        ops.widen(cosine, "hidden.1", 1)
    ops.widen(cosine, "hidden.0", 1)  # earlier layers are fine
    with pytest.raises(SelfgrowError, match="Unknown width group 'hidden.7'"):
        ops.widen(mlp(), "hidden.7", 1)
    with pytest.raises(SelfgrowError, match="add_head needs a 'multi' head"):
        ops.add_head(mlp(), 2)
    resnet = build({"kind": "resnet", "input_shape": [1, 6, 6], "head": {"kind": "single", "classes": 2},
                    "stages": [{"width": 3, "blocks": 1}, {"width": 4, "blocks": 1}]})
    with pytest.raises(SelfgrowError, match="cannot be ε-gated"):
        ops.widen(resnet, "stage.0", 1, mode="gated")
    with pytest.raises(SelfgrowError, match="position must be an int in 1..1"):
        ops.deepen(resnet, "stage.1", position=0)


def test_operators_leave_the_input_net_untouched():
    net = mlp()
    before = {k: v.clone() for k, v in net.state_dict().items()}
    spec = json.dumps(net.spec)
    for growth in (ops.widen(net, "hidden.0", 2, mode="split"), ops.deepen(net, "hidden.1"),
                   ops.add_classes(net, 2), ops.scale(net, 2.0, 1)):
        assert growth.source is net and growth.net is not net
    assert json.dumps(net.spec) == spec
    assert all(torch.equal(before[k], v) for k, v in net.state_dict().items())


def test_resnet_deepen_inserts_a_zero_gamma_block_and_renames_the_rest():
    net = build({"kind": "resnet", "input_shape": [1, 6, 6], "head": {"kind": "single", "classes": 2},
                 "stages": [{"width": 3, "blocks": 2}]})
    growth = ops.deepen(net, "stage.0", position=1)
    grown = growth.net
    assert grown.spec["stages"][0]["blocks"] == 3
    assert not grown.stages[0].blocks[1].bn2.weight.any() and not grown.stages[0].blocks[1].bn2.bias.any()
    assert growth.param_map["stages.0.blocks.1.conv1.weight"][0] == "stages.0.blocks.2.conv1.weight"
    assert torch.equal(grown.stages[0].blocks[2].conv1.weight, net.stages[0].blocks[1].conv1.weight)


def test_scale_composes_maps_and_widens_every_group():
    net = mlp()
    growth = ops.scale(net, width_mult=1.5, depth_add=1)
    assert growth.net.spec["hidden"] == [6, 6, 8, 8]
    name, index = growth.param_map["layers.1.weight"]
    assert name == "layers.2.weight"  # shifted by the layer inserted after hidden.0
    assert torch.equal(dict(growth.net.named_parameters())[name][index], net.layers[1].weight)
    assert [o["op"] for o in growth.op["ops"]] == ["widen", "widen", "deepen", "deepen"]


def test_growth_points_list_widths_and_depths_for_growers():
    net = build({"kind": "convnet", "input_shape": [1, 8, 8], "head": {"kind": "single", "classes": 2},
                 "conv": [{"width": 3, "kernel": 3}], "fc": [5]})
    points = {(p.kind, p.name): p.size for p in net.growth_points()}
    assert points == {("width", "conv.0"): 3, ("width", "fc.0"): 5, ("depth", "conv.0"): None,
                      ("depth", "fc.0"): None}


def test_mntdp_branch_reuses_the_source_trunk_and_trains_only_new_modules():
    net = build({"kind": "modular", "input_shape": [1, 6, 6], "head": {"kind": "multi", "classes": [2]},
                 "modules": [{"type": "stem", "width": 3}, {"type": "blocks", "width": 4, "stride": 2},
                             {"type": "blocks", "width": 4}]})
    growth = ops.branch(net, source_task=0, reuse_depth=1, n_classes=3)
    grown = growth.net
    assert grown.spec["library"] == [1, 2, 2] and grown.spec["paths"] == [[0, 0, 0], [0, 1, 1]]
    assert [o["op"] for o in growth.op["ops"]] == ["add_module", "add_module", "add_task_path"]
    frozen = grown.frozen_parameter_names()
    trainable = grown.task_parameter_names(1) - frozen
    assert trainable and all(n.startswith(("library.1.1.", "library.2.1.", "head.heads.1.")) for n in trainable)
    pruned = ops.drop_unused_modules(ops.add_module(grown, 0).net)
    assert pruned.net.spec["library"] == [1, 2, 2]


@pytest.mark.skipif(not torch.cuda.is_available(), reason="needs a CUDA device")
def test_growth_keeps_the_device_and_the_function_on_cuda():
    net = build({"kind": "resnet", "input_shape": [3, 8, 8], "head": {"kind": "single", "classes": 2},
                 "stages": [{"width": 4, "blocks": 1}, {"width": 4, "blocks": 1}]}).cuda().eval()
    x = torch.rand(3, 3, 8, 8, device="cuda")
    for growth in (ops.widen(net, "stage.1", 2, mode="split"), ops.widen(net, "stage.0.block.0", 2, mode="gated"),
                   ops.deepen(net, "stage.0"), ops.add_classes(net, 3)):
        assert all(p.is_cuda for p in growth.net.parameters())
        assert torch.allclose(growth.net(x)[:, :2], net(x), atol=1e-5)


def test_fold_gates_keeping_top_units_drops_the_rest_and_carries_their_state():
    """Firefly selection: keep gated units 0 and 2 of 3; unit 1's ε is 0, so nothing changes."""
    net = build({"kind": "convnet", "input_shape": [1, 6, 6], "head": {"kind": "single", "classes": 2},
                 "conv": [{"width": 3, "kernel": 3, "padding": 1}], "fc": []})
    gated = ops.widen(net, "conv.0", 3, mode="gated").net
    adam = torch.optim.Adam(gated.parameters())
    train_steps_on(gated, adam, torch.randn(4, 1, 6, 6))
    with torch.no_grad():
        gated.conv_gates[0].eps.copy_(torch.tensor([0.8, 0.0, -0.5]))  # as after Firefly's selection
    growth = ops.fold_gates(gated, "conv.0", keep=[2, 0])
    folded = growth.net
    assert folded.spec["conv"][0]["width"] == 5 and folded.spec["gates"] == {}
    x = torch.randn(5, 1, 6, 6)
    with torch.no_grad():
        assert torch.allclose(folded(x), gated(x), atol=1e-6)
    kept_rows = torch.tensor([0, 1, 2, 3, 5])
    assert torch.equal(folded.convs[0].weight, gated.convs[0].weight[kept_rows])
    name, dim, rows = growth.partial_map["head.classifier.weight"]  # 3x3 maps flattened per channel
    assert dim == 1 and torch.equal(rows, (kept_rows[:, None] * 9 + torch.arange(9)).flatten())
    importance = {n: torch.rand_like(p) for n, p in gated.named_parameters()}
    remapped = ops.remap_tensors(importance, growth)
    assert torch.equal(remapped["convs.0.bias"], importance["convs.0.bias"][kept_rows])
    new_adam = torch.optim.Adam(folded.parameters())
    ops.carry_optimizer_state(adam, growth, new_adam)
    assert torch.equal(new_adam.state[folded.convs[0].weight]["exp_avg"],
                       adam.state[gated.convs[0].weight]["exp_avg"][kept_rows])
    with pytest.raises(SelfgrowError, match="keep must list gated-unit indices in 0..2"):
        ops.fold_gates(gated, "conv.0", keep=[3])


def train_steps_on(net, optimizer, x: torch.Tensor) -> None:
    """Two optimizer steps on a squared-output loss."""
    for _ in range(2):
        optimizer.zero_grad()
        net(x).square().mean().backward()
        optimizer.step()


CONV_MODULES = [{"type": "stem", "width": 3}, {"type": "blocks", "width": 4, "stride": 2}]
LINEAR_MODULES = [{"type": "linear", "width": 5}, {"type": "linear", "width": 4}]


def _two_task_modular(modules=CONV_MODULES):
    net = build({"kind": "modular", "input_shape": [1, 6, 6], "head": {"kind": "multi", "classes": [2, 3]},
                 "modules": modules, "paths": [[0, 0]]})
    randomize_(net)
    return net


@pytest.mark.parametrize("modules, depth", [(CONV_MODULES, 0), (CONV_MODULES, 1), (LINEAR_MODULES, 0),
                                            (LINEAR_MODULES, 1)])
def test_an_adapted_path_starts_as_its_base_and_trains_only_the_adapter_and_head(modules, depth):
    """Learn to Grow's adaptation: base(x) + a(x) with a = 0 at first; the base stays frozen (and in eval mode)
    although only the newest task uses the adapter."""
    net = _two_task_modular(modules).eval()
    x = torch.randn(5, 1, 6, 6)
    growth = ops.add_adapter(net, depth, 0)
    index = growth.op["index"]
    path = [0, 0]
    path[depth] = index
    routed = ops.set_task_path(growth.net, 1, path).net.eval()
    assert routed.spec["adapters"] == [[depth, index, 0]]
    with torch.no_grad():
        assert torch.equal(routed(x, 1), net(x, 1))  # a copy of the function: the adapter adds exact zeros
        assert torch.equal(routed(x, 0), net(x, 0))
    frozen = routed.frozen_parameter_names()
    assert {n for n in routed.task_parameter_names(1) if n.startswith(f"library.{depth}.0.")} <= frozen
    trainable = routed.task_parameter_names(1) - frozen
    assert trainable and all(n.startswith((f"library.{depth}.{index}.", "head.heads.1.")) for n in trainable)
    routed.train()
    assert not routed.library[depth][0].training
    logits = routed(x, 1)
    torch.nn.functional.cross_entropy(logits, torch.randint(3, (5,))).backward()
    assert any(p.grad is not None and p.grad.abs().sum() > 0 for p in routed.library[depth][index].parameters())


def test_dropping_unused_modules_keeps_the_base_of_a_used_adapter():
    net = _two_task_modular()
    grown = ops.add_module(net, 1).net  # module 1 of depth 1: unused
    grown = ops.add_adapter(grown, 1, 0).net  # module 2 adapts module 0
    grown = ops.set_task_path(grown, 1, [0, 2]).net
    with torch.no_grad():
        grown.library[1][2].map[0].weight.normal_()
    x = torch.randn(4, 1, 6, 6)
    pruned = ops.drop_unused_modules(grown.eval()).net.eval()
    assert pruned.spec["library"] == [1, 2] and pruned.spec["adapters"] == [[1, 1, 0]]
    assert pruned.spec["paths"] == [[0, 0], [0, 1]]
    with torch.no_grad():
        for task in (0, 1):
            assert torch.equal(pruned(x, task), grown(x, task))


@pytest.mark.parametrize("adapters, message", [
    ([[1, 0, 0]], "two distinct modules"),
    ([[3, 1, 0]], "two distinct modules"),
    ([[1, 1, 0], [1, 1, 0]], "each adapter once"),
    ("x", "must be a list"),
])
def test_bad_adapters_are_one_sentence_errors(adapters, message):
    with pytest.raises(SelfgrowError, match=message):
        build({"kind": "modular", "input_shape": [1, 6, 6], "head": {"kind": "multi", "classes": [2]},
               "modules": [{"type": "stem", "width": 3}, {"type": "blocks", "width": 4}], "library": [1, 2],
               "adapters": adapters})
    with pytest.raises(SelfgrowError, match="not an adapter"):
        ops.add_adapter(ops.add_adapter(_two_task_modular(), 0, 0).net, 0, 1)
