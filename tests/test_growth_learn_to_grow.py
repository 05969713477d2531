"""The `learn-to-grow` grower (Li et al. 2019): reuse / adapt / new per depth by a DARTS relaxation.

Known answers: with one-hot architecture weights the supernet computes exactly the path of those choices; the
grown net is the supernet at the chosen choices; earlier tasks never change; on a tiny CTrL-like stream a task on
permuted pixels takes new modules, while a task on the first task's inputs with shuffled labels reuses the first
task's modules at every depth and adds no parameter but its head.
"""

from __future__ import annotations

import json

import pytest
import torch
from mntdp_fixtures import modular_net, tiny_stream
from tolerance import assert_same_function
from trainer_fixtures import run_config_file

from selfgrow.errors import SelfgrowError
from selfgrow.growth import build_grower
from selfgrow.growth.learn_to_grow import _mixed_features, _supernet
from selfgrow.nets import build, ops
from selfgrow.retention import build_retention
from selfgrow.train import Learner, Trainer


def learner(seed=0, **options):
    trainer = Trainer(epochs=15, batch_size=16, optimizer="adam", lr=0.01, device="cpu", progress=False,
                      curve_batches=0, seed=seed)
    return Learner(modular_net(seed=seed), build_grower("learn-to-grow", **options), [], trainer, scenario="task")


def two_task_net():
    net = modular_net()
    net = ops.add_task_path(net, [0, 0], 3).net
    net = ops.add_task_path(net, [0, 0], 2).net
    with torch.no_grad():
        for p in net.parameters():
            p.normal_(0, 0.5)
    return net.eval()


def test_one_hot_architecture_weights_compute_exactly_the_chosen_path():
    net = two_task_net()
    supernet, choices = _supernet(net, adapt=True)
    supernet.eval()
    with torch.no_grad():
        for p in supernet.parameters():  # adapters and fresh modules away from their initial values
            p.add_(torch.randn_like(p) * 0.1)
    assert [[c.kind for c in depth] for depth in choices] == [["reuse", "new", "adapt"]] * 2
    x = torch.randn(7, 1, 8, 8)
    for picks in ([0, 0], [1, 2], [2, 1]):
        mix = [torch.nn.functional.one_hot(torch.tensor(i), len(c)).float() for c, i in zip(choices, picks)]
        path = [c[i].index for c, i in zip(choices, picks)]
        with torch.no_grad():
            assert torch.equal(_mixed_features(supernet, x, choices, mix), supernet.path_features(x, path))
    with torch.no_grad():  # uniform weights: the mean of the choices at each depth
        mix = [torch.full((3,), 1 / 3)] * 2
        h = sum(supernet.run_module(0, c.index, x) for c in choices[0]) / 3
        expected = sum(supernet.run_module(1, c.index, h) for c in choices[1]) / 3
        assert torch.allclose(_mixed_features(supernet, x, choices, mix), expected, atol=1e-6)


@pytest.fixture(scope="module")
def learnt():
    """Learners (seeds 0 and 1) after the tiny S_out stream, with each task's record and the nets after each task."""
    out = []
    for seed in (0, 1):
        stream = tiny_stream("s_out")
        lrn = learner(seed=seed)
        records, nets = [], []
        for task in stream.tasks:
            records.append(lrn.learn(task))
            nets.append(lrn.net)
        out.append((lrn, stream, records, nets))
    return out


def test_unrelated_inputs_take_new_modules_and_the_first_tasks_inputs_reuse_its_modules(learnt):
    for lrn, stream, records, _ in learnt:
        distractor, probe = records[1].plan.reasons, records[2].plan.reasons
        words = distractor["decision"].split("; ")
        assert words[1] == "depth 1: new module" and words[0] in ("depth 0: new module", "depth 0: adapt module 0")
        assert probe["path"] == [0, 0] and probe["added_params"] == 0
        assert lrn.net.path(2) == [0, 0]
        assert [op["op"] for op in records[2].growth if op["op"] != "add_head"] == ["set_task_path"]


def test_earlier_tasks_never_change(learnt):
    lrn, stream, _, nets = learnt[0]
    x = torch.randn(9, 1, 8, 8)
    with torch.no_grad():
        for t in range(3):
            for later in nets[t:]:
                assert_same_function(later.eval()(x, t), nets[t].eval()(x, t))


def test_the_plan_hands_over_the_searched_weights_and_counts_the_search():
    stream = tiny_stream("s_minus")
    lrn = learner(steps=20)
    lrn.learn(stream.tasks[0])
    lrn._adopt(lrn._head_growths(lrn.net, stream.tasks[1], "task"))  # the head the learner adds before planning
    plan = lrn.grower.plan(lrn, stream.tasks[1])
    grown = plan.apply(lrn.net)[0]
    grown.load_state_dict(plan.weights)
    chosen = [c for c in plan.candidates if c["chosen"]]
    assert [c["depth"] for c in chosen] == [0, 1] and plan.reasons["path"] == grown.path(1)
    assert plan.reasons["added_params"] == sum(c["params"] for c in chosen)
    new = [c for c in plan.candidates if c["kind"] == "new"]
    assert all(c["params"] == 64 * 32 + 32 for c in new[:1])  # a fresh first module: 8x8 inputs -> 32 units
    assert plan.search_flops > 0
    weights = plan.reasons["architecture_weights"]
    assert all(abs(sum(w) - 1) < 1e-6 for w in weights)


def test_a_resumed_learner_makes_the_same_plan():
    stream = tiny_stream("s_out")
    first = learner(steps=30)
    first.learn(stream.tasks[0])
    state, rng = first.state_dict(), torch.get_rng_state()
    plan = first.learn(stream.tasks[1]).plan.explain()
    resumed = learner(steps=30)
    resumed.load_state_dict(state, stream.tasks)
    torch.set_rng_state(rng)
    assert resumed.learn(stream.tasks[1]).plan.explain() == plan


def test_the_grower_refuses_learners_it_cannot_serve():
    task = tiny_stream("s_out")[0]
    trainer = Trainer(epochs=1, progress=False)
    mlp = build({"kind": "mlp", "input_shape": [1, 8, 8], "hidden": [8], "head": {"kind": "multi", "classes": []}})
    cases = [
        (Learner(modular_net(), build_grower("learn-to-grow"), [], trainer, scenario="class"), "task-incremental"),
        (Learner(mlp, build_grower("learn-to-grow"), [], trainer, scenario="task"), "net kind 'mlp'"),
        (Learner(modular_net(), build_grower("learn-to-grow"), [build_retention("ewc")], trainer, scenario="task"),
         "remove ewc"),
    ]
    for lrn, message in cases:
        with pytest.raises(SelfgrowError, match=message):
            lrn.grower.plan(lrn, task)
    with pytest.raises(SelfgrowError, match="steps=0"):
        build_grower("learn-to-grow", steps=0)


def test_selfgrow_run_with_learn_to_grow_logs_its_choices(tmp_path):
    config = {
        "name": "l2g", "seed": 0, "output": str(tmp_path / "runs"), "mode": "shared", "retention": [],
        "stream": {"name": "split", "dataset": "digits", "scenario": "task", "n_tasks": 3, "classes_per_task": 2},
        "net": {"spec": {"kind": "modular", "modules": [{"type": "linear", "width": 16}, {"type": "linear", "width": 16}]}},
        "growth": {"name": "learn-to-grow", "options": {"steps": 20}},
        "trainer": {"epochs": 2, "batch_size": 32, "optimizer": "adam", "lr": 0.01, "progress": False},
    }
    run_dir, log = run_config_file(tmp_path, config)
    assert [entry["grower"] for entry in log] == ["learn-to-grow"] * 3
    assert all(entry["reasons"]["path"] == json.loads((run_dir / "results.json").read_text())["costs"][-1]["spec"]
               ["paths"][t] for t, entry in enumerate(log))
    assert log[1]["summary"].startswith("Task 1: ")
