"""`ops.set_new_extractor` and the `searched-extractor` grower: the size of an expandable net's new extractor."""

from __future__ import annotations

from types import SimpleNamespace

import pytest
import torch
from tolerance import assert_same_function, leaking
from trainer_fixtures import SHAPE, make_tasks

from selfgrow.errors import SelfgrowError
from selfgrow.growth import build_grower
from selfgrow.growth.extractor_search import scaled_extractor
from selfgrow.nets import build, ops
from selfgrow.nets.cost import count_params
from selfgrow.report.architecture import blocks_of
from selfgrow.retention import build_retention
from selfgrow.train import Learner, Trainer

QUICK = {"n_trials": 3, "epochs": 1, "halving_batch": 3}


def expandable(classes: int, hidden: int = 6) -> torch.nn.Module:
    torch.manual_seed(0)
    return build({"kind": "expandable", "input_shape": list(SHAPE), "extractor": {"kind": "mlp", "hidden": [hidden]},
                  "head": {"kind": "single", "classes": classes}})


def trained_then_expanded() -> torch.nn.Module:
    """An expandable net whose first extractor and head are non-trivial, just expanded for 2 new classes."""
    net = expandable(2)
    with torch.no_grad():
        for p in net.parameters():
            p.add_(torch.randn_like(p) * 0.3)
    return ops.add_classes(net, 2).net


def test_a_resized_new_extractor_keeps_every_old_class_output():
    net = trained_then_expanded()
    x = torch.rand(9, *SHAPE)
    before = net(x)
    grown = ops.set_new_extractor(net, {"kind": "mlp", "hidden": [3]})
    new = grown.net
    assert [e.feature_dim for e in new.extractors] == [6, 3] and new.features(x).shape == (9, 9)
    assert new.spec["extractors"][1]["hidden"] == [3] and new.spec["extractor"]["hidden"] == [6]
    assert_same_function(new(x), before)  # the new columns start at zero, so every class's logit is kept
    for name, p in net.extractors[0].named_parameters():
        assert torch.equal(new.extractors[0].get_parameter(name), p)
    with leaking(new.extractors[0].layers[0].weight), pytest.raises(AssertionError):
        assert_same_function(new(x), before)
    inputs = SHAPE[0] * SHAPE[1] * SHAPE[2]  # extractor 1 goes from 6 to 3 units; the head reads 3 fewer features
    assert count_params(new) == count_params(net) - 3 * (inputs + 1) - 4 * 3


def test_the_growth_maps_every_kept_parameter_and_the_old_head_columns():
    net = trained_then_expanded()
    growth = ops.set_new_extractor(net, {"kind": "mlp", "hidden": [12]})
    assert set(growth.param_map) == {n for n, _ in net.named_parameters()
                                     if n.startswith("extractors.0.") or n == "head.classifier.bias"}
    name, dim, columns = growth.partial_map["head.classifier.weight"]
    assert name == "head.classifier.weight" and dim == 1 and torch.equal(columns, torch.arange(6))
    assert torch.equal(growth.net.head.classifier.weight[:, :6], net.head.classifier.weight[:, :6])


def test_a_net_rebuilt_from_the_resized_spec_is_the_same_net():
    grown = ops.set_new_extractor(trained_then_expanded(), {"kind": "mlp", "hidden": [3]}).net
    again = ops.add_classes(grown, 2).net  # a later expansion adds the template size again
    assert [len(e.spec["hidden"]) and e.spec["hidden"][0] for e in again.extractors] == [6, 3, 6]
    copy = build(again.spec)
    copy.load_state_dict(again.state_dict())
    x = torch.rand(3, *SHAPE)
    assert torch.equal(copy(x), again(x))


def test_the_first_extractor_can_be_sized_before_the_first_task():
    net = ops.add_classes(expandable(0), 2).net
    sized = ops.set_new_extractor(net, {"kind": "mlp", "hidden": [2]}).net
    assert sized.extractors[0].feature_dim == 2 and sized(torch.rand(4, *SHAPE)).shape == (4, 2)


def test_a_trained_newest_extractor_or_another_net_kind_is_refused():
    net = trained_then_expanded()
    with torch.no_grad():
        net.head.classifier.weight[:, 6:] = 0.1  # the old classes now read extractor 1: it has been trained
    with pytest.raises(SelfgrowError, match="already read the newest extractor"):
        ops.set_new_extractor(net, {"kind": "mlp", "hidden": [3]})
    mlp = build({"kind": "mlp", "input_shape": list(SHAPE), "hidden": [4], "head": {"kind": "single", "classes": 2}})
    with pytest.raises(SelfgrowError, match="needs an expandable net; got net kind 'mlp'"):
        ops.set_new_extractor(mlp, {"kind": "mlp", "hidden": [3]})
    with pytest.raises(SelfgrowError, match="extractor must be a net spec of another kind"):
        ops.set_new_extractor(trained_then_expanded(), {"kind": "expandable"})


def test_extractors_must_match_the_extractor_count():
    spec = expandable(2).spec | {"extractors": [{"kind": "mlp", "hidden": [3]}] * 2}
    with pytest.raises(SelfgrowError, match="'extractors' must be a list of 1 net specs"):
        build(spec)


def test_scaled_extractor_rounds_every_width_group_up_and_keeps_at_least_one():
    net = expandable(2, hidden=6)
    assert scaled_extractor(net, 0.25)["hidden"] == [2]  # ceil(1.5)
    assert scaled_extractor(net, 0.01)["hidden"] == [1]
    conv = build({"kind": "expandable", "input_shape": [3, 8, 8],
                  "extractor": {"kind": "resnet", "stages": [{"width": 4, "blocks": 1}, {"width": 8, "blocks": 1}]},
                  "head": {"kind": "single", "classes": 2}})
    assert [s["width"] for s in scaled_extractor(conv, 1.5)["stages"]] == [6, 12]
    assert conv.spec["extractor"]["stages"][0]["width"] == 4  # the template is not changed


def test_the_report_draws_each_extractor_at_its_own_size():
    spec = ops.set_new_extractor(trained_then_expanded(), {"kind": "mlp", "hidden": [3]}).net.spec
    blocks = blocks_of(spec)
    assert [(b.index, b.width) for b in blocks] == [(0, 6), (1, 3)]
    assert all(p.startswith("extractors.1.") for p in blocks[1].params) and blocks[1].params


def learner(options: dict) -> Learner:
    trainer = Trainer(epochs=2, batch_size=16, optimizer="adam", lr=0.01, device="cpu", curve_batches=0, progress=False)
    return Learner(expandable(0), build_grower("searched-extractor", **{**QUICK, **options}),
                   [build_retention("replay", budget=12)], trainer, "class")


def test_the_grower_sizes_each_new_extractor_from_its_space_and_old_extractors_stay_frozen():
    torch.manual_seed(0)
    run = learner({"width_factors": [0.5, 2.0], "seed": 0})
    tasks = make_tasks(3)
    run.learn(tasks[0])
    first = {n: p.detach().clone() for n, p in run.net.extractors[0].named_parameters()}
    for task in tasks[1:]:
        run.learn(task)
    widths = [e.feature_dim for e in run.net.extractors]
    assert len(widths) == 3 and set(widths) <= {3, 6, 12}
    for n, p in run.net.extractors[0].named_parameters():
        assert torch.equal(p, first[n])
    searched = run.grower.history
    assert [h["task"] for h in searched] == [0, 1, 2]
    factors = [h["chosen"].get("extractor:width", 1.0) for h in searched]
    assert widths == [round(6 * f) for f in factors]


def test_the_grower_refuses_a_net_that_is_not_expandable():
    grower = build_grower("searched-extractor", **QUICK)
    mlp = build({"kind": "mlp", "input_shape": list(SHAPE), "hidden": [4], "head": {"kind": "single", "classes": 2}})
    with pytest.raises(SelfgrowError, match="sizes the new extractor of an expandable net; got net kind 'mlp'"):
        grower.plan(SimpleNamespace(net=mlp, scenario="class"), SimpleNamespace(index=0))


def test_bad_width_factors_are_refused_in_one_sentence():
    with pytest.raises(SelfgrowError, match=r"width_factors=\[0\] is invalid"):
        build_grower("searched-extractor", width_factors=[0])
    with pytest.raises(SelfgrowError, match=r"width_factors=\[\] is invalid"):
        build_grower("searched-extractor", width_factors=[])


def test_the_random_control_draws_from_the_same_extractor_space():
    net = trained_then_expanded()
    grower = build_grower("random", space="searched-extractor", width_factors=[0.5, 2.0], seed=1)
    drawn = set()
    for index in range(12):
        plan = grower.plan(SimpleNamespace(net=net, scenario="class", retention=[]), SimpleNamespace(index=index))
        factor = plan.reasons["random"]["point"]["extractor:width"]
        drawn.add(factor)
        grown = plan.apply(net)[0]
        assert grown.extractors[-1].feature_dim == round(6 * factor) and plan.reasons["random"]["n_params"] == count_params(grown)
    assert drawn == {0.5, 1.0, 2.0}


def test_a_parameter_budget_below_the_template_but_above_the_smallest_extractor_is_searched_within():
    net = trained_then_expanded()  # two 6-unit extractors: 256 parameters; with a 3-unit new one: 193
    learner_view = SimpleNamespace(net=net, scenario="class", retention=[])
    grower = build_grower("random", space="searched-extractor", width_factors=[0.5, 2.0], max_params=200, seed=0)
    for index in range(6):
        plan = grower.plan(learner_view, SimpleNamespace(index=index))
        assert plan.reasons["random"]["point"]["extractor:width"] == 0.5 and plan.apply(net)[0].extractors[1].feature_dim == 3
    with pytest.raises(SelfgrowError, match=r"smaller than the cheapest net it can choose before task 0 .*max_params 150"):
        build_grower("searched-extractor", width_factors=[0.5], max_params=150, **QUICK).plan(
            learner_view, SimpleNamespace(index=0))


def test_planning_leaves_the_runs_random_stream_untouched():
    net = trained_then_expanded()
    grower = build_grower("searched-extractor", width_factors=[0.5], **QUICK)
    torch.manual_seed(5)
    expected = torch.rand(3)
    torch.manual_seed(5)
    grower.cheapest_cost(net, None)
    assert torch.equal(torch.rand(3), expected)
