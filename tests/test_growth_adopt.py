"""adopt_winner: the chosen candidate's training becomes the task's (net, optimizer state, strategies), not repeated."""

from __future__ import annotations

import pytest
import torch
from search_fixtures import learn, learner_for, resumed_pair, same_net
from trainer_fixtures import make_tasks

from selfgrow.errors import SelfgrowError
from selfgrow.experiment import task_cost
from selfgrow.growth import build_grower

OPTIONS = {"n_trials": 3, "epochs": 2, "halving_batch": 3, "width_factors": [1.0, 2.0], "max_deepen": 0,
           "initial_points": [{"widen:hidden.0": 2.0}]}


def _learn_recording_plans(options: dict, n_tasks: int = 1) -> tuple:
    """A fixture learner of `n_tasks` tasks whose plans (with their weights and adopted trainings) are kept."""
    torch.manual_seed(0)
    learner = learner_for("searched", options)
    plans: list = []
    plan = learner.grower.plan
    learner.grower.plan = lambda lrn, tsk: plans.append(plan(lrn, tsk)) or plans[-1]
    records = [learner.learn(task) for task in make_tasks(n_tasks)]
    return learner, plans, records


def test_the_adopted_net_is_the_winners_training_which_keep_winner_trains_on_from():
    kept, kept_plans, _ = _learn_recording_plans({**OPTIONS, "keep_winner": True})
    adopted, adopted_plans, records = _learn_recording_plans({**OPTIONS, "adopt_winner": True})
    assert kept_plans[0].candidates == adopted_plans[0].candidates  # the same search, the same choice
    weights = kept_plans[0].weights
    final = adopted.net.state_dict()
    assert final.keys() == weights.keys() and all(torch.equal(final[k], weights[k]) for k in final)
    trained_on = kept.net.state_dict()
    assert any(not torch.equal(trained_on[k], weights[k]) for k in weights)  # keep_winner trains the task again
    plan = adopted_plans[0]
    assert adopted.net is plan.adopted.net
    assert all(mine is theirs for mine, theirs in zip(adopted.retention, plan.adopted.retention))
    replay = adopted.retention[0]
    assert sorted(replay.memory["y_global"].unique().tolist()) == [0, 1]  # after_task ran on the adopted strategy
    assert "adopted, not trained again" in plan.reasons["decision"]
    assert records[0].fit.epochs == 2 and records[0].fit.train_flops == 0.0
    assert records[0].plan.adopted is None  # the record keeps plain data only


def test_an_adopted_task_costs_its_search_only_less_than_keep_winner():
    costs = {}
    for flag in ("keep_winner", "adopt_winner"):
        learner, records = learn("searched", {**OPTIONS, flag: True}, n_tasks=2)
        cost = [task_cost(learner, r.task, r)["train_flops"] for r in records]
        assert all(c > 0 for c in cost)
        costs[flag] = sum(cost)
        if flag == "adopt_winner":
            assert cost == [r.plan.search_flops for r in records]
    assert costs["adopt_winner"] < costs["keep_winner"]


def test_resume_after_adopted_tasks_equals_the_uninterrupted_run(tmp_path):
    options = {**OPTIONS, "adopt_winner": True}
    learner, resumed, tasks = resumed_pair(tmp_path, "searched", options)
    state = torch.get_rng_state()
    learner.learn(tasks[2])
    torch.set_rng_state(state)
    resumed.learn(tasks[2])
    assert same_net(learner.net, resumed.net)


@pytest.mark.parametrize("options, match", [
    ({"adopt_winner": True, "keep_winner": True}, "at most one"),
    ({"adopt_winner": True, "data_fraction": 0.5}, "data_fraction 1"),
])
def test_adopt_winner_refuses_candidates_that_do_not_train_as_the_task(options, match):
    with pytest.raises(SelfgrowError, match=match):
        build_grower("searched", **options)


def test_adopt_winner_refuses_a_last_rung_unlike_the_trainer_and_search_workers():
    learner = learner_for("searched", {**OPTIONS, "epochs": [1, 3], "adopt_winner": True})
    with pytest.raises(SelfgrowError, match="trainer's 2 epochs, not 3"):
        learner.learn(make_tasks(1)[0])
    learner = learner_for("searched", {**OPTIONS, "adopt_winner": True})
    learner.search_backend = object()
    with pytest.raises(SelfgrowError, match="in this process"):
        learner.learn(make_tasks(1)[0])


def test_an_adopted_training_of_two_rungs_is_one_fit_of_their_epochs():
    learner, plans, records = _learn_recording_plans({**OPTIONS, "epochs": [1, 2], "adopt_winner": True})
    task = make_tasks(1)[0]
    fit = records[0].fit
    assert fit.epochs == 2 and len(fit.loss_curve) == 2
    assert fit.train_samples == 2 * len(task.y_train)  # both rungs' samples (replay is empty on task 0)
    assert fit.train_flops == 0.0 and records[0].plan.search_flops > 0
