"""Backbones, heads, presets and specs of selfgrow.nets."""

from __future__ import annotations

import json

import pytest
import torch
from tolerance import assert_same_function, leaking

from selfgrow.errors import SelfgrowError
from selfgrow.nets import NET_KINDS, GrowableNet, build, preset, register_net
from selfgrow.nets.heads import COSINE_INIT_SCALE

SINGLE = {"kind": "single", "classes": 5}
MULTI = {"kind": "multi", "classes": [2, 3]}


def module_params(net: torch.nn.Module, prefix: str) -> int:
    return sum(p.numel() for n, p in net.named_parameters() if n.startswith(prefix))


def test_thesis_reduced_resnet18_matches_table_5_3b():
    """Per-module parameter counts of Table 5.3b (blocks 1-7, 5 classes)."""
    net = build(preset("resnet18-reduced", [3, 32, 32], {"kind": "multi", "classes": [5]}))
    stem = module_params(net, "stem.")
    assert stem == 3 * 9 * 64 + 2 * 64 == 1856
    assert module_params(net, "stages.0.") == 147968
    assert module_params(net, "stages.1.") == module_params(net, "stages.2.") == 152192
    assert module_params(net, "stages.3.blocks.0.") == 78208
    assert module_params(net, "stages.3.blocks.1.") == 73984
    assert module_params(net, "head.") == 64 * 5 + 5  # the table's 650 is for 10 classes
    assert net(torch.rand(2, 3, 32, 32), 0).shape == (2, 5)


def test_modular_thesis_preset_has_the_seven_modules_of_table_5_3b():
    net = build(preset("modular-resnet18-reduced", [3, 32, 32], {"kind": "multi", "classes": [10]}))
    counts = [module_params(net, f"library.{d}.") for d in range(6)] + [module_params(net, "head.")]
    assert counts == [1856, 147968, 152192, 152192, 78208, 73984, 650]


@pytest.mark.parametrize("plain", ["resnet-ctrl", "resnet-narrow16"])
def test_modular_presets_are_their_plain_nets_cut_into_modules(plain):
    """Given the plain net's weights in order, the modular preset computes the same function."""
    head = {"kind": "multi", "classes": [5]}
    torch.manual_seed(0)
    net = build(preset(plain, [3, 32, 32], head))
    modular = build(preset(f"modular-{plain}", [3, 32, 32], head))
    shapes = lambda n: [tuple(t.shape) for t in n.state_dict().values()]  # noqa: E731
    assert shapes(modular) == shapes(net)
    modular.load_state_dict(dict(zip(modular.state_dict(), net.state_dict().values())))
    net.eval(), modular.eval()
    x = torch.rand(4, 3, 32, 32)
    torch.testing.assert_close(modular(x, 0), net(x, 0))


def test_convnet_l2g_matches_table_5_3c():
    net = build(preset("convnet-l2g", [3, 32, 32], {"kind": "multi", "classes": [5]}))
    per_layer = [module_params(net, p) for p in ("convs.0", "convs.1", "convs.2", "fcs.0", "fcs.1", "head.")]
    assert per_layer == [3136, 73856, 131328, 2099200, 4196352, 10245]


def test_mlp_pmnist_matches_table_5_3a():
    net = build(preset("mlp-pmnist", [1, 28, 28], {"kind": "single", "classes": 10}))
    assert [module_params(net, p) for p in ("layers.0", "layers.1", "head.")] == [785000, 1001000, 10010]


@pytest.mark.parametrize("shape", [[1, 28, 28], [3, 32, 32], [1, 8, 8]])
@pytest.mark.parametrize("name", ["mlp-tiny", "resnet-tiny", "resnet-narrow8", "modular-mlp-pmnist"])
def test_presets_adapt_to_any_input_shape(name, shape):
    net = build(preset(name, shape, {"kind": "multi", "classes": [4]}))
    net.eval()
    assert net(torch.rand(2, *shape), 0).shape == (2, 4)
    assert net.features(torch.rand(2, *shape), 0).shape == (2, net.feature_dim)


def test_convnet_too_small_input_is_a_clear_error():
    with pytest.raises(SelfgrowError, match="too small"):
        build(preset("convnet-l2g", [1, 8, 8], SINGLE))


def test_multi_head_routes_by_task_and_needs_one():
    net = build({"kind": "mlp", "input_shape": [1, 4, 4], "hidden": [6], "head": MULTI})
    x = torch.rand(3, 1, 4, 4)
    f = net.features(x)
    routed = net(x, 1)
    assert_same_function(routed, net.head.heads[1](f))
    with leaking(net.head.heads[1].bias), pytest.raises(AssertionError):  # head 1 moved by LEAK
        assert_same_function(routed, net.head.heads[1](f))
    assert net(x, 0).shape == (3, 2) and net(x, 1).shape == (3, 3)
    with pytest.raises(SelfgrowError, match="task id"):
        net(x)
    with pytest.raises(SelfgrowError, match="task id"):
        net(x, 2)


def test_cosine_head_scores_scaled_cosines():
    net = build({"kind": "mlp", "input_shape": [1, 4, 4], "hidden": [6],
                 "head": {"kind": "single", "classes": 3, "cosine": True}})
    x = torch.rand(5, 1, 4, 4)
    f, w = net.features(x), net.head.classifier.weight
    expected = COSINE_INIT_SCALE * (f @ w.T) / (f.norm(dim=1, keepdim=True) * w.norm(dim=1))
    assert torch.allclose(net(x), expected, atol=1e-5)
    assert net.head.classifier.scale.requires_grad


def test_spec_is_json_and_rebuilds_the_same_function():
    net = build(preset("resnet-tiny", [3, 8, 8], SINGLE))
    net.train()
    net(torch.rand(4, 3, 8, 8))  # non-default BN statistics
    net.eval()
    twin = build(json.loads(json.dumps(net.spec)))
    twin.load_state_dict(net.state_dict())
    twin.eval()
    x = torch.rand(3, 3, 8, 8)
    assert torch.equal(twin(x), net(x))
    assert twin.spec == net.spec


def test_unknown_kind_and_preset_suggest_the_closest_name():
    with pytest.raises(SelfgrowError, match="Did you mean 'resnet'"):
        build({"kind": "resnt", "input_shape": [1, 2, 2], "head": SINGLE})
    with pytest.raises(SelfgrowError, match="Did you mean 'mlp-tiny'"):
        preset("mlp-tin", [1, 2, 2], SINGLE)


@pytest.mark.parametrize(
    "spec, message",
    [
        ({"kind": "mlp", "input_shape": [1, 2], "head": SINGLE}, "input_shape"),
        ({"kind": "mlp", "input_shape": [1, 2, 2], "hidden": [0], "head": SINGLE}, "hidden"),
        ({"kind": "mlp", "input_shape": [1, 2, 2], "head": {"kind": "both"}}, "Head spec"),
        ({"kind": "resnet", "input_shape": [1, 8, 8], "stages": [], "head": SINGLE}, "stages"),
        ({"kind": "modular", "input_shape": [1, 8, 8], "modules": [{"type": "linear", "width": 3}],
          "head": SINGLE}, "multi"),
        ({"kind": "modular", "input_shape": [1, 8, 8], "modules": [{"type": "linear", "width": 3}],
          "paths": [[1]], "head": {"kind": "multi", "classes": [2]}}, "path of task 0"),
    ],
)
def test_bad_specs_name_the_value(spec, message):
    with pytest.raises(SelfgrowError, match=message):
        build(spec)


def test_register_net_adds_a_kind_with_head_support():
    @register_net("test-linear")
    class LinearFeatures(GrowableNet):
        def __init__(self, spec):
            super().__init__(spec)
            self.feature_dim = 3
            self.proj = torch.nn.Linear(4, 3)
            from selfgrow.nets import build_head

            self.head = build_head(spec["head"], 3)

        def features(self, x, task=None):
            return self.proj(x.flatten(1))

    try:
        net = build({"kind": "test-linear", "input_shape": [1, 2, 2], "head": SINGLE})
        assert net(torch.rand(2, 1, 2, 2)).shape == (2, 5)
    finally:
        del NET_KINDS["test-linear"]


def test_modular_net_freezes_modules_of_earlier_tasks():
    spec = {"kind": "modular", "input_shape": [1, 6, 6],
            "modules": [{"type": "stem", "width": 3}, {"type": "blocks", "width": 4, "stride": 2}],
            "library": [1, 2], "paths": [[0, 0], [0, 1]], "head": {"kind": "multi", "classes": [2, 2]}}
    net = build(spec).train()
    frozen = net.frozen_parameter_names()
    assert any(n.startswith("library.0.0.") for n in frozen)
    assert any(n.startswith("library.1.0.") for n in frozen)
    assert not any(n.startswith(("library.1.1.", "head.heads.1.")) for n in frozen)
    assert not net.library[1][0].training and net.library[1][1].training
    assert set(net.task_parameter_names(1)) == {
        n for n, _ in net.named_parameters() if n.startswith(("library.0.0.", "library.1.1.", "head.heads.1."))
    }
