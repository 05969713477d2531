"""The knowledge base's surrogate: what it learns from past searches, what it proposes and screens, and the engine's
screen."""

from __future__ import annotations

import itertools

import pytest
from optuna.distributions import CategoricalDistribution, IntDistribution, distribution_to_json
from search_fixtures import QUICK, digits_run, learn

from selfgrow.errors import SelfgrowError
from selfgrow.growth import build_grower
from selfgrow.search import Proposal, SearchSettings, run_search
from selfgrow.search.engine import UNTRAINED_FACTOR
from selfgrow.search.meta import FEATURES, Entry, KnowledgeBase, Surrogate
from selfgrow.search.meta.surrogate import MIN_OBSERVED

SPACE = {"widen:hidden.0": CategoricalDistribution([1.0, 1.5, 2.0, 3.0]), "deepen:hidden.0": IntDistribution(0, 2)}
BASELINE = {"widen:hidden.0": 1.0, "deepen:hidden.0": 0}
POINTS = [dict(zip(SPACE, values)) for values in itertools.product([1.0, 1.5, 2.0, 3.0], [0, 1, 2])]


def gain(point: dict) -> float:
    """The landscape of the made-up past searches: wider helps, deeper hurts."""
    return 0.05 * point["widen:hidden.0"] - 0.03 * point["deepen:hidden.0"]


def past(run: str, difficulty: float, landscape=gain, names=("widen:hidden.0", "deepen:hidden.0")) -> Entry:
    """A past search of every point, scored `difficulty` + the landscape (each search its own difficulty)."""
    space = {new: distribution_to_json(SPACE[old]) for new, old in zip(names, SPACE)}
    candidates = [{"params": {new: p[old] for new, old in zip(names, SPACE)}, "status": "complete",
                   "accuracy": difficulty + landscape(p), "cost": 1.0} for p in POINTS]
    features = {name: 1.0 for name in FEATURES} | {"probe_knn": difficulty}
    return Entry(run=run, task=0, grower="searched", features=features, space=space, candidates=candidates,
                 chosen=candidates[0]["params"], best=candidates[-1]["params"])


def fitted(landscape=gain, names=("widen:hidden.0", "deepen:hidden.0")) -> Surrogate:
    entries = [past(f"r{i}", difficulty, landscape, names) for i, difficulty in enumerate([0.3, 0.5, 0.7, 0.9])]
    features = {name: 1.0 for name in FEATURES} | {"probe_knn": 0.6}
    return Surrogate.fit(entries, features, SPACE, BASELINE, seed=0)


def test_the_surrogate_learns_the_ranking_of_past_searches_whatever_their_difficulty_and_proposes_the_best():
    surrogate = fitted()
    assert surrogate.describe() == {"searches": 4, "candidates": 48, "trees": 64}
    assert surrogate.propose(2) == [{"widen:hidden.0": 3.0, "deepen:hidden.0": 0},
                                    {"widen:hidden.0": 3.0, "deepen:hidden.0": 1}]  # gains 0.15, 0.12
    predicted, _ = surrogate.predict(POINTS)
    # centred per search: the prediction is the gain over the search's mean, not the task's difficulty
    mean_gain = sum(gain(p) for p in POINTS) / len(POINTS)
    assert predicted == pytest.approx([gain(p) - mean_gain for p in POINTS], abs=0.02)


def test_proposals_are_only_points_within_the_budget_and_the_screen_compares_with_the_best_of_them():
    surrogate = fitted()
    agreeing = observed({1.0: 0.50, 1.5: 0.52, 2.0: 0.55})
    wider = {"widen:hidden.0": 2.0, "deepen:hidden.0": 0}
    assert surrogate.hopeless(wider, agreeing) is not None  # gain 0.10, below the best point's 0.15
    affordable = surrogate.propose(1, feasible=lambda p: p["widen:hidden.0"] <= 1.5)
    assert affordable == [{"widen:hidden.0": 1.5, "deepen:hidden.0": 0}]
    assert surrogate.hopeless(wider, agreeing) is None  # above the best affordable proposal's 0.075
    assert surrogate.hopeless({"widen:hidden.0": 1.0, "deepen:hidden.0": 2}, agreeing) is not None
    assert surrogate.propose(2, feasible=lambda p: False) == []


def test_points_of_another_nets_space_are_transferred_by_kind_and_position():
    surrogate = fitted(names=("widen:stage.0", "deepen:stage.0"))
    assert surrogate.propose(1) == [{"widen:hidden.0": 3.0, "deepen:hidden.0": 0}]


def test_too_few_past_searches_give_no_surrogate():
    features = {name: 1.0 for name in FEATURES}
    assert Surrogate.fit([past("a", 0.5)], features, SPACE, BASELINE) is None
    single = past("b", 0.5)
    single.candidates = single.candidates[:1]
    assert Surrogate.fit([past("a", 0.5), single], features, SPACE, BASELINE) is None


def observed(scores: dict[float, float]) -> list[dict]:
    """Complete records of this search: widen factor -> measured score (no deepening)."""
    return [{"params": {"widen:hidden.0": w, "deepen:hidden.0": 0}, "status": "complete", "accuracy": a}
            for w, a in scores.items()]


def test_the_screen_acts_only_while_the_search_confirms_the_surrogate():
    surrogate = fitted()
    bad, good = {"widen:hidden.0": 1.0, "deepen:hidden.0": 2}, {"widen:hidden.0": 3.0, "deepen:hidden.0": 0}
    agreeing = observed({1.0: 0.50, 1.5: 0.52, 2.0: 0.55})
    contradicting = observed({1.0: 0.55, 1.5: 0.52, 2.0: 0.50})
    assert surrogate.agreement(agreeing) == pytest.approx(1.0) and surrogate.agreement(contradicting) == pytest.approx(-1.0)
    assert "screened by the surrogate" in surrogate.hopeless(bad, agreeing)
    assert surrogate.hopeless(good, agreeing) is None
    assert surrogate.hopeless(bad, contradicting) is None  # a misleading base stops screening
    assert surrogate.hopeless(bad, agreeing[:MIN_OBSERVED - 1]) is None  # too little evidence yet
    pruned = [{**r, "status": "pruned"} for r in agreeing]
    assert surrogate.agreement(pruned) is None  # only complete candidates are evidence


def toy_search(screen, n_trials: int = 4, enqueue=(), later=None):
    """A search of x in 0..9 scored x / 10, random sampler, batches of 2; returns the outcome and the x trained."""
    space = {"x": IntDistribution(0, 9)}
    trained = []

    class Toy:
        spent_flops = 1.0

        def __init__(self, params):
            self.params = params

        def train_to(self, epochs):
            trained.append(self.params["x"])
            return {"accuracy": self.params["x"] / 10}

    settings = SearchSettings(n_trials=n_trials, sampler="random", epochs=[1], halving_batch=2)
    outcome = run_search(settings, "screen", space, lambda p: Proposal(key=str(p["x"]), cost=float(p["x"])), Toy,
                         list(enqueue), screen=screen, later=later)
    return outcome, trained


def test_the_engine_trains_n_trials_points_that_pass_the_screen_and_records_the_screened_untrained():
    outcome, trained = toy_search(lambda p, records: "odd" if p["x"] % 2 else None, enqueue=[{"x": 3}])
    statuses = [r["status"] for r in outcome.records]
    assert len([s for s in statuses if s != "screened"]) == 4 and "screened" in statuses
    assert outcome.records[0]["params"] == {"x": 3} and outcome.records[0]["status"] == "complete"  # enqueued: never screened
    assert all(r["params"]["x"] % 2 == 0 for r in outcome.records[1:] if r["status"] != "screened")
    assert all(r["spent_flops"] == 0.0 and r["cost"] == r["params"]["x"] and r["reason"] == "odd"
               for r in outcome.records if r["status"] == "screened")
    assert [r["trial"] for r in outcome.records] == sorted(r["trial"] for r in outcome.records)
    assert set(trained) == {r["params"]["x"] for r in outcome.finished()}


def test_a_screen_that_refuses_everything_gives_way_after_its_cap():
    outcome, _ = toy_search(lambda p, records: "never", n_trials=2)
    statuses = [r["status"] for r in outcome.records]
    assert statuses.count("screened") == 2 * UNTRAINED_FACTOR and statuses.count("complete") == 2


def test_a_run_with_the_surrogate_tries_its_proposals_first_and_records_what_it_was_fitted_on(tmp_path):
    journal = f"journal:{tmp_path / 'meta.journal'}"
    options = {**QUICK, "n_trials": 4, "halving_batch": 2}
    for _ in range(2):  # two past runs: the surrogate needs two searches of this task
        learn("searched", {**options, "record": journal}, n_tasks=1)
    _, warm = learn("searched", {**options, "record": None,
                                 "warm_start": {"from": journal, "k": 1, "surrogate": 2, "max_distance": 10}}, n_tasks=1)
    reasons = warm[0].plan.reasons["knowledge"]["surrogate"]
    assert reasons["searches"] == 2 and reasons["candidates"] >= 4
    first = [c["params"] for c in warm[0].plan.candidates[:len(reasons["proposed"])]]
    assert first == reasons["proposed"] and len(reasons["proposed"]) == 2
    assert len([c for c in warm[0].plan.candidates if c["status"] != "screened"]) == 4
    stored = KnowledgeBase(journal).entries()
    assert len(stored) == 2  # consulting records nothing


def test_the_report_says_what_the_surrogate_proposed_and_screened(tmp_path):
    journal = str(tmp_path / "meta.journal")
    options = {**QUICK, "n_trials": 4, "halving_batch": 2}
    digits_run(tmp_path / "cold", "searched", {**options, "record": journal})
    run_dir, growth = digits_run(tmp_path / "warm", "searched", {
        **options, "record": None, "warm_start": {"from": journal, "k": 0, "surrogate": 1, "max_distance": 10}})
    surrogate = growth[0]["reasons"]["knowledge"]["surrogate"]
    assert surrogate["searches"] == 2 and growth[0]["reasons"]["knowledge"]["consulted"] == []  # k 0: no nearest points
    screened = sum(c["status"] == "screened" for c in growth[0]["candidates"])
    assert surrogate["screened"] == screened
    page = (run_dir / "report.html").read_text()
    assert f"A surrogate fitted on 2 past searches ({surrogate['candidates']} candidates)" in page
    assert f"screened {screened} of the sampler" in page


def test_a_bad_surrogate_option_is_refused_in_one_sentence():
    for bad in (-1, 1.5, True):
        with pytest.raises(SelfgrowError, match="'surrogate' \\(an integer >= 0"):
            build_grower("searched", warm_start={"from": "x", "surrogate": bad})
