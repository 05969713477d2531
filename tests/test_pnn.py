"""Progressive nets (a column per task) and expandable representations (an extractor per task): growth keeps old outputs, old parts never change."""

from __future__ import annotations

import pytest
import torch
from tolerance import assert_same_function, leaking

from selfgrow.errors import SelfgrowError
from selfgrow.growth import build_grower
from selfgrow.nets import build, ops
from selfgrow.nets.cost import count_params
from selfgrow.streams.task import Stream, Task
from selfgrow.train import Learner, Trainer

SHAPE = [1, 2, 4]


def stream(scenario: str, n_tasks: int = 3, n: int = 120) -> Stream:
    """Tasks over the same inputs labelled by different random hyperplanes (train and test halves)."""
    g = torch.Generator().manual_seed(0)
    tasks = []
    for t in range(n_tasks):
        x = torch.rand(n, 8, generator=g)
        y = (((x - 0.5) @ torch.randn(8, generator=g)) > 0).long()
        x = x.view(-1, *SHAPE)
        h = n // 2
        ids = [2 * t, 2 * t + 1]
        tasks.append(Task(t, f"t{t}", ids, [str(i) for i in ids], x[:h], y[:h], x[:0], y[:0], x[h:], y[h:]))
    return Stream("toy", scenario, tasks)


def learner_for(spec: dict, scenario: str, **trainer) -> Learner:
    settings = dict(epochs=3, batch_size=16, optimizer="sgd", lr=0.05, momentum=0.9, weight_decay=0.01,
                    device="cpu", progress=False, curve_batches=0, reset_optimizer=False)
    return Learner(build(spec), build_grower("fixed"), [], Trainer(**{**settings, **trainer}), scenario)


# ---- PNN --------------------------------------------------------------------------------------


def pnn(classes: list[int]) -> torch.nn.Module:
    return build({"kind": "pnn", "input_shape": SHAPE, "hidden": [6, 5], "head": {"kind": "multi", "classes": classes}})


def test_add_head_adds_a_column_and_keeps_old_task_outputs():
    net = pnn([2])
    x = torch.rand(9, *SHAPE)
    before = net(x, 0)
    growth = ops.add_head(net, 3)
    grown = growth.net
    assert grown.n_columns == 2 and grown(x, 1).shape == (9, 3)
    assert_same_function(grown(x, 0), before)
    with leaking(grown.head.heads[0].bias), pytest.raises(AssertionError):  # old outputs moved by LEAK
        assert_same_function(grown(x, 0), before)
    assert growth.new_parameter_names() == {
        "columns.1.layers.0.weight", "columns.1.layers.0.bias", "columns.1.layers.1.weight",
        "columns.1.layers.1.bias", "columns.1.laterals.0.0.weight", "head.heads.1.weight", "head.heads.1.bias",
    }


def test_new_column_reads_old_columns_through_laterals():
    net = pnn([2, 2])
    x = torch.rand(4, *SHAPE)
    before = net(x, 1)
    with torch.no_grad():
        net.columns[0].layers[0].bias += 1.0  # column 0 feeds column 1's second layer
    assert not torch.allclose(net(x, 1), before)


def test_only_the_newest_column_and_head_get_gradients():
    net = pnn([2, 2, 2])
    net(torch.rand(4, *SHAPE), 2).sum().backward()
    with_grad = {n for n, p in net.named_parameters() if p.grad is not None}
    frozen = net.frozen_parameter_names()
    assert with_grad == {n for n, _ in net.named_parameters()} - frozen
    assert all(n.startswith(("columns.0.", "columns.1.", "head.heads.0.", "head.heads.1.")) for n in frozen)
    net.train()
    assert [c.training for c in net.columns] == [False, False, True]


def test_parameters_per_task_count_columns_up_to_the_task():
    net = pnn([2, 2])
    col0 = 8 * 6 + 6 + 6 * 5 + 5
    col1 = col0 + 6 * 5  # its own layers plus one lateral
    assert count_params(net, 0) == col0 + 5 * 2 + 2
    assert count_params(net, 1) == col0 + col1 + 5 * 2 + 2


def test_conv_columns_link_by_convolutions_and_keep_old_outputs():
    net = build({"kind": "pnn", "input_shape": [3, 8, 8], "conv": [{"width": 4, "stride": 2}, {"width": 6}],
                 "hidden": [10], "head": {"kind": "multi", "classes": [2]}})
    x = torch.rand(3, 3, 8, 8)
    before = net(x, 0)
    grown = ops.add_head(net, 2).net
    assert_same_function(grown(x, 0), before)
    with leaking(grown.head.heads[0].bias), pytest.raises(AssertionError):
        assert_same_function(grown(x, 0), before)
    laterals = grown.columns[1].laterals
    assert isinstance(laterals[0][0], torch.nn.Conv2d) and laterals[0][0].weight.shape == (6, 4, 3, 3)
    assert isinstance(laterals[1][0], torch.nn.Linear) and laterals[1][0].weight.shape == (10, 6 * 4 * 4)
    with pytest.raises(SelfgrowError, match="pnn conv layer 0"):
        build({"kind": "pnn", "input_shape": [3, 8, 8], "conv": [{"width": 0}], "head": {"kind": "multi", "classes": []}})


def test_pnn_needs_a_task_head_and_a_task_id():
    with pytest.raises(SelfgrowError, match="needs a 'multi' head"):
        build({"kind": "pnn", "input_shape": SHAPE, "hidden": [4], "head": {"kind": "single", "classes": 2}})
    with pytest.raises(SelfgrowError, match="task id in 0..0"):
        pnn([2])(torch.rand(1, *SHAPE), 3)


def test_pnn_learner_has_exactly_zero_forgetting_without_retention():
    s = stream("task")
    learner = learner_for({"kind": "pnn", "input_shape": SHAPE, "hidden": [8, 8], "head": {"kind": "multi", "classes": []}}, "task")
    learner.learn(s[0])
    outputs = learner.net(s[0].x_test, 0).detach()
    accuracy = learner.evaluate([s[0]])
    learner.learn(s[1])
    learner.learn(s[2])
    assert_same_function(learner.net(s[0].x_test, 0), outputs)
    with leaking(learner.net.head.heads[0].bias), pytest.raises(AssertionError):
        assert_same_function(learner.net(s[0].x_test, 0), outputs)
    assert learner.evaluate([s[0]]) == accuracy
    assert learner.net.n_columns == 3


# ---- expandable representation ----------------------------------------------------------------


def expandable(classes: int, **extra) -> torch.nn.Module:
    return build({"kind": "expandable", "input_shape": SHAPE, "extractor": {"kind": "mlp", "hidden": [5]},
                  "head": {"kind": "single", "classes": classes}, **extra})


def test_an_extractor_is_added_when_a_later_task_brings_classes_and_old_logits_are_kept():
    net = ops.add_classes(expandable(0), 2).net  # the first task's classes: no new extractor
    assert len(net.extractors) == 1
    x = torch.rand(7, *SHAPE)
    with torch.no_grad():
        net.head.classifier.bias.add_(0.3)
    before = net(x)
    grown = ops.add_classes(net, 3).net
    assert len(grown.extractors) == 2 and grown.spec["extractor_classes"] == [0, 2]
    assert grown(x).shape == (7, 5) and grown.features(x).shape == (7, 10)
    assert_same_function(grown(x)[:, :2], before)  # recomputed through the wider classifier
    with leaking(grown.head.classifier.bias), pytest.raises(AssertionError):
        assert_same_function(grown(x)[:, :2], before)
    again = ops.add_classes(grown, 2).net
    assert len(again.extractors) == 3 and again.spec["extractor_classes"] == [0, 2, 5]


def test_rebuilding_from_the_spec_gives_the_same_net():
    net = ops.add_classes(ops.add_classes(expandable(2), 2).net, 2).net
    copy = build(net.spec)
    copy.load_state_dict(net.state_dict())
    x = torch.rand(3, *SHAPE)
    assert len(copy.extractors) == 3
    torch.testing.assert_close(copy(x), net(x))


def test_expandable_rejects_a_cosine_or_task_head():
    for head in ({"kind": "single", "classes": 2, "cosine": True}, {"kind": "multi", "classes": [2]}):
        with pytest.raises(SelfgrowError, match="linear single head"):
            build({"kind": "expandable", "input_shape": SHAPE, "head": head})


def test_conv_extractors_work_on_images():
    net = build({"kind": "expandable", "input_shape": [3, 8, 8],
                 "extractor": {"kind": "resnet", "stages": [{"width": 4, "blocks": 1}]},
                 "head": {"kind": "single", "classes": 2}})
    grown = ops.add_classes(net, 2).net
    x = torch.rand(2, 3, 8, 8)
    grown.eval()
    net.eval()
    before = net(x)
    assert_same_function(grown(x)[:, :2], before)
    with leaking(grown.head.classifier.bias), pytest.raises(AssertionError):
        assert_same_function(grown(x)[:, :2], before)


def test_old_extractors_never_change_while_later_tasks_train():
    s = stream("class")
    learner = learner_for({"kind": "expandable", "input_shape": SHAPE, "extractor": {"kind": "mlp", "hidden": [6]},
                           "head": {"kind": "single", "classes": 0}}, "class")
    learner.learn(s[0])
    first = {n: p.detach().clone() for n, p in learner.net.extractors[0].named_parameters()}
    learner.learn(s[1])
    learner.learn(s[2])
    assert len(learner.net.extractors) == 3
    for n, p in learner.net.extractors[0].named_parameters():
        torch.testing.assert_close(p, first[n], rtol=0, atol=0)
    assert learner.net.frozen_parameter_names() == {
        n for n, _ in learner.net.named_parameters() if n.startswith(("extractors.0.", "extractors.1."))
    }
