"""The stream's training budget of the searched growers (`train_budget`) and the capacity rule."""

from __future__ import annotations

import copy

import pytest
import torch
from search_fixtures import QUICK, learner_for
from trainer_fixtures import make_tasks

from selfgrow.errors import SelfgrowError
from selfgrow.growth.stream_budget import plan_budget
from selfgrow.nets import ops
from selfgrow.nets.cost import training_flops_per_class, training_flops_per_sample
from selfgrow.retention import build_retention
from selfgrow.search import select
from selfgrow.train import Trainer

SPACE = {**QUICK, "n_trials": 4, "halving_batch": 4, "width_factors": [1.0, 2.0, 4.0], "max_deepen": 0}


def budget_learner(options: dict, n_tasks: int = 3, hidden: list[int] | None = None):
    """A class-IL learner of the fixture tasks (replay + LwF) told the stream's length."""
    torch.manual_seed(0)
    learner = learner_for("searched", options, hidden)
    learner.stream_tasks = n_tasks
    return learner


def per_sample(learner) -> float:
    return float(training_flops_per_sample(learner.net, None))


@pytest.mark.parametrize("trainer_options", [{}, {"min_epoch_steps": 7}, {"lr_grid": [0.01, 0.001], "grid_epochs": 1}],
                         ids=["plain", "min-steps", "grid-retrained"])
def test_planned_samples_are_what_a_fit_passes_with_and_without_replay(trainer_options):
    trainer = Trainer(epochs=2, batch_size=16, optimizer="adam", lr=0.01, device="cpu", curve_batches=0, progress=False,
                      **trainer_options)
    learner = learner_for("fixed")
    learner.trainer = trainer
    learner.retention = [build_retention("replay", budget=40)]
    first, second = make_tasks(2)
    n = int(first.y_train.numel())
    assert learner.learn(first).fit.train_samples == trainer.planned_samples(n, replaying=0)
    # the memory (40 samples) fills every batch of 16 with as many replayed samples
    assert learner.learn(second).fit.train_samples == trainer.planned_samples(n, replaying=1)


def test_the_task_budget_adds_what_was_spent_the_search_and_the_training_to_the_end():
    learner = budget_learner({})
    first, second, _ = make_tasks(3)
    learner.learn(first)
    learner.net = ops.add_classes(learner.net, 2).net
    n = int(second.y_train.numel())
    budget = plan_budget(1e12, learner, second, adopt=False, search_samples=300.0)
    spent = learner.records[0].fit.train_flops + learner.records[0].plan.search_flops
    now = learner.trainer.planned_samples(n, replaying=1)  # replay (and LwF, which does not replay) after task 0
    assert budget.spent == spent and budget.samples_now == now and budget.samples_later == now
    assert budget.later_tasks == 1 and budget.new_classes == 2  # the third task, adding 2 classes to the head
    # a loose budget: the search's 300 samples at the costliest net it may train, here the current one
    assert budget.search_estimate == pytest.approx(300.0 * per_sample(learner))
    assert budget.projected(1000.0) == pytest.approx(spent + budget.search_estimate + 1000.0 * 2 * now)
    # the later task trains through a head of 2 more outputs, 10 FLOPs per sample each
    assert budget.projected(1000.0, 10.0, search=5.0) == pytest.approx(spent + 5.0 + 1000.0 * 2 * now + 20.0 * now)
    adopted = plan_budget(1e12, learner, second, adopt=True)
    assert adopted.samples_now == 0 and adopted.samples_later == now  # the adopted search's training is the task's
    assert adopted.search_estimate == 0.0  # no search samples: no search
    tight = plan_budget(budget.projected(1000.0, 10.0, search=5.0), learner, second, adopt=False)
    assert tight.exceeded(1000.0, 10.0, search=5.0) is None
    assert "train_budget" in tight.exceeded(1000.0, 11.0, search=5.0)
    first = plan_budget(1e12, budget_learner({}), make_tasks(1)[0], adopt=False)
    n0, later = learner.trainer.planned_samples(n), now
    assert first.later_tasks == 2 and first.projected(1000.0, 10.0) == pytest.approx(
        1000.0 * n0 + later * (2 * 1000.0 + 10.0 * 2 * (1 + 2)))  # heads of 2 and 4 more outputs


def test_under_a_tight_budget_the_search_is_estimated_at_the_fixed_point_of_what_its_candidates_may_cost():
    learner = budget_learner({})
    first, second, _ = make_tasks(3)
    learner.learn(first)
    learner.net = ops.add_classes(learner.net, 2).net
    spent = learner.records[0].fit.train_flops + learner.records[0].plan.search_flops
    now = learner.trainer.planned_samples(int(second.y_train.numel()), replaying=1)
    remaining = 2 * now  # this task's samples and the last task's
    total = spent + 3 * per_sample(learner) * (remaining + 300.0)  # affords 3x the current net, search included
    budget = plan_budget(total, learner, second, adopt=False, search_samples=300.0,
                         search_per_sample=10 * per_sample(learner))  # the space's cap, above the fixed point
    ceiling = 3 * per_sample(learner)  # (total - spent) / (R + N)
    assert budget.search_estimate == pytest.approx(300.0 * ceiling)
    # the costliest point that fits pays exactly the estimate's per-sample bound: none the search trains costs more
    assert budget.exceeded(ceiling * (1 - 1e-9)) is None and budget.exceeded(ceiling * (1 + 1e-9)) is not None
    capped = plan_budget(total, learner, second, adopt=False, search_samples=300.0,
                         search_per_sample=2 * per_sample(learner))
    assert capped.search_estimate == pytest.approx(300.0 * 2 * per_sample(learner))  # the cap below the fixed point
    last = plan_budget(total, learner, make_tasks(3)[2], adopt=True, search_samples=300.0,
                       search_per_sample=10 * per_sample(learner))
    assert last.search_estimate == pytest.approx(300.0 * 10 * per_sample(learner))  # nothing left to train: the cap


def test_the_search_samples_are_every_trial_trained_through_every_rung_and_every_sample_scored():
    from selfgrow.growth.stream_budget import search_samples
    from selfgrow.growth.validation_memory import memory_view

    learner = budget_learner({})
    first, second, _ = make_tasks(3)
    assert search_samples(learner, first, trials=3, data_fraction=1.0, epochs=2, rungs=2, val_memory_per_class=None) \
        == 3 * (learner.trainer.planned_samples(int(first.y_train.numel())) + 2 * len(first.y_val))
    learner.learn(first)
    subset = 12  # half of the task's 24 training samples (2 classes x 12)
    memory = len(memory_view(first, 2).y_val)
    assert memory == 4  # 2 per class of the first task
    expected = 4 * (2 * 3 * subset + 3 * (len(second.y_val) + memory) + memory)  # 3 epochs, replay fills every batch
    assert search_samples(learner, second, trials=4, data_fraction=0.5, epochs=3, rungs=3,
                          val_memory_per_class=2) == expected


@pytest.mark.parametrize("options", [{}, {"epochs": [1, 2], "halving_batch": 2, "data_fraction": 0.5,
                                          "val_memory_per_class": 3, "repeats": 2}], ids=["one-rung", "halving"])
def test_the_searchs_estimate_bounds_what_it_spends_and_what_its_candidates_cost(options):
    from selfgrow.growth.stream_budget import search_samples

    tasks = make_tasks(3)
    probe = budget_learner({})
    probe.net = ops.add_classes(probe.net, 2).net
    n = int(tasks[0].y_train.numel())
    trainer = probe.trainer
    grower = budget_learner({**SPACE, **options}).grower
    searching = search_samples(probe, tasks[0], grower.n_trials * grower.repeats, grower.data_fraction,
                               grower.settings.epochs[-1], len(grower.settings.epochs), grower.val_memory_per_class)
    remaining = trainer.planned_samples(n) + 2 * trainer.planned_samples(n, replaying=1)
    total = 3 * per_sample(probe) * (remaining + searching)  # the first search's candidates may cost 3x the start
    learner = budget_learner({**SPACE, **options, "train_budget": total})
    records = [learner.learn(t) for t in tasks]
    searched = [r.plan for r in records if r.plan.candidates]
    assert searched  # the budget leaves room for a search on the first task at least
    # on the first task the fixed point (3x the start, below the 4x widening's cost) bounds the search
    assert records[0].plan.reasons["stream_budget"]["search_estimate"] == pytest.approx(searching * 3 * per_sample(probe))
    for plan in searched:
        budget = plan.reasons["stream_budget"]
        assert 0 < plan.search_flops <= budget["search_estimate"]
        # every trained candidate fits what the budget leaves it after the search's estimate
        trained = [c for c in plan.candidates if c.get("spent_flops")]
        remaining = budget["samples_now"] + budget["later_tasks"] * budget["samples_later"]
        per_sample_bound = (budget["train_budget"] - budget["spent"] - budget["search_estimate"]) / remaining
        assert trained and all(c["train_flops_per_sample"] <= per_sample_bound for c in trained)
    assert sum(r.fit.train_flops + r.plan.search_flops for r in records) <= total


def test_a_learner_that_does_not_know_the_streams_length_is_refused_in_one_sentence():
    learner = learner_for("searched", {**SPACE, "train_budget": 1e12})
    with pytest.raises(SelfgrowError, match="train_budget needs the stream's length.*stream_tasks=N"):
        learner.learn(make_tasks(1)[0])


def test_the_capacity_rule_takes_the_costliest_candidate_not_distinguishable_from_the_best():
    points = [(0.80, 1.0), (0.84, 2.0), (0.83, 4.0), (0.70, 8.0)]
    errors = [0.02, 0.02, 0.02, 0.02]  # within 1 combined se (0.028) of 0.84: 0.83 and 0.84, not 0.80 nor 0.70
    assert select(points, "capacity", errors=errors) == 2
    assert select(points, "parsimony", errors=errors) == 1
    assert select(points, "capacity", errors=[0.0] * 4) == 1  # exact scores: the best alone is indistinguishable


def test_family_wise_the_margin_grows_with_the_candidates_compared_so_an_equal_costliest_one_is_not_lost():
    from statistics import NormalDist

    from selfgrow.growth import build_grower
    from selfgrow.search.pareto import familywise_z

    normal = NormalDist()
    assert familywise_z(1.0, 2) == 1.0  # one comparison: z itself
    for m, expected in ((3, 1.4096), (4, 1.6175), (5, 1.7546), (8, 2.0016)):
        margin = familywise_z(1.0, m)
        assert margin == pytest.approx(expected, abs=1e-4)
        # each of the m - 1 comparisons errs at (1 - Phi(z)) / (m - 1): together as often as one at z
        assert (m - 1) * (1 - normal.cdf(margin)) == pytest.approx(1 - normal.cdf(1.0))
    # four candidates, the costliest 0.04 behind the best (se 0.02 each: combined 0.0283, 1.41 of them): at z = 1
    # per comparison it is distinguishable, family-wise (1.62 standard errors for 4) it is not and is taken
    points = [(0.80, 1.0), (0.84, 2.0), (0.78, 4.0), (0.80, 8.0)]
    errors = [0.02] * 4
    assert select(points, "capacity", errors=errors) == 1
    assert select(points, "capacity", errors=errors, familywise=True) == 3
    assert select(points, "parsimony", errors=errors, familywise=True) == 0
    assert select(points[:2], "capacity", errors=errors[:2], familywise=True) == 1  # two: z itself, 0.80 is out
    grower = build_grower("searched", rule="capacity", familywise=True)
    assert "family-wise over the candidates compared" in grower._rule_text()


def affording_2x_not_4x(task) -> float:
    """A train_budget whose first task affords the fixture net widened 2x, not 4x (search estimate included): midway
    between the least budget that affords each, found by bisection on the grower's own plan."""
    from trainer_fixtures import make_net

    probe = budget_learner({**SPACE, "train_budget": 1e15})
    probe.net = ops.add_classes(probe.net, 2).net
    nets = {f: ops.add_classes(make_net("class", hidden=[int(8 * f)]), 2).net for f in (2.0, 4.0)}

    def least_affording(net) -> float:
        low, high = 0.0, 1e15
        for _ in range(200):
            probe.grower.train_budget = middle = (low + high) / 2
            fits = probe.grower._task_budget(probe, task).exceeded(
                training_flops_per_sample(net, None), training_flops_per_class(net)) is None
            low, high = (low, middle) if fits else (middle, high)
        return high

    return sum(least_affording(net) for net in nets.values()) / 2


def test_with_a_train_budget_the_default_rule_is_capacity_and_the_stream_never_spends_more():
    tasks = make_tasks(3)
    total = affording_2x_not_4x(tasks[0])
    learner = budget_learner({**SPACE, "train_budget": total})
    assert learner.grower.rule == "capacity"
    learner.net = ops.add_classes(learner.net, 2).net
    propose = learner.grower.problem(learner, tasks[0])[0]
    assert propose({"widen:hidden.0": 2.0}).over_budget is None
    assert "train_budget" in propose({"widen:hidden.0": 4.0}).over_budget  # never trained nor chosen
    learner = budget_learner({**SPACE, "train_budget": total})
    records = [learner.learn(t) for t in tasks]
    assert sum(r.fit.train_flops + r.plan.search_flops for r in records) <= total
    first = records[0].plan
    assert first.reasons["rule"].startswith("costliest candidate within 1 standard errors")
    plan = first.reasons["stream_budget"]
    planned = plan["samples_now"] + plan["later_tasks"] * plan["samples_later"]
    assert all(c["train_flops_per_sample"] * planned <= total for c in first.candidates if c["status"] == "complete")
    # the first task grew; what is left affords no search afterwards, yet the second task spends it on capacity
    second = records[1].plan
    assert first.ops and not second.candidates and second.search_flops == 0
    assert second.reasons["decision"].startswith("largest growth without a search: {'widen:hidden.0': 2.0}")
    assert second.reasons["stream_budget"]["search"] == 0.0
    assert records[2].plan.reasons["decision"].startswith("no growth: no room in the stream's budget")


def test_without_room_for_a_search_only_the_capacity_rule_grows_and_to_the_largest_growth_that_fits():
    tasks = make_tasks(3)
    total = affording_2x_not_4x(tasks[0])
    grown = budget_learner({**SPACE, "train_budget": total})
    assert grown.learn(tasks[0]).plan.ops  # the search widened the net 2x
    grown.net = ops.add_classes(grown.net, 2).net
    kept = copy.deepcopy(grown)
    kept.grower.rule = "parsimony"
    plan = grown.grower.plan(grown, tasks[1])
    budget = plan.reasons["stream_budget"]
    assert not plan.candidates and budget["search"] == 0.0
    point = {"widen:hidden.0": 2.0}
    assert plan.reasons["decision"].startswith(f"largest growth without a search: {point}")
    propose = grown.grower.problem(grown, tasks[1])[0]
    assert "train_budget" in (propose(point).over_budget or "")  # with the search's estimate it would not fit ...
    unsearched = plan_budget(total, grown, tasks[1], adopt=False)
    wider = {f: ops.widen(grown.net, "hidden.0", int(16 * (f - 1)), mode="zero").net for f in (2.0, 4.0)}
    costs = {f: (training_flops_per_sample(n, None), training_flops_per_class(n)) for f, n in wider.items()}
    assert unsearched.exceeded(*costs[2.0]) is None and unsearched.exceeded(*costs[4.0])  # ... without it, it does
    assert kept.grower.plan(kept, tasks[1]).ops == []  # parsimony: no search, no growth


def test_a_budget_below_training_the_starting_net_to_the_end_is_refused_in_one_sentence():
    learner = budget_learner({**SPACE, "train_budget": 1e3})
    with pytest.raises(SelfgrowError, match="train_budget 1.000e\\+03 is smaller than training the starting net.*"
                                            "give train_budget >= "):
        learner.learn(make_tasks(1)[0])


def test_a_run_under_a_train_budget_resumes_as_the_uninterrupted_one(tmp_path):
    from search_fixtures import same_net

    from selfgrow.train import load_latest, restore, save_checkpoint

    options = {**SPACE, "train_budget": 1e9}
    tasks = make_tasks(3)
    whole = budget_learner(options)
    records = [whole.learn(t) for t in tasks]
    half = budget_learner(options)
    for t in tasks[:2]:
        half.learn(t)
    save_checkpoint(tmp_path, 1, half, {})
    resumed = budget_learner(options)
    restore(resumed, load_latest(tmp_path)[1], tasks)
    last = resumed.learn(tasks[2])
    assert last.plan.reasons["stream_budget"] == records[2].plan.reasons["stream_budget"]
    assert same_net(resumed.net, whole.net)


def test_the_random_control_draws_only_points_whose_training_fits_the_streams_budget():
    from selfgrow.growth import build_grower

    start = budget_learner({})
    start.net = ops.add_classes(start.net, 2).net
    n = int(make_tasks(1)[0].y_train.numel())
    trainer = start.trainer
    total = 1.6 * per_sample(start) * (trainer.planned_samples(n) + 2 * trainer.planned_samples(n, replaying=1))
    unbounded, bounded = [], []
    for budget, out in ((None, unbounded), (total, bounded)):
        learner = budget_learner({})
        learner.grower = build_grower("random", width_factors=[1.0, 4.0], max_deepen=0, train_budget=budget, seed=3)
        records = [learner.learn(t) for t in make_tasks(3)]
        out.append(sum(r.fit.train_flops + r.plan.search_flops for r in records))
        out.append([r.plan.reasons["random"]["point"] for r in records])
    assert bounded[0] <= total < unbounded[0]  # the same seed's unbounded draws would not have fitted
    assert "train_budget" in records[0].plan.reasons["rule"]  # the bounded run's, said in its plan


def test_under_the_capacity_rule_the_largest_uniform_growth_that_fits_is_always_a_candidate():
    task = make_tasks(1)[0]
    for total, level in ((1e15, 4.0), (affording_2x_not_4x(task), 2.0)):
        learner = budget_learner({**SPACE, "train_budget": total})
        record = learner.learn(task)
        enqueued = record.plan.candidates[1]  # after the no-growth point
        assert enqueued["params"] == {"widen:hidden.0": level} and enqueued["status"] != "over_budget"


def test_no_search_runs_when_no_growth_step_fits_the_budgets():
    from selfgrow.nets.cost import count_params

    start = budget_learner({})
    size = count_params(ops.add_classes(start.net, 2).net)  # the first task's net: it fits, any growth does not
    learner = budget_learner({**SPACE, "train_budget": 1e15, "max_params": size})
    record = learner.learn(make_tasks(1)[0])
    assert record.plan.candidates == [] and record.plan.search_flops == 0
    assert record.plan.reasons["decision"].startswith("no growth: no growth step fits the budgets")


def test_the_largest_growth_is_maximal_no_single_parameter_can_grow_further_within_the_budget():
    task = make_tasks(1)[0]
    options = {**SPACE, "train_budget": 3 * affording_2x_not_4x(task)}  # two layers of 8: (4x, 2x) fits, (4x, 4x) not
    record = budget_learner(options, hidden=[8, 8]).learn(task)
    largest = record.plan.candidates[1]["params"]
    assert largest == {"widen:hidden.0": 4.0, "widen:hidden.1": 2.0}  # uniform 2x, then the first layer raised
    learner = budget_learner(options, hidden=[8, 8])
    learner.net = ops.add_classes(learner.net, 2).net
    propose = learner.grower.problem(learner, task)[0]
    assert propose(largest).over_budget is None
    for name in largest:
        above = [f for f in (1.0, 2.0, 4.0) if f > largest[name]]
        if above:
            assert propose({**largest, name: above[0]}).over_budget is not None
