"""Trainer.fit: learning, determinism, early stopping, freezing, losses per scenario, lr selection; accuracy()."""

from __future__ import annotations

import math

import pytest
import torch
import torch.nn.functional as F
from trainer_fixtures import FixedReplay, Recorder, make_net, make_task, make_tasks

from selfgrow.errors import SelfgrowError
from selfgrow.nets import build, ops
from selfgrow.nets.cost import training_flops_per_sample
from selfgrow.retention.base import Batch, Retention
from selfgrow.train import Trainer, accuracy, resolve_device
from selfgrow.train.batches import to_input
from selfgrow.train.trainer import _Run


def _with_head(net, task, scenario):
    return (ops.add_head(net, task.n_classes) if scenario == "task" else ops.add_classes(net, task.n_classes)).net


def _weights(net):
    return {k: v.clone() for k, v in net.state_dict().items()}


def test_fit_learns_a_separable_task_and_counts_compute():
    task = make_task(0, [0, 1, 2])
    net = _with_head(make_net("class"), task, "class")
    trainer = Trainer(optimizer="sgd", epochs=15, batch_size=16, lr=0.1, device="cpu", curve_batches=3)
    result = trainer.fit(net, task, "class")
    assert accuracy(net, task, "class") >= 0.95
    assert result.loss_curve[-1] < 0.5 * result.loss_curve[0]
    assert result.epochs == 15 and len(result.val_curve) == 15
    assert len(result.batch_curve) == 4  # before training and after each of the first 3 batches
    assert result.train_samples == 15 * len(task.y_train)
    assert result.train_flops == result.train_samples * training_flops_per_sample(net)
    assert result.val_acc == result.val_curve[-1]


def test_fit_is_deterministic_for_a_seed():
    task = make_task(0, [0, 1], noise=0.4)
    task.augment = {"crop_padding": 1, "hflip": True}
    runs = []
    for seed in (3, 3, 4):
        net = _with_head(make_net("class", seed=0), task, "class")
        Trainer(optimizer="sgd", epochs=2, batch_size=8, lr=0.05, device="cpu", seed=seed).fit(net, task, "class")
        runs.append(_weights(net))
    assert all(torch.equal(runs[0][k], runs[1][k]) for k in runs[0])
    assert not all(torch.equal(runs[0][k], runs[2][k]) for k in runs[0])


def test_early_stopping_restores_the_best_epoch(monkeypatch):
    task = make_task(0, [0, 1])
    net = _with_head(make_net("class"), task, "class")
    scripted = iter([0.5, 0.9, 0.6, 0.7, 0.8])
    snapshots = []

    def fake_accuracy(net, *args, **kwargs):
        snapshots.append(_weights(net))
        return next(scripted)

    monkeypatch.setattr("selfgrow.train.trainer.accuracy", fake_accuracy)
    result = Trainer(optimizer="sgd", epochs=5, lr=0.1, patience=2, curve_batches=0, device="cpu").fit(net, task, "class")
    assert result.stopped_early and result.epochs == 4
    assert result.best_epoch == 1 and result.val_acc == 0.9 and result.val_curve == [0.5, 0.9, 0.6, 0.7]
    final = net.state_dict()
    assert all(torch.equal(final[k], snapshots[1][k]) for k in final)
    assert not all(torch.equal(final[k], snapshots[3][k]) for k in final)


def test_lr_scale_zero_freezes_exactly_despite_decay_and_momentum():
    task = make_task(0, [0, 1])
    net = _with_head(make_net("class"), task, "class")
    trainer = Trainer(epochs=2, lr=0.1, momentum=0.9, weight_decay=0.1, device="cpu", reset_optimizer=False)
    stale = {"layers.0.weight": {"momentum_buffer": torch.ones_like(net.layers[0].weight)}}
    before = _weights(net)
    result = trainer.fit(net, task, "class", [Recorder(scales={"layers.0.weight": 0.0})], optimizer_state=stale)
    after = net.state_dict()
    assert torch.equal(after["layers.0.weight"], before["layers.0.weight"])
    assert not torch.equal(after["layers.0.bias"], before["layers.0.bias"])
    assert net.layers[0].weight.requires_grad  # the flag is restored after training
    assert torch.equal(result.optimizer_state["layers.0.weight"]["momentum_buffer"], stale["layers.0.weight"]["momentum_buffer"])


def test_lr_scale_multiplies_the_step():
    task = make_task(0, [0, 1])
    deltas = {}
    for scale in (1.0, 0.5):
        net = _with_head(make_net("class"), task, "class")
        before = net.layers[0].bias.detach().clone()
        trainer = Trainer(optimizer="sgd", epochs=1, batch_size=len(task.y_train), lr=0.1, momentum=0.0, device="cpu", curve_batches=0)
        trainer.fit(net, task, "class", [Recorder(scales={"layers.0.bias": scale})])
        deltas[scale] = net.layers[0].bias.detach() - before
    assert deltas[1.0].abs().sum() > 0
    torch.testing.assert_close(deltas[0.5], 0.5 * deltas[1.0])


def test_penalty_enters_the_loss():
    task = make_task(0, [0, 1])
    net = _with_head(make_net("class"), task, "class")
    result = Trainer(optimizer="sgd", epochs=1, lr=1e-9, device="cpu", curve_batches=0).fit(net, task, "class", [Recorder(constant_penalty=5.0)])
    assert result.loss_curve[0] > 5.0


def test_task_il_loss_scores_replay_with_its_own_head():
    old, new = make_task(0, [0, 1]), make_task(1, [2, 3])
    net = ops.add_head(ops.add_head(make_net("task"), 2).net, 2).net
    x, y = new.x_train[:4], new.y_train[:4]
    batch = Batch(x, y, torch.full_like(y, 1), new.global_labels(y))
    replay = FixedReplay(old).replay(3, torch.Generator())
    loss, transformed, logits, replayed = Trainer(device="cpu")._loss(net, batch, replay, new, "task",
                                                                      torch.Generator())
    expected = (
        F.cross_entropy(net(to_input(x, new), task=1), y, reduction="sum")
        + F.cross_entropy(net(to_input(replay.x, new), task=0), replay.y, reduction="sum")
    ) / 7
    torch.testing.assert_close(loss, expected)
    torch.testing.assert_close(logits, net(to_input(x, new), task=1))
    torch.testing.assert_close(transformed.x, to_input(x, new))
    [(group, group_logits)] = replayed  # one group per earlier task, scored by that task's head
    assert torch.equal(group.y, replay.y) and torch.equal(group.task, replay.task)
    torch.testing.assert_close(group_logits, net(to_input(replay.x, new), task=0))


def class_il_batch() -> tuple:
    """A class-IL net over 4 classes, the second task, a batch of 4 of its samples and 3 replayed ones of the first."""
    old, new = make_task(0, [0, 1]), make_task(1, [2, 3])
    net = ops.add_classes(make_net("class"), 4).net
    y = new.y_train[:4]
    batch = Batch(new.x_train[:4], y, torch.full_like(y, 1), new.global_labels(y))
    return net, new, batch, FixedReplay(old).replay(3, torch.Generator())


def test_class_il_loss_uses_global_labels_over_seen_classes():
    net, new, batch, replay = class_il_batch()
    x = batch.x
    loss, _, logits, replayed = Trainer(device="cpu")._loss(net, batch, replay, new, "class", torch.Generator())
    inputs = to_input(torch.cat([x, replay.x]), new)
    torch.testing.assert_close(loss, F.cross_entropy(net(inputs), torch.cat([batch.y_global, replay.y_global])))
    assert logits.shape == (4, 4)
    [(group, group_logits)] = replayed
    assert torch.equal(group.y_global, replay.y_global)
    torch.testing.assert_close(group_logits, net(inputs)[4:])


def test_replay_samples_are_trained_on():
    tasks = make_tasks(2, scenario="class")
    net = ops.add_classes(make_net("class"), 4).net
    trainer = Trainer(optimizer="sgd", epochs=12, batch_size=16, lr=0.1, device="cpu", curve_batches=0)
    result = trainer.fit(net, tasks[1], "class", [FixedReplay(tasks[0])])
    assert accuracy(net, tasks[0], "class", split="train") >= 0.9
    assert result.train_samples == 12 * 2 * len(tasks[1].y_train)


def test_lr_grid_selects_on_validation_and_counts_every_trial():
    task = make_task(0, [0, 1, 2])
    net = _with_head(make_net("class"), task, "class")
    trainer = Trainer(optimizer="sgd", lr=0.01, epochs=4, lr_grid=[1e-6, 0.2], wd_grid=[0.0], device="cpu", curve_batches=0)
    result = trainer.fit(net, task, "class")
    assert [g["lr"] for g in result.grid] == [1e-6, 0.2]
    assert result.lr == 0.2 and result.val_acc == max(g["val_acc"] for g in result.grid)
    assert accuracy(net, task, "class", split="val") == result.val_acc
    assert result.train_samples == 2 * 4 * len(task.y_train)


def test_accuracy_routes_task_heads_and_restricts_class_il_argmax():
    x = torch.rand(6, 1, 4, 4)
    task0 = make_task(0, [0, 1])
    task0.x_test, task0.y_test = x, torch.zeros(6, dtype=torch.long)
    task1 = make_task(1, [2, 3])
    task1.x_test, task1.y_test = x, torch.ones(6, dtype=torch.long)
    net = ops.add_head(ops.add_head(make_net("task"), 2).net, 2).net
    with torch.no_grad():
        for head, favourite in ((0, 0), (1, 1)):
            net.head.heads[head].weight.zero_()
            net.head.heads[head].bias.copy_(torch.eye(2)[favourite])
    assert accuracy(net, task0, "task") == 1.0 and accuracy(net, task1, "task") == 1.0

    single = ops.add_classes(make_net("class"), 4).net
    with torch.no_grad():
        single.head.classifier.weight.zero_()
        single.head.classifier.bias.copy_(torch.tensor([0.0, 1.0, 2.0, 3.0]))
    task1.y_test = torch.zeros(6, dtype=torch.long)  # global id 2
    assert accuracy(single, task1, "class") == 0.0  # class 3 wins over all outputs
    assert accuracy(single, task1, "class", seen_class_ids=[0, 1, 2]) == 1.0
    assert single.training  # evaluation leaves the mode as it was


def test_bad_settings_raise_clear_errors():
    with pytest.raises(SelfgrowError, match="optimizer"):
        Trainer(optimizer="adamw")
    with pytest.raises(SelfgrowError, match="patience"):
        Trainer(patience=0)
    with pytest.raises(SelfgrowError, match="min_epoch_steps=0 is invalid"):
        Trainer(min_epoch_steps=0)
    with pytest.raises(SelfgrowError, match="device"):
        resolve_device("tpu")
    assert resolve_device("cpu") == torch.device("cpu")
    task = make_task(0, [0, 1])
    net = build({"kind": "mlp", "input_shape": [1, 4, 4], "hidden": [4], "head": {"kind": "single", "classes": 2}})
    with pytest.raises(SelfgrowError, match="scenario"):
        Trainer(device="cpu").fit(net, task, "classes")


def test_min_epoch_steps_repeats_a_small_training_set_in_every_epoch(monkeypatch):
    """36 samples, batches of 8: one pass is 5 batches; 12 batches need 3 shuffled passes per epoch."""
    task = make_task(0, [0, 1, 2], per_class=24)
    assert len(task.y_train) == 36
    seen = []
    original = Trainer._batch_loss

    def counting(self, net, batch, *args, **kwargs):
        seen.append(len(batch.y))
        return original(self, net, batch, *args, **kwargs)

    monkeypatch.setattr(Trainer, "_batch_loss", counting)
    plain = Trainer(optimizer="sgd", lr=0.01, epochs=2, batch_size=8, device="cpu", curve_batches=0)
    assert plain.fit(_with_head(make_net("class"), task, "class"), task, "class").train_samples == 2 * 36
    assert len(seen) == 2 * 5
    seen.clear()
    repeated = Trainer(optimizer="sgd", lr=0.01, epochs=2, batch_size=8, device="cpu", curve_batches=0, min_epoch_steps=12)
    assert repeated.fit(_with_head(make_net("class"), task, "class"), task, "class").train_samples == 2 * 3 * 36
    assert len(seen) == 2 * 14 and sum(seen) == 2 * 3 * 36  # 108 samples: 13 batches of 8 and one of 4


def test_short_grid_retrains_the_winner_in_full():
    task = make_task(0, [0, 1, 2])
    net = _with_head(make_net("class"), task, "class")
    trainer = Trainer(optimizer="sgd", lr=0.01, epochs=3, grid_epochs=1, lr_grid=[1e-6, 0.2], device="cpu", curve_batches=0)
    result = trainer.fit(net, task, "class")
    assert result.lr == 0.2 and result.epochs == 3
    assert result.train_samples == (2 * 1 + 3) * len(task.y_train)
    task.x_val, task.y_val = task.x_val[:0], task.y_val[:0]
    with pytest.raises(SelfgrowError, match="validation split"):
        trainer.fit(net, task, "class")


@pytest.mark.parametrize(("schedule", "factors"), [("none", [1, 1, 1, 1]), ("step", [1, 1, 0.1, 0.01]),
                                                   ("cosine", [1, 0.8535534, 0.5, 0.1464466])])
def test_schedules_set_the_lr_per_epoch(schedule, factors):
    optimizer = torch.optim.SGD([torch.nn.Parameter(torch.zeros(1))], lr=0.1)
    scheduler = Trainer(optimizer="sgd", lr=0.01, schedule=schedule, epochs=4)._scheduler(optimizer, 4)
    lrs = []
    for _ in range(4):
        lrs.append(optimizer.param_groups[0]["lr"])
        if scheduler is not None:
            scheduler.step()
    assert lrs == pytest.approx([0.1 * f for f in factors])


@pytest.mark.parametrize(("per_class", "min_steps", "steps"), [(24, None, 5), (24, 12, 14), (34, None, 7), (22, None, 4)])
def test_cosine_steps_anneals_each_fit_to_zero_over_its_optimizer_steps(monkeypatch, per_class, min_steps, steps):
    """Every step's lr is lr * (1 + cos(pi k / K)) / 2 over the fit's K steps (batches of 8; 51 samples leave a
    trailing batch of 3; 33 samples a trailing one, merged), so a fit ends near lr 0; a second fit (a search's next
    rung) starts again at lr."""
    task = make_task(0, [0, 1, 2], per_class=per_class)
    used = []
    original = torch.optim.SGD.step

    def recording(self, *args, **kwargs):
        used.append(self.param_groups[0]["lr"])
        return original(self, *args, **kwargs)

    monkeypatch.setattr(torch.optim.SGD, "step", recording)
    trainer = Trainer(optimizer="sgd", lr=0.1, epochs=2, batch_size=8, device="cpu", curve_batches=0,
                      schedule="cosine_steps", min_epoch_steps=min_steps)
    net = _with_head(make_net("class"), task, "class")
    trainer.fit(net, task, "class")
    total = 2 * steps
    assert used == pytest.approx([0.1 * (1 + math.cos(math.pi * k / total)) / 2 for k in range(total)])
    used.clear()
    trainer.fit(net, task, "class")
    assert used[0] == pytest.approx(0.1) and len(used) == total


def test_parameters_the_net_declares_frozen_never_move():
    """MNTDP: a new task's path may reuse an old module; training the new task leaves that module as it was."""
    net = build({"kind": "modular", "input_shape": [1, 4, 4], "modules": [{"type": "linear", "width": 8},
                                                                          {"type": "linear", "width": 8}],
                 "head": {"kind": "multi", "classes": []}})
    net = ops.add_task_path(net, [0, 0], 2).net  # task 0 on modules (0, 0) and (1, 0)
    net = ops.branch(net, source_task=0, reuse_depth=1, n_classes=2).net  # task 1 reuses module (0, 0)
    frozen = net.frozen_parameter_names()
    assert any(name.startswith("library.0.0.") for name in frozen)
    before = {n: p.detach().clone() for n, p in net.named_parameters()}
    task = make_task(1, [2, 3])
    Trainer(epochs=2, batch_size=8, optimizer="adam", lr=0.05, weight_decay=0.1, device="cpu", curve_batches=0).fit(
        net, task, "task")
    after = dict(net.named_parameters())
    assert all(torch.equal(before[n], after[n]) for n in frozen)
    assert any(not torch.equal(before[n], after[n]) for n in after if n not in frozen)  # the new path learned


def test_the_python_api_and_the_config_train_with_the_same_defaults():
    from dataclasses import asdict, fields

    from selfgrow.config import RunConfig, TrainerConfig

    configured = asdict(RunConfig().trainer)
    plain = Trainer()
    assert {f.name for f in fields(Trainer)} == {*configured, "device", "seed"}
    assert {name: getattr(plain, name) for name in configured} == configured
    assert (plain.epochs, plain.optimizer, plain.lr, plain.amp) == (10, "adam", 1e-3, True)
    assert isinstance(plain, TrainerConfig)


class ReplayLogitPenalty(Retention):
    """Adds `weight` x the replayed logits' sum and records what it was given."""

    def __init__(self, weight: float) -> None:
        self.weight, self.seen = weight, []

    def replay_penalty(self, net, replayed, logits):
        self.seen.append((replayed, logits.detach()))
        return self.weight * logits.sum()


def test_a_strategy_sees_the_replayed_samples_logits_and_its_replay_penalty_enters_the_loss():
    net, new, batch, replay = class_il_batch()
    x = batch.x
    strategy = ReplayLogitPenalty(0.5)
    trainer = Trainer(device="cpu")
    run = _Run(trainer, new, torch.device("cpu"), curve_batches=0, val_acc=None, parallel=None)
    loss = trainer._batch_loss(net, batch, replay, new, "class", [strategy], run)
    inputs = to_input(torch.cat([x, replay.x]), new)
    logits = net(inputs)
    expected = F.cross_entropy(logits, torch.cat([batch.y_global, replay.y_global])) + 0.5 * logits[4:].sum()
    torch.testing.assert_close(loss, expected)
    [(given, given_logits)] = strategy.seen
    assert torch.equal(given.y_global, replay.y_global) and given_logits.shape == (3, 4)
    # without replayed samples the hook is not called
    trainer._batch_loss(net, batch, None, new, "class", [strategy], run)
    assert len(strategy.seen) == 1


class FixedGradient(Retention):
    """Gradient surgery as a known answer: replaces every gradient by a constant tensor (says it used 7 samples)."""

    def __init__(self, value: float) -> None:
        self.value, self.calls = value, 0

    def after_backward(self, net, params):
        self.calls += 1
        for p in params:
            assert p.grad is not None  # backward has run
            p.grad = torch.full_like(p, self.value)
        return 7


def test_after_backward_edits_the_gradients_the_optimizer_step_applies():
    task = make_task(0, [0, 1])
    net = make_net("class")
    net = ops.add_classes(net, 2).net
    before = {k: v.clone() for k, v in net.state_dict().items()}
    surgeon = FixedGradient(0.25)
    trainer = Trainer(epochs=1, batch_size=len(task.y_train), optimizer="sgd", lr=0.1, momentum=0.0,
                      device="cpu", curve_batches=0, val_every_epoch=False)
    result = trainer.fit(net, task, "class", [surgeon])
    assert surgeon.calls == 1  # one batch, one step
    assert result.train_samples == len(task.y_train) + 7  # the surgeon's own samples count in the cost
    for name, value in net.state_dict().items():
        if name in dict(net.named_parameters()):  # w - lr * 0.25, whatever the loss's gradient was
            torch.testing.assert_close(value, before[name] - 0.1 * 0.25)
