"""Numerical faults: a NaN/inf loss never reaches the weights; the step is skipped, counted, and the lr lowered."""

from __future__ import annotations

import math

import torch
from trainer_fixtures import make_net, make_task

from selfgrow.nets import ops
from selfgrow.retention.base import Retention
from selfgrow.train import Trainer
from selfgrow.train.trainer import BAD_STEPS_BEFORE_LR_DROP, _NonFiniteGuard


class Poison(Retention):
    """A penalty that is NaN or inf on the listed training steps (counted over the whole fit) and 0 elsewhere."""

    def __init__(self, bad: dict[int, float]) -> None:
        self.bad, self.step = bad, -1

    def penalty(self, net, batch, logits):
        self.step += 1
        return (
            logits.sum() * self.bad.get(self.step, 0.0)
            if self.step in self.bad
            else None
        )


def _net_and_task():
    task = make_task(0, [0, 1])
    return ops.add_classes(make_net("class"), task.n_classes).net, task


def _weights(net):
    return {k: v.detach().clone() for k, v in net.state_dict().items()}


def test_bad_steps_are_skipped_counted_and_a_run_of_them_halves_the_lr():
    net, task = _net_and_task()
    trainer = Trainer(
        epochs=4, batch_size=4, optimizer="adam", lr=0.01, device="cpu", curve_batches=0
    )
    # 6 steps per epoch; steps 0 and 1 bad, one good step, then 3 bad in a row (one lr drop), then good again
    bad = {0: math.nan, 1: math.inf, 3: math.nan, 4: -math.inf, 5: math.nan}
    result = trainer.fit(net, task, "class", [Poison(bad)])
    assert result.skipped_steps == 5 and result.lr_drops == 1
    assert all(torch.isfinite(v).all() for v in net.state_dict().values())
    assert all(
        math.isfinite(x) for x in result.loss_curve
    )  # skipped steps do not enter the mean loss
    assert (
        result.val_acc is not None and result.val_acc > 0.9
    )  # training went on and learned the task
    assert {"skipped_steps": 5, "lr_drops": 1}.items() <= result.to_dict().items()


def test_a_net_that_only_produces_nan_is_left_exactly_as_it_was():
    net, task = _net_and_task()
    before = _weights(net)
    steps = 2 * math.ceil(len(task.y_train) / 8)
    trainer = Trainer(
        epochs=2, batch_size=8, optimizer="sgd", lr=0.1, device="cpu", curve_batches=0
    )
    result = trainer.fit(
        net, task, "class", [Poison({s: math.nan for s in range(steps)})]
    )
    assert (
        result.skipped_steps == steps
        and result.lr_drops == steps // BAD_STEPS_BEFORE_LR_DROP
    )
    after = _weights(net)
    assert all(torch.equal(before[k], after[k]) for k in before)
    assert all(math.isnan(x) for x in result.loss_curve)  # no finite step in any epoch


def test_the_guard_halves_every_group_lr_after_consecutive_bad_losses_only():
    p = torch.nn.Parameter(torch.zeros(1))
    optimizer = torch.optim.SGD([{"params": [p], "lr": 0.4}], lr=0.4)
    guard = _NonFiniteGuard()
    losses = [math.nan, math.nan, 1.0, math.nan, math.inf, math.nan, math.nan]
    allowed = [guard.finite(float(x), optimizer) for x in losses]
    assert allowed == [False, False, True, False, False, False, False]
    assert (
        guard.skipped == 6
        and guard.lr_drops == 1
        and optimizer.param_groups[0]["lr"] == 0.2
    )


def test_skipped_steps_reach_the_results_and_the_console(tmp_path, monkeypatch, capsys):
    from selfgrow.config import from_dict
    from selfgrow.experiment import run

    real, calls = Trainer._batch_loss, []

    def first_three_nan(self, *args, **kwargs):
        calls.append(1)
        loss = real(self, *args, **kwargs)
        return loss * math.nan if len(calls) <= 3 else loss

    monkeypatch.setattr(Trainer, "_batch_loss", first_three_nan)
    config = from_dict(
        {
            "output": str(tmp_path),
            "stream": {"n_tasks": 2, "classes_per_task": 2},
            "net": {"preset": "mlp-tiny"},
            "trainer": {"epochs": 1, "progress": False},
        }
    )
    results = run(config)
    assert [(t["skipped_steps"], t["lr_drops"]) for t in results.tasks] == [
        (3, 1),
        (0, 0),
    ]
    assert (
        "task 0: 3 steps had a NaN/inf loss and were skipped; learning rate halved 1 times"
        in capsys.readouterr().out
    )
