"""The `mntdp` grower: kNN prior, path space, MNTDP-D known answers on tiny S^- / S^out streams, MNTDP-S,
the modular net's new-task routing (`set_task_path`), option errors and an end-to-end run with its figures."""

from __future__ import annotations

import copy
import itertools
import json
import math
from pathlib import Path

import pytest
import torch
from mntdp_fixtures import mntdp_learner, modular_net, tiny_stream
from trainer_fixtures import run_config_file

import selfgrow.growth.mntdp  # noqa: F401  (registers the "mntdp" grower)
from selfgrow.errors import SelfgrowError
from selfgrow.growth import GrowthPlan, build_grower
from selfgrow.growth.mntdp.paths import Candidate, search_space
from selfgrow.growth.mntdp.prior import knn_accuracy, top_sources
from selfgrow.growth.mntdp.stochastic import reinforce_step
from selfgrow.nets import build, ops
from selfgrow.nets.cost import inference_flops
from selfgrow.nets.ops.modular import set_task_path
from selfgrow.train import Learner, TaskRecord, Trainer


def learn_all(learner, stream) -> list[TaskRecord]:
    return [learner.learn(task) for task in stream]


# ---- prior -------------------------------------------------------------------------------------


def test_knn_accuracy_is_leave_one_out_on_hand_computed_points():
    x = torch.tensor([[0.0], [1.0], [10.0], [12.0], [13.0]])
    y = torch.tensor([0, 0, 1, 1, 0])
    # 1-NN: 0->1 right, 1->0 right, 10->12 right, 12->13 wrong, 13->12 wrong
    assert knn_accuracy(x, y, 1) == pytest.approx(3 / 5)
    # 3-NN: 0 and 1 see two 1s (wrong), 10 sees 12, 13, 1 -> 0 (wrong), 12 sees 13, 10, 1 -> 0, 13 sees 12, 10, 1 -> 1
    assert knn_accuracy(x, y, 3) == 0.0
    # 2-NN over 0 (1), 1 (0), 3 (0): 0 sees two 0s (wrong); 1 and 3 see one vote each, the tie goes to label 0
    assert knn_accuracy(torch.tensor([[0.0], [1.0], [3.0]]), torch.tensor([1, 0, 0]), 2) == pytest.approx(2 / 3)


def test_top_sources_rank_by_accuracy_then_earlier_task():
    assert top_sources({0: 0.5, 1: 0.9, 2: 0.9, 3: 0.1}, 2) == [1, 2]
    assert top_sources({0: 0.5, 1: 0.9}, 5) == [1, 0]


# ---- search space ------------------------------------------------------------------------------


def three_depth_net():
    """Library [1, 2, 2]; task 0 on (0, 0, 0) with 2 classes, task 1 on (0, 1, 1) with 3 classes."""
    return build({"kind": "modular", "input_shape": [1, 4, 4], "modules": [{"type": "linear", "width": 5}] * 3,
                  "library": [1, 2, 2], "paths": [[0, 0, 0], [0, 1, 1]], "head": {"kind": "multi", "classes": [2, 3]}})


def test_search_space_perturbs_each_source_most_reuse_first_without_duplicates():
    space = search_space(three_depth_net(), sources=[1, 0], reuse_depths=None, reuse_head=True, n_classes=2)
    assert [(c.source, c.reuse, c.path, c.reuse_head) for c in space] == [
        (1, 3, (0, 1, 1), False),  # task 1 has 3 classes: its classifier cannot serve 2
        (1, 2, (0, 1, 2), False),
        (1, 1, (0, 2, 2), False),
        (1, 0, (1, 2, 2), False),
        (0, 3, (0, 0, 0), True),
        (0, 3, (0, 0, 0), False),
        (0, 2, (0, 0, 2), False),  # (0, 2, 2) and (1, 2, 2) were listed for task 1 already
    ]
    assert [c.reuse for c in search_space(three_depth_net(), [0], [0, 3], False, 2)] == [3, 0]
    with pytest.raises(SelfgrowError, match="reuse_depths"):
        search_space(three_depth_net(), [0], [4], False, 2)


def test_a_candidates_ops_build_its_path_with_fresh_modules():
    net = ops.add_head(three_depth_net(), 2).net  # task 2 arrives
    candidate = Candidate(source=1, reuse=1, path=(0, 2, 2), new_depths=(1, 2))
    grown = GrowthPlan(ops=candidate.ops(2)).apply(net)[0]
    assert grown.spec["library"] == [1, 3, 3] and grown.spec["paths"][2] == [0, 2, 2]
    assert grown.spec["paths"][:2] == net.spec["paths"][:2]


# ---- modular net: new tasks and routing --------------------------------------------------------


def bn_net():
    """Conv modules with BatchNorm (randomised statistics), tasks 0 and 1 on different second modules."""
    torch.manual_seed(0)
    net = build({"kind": "modular", "input_shape": [2, 6, 6], "head": {"kind": "multi", "classes": [2, 3]},
                 "modules": [{"type": "stem", "width": 3}, {"type": "blocks", "width": 4, "stride": 2}],
                 "library": [1, 3], "paths": [[0, 0], [0, 1]]})
    for name, buffer in net.named_buffers():
        if "running" in name:
            buffer.copy_(torch.rand_like(buffer) + (0.5 if "var" in name else 0.0))
    return net


def test_a_head_without_a_path_runs_the_previous_tasks_path():
    net = bn_net()
    assert ops.add_head(net, 4).net.spec["paths"] == [[0, 0], [0, 1], [0, 1]]
    fresh = build({"kind": "modular", "input_shape": [1, 4, 4], "modules": [{"type": "linear", "width": 3}] * 2,
                   "head": {"kind": "multi", "classes": [2, 2]}})
    assert fresh.spec["paths"] == [[0, 0], [0, 0]]
    with pytest.raises(SelfgrowError, match="at most one path per head"):
        build({**fresh.spec, "paths": [[0, 0]] * 3})


@pytest.mark.parametrize("training", [False, True])
def test_set_task_path_keeps_every_earlier_task_and_routes_the_newest(training):
    net = bn_net()
    growth = set_task_path(net, task=1, path=[0, 2])
    new = growth.net
    assert new.spec["paths"] == [[0, 0], [0, 2]] and new.frozen_modules() == net.frozen_modules()
    assert all(name == old and idx == tuple(slice(0, s) for s in dict(net.named_parameters())[old].shape)
               for old, (name, idx) in growth.param_map.items())
    x = torch.rand(5, 2, 6, 6)
    net.train(training)
    new.train(training)
    with torch.no_grad():
        assert torch.allclose(new(x, 0), net(x, 0), atol=1e-6)
        assert torch.allclose(new.features(x, 1), net.path_features(x, [0, 2]), atol=1e-6)
    with pytest.raises(SelfgrowError, match="only route the newest task"):
        set_task_path(net, task=0, path=[0, 2])
    with pytest.raises(SelfgrowError, match="set_task_path path"):
        set_task_path(net, task=1, path=[0, 3])


# ---- MNTDP-D known answers ---------------------------------------------------------------------


def test_mntdp_d_on_tiny_s_minus_reuses_the_whole_first_predictor():
    """The last task is the first one with 10x less data: nothing new beats the first task's modules and head."""
    stream = tiny_stream("s_minus")
    learner = mntdp_learner()
    records = learn_all(learner, stream)
    plan = records[2].plan.explain()
    reasons, candidates = plan["reasons"], plan["candidates"]
    assert reasons["sources"] == [0] and reasons["knn_accuracy"]["0"] > reasons["knn_accuracy"]["1"]
    assert reasons["path"] == learner.net.path(0) == [0, 0] and reasons["head_from"] == 0
    assert reasons["new_modules"] == []
    chosen = candidates[plan["chosen"]]
    assert chosen["head"] == "task 0" and chosen["epochs"] == 0
    assert all(chosen["val_acc"] > c["val_acc"] for c in candidates if c is not chosen)  # won on data, not on a tie
    assert learner.net.spec["library"] == records[1].spec["library"]  # no module added
    x = torch.rand(7, 1, 8, 8)
    learner.net.eval()
    assert torch.equal(learner.net(x, 2), learner.net(x, 0))  # literally the first task's predictor


def test_mntdp_d_on_tiny_s_out_reuses_every_module_but_the_head():
    """Same inputs, labels shuffled: the first task's features serve, its classifier does not."""
    learner = mntdp_learner()
    records = learn_all(learner, tiny_stream("s_out"))
    plan = records[2].plan.explain()
    assert plan["reasons"]["path"] == [0, 0] and plan["reasons"]["head_from"] is None
    whole = next(c for c in plan["candidates"] if c["head"] == "task 0")
    assert whole["val_acc"] < 0.2  # every label id moved
    assert learner.net.spec["library"] == records[1].spec["library"]
    assert records[2].fit.epochs > 0 and plan["candidates"][plan["chosen"]]["new_params"] == 32 * 5 + 5


def test_mntdp_d_hands_over_the_winner_and_counts_the_search():
    learner = mntdp_learner(epochs=3)
    stream = tiny_stream("s_out")
    learner.learn(stream[0])
    before = {n: p.detach().clone() for n, p in learner.net.named_parameters()}
    record = learner.learn(stream[1])
    plan = record.plan.explain()
    chosen = plan["candidates"][plan["chosen"]]
    assert record.fit.val_acc == chosen["val_acc"] and record.fit.train_flops == chosen["train_flops"]
    losers = sum(c["train_flops"] for i, c in enumerate(plan["candidates"]) if i != plan["chosen"])
    prior = len(stream[1].y_train) * inference_flops(learner.net, 0)
    assert plan["search_flops"] == pytest.approx(losers + prior)
    assert all(torch.equal(before[n], p) for n, p in learner.net.named_parameters() if n in before)  # task 0 frozen
    json.dumps(plan)  # the growth log entry is plain data
    assert [g["op"] for g in record.growth] == ["add_head"] + [c["op"] for c in ops_of(plan)]


def ops_of(plan: dict) -> list[dict]:
    new = [{"op": "add_module"} for _ in plan["reasons"]["new_modules"]]
    return new + [{"op": "set_task_path"}]


def test_a_resumed_learner_makes_the_same_plan():
    """The grower keeps no state: a learner restored after task 1 (and the global generator) decides task 2 alike."""
    stream = tiny_stream("s_out")
    learner = mntdp_learner(epochs=3)
    learn_all(learner, stream[:2])
    state, rng = copy.deepcopy(learner.state_dict()), torch.get_rng_state()
    first = learner.learn(stream[2])
    resumed = mntdp_learner(epochs=3)
    resumed.load_state_dict(state, stream.tasks)
    torch.set_rng_state(rng)
    second = resumed.learn(stream[2])
    assert first.plan.explain() == second.plan.explain() and first.spec == second.spec
    assert first.fit.val_acc == second.fit.val_acc


# ---- MNTDP-S -----------------------------------------------------------------------------------


def test_reinforce_step_follows_the_score_function_and_the_entropy_gradient():
    gamma = torch.zeros(2, requires_grad=True)
    reinforce_step(gamma, torch.optim.SGD([gamma], lr=1.0), k=0, advantage=1.0, entropy_weight=0.0)
    # d log p0 / d gamma = e0 - p = (0.5, -0.5); a loss above the baseline makes path 0 less likely
    assert gamma.detach().tolist() == pytest.approx([-0.5, 0.5])
    gamma = torch.tensor([math.log(3.0), 0.0], requires_grad=True)  # p = (0.75, 0.25)
    reinforce_step(gamma, torch.optim.SGD([gamma], lr=1.0), k=1, advantage=0.0, entropy_weight=1.0)
    h = -(0.75 * math.log(0.75) + 0.25 * math.log(0.25))
    dh = [-0.75 * (math.log(0.75) + h), -0.25 * (math.log(0.25) + h)]  # dH / d gamma_i = -p_i (log p_i + H)
    assert gamma.detach().tolist() == pytest.approx([math.log(3.0) + dh[0], dh[1]], abs=1e-6)  # towards uniform


def test_mntdp_s_moves_the_path_distribution_towards_the_path_of_lowest_loss():
    """With modules that cannot learn (lr ~ 0), only the first task's whole predictor fits the S^- probe:
    REINFORCE must put its mass there, and none of the searched fresh modules is kept."""
    stream = tiny_stream("s_minus")
    learner = mntdp_learner(variant="S", steps=300, path_lr=0.05, entropy_weight=0.1)
    learn_all(learner, stream[:2])
    learner.trainer.lr = 1e-9
    library = list(learner.net.spec["library"])
    plan = learner.learn(stream[2]).plan.explain()
    probabilities = [c["probability"] for c in plan["candidates"]]
    assert sum(probabilities) == pytest.approx(1.0)
    assert plan["candidates"][plan["chosen"]]["head"] == "task 0"
    assert max(probabilities) == probabilities[plan["chosen"]] > 0.5
    assert learner.net.spec["library"] == library  # the supernet's fresh modules were discarded


def test_mntdp_s_keeps_only_the_fresh_modules_of_the_chosen_path():
    learner = mntdp_learner(variant="S", steps=60, reuse_head=False)
    records = learn_all(learner, tiny_stream("s_out"))
    for before, record in itertools.pairwise(records[1:]):
        reasons = record.plan.reasons
        grown = [a - b for a, b in zip(record.spec["library"], before.spec["library"])]
        assert grown == [int(d in {m[0] for m in reasons["new_modules"]}) for d in range(2)]
        assert record.fit.epochs == learner.trainer.epochs  # the chosen path was fine-tuned
        assert record.plan.search_flops > 0


# ---- options and checks ------------------------------------------------------------------------


@pytest.mark.parametrize("options, word", [
    ({"variant": "X"}, "variant"), ({"k": 0}, "k="), ({"n_neighbors": 0}, "n_neighbors"),
    ({"knn_samples": 1}, "knn_samples"), ({"reuse_depths": []}, "reuse_depths"), ({"reuse_depths": [-1]}, "reuse_depths"),
    ({"reuse_head": "yes"}, "reuse_head"), ({"steps": 1}, "steps"), ({"path_lr": 0}, "path_lr"),
    ({"entropy_weight": -1.0}, "entropy_weight"), ({"workers": 2}, "Unknown option"),
])
def test_bad_options_raise_one_sentence(options, word):
    with pytest.raises(SelfgrowError, match=word):
        build_grower("mntdp", **options)


def test_the_grower_refuses_learners_it_cannot_serve():
    from selfgrow.retention import build_retention

    task = tiny_stream("s_minus")[0]
    trainer = Trainer(optimizer="sgd", lr=0.01, epochs=1, device="cpu", progress=False)
    cases = [
        (Learner(modular_net(), build_grower("mntdp"), [], trainer, scenario="class"), "task-incremental"),
        (Learner(build({"kind": "mlp", "input_shape": [1, 8, 8], "hidden": [8], "head": {"kind": "multi", "classes": []}}),
                 build_grower("mntdp"), [], trainer, scenario="task"), "'modular' net"),
        (Learner(modular_net(), build_grower("mntdp"), [build_retention("ewc")], trainer, scenario="task"), "ewc"),
    ]
    for learner, message in cases:
        with pytest.raises(SelfgrowError, match=message):
            learner.grower.plan(learner, task)


# ---- end to end --------------------------------------------------------------------------------


def test_selfgrow_run_with_mntdp_logs_reasons_and_draws_the_paths(tmp_path: Path):

    config = {
        "name": "mntdp-tiny", "seed": 0, "output": str(tmp_path / "runs"), "mode": "shared",
        "stream": {"name": "split", "dataset": "digits", "scenario": "task", "n_tasks": 5},
        "net": {"spec": {"kind": "modular", "modules": [{"type": "linear", "width": 16}, {"type": "linear", "width": 16}]}},
        "growth": {"name": "mntdp", "options": {"variant": "D", "reuse_depths": [0, 2]}},
        "trainer": {"epochs": 2, "batch_size": 32, "optimizer": "adam", "lr": 0.01, "progress": False},
    }
    run_dir, log = run_config_file(tmp_path, config)
    assert [entry["grower"] for entry in log] == ["mntdp"] * 5
    assert set(log[4]["reasons"]["knn_accuracy"]) == {"0", "1", "2", "3"}
    assert [len(entry["candidates"]) for entry in log] == [0, 3, 3, 3, 3]  # whole predictor, reuse 2, reuse 0
    assert {"mntdp_paths.png", "mntdp_search.png"} <= {p.name for p in (run_dir / "plots").iterdir()}
    results = json.loads((run_dir / "results.json").read_text())
    assert [results["costs"][-1]["spec"]["paths"][t] for t in range(5)] == [entry["reasons"]["path"] for entry in log]
