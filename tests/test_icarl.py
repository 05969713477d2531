"""iCaRL as Rebuffi et al. 2017 describe it: the sigmoid/BCE loss with distilled old-class targets (hand-computed),
the nearest-mean-of-exemplars classifier, exemplars mixed into the training set, and the method end to end."""

from __future__ import annotations

import math

import pytest
import torch
import torch.nn.functional as F
from test_retention import StubLearner, cluster_stream, run, tiny_net

from selfgrow.errors import SelfgrowError
from selfgrow.methods import resolve_method
from selfgrow.retention import Retention, build_retention


class _Teacher(torch.nn.Module):
    """An old net whose logits are fixed numbers (the distillation targets come from them)."""

    def __init__(self, logits: torch.Tensor):
        super().__init__()
        self.logits = logits

    def forward(self, x: torch.Tensor, task: int | None = None) -> torch.Tensor:
        return self.logits[: len(x)]


def test_the_icarl_loss_is_bce_with_one_hot_new_and_distilled_old_targets():
    loss = build_retention("icarl_bce")
    loss.old_classes, loss.new_classes = [0, 1], [2, 3]
    loss.teacher = _Teacher(torch.tensor([[2.0, -1.0, 5.0, 5.0, 0.0], [0.0, 3.0, -5.0, 5.0, 0.0]]))
    logits = torch.tensor([[1.0, 0.0, 2.0, -1.0, 9.0], [-2.0, 1.0, 0.5, 0.0, -9.0]])
    y = torch.tensor([2, 1])  # a new-class sample and an exemplar of old class 1
    got = loss.classification_loss(torch.zeros(2, 3), logits, y)
    sig = lambda v: 1 / (1 + math.exp(-v))  # noqa: E731
    bce = lambda g, t: -(t * math.log(sig(g)) + (1 - t) * math.log(1 - sig(g)))  # noqa: E731
    # sample 0: new classes 2 (target 1) and 3 (target 0); old classes 0, 1 distil sigmoid(2), sigmoid(-1); column 4
    # (a class not seen yet) is left out of the sum
    first = bce(2.0, 1) + bce(-1.0, 0) + bce(1.0, sig(2.0)) + bce(0.0, sig(-1.0))
    # sample 1 (old class 1): both new classes target 0; its own label counts only through the teacher
    second = bce(0.5, 0) + bce(0.0, 0) + bce(-2.0, sig(0.0)) + bce(1.0, sig(3.0))
    assert got.tolist() == pytest.approx([first, second], rel=1e-6)
    loss.teacher, loss.old_classes = None, []  # first task: one-hot over the task's classes only
    alone = loss.classification_loss(torch.zeros(2, 3), logits, torch.tensor([2, 3]))
    assert alone.tolist() == pytest.approx([bce(2.0, 1) + bce(-1.0, 0), bce(0.5, 0) + bce(0.0, 1)], rel=1e-6)


def test_a_strategy_loss_replaces_cross_entropy_in_training():
    class NoLoss(Retention):
        name = "no_loss"

        def classification_loss(self, x, logits, y_global):
            return logits.sum(1) * 0.0

    stream = cluster_stream(n_tasks=1)
    one, _ = run(stream, [NoLoss()], epochs=1)
    three, _ = run(stream, [NoLoss()], epochs=3)
    trained, _ = run(stream, [], epochs=1)
    weights = lambda learner: list(learner.net.state_dict().values())  # noqa: E731
    # a zero loss leaves the net where it started, however long it trains; cross-entropy moves it
    assert all(torch.equal(a, b) for a, b in zip(weights(one), weights(three)))
    assert not all(torch.equal(a, b) for a, b in zip(weights(one), weights(trained)))


def _memory_with_means(scenario: str = "class"):
    stream = cluster_stream(n_tasks=2, n=100)
    net = tiny_net({"kind": "single", "classes": 4} if scenario == "class" else {"kind": "multi", "classes": [2, 2]})
    memory = build_retention("replay", budget=40, selection="herding", classifier="nme")
    for task in stream:
        memory.after_task(StubLearner(net, scenario), task)
    return stream, net, memory


def test_nme_prototypes_are_normalised_means_of_normalised_exemplar_features():
    stream, net, memory = _memory_with_means()
    assert memory.mean_ids.tolist() == [0, 1, 2, 3]
    for row, c in enumerate(memory.mean_ids.tolist()):
        x = memory.memory["x"][memory.memory["y_global"] == c].float() / 255
        with torch.no_grad():
            features = F.normalize(net.eval().features(x), dim=1)
        assert torch.allclose(memory.means[row], F.normalize(features.mean(0), dim=0), atol=1e-6)


def test_nme_predicts_the_nearest_prototype_among_the_allowed_classes():
    stream, net, memory = _memory_with_means()
    x = stream[1].x_test
    with torch.no_grad():
        features = F.normalize(net.eval().features(x), dim=1)
        expected = torch.cdist(features, memory.means).argmin(1)
        got = memory.predict(net, x, stream[1], "class", None)
        restricted = memory.predict(net, x, stream[1], "class", [0, 1])
    assert torch.equal(got, memory.mean_ids[expected])
    assert set(restricted.tolist()) <= {0, 1}
    stream, net, memory = _memory_with_means("task")
    with torch.no_grad():
        local = memory.predict(net, stream[1].x_test, stream[1], "task", None)
    assert set(local.tolist()) <= {0, 1}  # local labels of task 1's own classes
    assert build_retention("replay").predict(net, x, stream[1], "class", None) is None  # the head decides


def test_nme_prototypes_survive_a_checkpoint():
    _, _, memory = _memory_with_means()
    copy = build_retention("replay", budget=40, selection="herding", classifier="nme")
    copy.load_state_dict(memory.state_dict())
    assert torch.equal(copy.means, memory.means) and torch.equal(copy.mean_ids, memory.mean_ids)
    assert copy.mean_basis == memory.mean_basis == {"mean": [], "std": [], "task_il": False}


@pytest.mark.parametrize("mode", ["zero", "split"])
def test_nme_prototypes_follow_a_growth_of_the_feature_layer(mode):
    from selfgrow.nets import ops

    stream, net, memory = _memory_with_means()
    growth = ops.widen(net, "hidden.0", 3, mode=mode)  # the features grow from 4 to 7 values
    restored = build_retention("replay", budget=40, selection="herding", classifier="nme")
    restored.load_state_dict(memory.state_dict())  # a run resumed between the task and the growth
    x_test = stream[1].x_test
    for strategy in (memory, restored):
        strategy.on_growth(growth)  # one prediction after the growth computes the means again, once
        strategy.on_growth(growth)
        with torch.no_grad():
            assert strategy.predict(growth.net, x_test, stream[1], "class", None).shape == (len(x_test),)
        assert strategy.means.shape == (4, 7) and not strategy.means_stale
    for row, c in enumerate(memory.mean_ids.tolist()):  # the normalised means of the grown net's features
        x = memory.memory["x"][memory.memory["y_global"] == c].float() / 255
        with torch.no_grad():
            features = F.normalize(growth.net.eval().features(x), dim=1)
        assert torch.allclose(memory.means[row], F.normalize(features.mean(0), dim=0), atol=1e-6)
    assert torch.equal(restored.means, memory.means)
    earlier = build_retention("replay", budget=40, selection="herding", classifier="nme")
    earlier.load_state_dict({k: v for k, v in _memory_with_means()[2].state_dict().items() if k != "mean_basis"})
    earlier.on_growth(growth)  # a checkpoint without the means' basis: the head decides until the task's end
    assert len(earlier.means) == 0 and earlier.predict(growth.net, x_test, stream[1], "class", None) is None


def test_mixing_the_memory_into_the_dataset_replays_in_proportion_to_the_task():
    stream, net, memory = _memory_with_means()
    mixed = build_retention("replay", budget=40, mix="dataset")
    mixed.after_task(StubLearner(net), stream[0])
    mixed.before_task(StubLearner(net), stream[1])  # 50 new training samples, 40 in memory
    assert len(mixed.replay(16, torch.Generator().manual_seed(0)).y) == math.ceil(16 * 40 / 50)


def test_icarl_end_to_end_beats_finetune_and_refuses_task_il():
    stream = cluster_stream(n_tasks=3)
    fragment = resolve_method("icarl")["retention"]
    strategies = [build_retention(r["name"], **{**r["options"], **({"budget": 40} if r["name"] == "replay" else {})})
                  for r in fragment]
    _, matrix = run(stream, strategies)
    _, finetuned = run(stream, [])
    assert sum(matrix[-1]) / 3 > sum(finetuned[-1]) / 3 + 0.2
    with pytest.raises(SelfgrowError, match="Retention 'icarl_bce' does not apply to scenario 'task'; accepted: class"):
        build_retention("icarl_bce").before_task(StubLearner(tiny_net(), "task"), stream[0])


def test_bic_learns_the_correction_that_undoes_a_bias_towards_new_classes():
    from selfgrow.retention.bic import corrected, fit_correction

    g = torch.Generator().manual_seed(0)
    y = torch.arange(40) % 4  # balanced held-out set: old classes 0, 1; new classes 2, 3
    clean = F.one_hot(y, 4).float() * 3 + 0.3 * torch.randn(40, 4, generator=g)
    biased = clean.clone()
    biased[:, 2:] += 4.0  # the head favours the new classes
    before = float((biased.argmax(1) == y).float().mean())
    alpha, beta = fit_correction(biased, y, [2, 3], [], steps=300, lr=0.05)
    after = float((corrected(biased, [([2, 3], alpha, beta)]).argmax(1) == y).float().mean())
    assert before == 0.5 and after == 1.0
    assert beta < -2.0  # the learnt shift takes the bias back
    assert torch.equal(corrected(biased, [([2, 3], 1.0, 0.0)]), biased)  # identity correction


def test_bic_end_to_end_keeps_a_held_out_set_and_corrects_at_test_time():
    stream = cluster_stream(n_tasks=3)
    stream = type(stream)(stream.name, stream.scenario, [_with_val(t) for t in stream])
    strategies = [build_retention("replay", budget=40, selection="herding"), build_retention("lwf"),
                  build_retention("bic", per_class=5, steps=50)]
    learner, matrix = run(stream, strategies)
    bic = strategies[-1]
    assert torch.bincount(bic.held_out["y_global"]).tolist() == [5] * 6
    assert [c for c, _, _ in bic.corrections] == [[2, 3], [4, 5]]  # one per task after the first
    assert bic.memory_bytes() == 30 * 8 * 4 + 30 * 8  # float32 images of 8 pixels and int64 labels
    assert all(0.0 <= a <= 1.0 for a in matrix[-1])


def _with_val(task):
    """The task with the first 10 training samples as its validation split (cluster tasks have none)."""
    import dataclasses

    return dataclasses.replace(task, x_val=task.x_train[:10], y_val=task.y_train[:10])
