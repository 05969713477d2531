"""`bindgrow` (Learn to Bind and Grow): RSA and nucleus formulas on hand-computed values, the JointNet and its
`bind_task` operator, the known-answer binding, the searched plan's reasons, retention, resume, the run and report."""

from __future__ import annotations

import dataclasses
import json
import math

import pytest
import torch
from trainer_fixtures import bindgrow_digits_config, make_task

import selfgrow.growth.bindgrow  # noqa: F401  (registers the grower)
from selfgrow.config import from_dict
from selfgrow.errors import SelfgrowError
from selfgrow.experiment import run
from selfgrow.growth import build_grower
from selfgrow.growth.bindgrow import (
    BindGrowGrower,
    baseline_error,
    conflict_distribution,
    least_conflicting,
    multitask_gain,
    nucleus,
    rdm,
    rsa_conflict,
    spearman,
    task_conflict,
    task_gains,
)
from selfgrow.growth.bindgrow.rsa import average_ranks, upper_triangle
from selfgrow.nets import build
from selfgrow.nets.jointnet import JointNet
from selfgrow.nets.ops.bindgrow import bind_task
from selfgrow.report import Results
from selfgrow.report.grower_figures.bindgrow import figures
from selfgrow.retention import build_retention
from selfgrow.streams.task import Task
from selfgrow.train import Learner, Trainer

# Four samples of three features, and their RDM (1 - Pearson) worked out by hand:
# corr(e1, e2) = -1/2, corr(e1, [1,1,0]) = 1/2, corr(e3, [1,1,0]) = -1.
ACTS = torch.tensor([[1.0, 0, 0], [0, 1, 0], [0, 0, 1], [1, 1, 0]])
ACTS_RDM = torch.tensor([[0, 1.5, 1.5, 0.5], [1.5, 0, 1.5, 0.5], [1.5, 1.5, 0, 2.0], [0.5, 0.5, 2.0, 0]], dtype=torch.double)
# The same with a last sample [0,1,1]: triangle [1.5, 1.5, 2.0, 1.5, 0.5, 0.5].
OTHER = torch.tensor([[1.0, 0, 0], [0, 1, 0], [0, 0, 1], [0, 1, 1]])

LINEAR = [{"type": "linear", "width": 16}, {"type": "linear", "width": 16}]
CONV = [{"type": "stem", "width": 4}, {"type": "blocks", "width": 6, "stride": 2}, {"type": "blocks", "width": 6}]


def joint_net(modules: list[dict] | None = None, classes: list[int] | None = None, shape=(1, 4, 4)) -> JointNet:
    return build({"kind": "jointnet", "input_shape": list(shape), "modules": modules or LINEAR,
                  "head": {"kind": "multi", "classes": classes or []}})


def trainer(epochs: int = 3, seed: int = 0) -> Trainer:
    return Trainer(epochs=epochs, batch_size=16, optimizer="adam", lr=0.01, device="cpu", curve_batches=0,
                   progress=False, seed=seed)


# ---- formulas ---------------------------------------------------------------------------------


def test_rdm_is_one_minus_the_pearson_correlation_of_samples():
    torch.testing.assert_close(rdm(ACTS), ACTS_RDM)
    torch.testing.assert_close(rdm(3 * ACTS + 2), ACTS_RDM)  # correlation ignores scale and offset
    torch.testing.assert_close(upper_triangle(ACTS_RDM), torch.tensor([1.5, 1.5, 0.5, 1.5, 0.5, 2.0], dtype=torch.double))


def test_spearman_uses_average_ranks_for_ties():
    assert average_ranks(torch.tensor([3.0, 1.0, 2.0, 2.0])).tolist() == [4.0, 1.0, 2.5, 2.5]
    # ranks [1, 2.5, 2.5, 4] against [1, 2, 3, 4]: 4.5 / sqrt(4.5 * 5)
    assert spearman(torch.tensor([1.0, 2, 2, 3]), torch.tensor([1.0, 2, 3, 4])) == pytest.approx(4.5 / math.sqrt(22.5))
    assert spearman(torch.tensor([1.0, 2, 3]), torch.tensor([9.0, 4, 1])) == pytest.approx(-1.0)
    assert spearman(torch.tensor([1.0, 1, 1]), torch.tensor([1.0, 2, 3])) == 0.0


def test_rsa_conflict_is_half_of_one_minus_the_rdm_rank_correlation():
    assert rsa_conflict(ACTS, 5 * ACTS - 1) == pytest.approx(0.0)
    # triangles [1.5,1.5,.5,1.5,.5,2] and [1.5,1.5,2,1.5,.5,.5]: ranks [4,4,1.5,4,1.5,6] and [4,4,6,4,1.5,1.5],
    # centred dot product -5.25 over 15, so r = -0.35 and the conflict (1 + 0.35) / 2.
    assert rsa_conflict(ACTS, OTHER) == pytest.approx(0.675)
    assert rsa_conflict(ACTS, torch.zeros(4, 3)) == pytest.approx(0.5)  # a dead layer: no ordering, no evidence


def test_binding_takes_the_least_norm_and_the_nucleus_the_fewest_layers_reaching_delta():
    assert task_conflict([0.3, 0.4]) == pytest.approx(0.5)
    assert least_conflicting({0: [0.3, 0.4], 1: [0.1, 0.45], 2: [0.5, 0.0]}) == 1  # norms 0.5, 0.461, 0.5
    assert least_conflicting({3: [0.2, 0.2], 1: [0.2, 0.2]}) == 1  # ties go to the earlier task
    distribution = dict(enumerate(conflict_distribution([0.1, 0.5, 0.2, 0.2])))
    assert distribution == pytest.approx({0: 0.1, 1: 0.5, 2: 0.2, 3: 0.2})
    assert nucleus(distribution, 0.0) == []
    assert nucleus(distribution, 0.5) == [1]
    assert nucleus(distribution, 0.51) == [1, 2]  # 0.5 + 0.2; the tie 2 / 3 goes to the shallower layer
    assert nucleus(distribution, 0.9) == [1, 2, 3]  # 0.5 + 0.2 + 0.2 reaches 0.9 despite float rounding
    assert nucleus(distribution, 0.95) == [0, 1, 2, 3]
    assert nucleus(dict(enumerate(conflict_distribution([0.0, 0.0]))), 0.5) == [0]  # uniform when all agree


def test_multitask_gain_is_the_mean_relative_error_reduction():
    baselines = {0: 0.1, 1: 0.02}
    accuracies = {"0": 0.95, "1": 0.97}  # errors 0.05 (half the baseline) and 0.03 (1.5 times it)
    assert task_gains(accuracies, baselines) == pytest.approx({"0": 0.5, "1": -0.5})
    assert multitask_gain(accuracies, baselines) == pytest.approx(0.0)
    assert baseline_error(1.0, 50) == pytest.approx(0.02) and baseline_error(0.9, 50) == pytest.approx(0.1)


# ---- the JointNet and bind_task --------------------------------------------------------------


def test_a_jointnet_runs_a_new_head_on_the_previous_path_and_freezes_no_weight():
    net = joint_net(CONV, [2, 3], (3, 8, 8))
    assert net.frozen_parameter_names() == set()
    net = bind_task(net, task=1, source=0, expand=[2]).net
    net = build({**net.spec, "head": {**net.spec["head"], "classes": [2, 3, 2]}})  # a head as the learner adds it
    assert net.spec["paths"] == [[0, 0, 0], [0, 0, 1], [0, 0, 1]]
    net = bind_task(net, task=2, source=0, expand=[1]).net.train()
    # modules of earlier tasks keep their BatchNorm statistics; the newest task's own module trains
    assert [[m.training for m in depth] for depth in net.library] == [[False], [False, True], [False, False]]
    assert build(net.spec).spec == net.spec


@pytest.mark.parametrize("modules,shape", [(LINEAR, (1, 4, 4)), (CONV, (3, 8, 8))], ids=["linear", "conv-bn"])
def test_bind_task_copies_the_source_modules_and_keeps_every_earlier_task(modules, shape):
    net = bind_task(joint_net(modules, [2, 3], shape), task=1, source=0, expand=[0]).net  # task 1 owns depth 0
    net = build({**net.spec, "head": {**net.spec["head"], "classes": [2, 3, 2]}})
    with torch.no_grad():
        for p in net.parameters():
            p.add_(0.1 * torch.randn_like(p))  # make every module distinct
    growth = bind_task(net, task=2, source=1, expand=[len(modules) - 1])
    grown = growth.net
    depth = len(modules) - 1
    assert grown.spec["paths"][:2] == net.spec["paths"][:2] == [[0] * len(modules), [1] + [0] * depth]
    assert growth.op["path"] == grown.spec["paths"][2] == [1] + [0] * (depth - 1) + [1]
    assert grown.spec["library"][-1] == 2
    copy, original = grown.library[depth][1].state_dict(), net.library[depth][0].state_dict()
    assert all(torch.equal(copy[k], original[k]) for k in original)
    assert growth.new_parameter_names() == {n for n, _ in grown.named_parameters() if n.startswith(f"library.{depth}.1.")}
    x = torch.rand(5, *shape)
    net.eval(), grown.eval()
    torch.testing.assert_close(grown.features(x, 2), net.features(x, 1), atol=1e-5, rtol=1e-5)  # starts as its source
    for mode in (False, True):
        net.train(mode), grown.train(mode)
        for t in (0, 1):
            torch.testing.assert_close(grown(x, t), net(x, t), atol=1e-5, rtol=1e-5)


def test_bind_task_refuses_what_it_cannot_do():
    net = joint_net(classes=[2, 2, 2])
    with pytest.raises(SelfgrowError, match="binds the newest task \\(2\\).*got task 1"):
        bind_task(net, task=1, source=0, expand=[])
    with pytest.raises(SelfgrowError, match="source must be an earlier task in 0..1; got 2"):
        bind_task(net, task=2, source=2, expand=[])
    with pytest.raises(SelfgrowError, match="distinct depths in 0..1; got \\[0, 0\\]"):
        bind_task(net, task=2, source=0, expand=[0, 0])
    with pytest.raises(SelfgrowError, match="needs a 'jointnet' net"):
        bind_task(build({"kind": "mlp", "input_shape": [1, 4, 4], "hidden": [4], "head": {"kind": "multi", "classes": [2, 2]}}),
                  task=1, source=0, expand=[])


# ---- the grower ------------------------------------------------------------------------------


def noisy_task(index: int, seed: int) -> Task:
    """Three classes of random ±1 prototypes on 1x6x6 under heavy noise (RSA then sees real class structure)."""
    gen = torch.Generator().manual_seed(seed)
    prototypes = torch.randint(0, 2, (3, 1, 6, 6), generator=gen).float() * 2 - 1
    y = torch.arange(3).repeat_interleave(50)[torch.randperm(150, generator=gen)]
    x = (0.5 + 0.3 * prototypes[y] + 0.8 * torch.randn(150, 1, 6, 6, generator=gen)).clamp(0, 1)
    ids = list(range(3 * index, 3 * index + 3))
    return Task(index, f"t{index}", ids, [str(c) for c in ids], x[:75], y[:75], x[75:112], y[75:112], x[112:], y[112:],
                (0.5,), (0.3,))


@pytest.mark.parametrize("seed", [0, 1])
def test_a_task_repeating_an_old_one_binds_to_it_not_to_the_unrelated_task(seed):
    first, unrelated = noisy_task(0, 10 * seed), noisy_task(1, 10 * seed + 1)
    repeat = dataclasses.replace(first, index=2, name="t2", class_ids=[6, 7, 8])
    torch.manual_seed(seed)
    net = joint_net([{"type": "linear", "width": 16}] * 2, shape=(1, 6, 6))
    learner = Learner(net, build_grower("bindgrow", delta=1.0, seed=seed), [], trainer(6, seed), "task")
    records = [learner.learn(t) for t in (first, unrelated, repeat)]
    reasons = records[2].plan.reasons
    assert reasons["rsa_binding"] == reasons["binding"] == 0
    assert reasons["task_conflicts"][0] < reasons["task_conflicts"][1]
    assert learner.net.spec["paths"][2][0] != learner.net.spec["paths"][0][0]  # δ = 1 expands every layer


def test_the_random_growth_control_draws_the_binding_and_as_many_layers_as_rsa_would():
    from selfgrow.growth.bindgrow.grower import BindContext

    context = BindContext(task=3, layers=[0, 1, 2, 3], conflicts={0: [0.1, 0.1, 0.1, 0.7], 1: [0.2, 0.2, 0.3, 0.3]},
                          rsa_binding=1, baseline=0.5, independent={}, rsa_samples=10, flops=0.0)
    assert context.expansion(0, 0.5)[1] == [3]  # RSA: the one layer carrying most of the conflict
    drawn = dataclasses.replace(context, random_layers=[2, 0, 3, 1])
    assert drawn.expansion(0, 0.5)[1] == [2]  # as many layers, the first of the random order
    assert drawn.expansion(0, 1.0)[1] == [0, 1, 2, 3]
    bindings = set()
    for seed in range(6):  # the random binding ranges over the old tasks; the RSA one stays put
        first, unrelated = noisy_task(0, 0), noisy_task(1, 1)
        repeat = dataclasses.replace(first, index=2, name="t2", class_ids=[6, 7, 8])
        torch.manual_seed(0)
        learner = Learner(joint_net([{"type": "linear", "width": 16}] * 2, shape=(1, 6, 6)),
                          build_grower("bindgrow", delta=0.5, seed=seed, guide="random"), [], trainer(2, 0), "task")
        records = [learner.learn(t) for t in (first, unrelated, repeat)]
        reasons = records[2].plan.reasons
        bindings.add(reasons["binding"])
        assert reasons["guide"] == "random" and len(reasons["nucleus"]) >= 1
    assert bindings == {0, 1}


def searched_learner(retention: list | None = None, **options) -> Learner:
    torch.manual_seed(0)
    grower = build_grower("bindgrow", **{"n_trials": 4, "epochs": 1, "halving_batch": 2, "rsa_samples": 10, **options})
    return Learner(joint_net(), grower, retention or [], trainer(), "task")


def test_the_searched_plan_records_conflicts_binding_nucleus_candidates_and_front():
    tasks = [make_task(i, [2 * i, 2 * i + 1]) for i in range(3)]
    learner = searched_learner([build_retention("slow_lr", factor=0.1)], search_binding=True)
    records = [learner.learn(t) for t in tasks]
    assert records[0].plan.ops == [] and "first task" in records[0].plan.reasons["decision"]
    plan = records[2].plan.explain()
    json.dumps(plan)
    r, chosen = plan["reasons"], plan["candidates"][plan["chosen"]]
    assert r["old_tasks"] == [0, 1] and len(r["conflicts"]) == 2 and all(len(c) == 2 for c in r["conflicts"])
    assert all(0 <= c <= 1 for row in r["conflicts"] for c in row) and sum(r["distribution"]) == pytest.approx(1.0)
    assert r["delta"] == pytest.approx(chosen["params"]["delta"]) and r["binding"] == chosen["params"]["bind"]
    assert plan["ops"] == [{"op": "bind_task", "kwargs": {"task": 2, "source": r["binding"], "expand": r["nucleus"]}}]
    assert r["nucleus"] == nucleus(dict(enumerate(r["distribution"])), r["delta"])
    assert set(r["baselines"]) == {"0", "1", "2"} and r["retention"] == ["slow_lr"]
    assert plan["search_flops"] > r["independent"]["train_flops"] > 0
    done = [c for c in plan["candidates"] if c["status"] == "complete"]
    assert set(r["pareto_front"]) <= {c["trial"] for c in done}
    for c in done:  # the engine's objective is Δ over the three tasks' validation accuracies
        assert c["accuracy"] == pytest.approx(multitask_gain(c["val_accuracy"], {int(t): e for t, e in r["baselines"].items()}))
        assert c["cost"] == c["n_params"] and round(c["params"]["delta"] / 0.05, 6).is_integer()
    assert records[2].growth[-1]["path"] == learner.net.spec["paths"][2]


def test_shared_layers_learn_slowly_under_slow_lr_and_not_at_all_under_freeze():
    tasks = [make_task(i, [2 * i, 2 * i + 1]) for i in range(2)]
    moved = {}
    for name in ("slow_lr", "freeze"):
        learner = searched_learner([build_retention(name)], delta=0.0)
        learner.learn(tasks[0])
        before = {n: p.detach().clone() for n, p in learner.net.named_parameters() if n.startswith("library.")}
        learner.learn(tasks[1])
        assert learner.net.spec["paths"] == [[0, 0], [0, 0]]  # δ = 0: task 1 shares every layer of task 0
        moved[name] = max(float((p.detach() - before[n]).abs().max()) for n, p in learner.net.named_parameters() if n in before)
    assert moved["slow_lr"] > 0 and moved["freeze"] == 0


def test_a_resumed_grower_keeps_the_baselines_and_decides_as_before():
    tasks = [make_task(i, [2 * i, 2 * i + 1]) for i in range(3)]
    learner = searched_learner(delta=0.5)
    for t in tasks[:2]:
        learner.learn(t)
    state = json.loads(json.dumps(learner.grower.state_dict()))
    resumed = build_grower("bindgrow", delta=0.5, rsa_samples=10)
    resumed.load_state_dict(state)
    assert resumed.baselines == learner.grower.baselines and set(resumed.baselines) == {0, 1}
    net = build(learner.net.spec)
    net.load_state_dict(learner.net.state_dict())
    twin = Learner(net, resumed, [], trainer(), "task")
    twin.seen = list(learner.seen)
    assert twin.learn(tasks[2]).plan.explain() == learner.learn(tasks[2]).plan.explain()


def test_a_grower_rebuilt_from_the_state_taken_during_the_search_poses_the_same_problem():
    """What a distributed search worker does: it loads the learner's (and grower's) state of the moment."""

    class Capturing(BindGrowGrower):
        def space(self, learner, task, context=None):
            self.captured = json.loads(json.dumps(self.state_dict()))
            self.captured_context = json.loads(json.dumps(self.context_state(context)))
            return super().space(learner, task, context)

    tasks = [make_task(i, [2 * i, 2 * i + 1]) for i in range(3)]
    grower = Capturing(n_trials=2, epochs=1, halving_batch=2, rsa_samples=10, search_binding=True)
    learner = Learner(joint_net(), grower, [], trainer(), "task")
    plans = [learner.learn(t).plan.explain() for t in tasks]
    worker = build_grower("bindgrow", n_trials=2, epochs=1, halving_batch=2, rsa_samples=10, search_binding=True)
    worker.load_state_dict(grower.captured)  # taken while task 2 was searched
    context = worker.context_from_state(grower.captured_context)  # what the task's job carries
    space = worker.space(learner, tasks[2], context)
    assert set(space) == {"delta", "bind"} and space["bind"].choices == (0, 1)
    assert worker.baselines == {t: plans[2]["reasons"]["baselines"][str(t)] for t in (0, 1)}
    for candidate in plans[2]["candidates"]:
        assert worker.ops_for(learner.net, candidate["params"], context) == candidate["ops"]
    assert "context" not in grower.state_dict()  # per-task state is passed, not kept
    with pytest.raises(SelfgrowError, match="needs the task's conflict model"):
        worker.space(learner, tasks[2])


def test_bad_options_and_nets_are_refused_in_one_sentence():
    cases = [({"delta": 1.5}, "delta=1.5 is invalid; accepted: null or a finite number in \\[0, 1\\] \\(null: searched\\)"),
             ({"delta_range": [0.6, 0.2]}, "delta_range=\\[0.6, 0.2\\] is invalid"),
             ({"delta_step": 0}, "delta_step=0 is invalid"),
             ({"delta_range": [0.0, 0.5], "delta_step": 0.2}, "not a whole number of delta_step"),
             ({"layers": [-1]}, "layers=\\[-1\\] is invalid"),
             ({"task_epochs": 0}, "task_epochs=0 is invalid"),
             ({"rsa_samples": 2}, "rsa_samples=2 is invalid; accepted: an integer >= 3"),
             ({"n_trials": 0}, "n_trials=0 is invalid; accepted: an integer >= 1"),
             ({"search_binding": "yes"}, "search_binding='yes' is invalid")]
    for options, message in cases:
        with pytest.raises(SelfgrowError, match=message):
            build_grower("bindgrow", **options)
    tasks = [make_task(i, [2 * i, 2 * i + 1]) for i in range(2)]
    learner = searched_learner(delta=0.5, layers=[2])
    learner.learn(tasks[0])
    with pytest.raises(SelfgrowError, match="layers=\\[2\\] name depths the JointNet lacks; accepted: depths 0..1"):
        learner.learn(tasks[1])
    mlp = build({"kind": "mlp", "input_shape": [1, 4, 4], "hidden": [4], "head": {"kind": "multi", "classes": []}})
    with pytest.raises(SelfgrowError, match="net spec kind 'jointnet'.*got net kind 'mlp'"):
        Learner(mlp, build_grower("bindgrow"), [], trainer(), "task").learn(tasks[0])


def test_selfgrow_run_on_digits_logs_the_reasons_and_draws_the_figures(tmp_path):
    config = from_dict(bindgrow_digits_config(str(tmp_path)))
    results = run(config, quiet=True)
    run_dir = tmp_path / "bindgrow"
    logged = [json.loads(line) for line in (run_dir / "growth.jsonl").read_text().splitlines()]
    assert [("rsa_binding" in g["reasons"]) for g in logged] == [False, True, True]
    assert min(results.accuracy[-1]) > 0.8
    drawn = figures(Results.load(run_dir), tmp_path / "plots")
    assert len(drawn) == 3 and all(p.stat().st_size > 0 for p in drawn.values())
    assert (run_dir / "plots" / "bindgrow_paths.png").exists() and "bindgrow: JointNet paths" in (run_dir / "report.html").read_text()
