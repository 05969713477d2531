"""Search engine: Pareto front and selection rules on hand-made points, successive halving, budget, warm start, storage."""

from __future__ import annotations

import json
import sys

import optuna
import pytest
from optuna.distributions import IntDistribution

from selfgrow.errors import SelfgrowError
from selfgrow.search import (
    Proposal,
    SearchSettings,
    candidate_objectives,
    knee_point,
    make_storage,
    pareto_front,
    proportion_variance,
    run_search,
    select,
)
from selfgrow.search.engine import UNTRAINED_FACTOR

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
    with pytest.raises(SelfgrowError, match="rule 'best'.*parsimony, accuracy, mnas, knee"):
        select(POINTS, rule="best")
    with pytest.raises(SelfgrowError, match="No candidate"):
        select([])


def test_knee_is_the_front_point_farthest_above_the_chord():
    # front normalised (cost, acc): (0,0) (1/7,0.476) (3/7,0.952) (1,1); heights above the chord y = x: 0.236, 0.370
    assert knee_point(POINTS) == 3
    assert select(POINTS, rule="knee") == 3
    assert knee_point([(0.5, 1.0), (0.9, 2.0)]) is None  # two points: no knee
    assert select([(0.5, 1.0), (0.9, 2.0)], rule="knee") == 1  # falls back to parsimony (no errors: accuracy)
    assert knee_point([(0.0, 0.0), (0.2, 0.5), (1.0, 1.0)]) is None  # the middle point lies below the chord


def test_parsimony_takes_the_cheapest_point_within_the_combined_standard_errors_of_the_best():
    errors = [0.01, 0.02, 0.02, 0.01, 0.03, 0.01]
    # best 5 (0.92, se 0.01); 3 (0.90, se 0.01): 0.02 <= sqrt(2) * 0.01 = 0.0141? no -> only 5 is within at z = 1
    assert select(POINTS, "parsimony", errors=errors) == 5
    # z = 2: 0.90 >= 0.92 - 0.0283 -> 3 (cost 40) is cheapest; 0.80 (se 0.03): 0.80 >= 0.92 - 2 * 0.0316? no
    assert select(POINTS, "parsimony", errors=errors, z=2) == 3
    # z = 5: 1 and 2 (0.70, se 0.02): 0.70 >= 0.92 - 5 * 0.0224 = 0.808? no; 4 (0.80): 0.80 >= 0.92 - 5 * 0.0316 = 0.762 yes
    assert select(POINTS, "parsimony", errors=errors, z=5) == 3  # 3 and 4 both cost 40: the more accurate
    assert select(POINTS, "parsimony") == select(POINTS, "accuracy")  # no errors: the accuracy rule
    assert select(POINTS, "parsimony", tolerance=0.05) == 3
    with pytest.raises(SelfgrowError, match="z=-1.*>= 0"):
        select(POINTS, "parsimony", errors=errors, z=-1)
    with pytest.raises(SelfgrowError, match="2 standard errors.*6 points"):
        select(POINTS, "parsimony", errors=[0.1, 0.1])


def test_mnas_rule_trades_score_against_cost_relative_to_the_reference():
    # value = acc * (cost / 10) ** -0.07: 0.50, 0.647, 0.669, 0.818, 0.727, 0.793
    assert select(POINTS, "mnas", reference=10.0) == 3
    # doubling the cost must buy 5% (2 ** 0.07 = 1.0497): 0.80 at cost 1 beats 0.839 at cost 2, not 0.841
    assert select([(0.80, 1.0), (0.839, 2.0)], "mnas", reference=1.0) == 0
    assert select([(0.80, 1.0), (0.841, 2.0)], "mnas", reference=1.0) == 1


def test_candidate_objectives_from_hand_computed_accuracies():
    after = {"0": 0.8, "1": 0.6, "2": 0.9}
    before = {"0": 0.9, "1": 0.7}
    sizes = {"0": 100, "1": 100, "2": 200}
    got = candidate_objectives(after, sizes, "2", before)
    assert got["accuracy"] == pytest.approx((0.8 + 0.6 + 0.9) / 3)
    assert got["plasticity"] == 0.9 and got["stability"] == pytest.approx(-0.1)
    # Agresti-Coull: p = (0.8 * 100 + 2) / 104, var = p (1 - p) / 104; the mean of three: sum / 9
    expected = sum(((a * n + 2) / (n + 4)) * (1 - (a * n + 2) / (n + 4)) / (n + 4) for a, n in [(0.8, 100), (0.6, 100), (0.9, 200)]) / 9
    assert got["se"] == pytest.approx(expected ** 0.5)
    assert proportion_variance(1.0, 100) > 0  # never a zero error
    assert candidate_objectives({"0": 0.5}, {"0": 10}, "0")["stability"] == 0.0  # no earlier task


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


def _search(settings, enqueue=(), budget=None, name="s", high=7, diverging=(), protected=()):
    log: list = []
    space = {"x": IntDistribution(0, high)}

    def propose(params):
        over = f"cost {params['x']} > {budget}" if budget is not None and params["x"] > budget else None
        return Proposal(key=str(params["x"]), cost=float(params["x"]), info={"x": params["x"]}, over_budget=over)

    def evaluate(params):
        return (_Diverging if params["x"] in diverging else _Fake)(params["x"] / 7, log)

    return run_search(settings, name, space, propose, evaluate, enqueue, protected=protected), log


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


def test_a_protected_point_is_never_pruned_by_the_halving():
    settings = SearchSettings(n_trials=4, epochs=[1, 3], eta=2, halving_batch=4, sampler="tpe", seed=0)
    enqueue = [{"x": 1}, {"x": 5}, {"x": 3}, {"x": 6}]
    outcome, log = _search(settings, enqueue, protected=[{"x": 1}])  # the weakest at the first rung
    status = {r["params"]["x"]: r["status"] for r in outcome.records}
    assert status == {1: "complete", 3: "pruned", 5: "complete", 6: "complete"}  # the others halve as before
    assert (1 / 7, 3) in log and outcome.spent_flops == 4 * 1 + 3 * 2


def test_rungs_are_shared_across_batches_so_a_later_batch_is_pruned_against_earlier_candidates():
    settings = SearchSettings(n_trials=4, epochs=[1, 3], eta=2, halving_batch=2, seed=0)
    # batch 0: 6 and 2 -> 6 goes on (the best half of two); batch 1: 5 and 1 against the rung pool {6, 2, 5, 1}:
    # the best ceil(4 / 2) = 2 are 6 and 5, so 5 goes on and 1 is pruned
    outcome, log = _search(settings, [{"x": 6}, {"x": 2}, {"x": 5}, {"x": 1}])
    status = {r["params"]["x"]: r["status"] for r in outcome.records}
    assert status == {6: "complete", 2: "pruned", 5: "complete", 1: "pruned"}
    # a later batch whose candidates are all below the earlier rung's cut trains none of them on
    outcome, log = _search(settings, [{"x": 6}, {"x": 5}, {"x": 2}, {"x": 1}])
    status = {r["params"]["x"]: r["status"] for r in outcome.records}
    assert status == {6: "complete", 5: "pruned", 2: "pruned", 1: "pruned"}
    assert (2 / 7, 3) not in log and (1 / 7, 3) not in log
    assert all(len(r["rung_scores"]) == (2 if r["status"] == "complete" else 1) for r in outcome.records)


def test_population_size_is_the_nsga2_generation_independent_of_the_halving_batch():
    settings = SearchSettings(n_trials=2, epochs=[1], halving_batch=1, sampler="nsga2", population_size=6, seed=0)
    outcome, _ = _search(settings)
    assert outcome.study.sampler._population_size == 6
    with pytest.raises(SelfgrowError, match="population_size=1.*>= 2"):
        SearchSettings(population_size=1)


def test_over_budget_points_are_never_trained_nor_counted_against_n_trials():
    settings = SearchSettings(n_trials=3, epochs=[2], halving_batch=2, seed=0)
    outcome, log = _search(settings, [{"x": 7}, {"x": 2}, {"x": 4}], budget=4)
    first = outcome.records[0]
    assert first["status"] == "over_budget" and first["counted"] is False and first["batch"] is None
    assert "cost 7 > 4" in first["reason"] and first["spent_flops"] == 0.0
    trained = [r for r in outcome.records if r["status"] != "over_budget"]
    assert len(trained) == 3 and [r["params"]["x"] for r in trained[:2]] == [2, 4]  # three trained, as asked
    assert [r["batch"] for r in trained] == [0, 0, 1]
    assert all(r["params"]["x"] > 4 and not r["counted"] for r in outcome.records if r["status"] == "over_budget")
    assert sorted(q for q, _ in log) == sorted(r["params"]["x"] / 7 for r in trained if "same_as" not in r)
    assert outcome.study.trials[0].state == optuna.trial.TrialState.PRUNED  # the sampler learns it is no good


def test_over_budget_points_count_once_the_search_has_turned_away_its_share():
    settings = SearchSettings(n_trials=2, epochs=[1], halving_batch=2, sampler="random", seed=0)
    outcome, log = _search(settings, budget=-1)  # no point fits
    assert log == [] and all(r["status"] == "over_budget" for r in outcome.records)
    assert sum(not r.get("counted", True) for r in outcome.records) == 2 * UNTRAINED_FACTOR  # turned away uncounted ...
    assert len(outcome.records) == 2 * UNTRAINED_FACTOR + 2  # ... then counted: the search ends


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


@pytest.mark.parametrize("sampler", ["nsga2", "tpe", "gp", "random", "cost-gp"])
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


def test_the_search_shows_trials_rungs_and_the_remaining_time_on_a_terminal(monkeypatch, capsys):
    monkeypatch.setattr(sys.stderr, "isatty", lambda: True)
    _search(SearchSettings(n_trials=4, epochs=[1, 3], halving_batch=2, sampler="random", eta=2), name="shown")
    err = capsys.readouterr().err
    assert "search shown: 0/4 trials [00:00<?]" in err  # trials done of the total, elapsed<remaining
    assert "rung 1/2: 2 candidate(s) to 1 epochs" in err and "rung 2/2" in err  # the rung being trained


def test_a_proposes_sizing_turns_points_over_the_budget_away_and_only_the_trained_ones_grow_for_real():
    class Sized:
        """The real growth (`__call__`) refuses points over the budget: only `sizing` may look at them."""

        def __call__(self, params):
            assert params["x"] <= 3, "a point over the budget was grown for real"
            return Proposal(key=str(params["x"]), cost=float(params["x"]))

        def sizing(self, params):
            over = f"cost {params['x']} > 3" if params["x"] > 3 else None
            return Proposal(key=str(params["x"]), cost=float(params["x"]), over_budget=over)

    settings = SearchSettings(n_trials=4, epochs=[1], halving_batch=2, sampler="random", seed=0)
    outcome = run_search(settings, "sized", {"x": IntDistribution(0, 7)}, Sized(), lambda p: _Fake(p["x"] / 7, []))
    assert any(r["status"] == "over_budget" for r in outcome.records)
    assert sum(r["status"] == "complete" for r in outcome.records) == 4
