"""Search engine: Pareto front and selection rules on hand-made points, successive halving, budget, warm start, storage."""

from __future__ import annotations

import json

import optuna
import pytest
from optuna.distributions import IntDistribution

from selfgrow.errors import SelfgrowError
from selfgrow.search import Proposal, SearchSettings, knee_point, make_storage, pareto_front, run_search, select

# (accuracy, cost): 1 is dominated by 2 (as accurate, cheaper); 4 by 3 (more accurate, as cheap)
POINTS = [(0.50, 10.0), (0.70, 30.0), (0.70, 20.0), (0.90, 40.0), (0.80, 40.0), (0.92, 80.0)]


def test_pareto_front_keeps_exactly_the_non_dominated_points_cheapest_first():
    assert pareto_front(POINTS) == [0, 2, 3, 5]
    assert pareto_front([(0.5, 1.0), (0.5, 1.0)]) == [0, 1]  # equal points dominate neither


def test_accuracy_rule_picks_the_most_accurate_and_tolerance_the_cheapest_near_it():
    assert select(POINTS) == 5
    assert select(POINTS, tolerance=0.05) == 3  # 0.90 >= 0.92 - 0.05 and costs 40 < 80
    assert select(POINTS, tolerance=0.25) == 2  # 0.70 >= 0.67; 0.50 is not
    assert select([(0.9, 5.0), (0.9, 3.0)]) == 1  # ties go to the cheaper point
    with pytest.raises(SelfgrowError, match="rule 'best'.*accuracy, knee"):
        select(POINTS, rule="best")
    with pytest.raises(SelfgrowError, match="No candidate"):
        select([])


def test_knee_is_the_front_point_farthest_above_the_chord():
    # front normalised (cost, acc): (0,0) (1/7,0.476) (3/7,0.952) (1,1); heights above the chord y = x: 0.236, 0.370
    assert knee_point(POINTS) == 3
    assert select(POINTS, rule="knee") == 3
    assert knee_point([(0.5, 1.0), (0.9, 2.0)]) is None  # two points: no knee
    assert select([(0.5, 1.0), (0.9, 2.0)], rule="knee") == 1  # falls back to accuracy
    assert knee_point([(0.0, 0.0), (0.2, 0.5), (1.0, 1.0)]) is None  # the middle point lies below the chord


class _Fake:
    """A candidate whose accuracy after e epochs is `quality * e / 3`; one 'FLOP' per epoch trained."""

    def __init__(self, quality: float, log: list) -> None:
        self.quality, self.log, self.done, self.spent_flops = quality, log, 0, 0.0

    def train_to(self, epochs: int) -> dict:
        self.log.append((self.quality, epochs))
        self.spent_flops += epochs - self.done
        self.done = epochs
        return {"accuracy": self.quality * epochs / 3}


class _Diverging(_Fake):
    """A candidate whose training blows up (non-finite losses) at its first rung."""

    def train_to(self, epochs: int) -> dict:
        super().train_to(epochs)
        return {"accuracy": 0.0, "diverged": True}


def _search(settings, enqueue=(), budget=None, name="s", high=7, diverging=()):
    log: list = []
    space = {"x": IntDistribution(0, high)}

    def propose(params):
        over = f"cost {params['x']} > {budget}" if budget is not None and params["x"] > budget else None
        return Proposal(key=str(params["x"]), cost=float(params["x"]), info={"x": params["x"]}, over_budget=over)

    def evaluate(params):
        return (_Diverging if params["x"] in diverging else _Fake)(params["x"] / 7, log)

    return run_search(settings, name, space, propose, evaluate, enqueue), log


def test_a_diverging_candidate_fails_and_is_never_chosen():
    settings = SearchSettings(n_trials=3, epochs=[1, 2], eta=2, halving_batch=3, seed=0)
    outcome, log = _search(settings, [{"x": 7}, {"x": 2}, {"x": 4}], diverging={7})
    status = {r["params"]["x"]: r["status"] for r in outcome.records}
    assert status == {7: "failed", 2: "pruned", 4: "complete"}
    assert (1.0, 2) not in log  # the failed candidate left the race after its first rung
    assert outcome.choose("accuracy")["params"] == {"x": 4}
    assert [t.state for t in outcome.study.trials][0] == optuna.trial.TrialState.FAIL


def test_successive_halving_trains_only_the_best_half_on_and_records_every_candidate():
    settings = SearchSettings(n_trials=4, epochs=[1, 3], eta=2, halving_batch=4, sampler="tpe", seed=0)
    enqueue = [{"x": 1}, {"x": 5}, {"x": 3}, {"x": 6}]
    outcome, log = _search(settings, enqueue)
    assert [r["params"]["x"] for r in outcome.records] == [1, 5, 3, 6]
    status = {r["params"]["x"]: r["status"] for r in outcome.records}
    assert status == {1: "pruned", 3: "pruned", 5: "complete", 6: "complete"}
    assert sorted(log) == sorted([(1 / 7, 1), (5 / 7, 1), (3 / 7, 1), (6 / 7, 1), (5 / 7, 3), (6 / 7, 3)])
    assert outcome.spent_flops == 4 * 1 + 2 * 2
    assert outcome.front() == [1, 3]  # (acc 5/7, cost 5) and (6/7, 6)
    assert outcome.choose("accuracy")["params"] == {"x": 6}
    states = [t.state for t in outcome.study.trials]
    assert states == [optuna.trial.TrialState.PRUNED, optuna.trial.TrialState.COMPLETE] * 2
    json.dumps(outcome.records)  # plain data


def test_over_budget_points_are_never_trained():
    settings = SearchSettings(n_trials=3, epochs=[2], halving_batch=2, seed=0)
    outcome, log = _search(settings, [{"x": 7}, {"x": 2}, {"x": 4}], budget=4)
    assert [r["status"] for r in outcome.records] == ["over_budget", "complete", "complete"]
    assert [r["batch"] for r in outcome.records] == [0, 0, 1]
    assert "cost 7 > 4" in outcome.records[0]["reason"] and outcome.records[0]["spent_flops"] == 0.0
    assert sorted(q for q, _ in log) == [2 / 7, 4 / 7]
    assert outcome.choose("accuracy")["params"] == {"x": 4}


def test_repeated_points_reuse_the_first_result_at_no_cost():
    settings = SearchSettings(n_trials=6, epochs=[1], halving_batch=2, sampler="nsga2", seed=0)
    outcome, log = _search(settings, high=1)
    assert len(log) == len({r["params"]["x"] for r in outcome.records}) <= 2
    first: dict[int, dict] = {}
    for record in outcome.records:
        x = record["params"]["x"]
        if x in first:
            assert record["same_as"] == first[x]["trial"] and record["spent_flops"] == 0.0
            assert record["accuracy"] == first[x]["accuracy"]
        first.setdefault(x, record)
    assert len(first) < len(outcome.records)


def test_warm_start_points_are_the_first_trials():
    settings = SearchSettings(n_trials=3, epochs=[1], halving_batch=1, seed=1)
    outcome, _ = _search(settings, [{"x": 6}, {"x": 0}])
    assert [t.params for t in outcome.study.trials[:2]] == [{"x": 6}, {"x": 0}]


def test_journal_storage_keeps_the_study_in_a_file_and_a_rerun_replaces_it(tmp_path):
    path = tmp_path / "studies" / "journal.log"
    settings = SearchSettings(n_trials=2, epochs=[1], halving_batch=2, storage=f"journal:{path}", seed=0)
    _search(settings, [{"x": 1}, {"x": 2}], name="task0")
    assert path.is_file()
    loaded = optuna.load_study(study_name="task0", storage=make_storage(f"journal:{path}"))
    assert [t.params["x"] for t in loaded.trials] == [1, 2]
    _search(settings, [{"x": 3}, {"x": 4}], name="task0")  # a resumed run starts the task's study afresh
    loaded = optuna.load_study(study_name="task0", storage=make_storage(f"journal:{path}"))
    assert [t.params["x"] for t in loaded.trials] == [3, 4]


@pytest.mark.parametrize("sampler", ["nsga2", "tpe", "gp"])
def test_every_sampler_runs_a_two_objective_search(sampler):
    settings = SearchSettings(n_trials=3, epochs=[1], halving_batch=1, sampler=sampler, n_startup_trials=1, seed=0)
    outcome, _ = _search(settings)
    assert len(outcome.finished()) == 3 and all(len(t.values) == 2 for t in outcome.study.trials)


def test_bad_settings_are_refused_in_one_sentence():
    with pytest.raises(SelfgrowError, match="epochs=\\[3, 1\\].*increasing"):
        SearchSettings(epochs=[3, 1])
    with pytest.raises(SelfgrowError, match="eta=1.*>= 2"):
        SearchSettings(eta=1)
    with pytest.raises(SelfgrowError, match="storage 'mongo'.*journal:PATH"):
        make_storage("mongo")
    with pytest.raises(SelfgrowError, match="search sampler 'nsga'.*nsga2"):
        run_search(SearchSettings(sampler="nsga"), "x", {}, None, None)
