"""The `den` grower (Yoon et al. 2018): phases that train only their entries, the breadth-first selection,
expansion with group sparsity, duplication of drifted units, timestamps.

Known answers: a phase leaves every entry outside it bit-identical; the selected sub-network of a hand-made
sparse net is the hand-computed one; with σ = 0 every drifted unit is duplicated and no earlier task's
output changes; with τ = ∞ nothing is added, with τ = 0 and no group lasso all k new units stay, with a
huge group lasso none; the handed-over net scores on the new task what its last phase measured.
"""

from __future__ import annotations

import pytest
import torch
from tolerance import assert_same_function, leaking
from trainer_fixtures import run_config_file

from selfgrow.config import from_dict
from selfgrow.errors import SelfgrowError
from selfgrow.factories import build_stream
from selfgrow.growth import build_grower
from selfgrow.growth.den.grower import _selected
from selfgrow.growth.den.phase import Phase, Regulariser, prune_small
from selfgrow.nets import build
from selfgrow.retention import build_retention
from selfgrow.train import Learner, Trainer, accuracy


@pytest.fixture(scope="module")
def stream():
    return build_stream(from_dict({"stream": {"name": "split", "dataset": "digits", "scenario": "task", "n_tasks": 5,
                                              "classes_per_task": 2}}))


def mlp(hidden=(16, 16), masks=True, seed=0):
    torch.manual_seed(seed)
    spec = {"kind": "mlp", "input_shape": [1, 8, 8], "hidden": list(hidden), "head": {"kind": "multi", "classes": []}}
    if masks:
        spec["unit_masks"] = True
    return build(spec)


def learner(epochs=6, **options):
    trainer = Trainer(epochs=epochs, batch_size=16, optimizer="adam", lr=0.003, device="cpu", progress=False,
                      curve_batches=0)
    return Learner(mlp(), build_grower("den", **options), [], trainer, scenario="task")


def test_a_phase_trains_only_its_entries(stream):
    lrn = Learner(mlp(), build_grower("fixed"), [], Trainer(progress=False), scenario="task")
    lrn._adopt(lrn._head_growths(lrn.net, stream.tasks[0], "task"))
    before = {n: p.detach().clone() for n, p in lrn.net.named_parameters()}
    rows = torch.zeros(16, 64, dtype=torch.bool)
    rows[:3] = True
    phase = Phase({"layers.0.weight": rows}, Regulariser(l1=1e-3, sparse={"layers.0.weight": rows}))
    Trainer(epochs=2, batch_size=16, optimizer="adam", lr=0.01, progress=False).fit(lrn.net, stream.tasks[0], "task", [phase])
    after = dict(lrn.net.named_parameters())
    assert not torch.equal(after["layers.0.weight"][:3], before["layers.0.weight"][:3])
    assert torch.equal(after["layers.0.weight"][3:], before["layers.0.weight"][3:])
    assert all(torch.equal(after[n], before[n]) for n in before if n != "layers.0.weight")
    assert prune_small(lrn.net, {"layers.0.weight": rows}, threshold=10.0) == 3 * 64
    assert not after["layers.0.weight"][:3].any() and after["layers.0.weight"][3:].abs().sum() > 0


def test_the_breadth_first_search_selects_what_the_new_heads_weights_reach():
    net = mlp(hidden=(4, 3))
    from selfgrow.nets import ops

    net = ops.add_head(ops.add_head(net, 2).net, 2).net
    with torch.no_grad():
        net.layers[1].weight.zero_()
        net.layers[1].weight[0, 1] = 1.0  # top unit 0 reads unit 1 of the layer below
        net.layers[1].weight[2, 3] = 1.0  # top unit 2 reads unit 3
        net.head.heads[1].weight.zero_()
        net.head.heads[1].weight[1, 0] = 0.5  # the new head reads top unit 0 only
        net.unit_masks[0].retired[1] = 1  # ... but unit 1 no longer serves task 1
    top, bottom = _selected(net, 1)[::-1]
    assert top.tolist() == [True, False, False] and bottom.tolist() == [False, False, False, False]
    with torch.no_grad():
        net.unit_masks[0].retired[1] = torch.iinfo(torch.int64).max
        net.head.heads[1].weight[0, 2] = 0.5
    top, bottom = _selected(net, 1)[::-1]
    assert top.tolist() == [True, False, True] and bottom.tolist() == [False, True, False, True]


def test_with_sigma_zero_every_drifted_unit_is_duplicated_and_earlier_tasks_keep_their_outputs(stream):
    lrn = learner(drift_threshold=0.0)
    x = torch.rand(10, 1, 8, 8)
    outputs = []
    for task in stream.tasks[:3]:
        record = lrn.learn(task)
        with torch.no_grad():
            for t, old in enumerate(outputs):
                assert_same_function(lrn.net.eval()(x, t), old)
            outputs.append(lrn.net.eval()(x, task.index))
        if task.index:
            assert sum(record.plan.reasons["duplicated"]) > 0
            born = [m.born for m in lrn.net.unit_masks]
            assert all(int((b == task.index).sum()) >= d for b, d in zip(born, record.plan.reasons["duplicated"]))
    with leaking(lrn.net.layers[0].weight), pytest.raises(AssertionError):
        assert_same_function(lrn.net.eval()(x, 0), outputs[0])


def test_without_duplication_earlier_tasks_drift(stream):
    lrn = learner(drift_threshold=1e9, loss_threshold=1e9)
    x = torch.rand(10, 1, 8, 8)
    lrn.learn(stream.tasks[0])
    with torch.no_grad():
        first = lrn.net.eval()(x, 0)
    record = lrn.learn(stream.tasks[1])
    assert record.plan.ops == [] and record.plan.reasons["duplicated"] == [0, 0] and not record.plan.reasons["expanded"]
    with torch.no_grad():
        assert not torch.allclose(lrn.net.eval()(x, 0), first, atol=1e-4)  # selective retraining moved shared units


@pytest.mark.parametrize("group, kept", [(0.0, [10, 10]), (1e3, [0, 0])])
def test_expansion_keeps_the_units_group_lasso_leaves(stream, group, kept):
    lrn = learner(loss_threshold=0.0, drift_threshold=1e9, group=group, l1=0.0)
    lrn.learn(stream.tasks[0])
    record = lrn.learn(stream.tasks[1])
    assert record.plan.reasons["expanded"] and record.plan.reasons["added"] == kept
    assert lrn.net.spec["hidden"] == [16 + k for k in kept]
    for layer, k in zip(lrn.net.unit_masks, kept):
        assert (layer.born[16:] == 1).all() and len(layer.born) == 16 + k


def test_the_handed_over_net_scores_what_its_last_phase_measured(stream):
    lrn = learner(loss_threshold=0.0, drift_threshold=0.05)
    lrn.learn(stream.tasks[0])
    record = lrn.learn(stream.tasks[1])
    assert sum(record.plan.reasons["duplicated"]) > 0 and record.plan.search_flops > 0
    assert accuracy(lrn.net, stream.tasks[1], "task", "val") == pytest.approx(record.fit.val_acc, abs=1e-12)
    assert record.plan.reasons["decision"].startswith("selective retraining of ")


def test_the_grower_refuses_learners_it_cannot_serve(stream):
    trainer = Trainer(epochs=1, progress=False)
    cases = [
        (Learner(mlp(), build_grower("den"), [], trainer, scenario="class"), "task-incremental"),
        (Learner(mlp(masks=False), build_grower("den"), [], trainer, scenario="task"), "unit_masks: true"),
        (Learner(mlp(), build_grower("den"), [build_retention("ewc")], trainer, scenario="task"), "remove ewc"),
    ]
    for lrn, message in cases:
        with pytest.raises(SelfgrowError, match=message):
            lrn.grower.plan(lrn, stream.tasks[0])
    with pytest.raises(SelfgrowError, match="expand_by=0"):
        build_grower("den", expand_by=0)


def test_selfgrow_run_with_den_logs_its_phases(tmp_path):
    config = {
        "name": "den", "seed": 0, "output": str(tmp_path / "runs"), "method": "den",
        "stream": {"name": "split", "dataset": "digits", "scenario": "task", "n_tasks": 3, "classes_per_task": 2},
        "net": {"spec": {"kind": "mlp", "hidden": [16, 16], "unit_masks": True}},
        "growth": {"name": "den", "options": {"loss_threshold": 0.0, "drift_threshold": 0.2}},
        "trainer": {"epochs": 2, "batch_size": 32, "optimizer": "adam", "lr": 0.01, "progress": False},
    }
    run_dir, log = run_config_file(tmp_path, config)
    assert [entry["grower"] for entry in log] == ["den"] * 3
    assert log[0]["reasons"]["decision"] == "first task: the whole net trained with L1"
    assert all(entry["reasons"]["expanded"] for entry in log[1:])
    assert log[1]["summary"].startswith("Task 1: ")
