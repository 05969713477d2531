"""Retention strategies: formulas on hand values, memory bookkeeping, growth carry-over, and behaviour on tiny streams."""

from __future__ import annotations

import pytest
import torch
from tolerance import assert_same_function, leaking

from selfgrow.errors import SelfgrowError
from selfgrow.growth import build_grower
from selfgrow.nets import build, ops
from selfgrow.retention import RETENTION, Batch, build_retention
from selfgrow.retention.distill import soft_cross_entropy
from selfgrow.retention.fisher import diagonal_fisher
from selfgrow.retention.selection import equal_quotas, group_ranks, herding_order
from selfgrow.streams.task import Stream, Task
from selfgrow.train import Learner, Trainer

SHAPE = (1, 2, 4)


# ---- tiny synthetic streams -------------------------------------------------------------------


def make_task(index: int, x: torch.Tensor, y: torch.Tensor, class_ids: list[int]) -> Task:
    """A task whose first half is the training split and second half the test split."""
    half = len(y) // 2
    x = x.view(-1, *SHAPE)
    return Task(index, f"t{index}", class_ids, [str(c) for c in class_ids],
                x[:half], y[:half], x[:0], y[:0], x[half:], y[half:])


def conflicting_stream(scenario: str, n_tasks: int = 3, n: int = 300, seed: int = 1) -> Stream:
    """Same inputs (uniform in [0,1]^8) each task, labelled by a different random hyperplane: a small
    shared trunk must change its features for each task, so fine-tuning forgets."""
    g = torch.Generator().manual_seed(seed)
    tasks = []
    for t in range(n_tasks):
        x = torch.rand(n, 8, generator=g)
        y = (((x - 0.5) @ torch.randn(8, generator=g)) > 0).long()
        tasks.append(make_task(t, x, y, [2 * t, 2 * t + 1]))
    return Stream("conflict", scenario, tasks)


def cluster_stream(n_tasks: int = 3, n: int = 200, seed: int = 0) -> Stream:
    """Class-IL: two well-separated Gaussian clusters per task, six distinct clusters in all."""
    g = torch.Generator().manual_seed(seed)
    centres = torch.rand(2 * n_tasks, 8, generator=g)
    tasks = []
    for t in range(n_tasks):
        y = torch.arange(n) % 2
        x = (centres[2 * t + y] + 0.05 * torch.randn(n, 8, generator=g)).clamp(0, 1)
        tasks.append(make_task(t, x, y, [2 * t, 2 * t + 1]))
    return Stream("clusters", "class", tasks)


def run(stream: Stream, strategies: list, hidden: list[int] | None = None, **trainer) -> tuple[Learner, list[list[float]]]:
    """Learn the stream with the real Learner; returns it and the accuracy matrix (row i: after task i)."""
    torch.manual_seed(0)
    head = {"kind": "multi", "classes": []} if stream.scenario == "task" else {"kind": "single", "classes": 0}
    net = build({"kind": "mlp", "input_shape": list(SHAPE), "hidden": hidden or [8], "head": head})
    settings = dict(epochs=20, batch_size=32, optimizer="sgd", lr=0.05, device="cpu", progress=False, curve_batches=0)
    learner = Learner(net, build_grower("fixed"), strategies, Trainer(**{**settings, **trainer}), stream.scenario)
    matrix = []
    for task in stream:
        learner.learn(task)
        matrix.append(learner.evaluate(stream.tasks[: task.index + 1]))
    return learner, matrix


def forgetting(matrix: list[list[float]]) -> float:
    """Mean drop from each old task's accuracy right after learning it to its final accuracy."""
    final = matrix[-1]
    return sum(matrix[i][i] - final[i] for i in range(len(final) - 1)) / (len(final) - 1)


@pytest.fixture(scope="module")
def task_il_finetune():
    return run(conflicting_stream("task"), [])


# ---- registry ---------------------------------------------------------------------------------


def test_registry_lists_every_strategy_and_rejects_bad_names_and_options():
    assert set(RETENTION) == {"ewc", "lwf", "feature_kd", "replay", "joint", "freeze", "slow_lr", "bias_correction",
                              "gem", "agem", "icarl_bce", "bic"}
    with pytest.raises(SelfgrowError, match="Did you mean 'replay'"):
        build_retention("replya")
    with pytest.raises(SelfgrowError, match="Unknown option 'lambda' for retention strategy 'ewc'.*lam"):
        build_retention("ewc", **{"lambda": 3})
    with pytest.raises(SelfgrowError, match="replay' option selection='random' is invalid; accepted: one of reservoir, herding\\."):
        build_retention("replay", selection="random")


# ---- EWC --------------------------------------------------------------------------------------


def tiny_net(head=None) -> torch.nn.Module:
    return build({"kind": "mlp", "input_shape": list(SHAPE), "hidden": [4],
                  "head": head or {"kind": "single", "classes": 3}})


def test_ewc_penalty_matches_hand_computed_value():
    net = tiny_net()
    ewc = build_retention("ewc", lam=2.0)
    params = dict(net.named_parameters())
    fisher = {n: torch.zeros_like(p) for n, p in params.items()}
    star = {n: p.detach().clone() for n, p in params.items()}
    fisher["head.classifier.bias"] = torch.tensor([1.0, 0.5, 0.0])
    star["head.classifier.bias"] = params["head.classifier.bias"].detach() - torch.tensor([1.0, 2.0, 3.0])
    ewc.anchors = [{"fisher": fisher, "star": star}]
    batch = Batch(torch.zeros(1, *SHAPE), torch.zeros(1, dtype=torch.long), torch.zeros(1, dtype=torch.long),
                  torch.zeros(1, dtype=torch.long))
    # lam/2 * (1 * 1^2 + 0.5 * 2^2 + 0 * 3^2) = 1 * 3
    assert ewc.penalty(net, batch, torch.zeros(1, 3)).item() == pytest.approx(3.0)
    ewc.anchors = [{"fisher": fisher, "star": star}] * 2  # offline EWC: one term per old task
    assert ewc.penalty(net, batch, torch.zeros(1, 3)).item() == pytest.approx(6.0)


def test_empirical_fisher_is_the_mean_of_squared_per_sample_gradients():
    net = tiny_net()
    x, y = torch.rand(7, *SHAPE), torch.randint(0, 3, (7,))
    fisher = diagonal_fisher(net, x, y, 0, "class", empirical=True, batch_size=3)
    expected = {n: torch.zeros_like(p) for n, p in net.named_parameters()}
    for i in range(7):
        net.zero_grad()
        torch.nn.functional.cross_entropy(net(x[i : i + 1]), y[i : i + 1]).backward()
        for n, p in net.named_parameters():
            expected[n] += p.grad.pow(2) / 7
    for n in expected:
        torch.testing.assert_close(fisher[n], expected[n])


def test_true_fisher_samples_labels_from_the_model():
    """Sampled labels average to the exact expectation sum_c p(c|x) g_c^2 on a repeated input."""
    net = tiny_net()
    x1 = torch.rand(1, *SHAPE)
    probs = torch.softmax(net(x1), 1)[0].detach()
    exact = {n: torch.zeros_like(p) for n, p in net.named_parameters()}
    for c in range(3):
        net.zero_grad()
        torch.nn.functional.cross_entropy(net(x1), torch.tensor([c])).backward()
        for n, p in net.named_parameters():
            exact[n] += probs[c] * p.grad.pow(2)
    x = x1.expand(4000, *SHAPE)
    sampled = diagonal_fisher(net, x, torch.zeros(4000, dtype=torch.long), 0, "class", batch_size=1000,
                              generator=torch.Generator().manual_seed(0))
    bias = "head.classifier.bias"
    torch.testing.assert_close(sampled[bias], exact[bias], rtol=0.1, atol=1e-4)


class StubLearner:
    """The attributes strategies read from the learner."""

    def __init__(self, net, scenario="class"):
        self.net, self.scenario = net, scenario


def test_online_ewc_keeps_one_decayed_running_fisher():
    net = tiny_net({"kind": "single", "classes": 4})
    stream = cluster_stream(n_tasks=2)
    ewc = build_retention("ewc", online=True, gamma=0.5, empirical=True)
    first = diagonal_fisher(net, stream[0].x_train, stream[0].global_labels(stream[0].y_train), 0, "class", empirical=True)
    ewc.after_task(StubLearner(net), stream[0])
    with torch.no_grad():
        net.layers[0].weight.add_(0.1)
    second = diagonal_fisher(net, stream[1].x_train, stream[1].global_labels(stream[1].y_train), 1, "class", empirical=True)
    ewc.after_task(StubLearner(net), stream[1])
    assert len(ewc.anchors) == 1
    for n, f in ewc.anchors[0]["fisher"].items():
        torch.testing.assert_close(f, second[n] + 0.5 * first[n])
    torch.testing.assert_close(ewc.anchors[0]["star"]["layers.0.weight"], net.layers[0].weight.detach())


def test_offline_ewc_merges_old_tasks_into_one_exact_term():
    """After two tasks the one merged anchor gives the penalty and gradient of the two per-task terms."""
    net = tiny_net({"kind": "single", "classes": 4})
    stream = cluster_stream(n_tasks=2)
    ewc = build_retention("ewc", lam=3.0, empirical=True)
    terms = []
    for task in stream:
        ewc.after_task(StubLearner(net), task)
        labels = task.global_labels(task.y_train)
        fisher = diagonal_fisher(net, task.x_train, labels, task.index, "class", empirical=True)
        terms.append((fisher, {n: p.detach().clone() for n, p in net.named_parameters()}))
        with torch.no_grad():
            for p in net.parameters():
                p.add_(0.1 * torch.randn_like(p))
    assert len(ewc.anchors) == 1
    batch = Batch(torch.zeros(1, *SHAPE), *(torch.zeros(1, dtype=torch.long),) * 3)
    merged = ewc.penalty(net, batch, torch.zeros(1, 4))
    grad_merged = torch.autograd.grad(merged, list(net.parameters()))
    explicit = 1.5 * sum((f[n] * (p - star[n]).pow(2)).sum() for f, star in terms for n, p in net.named_parameters())
    grad_explicit = torch.autograd.grad(explicit, list(net.parameters()))
    assert merged.item() == pytest.approx(explicit.item(), rel=1e-4)
    for a, b in zip(grad_merged, grad_explicit):
        torch.testing.assert_close(a, b, rtol=1e-4, atol=1e-6)


def test_ewc_importances_follow_growth_and_new_weights_get_zero():
    net = tiny_net()
    stream = cluster_stream(n_tasks=1)
    ewc = build_retention("ewc", empirical=True)
    ewc.after_task(StubLearner(net), stream[0])
    with torch.no_grad():
        for p in net.parameters():
            p.add_(0.05 * torch.randn_like(p))
    batch = Batch(torch.zeros(1, *SHAPE), *(torch.zeros(1, dtype=torch.long),) * 3)
    before = ewc.penalty(net, batch, torch.zeros(1, 3)).item()
    growth = ops.widen(net, "hidden.0", 3)
    ewc.on_growth(growth)
    grown_fisher = ewc.anchors[0]["fisher"]["layers.0.weight"]
    assert grown_fisher.shape == (7, 8)
    assert grown_fisher[4:].abs().sum() == 0 and grown_fisher[:4].abs().sum() > 0
    assert ewc.penalty(growth.net, batch, torch.zeros(1, 3)).item() == pytest.approx(before, rel=1e-6)
    assert before > 0


def test_ewc_state_round_trip():
    net = tiny_net()
    ewc = build_retention("ewc", empirical=True)
    ewc.after_task(StubLearner(net), cluster_stream(n_tasks=1)[0])
    copy = build_retention("ewc")
    copy.load_state_dict(ewc.state_dict())
    assert all(torch.is_tensor(v) or isinstance(v, (int, float, str)) for v in ewc.state_dict().values())
    for key in ("fisher", "star"):
        for n, t in ewc.anchors[0][key].items():
            torch.testing.assert_close(copy.anchors[0][key][n], t)
    assert copy.memory_bytes() == ewc.memory_bytes() == 2 * sum(p.numel() * 4 for p in net.parameters())


# ---- distillation -----------------------------------------------------------------------------


def test_soft_cross_entropy_is_lwf_formula():
    student, teacher = torch.tensor([[1.0, 0.0]]), torch.tensor([[0.0, 2.0]])
    p = torch.softmax(teacher / 2, 1)
    expected = -(p * torch.log_softmax(student / 2, 1)).sum()
    assert soft_cross_entropy(student, teacher, 2.0).item() == pytest.approx(expected.item())


def test_lwf_class_il_distils_old_class_logits_and_is_zero_at_the_start():
    net = tiny_net({"kind": "single", "classes": 2})
    task = cluster_stream(n_tasks=1)[0]
    lwf = build_retention("lwf")
    lwf.before_task(StubLearner(net), task)
    lwf.after_task(StubLearner(net), task)
    grown = ops.add_classes(net, 2).net
    x = torch.rand(5, *SHAPE)
    logits = grown(x)
    batch = Batch(x, *(torch.zeros(5, dtype=torch.long),) * 3)
    entropy = -(torch.softmax(logits[:, :2] / 2, 1) * torch.log_softmax(logits[:, :2] / 2, 1)).sum(1).mean()
    # At the moment of growth the old logits are the teacher's: the loss is their entropy (its minimum).
    assert lwf.penalty(grown, batch, logits).item() == pytest.approx(entropy.item(), rel=1e-5)
    shifted = logits.clone()
    shifted[:, 0] += 3.0
    assert lwf.penalty(grown, batch, shifted).item() > entropy.item()
    shifted_new = logits.clone()
    shifted_new[:, 2:] += 3.0  # new classes' logits are not distilled
    assert lwf.penalty(grown, batch, shifted_new).item() == pytest.approx(entropy.item(), rel=1e-5)


def test_feature_kd_compares_old_dims_of_a_widened_net():
    net = tiny_net()
    task = cluster_stream(n_tasks=1)[0]
    kd = build_retention("feature_kd")
    kd.before_task(StubLearner(net), task)
    kd.after_task(StubLearner(net), task)
    grown = ops.widen(net, "hidden.0", 2).net
    x = torch.rand(5, *SHAPE)
    batch = Batch(x, *(torch.zeros(5, dtype=torch.long),) * 3)
    assert kd.penalty(grown, batch, grown(x)).item() == pytest.approx(0.0, abs=1e-10)
    with torch.no_grad():
        grown.layers[0].bias[:4] += 1.0
    expected = (grown.features(x)[:, :4] - net.features(x)).pow(2).sum(1).mean()
    assert kd.penalty(grown, batch, grown(x)).item() == pytest.approx(expected.item(), rel=1e-5)
    assert kd.memory_bytes() == sum(p.numel() * 4 for p in net.parameters())


# ---- replay memory ----------------------------------------------------------------------------


def test_group_ranks_and_quotas():
    groups = torch.tensor([0, 1, 0, 1, 0])
    priority = torch.tensor([0.5, 0.2, 0.1, 0.9, 0.3])
    assert group_ranks(groups, priority).tolist() == [2, 0, 0, 1, 1]
    assert equal_quotas(3, 10).tolist() == [4, 3, 3]


def test_herding_mean_is_closer_to_the_class_mean_than_random_subsets():
    g = torch.Generator().manual_seed(0)
    features = torch.randn(200, 16, generator=g) + torch.linspace(0, 2, 16)
    phi = torch.nn.functional.normalize(features, dim=1)
    rank = herding_order(features, 10)
    chosen = rank < 10
    assert int(chosen.sum()) == 10 and set(rank[chosen].tolist()) == set(range(10))
    herd_gap = (phi[chosen].mean(0) - phi.mean(0)).norm()
    random_gaps = torch.stack([(phi[torch.randperm(200, generator=g)[:10]].mean(0) - phi.mean(0)).norm()
                               for _ in range(50)])
    assert herd_gap < random_gaps.min()


def test_replay_memory_budget_balance_bytes_and_batches():
    stream = cluster_stream(n_tasks=2, n=100)
    memory = build_retention("replay", budget=30, selection="reservoir", balance="class")
    learner = StubLearner(tiny_net())
    memory.after_task(learner, stream[0])
    assert torch.bincount(memory.memory["y_global"]).tolist() == [15, 15]
    memory.after_task(learner, stream[1])
    counts = torch.bincount(memory.memory["y_global"]).tolist()
    assert counts == [8, 8, 7, 7]
    n = len(memory)
    assert memory.memory_bytes() == n * 8 * 1 + 3 * n * 8 + n * 4  # uint8 images, 3 int64 labels, float32 key
    batch = memory.replay(64, torch.Generator().manual_seed(1))
    assert batch.x.shape == (64, *SHAPE) and batch.x.dtype == torch.float32
    assert 0 <= float(batch.x.min()) and float(batch.x.max()) <= 1
    assert torch.equal(batch.y_global, batch.task * 2 + batch.y)
    # uint8 storage is exact to 1/255 of the original images
    first = memory.memory["x"][0].float() / 255
    original = torch.cat([t.x_train for t in stream]).flatten(1)
    assert ((original - first.flatten()).abs().max(1).values < 0.5 / 255 + 1e-7).any()
    assert build_retention("replay", budget=30, replay_batch_size=5).replay(9, torch.Generator()) is None


def test_reservoir_without_balance_keeps_a_uniform_subset_of_everything_seen():
    stream = cluster_stream(n_tasks=3, n=400)
    tasks_kept = torch.zeros(3)
    for seed in range(20):
        memory = build_retention("replay", budget=60, balance="none", seed=seed)
        for task in stream:
            memory.after_task(StubLearner(tiny_net()), task)
        assert len(memory) == 60
        tasks_kept += torch.bincount(memory.memory["task"], minlength=3)
    assert (tasks_kept / 20 - 20).abs().max() < 4  # each task holds 1/3 of the memory in expectation


def test_the_cycle_draw_replays_every_sample_once_per_pass_and_restarts_with_each_task():
    stream = cluster_stream(n_tasks=2, n=100)
    memory = build_retention("replay", budget=30, balance="none", draw="cycle")
    memory.after_task(StubLearner(tiny_net()), stream[0])
    memory.before_task(StubLearner(tiny_net()), stream[1])
    generator = torch.Generator().manual_seed(0)
    keys = lambda b: sorted(zip(b.y_global.tolist(), (b.x.flatten(1) * 255).round().sum(1).tolist()))  # noqa: E731
    stored = keys(Batch(memory.memory["x"].float() / 255, memory.memory["y"], memory.memory["task"],
                        memory.memory["y_global"]))
    drawn = [memory.replay(7, generator) for _ in range(9)]  # 63 samples: two whole passes and 3 of the third
    first = Batch(*(torch.cat([getattr(b, f) for b in drawn])[:30] for f in ("x", "y", "task", "y_global")))
    second = Batch(*(torch.cat([getattr(b, f) for b in drawn])[30:60] for f in ("x", "y", "task", "y_global")))
    assert keys(first) == stored and keys(second) == stored
    memory.before_task(StubLearner(tiny_net()), stream[1])
    assert len(memory._pass) == 0  # a new task starts a new pass


def test_herding_memory_picks_the_herding_prefix_per_class():
    task = cluster_stream(n_tasks=1, n=120)[0]
    net = tiny_net({"kind": "single", "classes": 2})
    memory = build_retention("replay", budget=10, selection="herding")
    memory.after_task(StubLearner(net), task)
    with torch.no_grad():
        features = net.features(task.x_train)
    for c in (0, 1):
        members = (task.y_train == c).nonzero().squeeze(1)
        order = herding_order(features[members], 5)
        expected = task.x_train[members[order < 5]]
        kept = memory.memory["x"][memory.memory["y"] == c].float() / 255
        assert kept.shape[0] == 5
        assert torch.allclose(kept.sort(0).values, expected.sort(0).values, atol=0.5 / 255 + 1e-6)


def test_replay_state_round_trip():
    memory = build_retention("replay", budget=10)
    memory.after_task(StubLearner(tiny_net()), cluster_stream(n_tasks=1)[0])
    copy = build_retention("replay", budget=10)
    copy.load_state_dict(memory.state_dict())
    assert all(torch.equal(copy.memory[k], v) for k, v in memory.memory.items())
    assert torch.equal(copy.generator.get_state(), memory.generator.get_state())


def test_joint_replays_everything_in_proportion_to_the_new_task():
    stream = cluster_stream(n_tasks=3, n=100)
    joint = build_retention("joint")
    learner = StubLearner(tiny_net())
    for task in stream.tasks[:2]:
        joint.before_task(learner, task)
        joint.after_task(learner, task)
    joint.before_task(learner, stream[2])
    assert len(joint) == 100 and joint.memory["x"].dtype == torch.float32
    assert len(joint.replay(32, torch.Generator()).y) == 64  # 32 * 100 old / 50 new


# ---- old weights: freeze and slow lr ----------------------------------------------------------


def test_freeze_and_slow_lr_scale_old_parameters_and_leave_new_ones():
    net = tiny_net({"kind": "multi", "classes": [2]})
    task = cluster_stream(n_tasks=1)[0]
    for name, factor in (("freeze", 0.0), ("slow_lr", 0.1)):
        strategy = build_retention(name)
        strategy.after_task(StubLearner(net, "task"), task)
        growth = ops.add_head(net, 2)
        strategy.on_growth(growth)
        scales = strategy.param_lr_scale(growth.net)
        assert set(scales) == {n for n, _ in net.named_parameters()}
        assert set(scales.values()) == {factor}


def freezing_learner(**trainer) -> tuple:
    """A task-IL stream of 2 tasks and a learner whose MLP widens by half before each task, with `freeze`."""
    stream = conflicting_stream("task", n_tasks=2)
    freeze = build_retention("freeze")
    torch.manual_seed(0)
    net = build({"kind": "mlp", "input_shape": list(SHAPE), "hidden": [8], "head": {"kind": "multi", "classes": []}})
    trainer = Trainer(**{"epochs": 5, "batch_size": 32, "optimizer": "sgd", "lr": 0.01, "device": "cpu", "progress": False,
                         "curve_batches": 0, **trainer})
    return stream, freeze, Learner(net, build_grower("schedule", width_factor=1.5), [freeze], trainer, "task")


def test_freeze_keeps_old_slices_of_a_widened_tensor_exactly_even_with_weight_decay():
    stream, _, learner = freezing_learner(epochs=3, lr=0.05, weight_decay=0.01, reset_optimizer=False)
    learner.learn(stream[0])
    old = {n: p.detach().clone() for n, p in learner.net.named_parameters()}
    outputs = learner.net(stream[0].x_test, 0).detach()
    learner.learn(stream[1])
    grown = dict(learner.net.named_parameters())
    assert grown["layers.0.weight"].shape == (12, 8)
    for n, value in old.items():
        torch.testing.assert_close(grown[n][tuple(slice(0, s) for s in value.shape)], value, rtol=0, atol=0)
    assert not torch.equal(grown["layers.0.weight"][8:], torch.zeros(4, 8))
    assert_same_function(learner.net(stream[0].x_test, 0), outputs)  # recomputed through the wider matrices
    with leaking(learner.net.head.heads[0].bias), pytest.raises(AssertionError):  # old outputs moved by LEAK
        assert_same_function(learner.net(stream[0].x_test, 0), outputs)


def test_a_discarded_freeze_copy_leaves_no_global_optimizer_hook():
    """Growth-search candidates drop their retention copies mid-task: their restore hook must go too."""
    import copy
    import gc
    import weakref

    from torch.optim.optimizer import _global_optimizer_post_hooks as hooks

    stream, freeze, learner = freezing_learner(epochs=1)
    learner.learn(stream[0])
    before = len(hooks)

    def candidate_copy():
        candidate = copy.deepcopy(freeze)
        grown = ops.widen(learner.net, "hidden.0", 4)
        candidate.on_growth(grown)
        candidate.before_task(StubLearner(grown.net, "task"), stream[1])
        return candidate, weakref.ref(grown.net)

    first, first_net = candidate_copy()
    assert len(hooks) == before + 1 and first._saved
    del first
    gc.collect()
    assert first_net() is None  # the hook did not keep the discarded candidate's net alive
    second, _ = candidate_copy()
    assert len(hooks) == before + 1  # the first copy's hook went when the second registered


def test_freeze_keeps_a_widened_batchnorm_resnet_exactly_on_old_tasks():
    g = torch.Generator().manual_seed(0)
    tasks = []
    for t in range(2):
        x, y = torch.rand(48, 3, 8, 8, generator=g), torch.randint(0, 2, (48,), generator=g)
        tasks.append(Task(t, f"t{t}", [2 * t, 2 * t + 1], ["a", "b"], x[:32], y[:32], x[:0], y[:0], x[32:], y[32:],
                          mean=(0.5,) * 3, std=(0.25,) * 3))
    net = build({"kind": "resnet", "input_shape": [3, 8, 8], "head": {"kind": "multi", "classes": []},
                 "stages": [{"width": 4, "blocks": 1}, {"width": 8, "blocks": 1, "stride": 2}]})
    learner = Learner(net, build_grower("schedule", width_factor=1.5), [build_retention("freeze")],
                      Trainer(epochs=2, batch_size=8, lr=0.05, weight_decay=1e-3, optimizer="sgd", device="cpu",
                              progress=False, curve_batches=0), "task")
    learner.learn(tasks[0])
    learner.net.eval()
    outputs = learner.net(tasks[0].x_test, 0).detach()
    learner.learn(tasks[1])
    learner.net.eval()
    assert learner.net.spec["stages"][0]["width"] == 6
    assert_same_function(learner.net(tasks[0].x_test, 0), outputs)
    with leaking(learner.net.head.heads[0].bias), pytest.raises(AssertionError):
        assert_same_function(learner.net(tasks[0].x_test, 0), outputs)


# ---- bias correction --------------------------------------------------------------------------


def test_weight_aligning_equalises_mean_norms_and_scales_new_logits():
    net = tiny_net({"kind": "single", "classes": 4})
    stream = cluster_stream(n_tasks=2)
    wa = build_retention("bias_correction")
    learner = StubLearner(net)
    wa.before_task(learner, stream[0])
    wa.after_task(learner, stream[0])
    with torch.no_grad():
        net.head.classifier.weight[2:] *= 5
    x = torch.rand(4, *SHAPE)
    before = net(x).detach()
    wa.after_task(learner, stream[1])
    norms = net.head.classifier.weight.norm(dim=1)
    assert norms[2:].mean().item() == pytest.approx(norms[:2].mean().item(), rel=1e-6)
    gamma = wa.gammas[0]
    torch.testing.assert_close(net(x)[:, 2:], gamma * before[:, 2:])
    torch.testing.assert_close(net(x)[:, :2], before[:, :2])
    with pytest.raises(SelfgrowError, match="does not apply to scenario 'task'"):
        wa.before_task(StubLearner(net, "task"), stream[0])


# ---- behaviour on tiny streams (real Learner and Trainer) -------------------------------------


def test_finetune_forgets_on_the_conflicting_stream(task_il_finetune):
    assert forgetting(task_il_finetune[1]) > 0.2


def test_freeze_gives_exactly_zero_forgetting_in_task_il():
    learner, matrix = run(conflicting_stream("task"), [build_retention("freeze")], weight_decay=1e-3)
    assert forgetting(matrix) == 0.0
    assert matrix[-1][-1] > 0.6  # the new head still learns on frozen features


@pytest.mark.parametrize("name, options", [
    ("ewc", {"lam": 10.0}), ("ewc", {"lam": 10.0, "online": True}), ("lwf", {"alpha": 2.0}), ("slow_lr", {}),
    ("feature_kd", {}), ("gem", {"per_task": 30}), ("agem", {"per_task": 30, "sample_size": 32}),
])
def test_strategy_forgets_less_than_finetune_in_task_il(task_il_finetune, name, options):
    _, matrix = run(conflicting_stream("task"), [build_retention(name, **options)])
    assert forgetting(matrix) < 0.5 * forgetting(task_il_finetune[1])


def test_replay_and_icarl_beat_finetune_in_class_il():
    stream = cluster_stream()
    _, finetune = run(stream, [], lr=0.02)
    _, er = run(stream, [build_retention("replay", budget=20)], lr=0.02)
    _, icarl = run(stream, [build_retention("replay", budget=20, selection="herding"), build_retention("lwf")], lr=0.02)
    old = lambda m: sum(m[-1][:-1]) / (len(m[-1]) - 1)
    assert old(finetune) < 0.05
    assert old(er) > old(finetune) + 0.3
    assert old(icarl) > old(finetune) + 0.3


# ---- resume -----------------------------------------------------------------------------------


def all_strategies() -> list:
    return [build_retention("freeze"), build_retention("ewc", empirical=True), build_retention("lwf"),
            build_retention("feature_kd"), build_retention("replay", budget=20, selection="herding"),
            build_retention("slow_lr"), build_retention("bias_correction")]


def test_checkpointed_strategies_resume_exactly(tmp_path):
    from selfgrow.train.checkpoint import load_checkpoint, restore, save_checkpoint

    stream = cluster_stream(n_tasks=3, n=60)
    learner, _ = run(Stream("two", "class", stream.tasks[:2]), all_strategies(), epochs=2)
    save_checkpoint(tmp_path, 1, learner, {})
    resumed, _ = run(Stream("none", "class", []), all_strategies(), epochs=2)
    restore(resumed, load_checkpoint(tmp_path, 1), stream.tasks)
    for strategy, copy in zip(learner.retention, resumed.retention):
        assert copy.memory_bytes() == strategy.memory_bytes(), strategy.name
    learner.learn(stream[2])
    restore(resumed, load_checkpoint(tmp_path, 1), stream.tasks)  # the RNG state as it was at the save
    resumed.learn(stream[2])
    for (name, p), (_, q) in zip(learner.net.named_parameters(), resumed.net.named_parameters()):
        torch.testing.assert_close(q, p, rtol=0, atol=0, msg=name)
