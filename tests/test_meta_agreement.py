"""The warm start's `similar: scores`: past tasks chosen by how they rank the search's first scores, and the engine's
points enqueued after the first trials."""

from __future__ import annotations

import itertools

import pytest
from optuna.distributions import CategoricalDistribution, FloatDistribution, IntDistribution, distribution_to_json
from search_fixtures import QUICK, digits_run, learn
from test_meta_surrogate import toy_search

from selfgrow.errors import SelfgrowError
from selfgrow.growth import build_grower
from selfgrow.search.engine import Later
from selfgrow.search.meta import FEATURES, Entry, KnowledgeBase
from selfgrow.search.meta.agreement import (MIN_OBSERVED, agreements, consensus, first_scores, past_tasks,
                                            unit_encode)
from selfgrow.search.meta.link import KnowledgeLink, WarmStart

SPACE = {"widen:hidden.0": CategoricalDistribution([1.0, 2.0, 4.0, 8.0]), "deepen:hidden.0": IntDistribution(0, 2)}
BASELINE = {"widen:hidden.0": 1.0, "deepen:hidden.0": 0}
POINTS = [dict(zip(SPACE, values)) for values in itertools.product([1.0, 2.0, 4.0, 8.0], [0, 1, 2])]


def wider(point: dict) -> float:
    """A landscape where wider helps and deeper barely matters."""
    return 0.05 * SPACE["widen:hidden.0"].choices.index(point["widen:hidden.0"]) - 0.001 * point["deepen:hidden.0"]


def narrower(point: dict) -> float:
    return -wider(point)


def past(run: str, landscape, task_key: str, difficulty: float = 0.5) -> Entry:
    """A past search of every point scored `difficulty` + `landscape`; its best point is the landscape's best."""
    candidates = [{"params": p, "status": "complete", "accuracy": difficulty + landscape(p), "cost": 1.0}
                  for p in POINTS]
    best = max(candidates, key=lambda c: c["accuracy"])["params"]
    return Entry(run=run, task=1, grower="searched", features={n: 1.0 for n in FEATURES},
                 space={k: distribution_to_json(d) for k, d in SPACE.items()}, candidates=candidates,
                 chosen=dict(BASELINE), best=best, task_key=task_key)


def first_trials(landscape, points=POINTS[::3]) -> list[dict]:
    """This search's first trained records: each point's first rung scored by `landscape`."""
    return [{"trial": i, "params": p, "status": "complete", "accuracy": 0.3 + landscape(p),
             "rung_scores": [0.3 + landscape(p)]} for i, p in enumerate(points)]


def test_unit_encoding_places_choices_evenly_and_numbers_in_their_range():
    space = {**SPACE, "lr": FloatDistribution(1e-3, 1e-1, log=True), "phi": FloatDistribution(0.0, 2.0)}
    point = {"widen:hidden.0": 4.0, "deepen:hidden.0": 1, "lr": 1e-2, "phi": 0.5}
    assert unit_encode(point, space) == pytest.approx([2 / 3, 0.5, 0.5, 0.25])


def test_first_scores_are_the_distinct_trained_points_first_rung_scores():
    records = [{"params": {"x": 1}, "rung_scores": [0.4, 0.6]}, {"params": {"x": 1}, "rung_scores": [0.4]},
               {"params": {"x": 2}, "status": "over_budget"}, {"params": {"x": 3}, "rung_scores": [0.5]}]
    assert first_scores(records) == ([{"x": 1}, {"x": 3}], [0.4, 0.5])


def test_the_past_task_that_ranks_the_first_scores_alike_comes_first_and_a_contrary_one_is_below_zero():
    within = [(past("a", narrower, "task-a"), 0.2), (past("b1", wider, "task-b"), 0.9),
              (past("b2", wider, "task-b", difficulty=0.7), 1.0)]
    tasks = past_tasks(within, SPACE, BASELINE, seed=0)
    assert [(t.key, len(t.entries), t.distance) for t in tasks] == [("task-a", 1, 0.2), ("task-b", 2, 0.9)]
    rated = agreements(tasks, first_trials(wider), SPACE, BASELINE)
    assert [t.key for t, _ in rated] == ["task-b", "task-a"]  # the farther by meta-features, but it agrees
    assert rated[0][1] > 0.6 and rated[1][1] < -0.6
    assert agreements(tasks, first_trials(wider)[:MIN_OBSERVED - 1], SPACE, BASELINE) is None


def test_consulting_by_scores_proposes_the_agreeing_tasks_points_after_the_first_trials_and_nothing_from_contrary_ones(
        tmp_path):
    journal = str(tmp_path / "base.journal")
    for entry in (past("a", narrower, "task-a"), past("b", wider, "task-b")):
        KnowledgeBase(journal).record(entry)
    link = KnowledgeLink("searched", None, WarmStart(source=journal, k=2, similar="scores", after=4), 0)
    offered = link.consult(SPACE, {n: 1.0 for n in FEATURES}, BASELINE)
    assert offered.nearest == [] and offered.later.after == 4 and offered.reasons["consulted"] == []
    proposed = offered.later.points(first_trials(wider))
    b = KnowledgeBase(journal).entry("b/task1")
    assert proposed == [b.chosen, b.best]  # task-a ranks the first trials the other way: not consulted
    knowledge = offered.reasons
    assert [c["entry"] for c in knowledge["consulted"]] == [b.key] and knowledge["consulted"][0]["tau"] > 0
    assert set(knowledge["agreement"]) == {"task-a", "task-b"} and knowledge["agreement"]["task-a"] < 0
    # a second call (a bench reusing the consultation) replaces what the first wrote
    assert offered.later.points(first_trials(narrower)) == [KnowledgeBase(journal).entry("a/task1").chosen,
                                                            KnowledgeBase(journal).entry("a/task1").best]
    assert [c["entry"] for c in knowledge["consulted"]] == ["selfgrow-meta-v1/a/task1"]
    # too few distinct points yet (the first trials repeated one): asked again after the next batch
    assert offered.later.points(first_trials(wider)[:2]) is None and "fewer than 3" in knowledge["agreement"]


def test_the_consensus_is_what_scored_best_over_the_past_tasks_within_the_budget_never_no_growth():
    within = [(past("a1", wider, "task-a"), 0.1), (past("b", wider, "task-b"), 0.5),
              (past("c", narrower, "task-c"), 0.9)]
    tasks = past_tasks(within, SPACE, BASELINE, seed=0)
    # two past tasks of three reward width: the widest points first, the shallower of each width before the deeper
    assert consensus(tasks, SPACE, BASELINE, 2, seed=0) == [{"widen:hidden.0": 8.0, "deepen:hidden.0": 0},
                                                            {"widen:hidden.0": 8.0, "deepen:hidden.0": 1}]
    affordable = consensus(tasks, SPACE, BASELINE, 1, seed=0, feasible=lambda p: p["widen:hidden.0"] <= 2.0)
    assert affordable == [{"widen:hidden.0": 2.0, "deepen:hidden.0": 0}]
    only_narrow = past_tasks([(past("c", narrower, "task-c"), 0.9)], SPACE, BASELINE, seed=0)
    assert BASELINE not in consensus(only_narrow, SPACE, BASELINE, 3, seed=0)  # no growth is enqueued anyway
    assert consensus([], SPACE, BASELINE, 2, seed=0) == []


def test_a_run_with_a_consensus_tries_its_points_right_after_no_growth_and_says_what_it_was_drawn_from(tmp_path):
    journal = str(tmp_path / "meta.journal")
    options = {**QUICK, "n_trials": 4, "halving_batch": 4}
    digits_run(tmp_path / "cold", "searched", {**options, "record": journal})
    run_dir, growth = digits_run(tmp_path / "warm", "searched", {
        **options, "record": None, "warm_start": {"from": journal, "k": 0, "max_distance": 10, "consensus": 2}})
    knowledge = growth[0]["reasons"]["knowledge"]
    assert knowledge["consensus"]["tasks"] == 2 and len(knowledge["consensus"]["proposed"]) == 2
    tried = [c["params"] for c in growth[0]["candidates"]]
    assert tried[1:3] == knowledge["consensus"]["proposed"]  # no growth first, then the consensus
    assert "The consensus of 2 past tasks" in (run_dir / "report.html").read_text()


def test_the_engine_enqueues_the_later_points_once_after_the_first_trials_and_never_screens_them():
    seen_by_later = []

    def later_points(records):
        seen_by_later.append(sorted(r["trial"] for r in records))
        return [{"x": 9}, {"x": 8}]

    outcome, trained = toy_search(lambda p, records: "odd" if p["x"] % 2 else None, n_trials=6, enqueue=[{"x": 0}],
                                  later=Later(2, later_points))
    counted = [r for r in outcome.records if r["status"] != "screened"]
    assert len(seen_by_later) == 1  # asked once, with every record of the first batch (screened ones too)
    assert seen_by_later[0] == [r["trial"] for r in outcome.records if r["trial"] <= counted[1]["trial"]]
    assert [r["params"]["x"] for r in counted][0] == 0 and [r["params"]["x"] for r in counted][2:4] == [9, 8]
    assert all(r["params"]["x"] % 2 == 0 for r in counted[:2] + counted[4:])  # 9 is odd but not screened


def test_a_run_consulting_by_scores_tries_the_agreeing_points_right_after_its_first_trials(tmp_path):
    journal = str(tmp_path / "meta.journal")
    options = {**QUICK, "n_trials": 6, "halving_batch": 3}
    digits_run(tmp_path / "cold", "searched", {**options, "record": journal})
    run_dir, growth = digits_run(tmp_path / "warm", "searched", {
        **options, "record": None,
        "warm_start": {"from": journal, "k": 2, "max_distance": 10, "similar": "scores", "after": 3}})
    for plan in growth:
        knowledge = plan["reasons"]["knowledge"]
        assert knowledge["similar"] == "scores" and knowledge["after"] == 3
        counted = [c["params"] for c in plan["candidates"] if c["status"] not in ("screened", "over_budget")]
        proposed = [p for c in knowledge["consulted"] for p in c["proposed"]]
        assert all(p in counted for p in proposed)
    # before task 1 the first batch is task 0's chosen and best points and no growth; the agreeing past tasks'
    # points come next
    knowledge = growth[1]["reasons"]["knowledge"]
    assert knowledge["consulted"] and all(c["tau"] > 0 for c in knowledge["consulted"])
    counted = [c["params"] for c in growth[1]["candidates"] if c["status"] not in ("screened", "over_budget")]
    fresh = []
    for point in (p for c in knowledge["consulted"] for p in c["proposed"]):
        if point not in counted[:3] and point not in fresh:
            fresh.append(point)
    assert counted[3:3 + len(fresh)] == fresh
    page = (run_dir / "report.html").read_text()
    assert "tau with the first trials" in page and "rank this search's first 3 trials" in page


def test_the_report_says_why_no_past_task_was_consulted_by_scores():
    from selfgrow.report.html import _knowledge_table

    knowledge = {"base": "journal:b", "k": 3, "max_distance": 1.5, "consulted": [], "searches": 2, "nearest": 0.4,
                 "similar": "scores", "after": 4, "agreement": {"task-a": -0.33, "task-b": 0.0}}
    said = "no past task of 2 ranks the first 4 trials as they scored (Kendall tau &gt; 0)"
    assert said in _knowledge_table(knowledge)
    knowledge["agreement"] = "fewer than 3 distinct trained points: no past task compared"
    assert "fewer than 3 distinct trained points" in _knowledge_table(knowledge)
    del knowledge["agreement"]  # a search of no more trials than `after`: never compared
    assert "the search ended before past tasks were compared on its first 4 trials" in _knowledge_table(knowledge)
    far = {**knowledge, "nearest": 2.0}
    assert "within max_distance 1.5 (the nearest at 2.00)" in _knowledge_table(far)


def test_similar_scores_is_refused_with_a_prior_with_a_bad_value_and_with_search_workers():
    with pytest.raises(SelfgrowError, match="'similar' \\('features' or 'scores'"):
        build_grower("searched", warm_start={"from": "x", "similar": "meta"})
    with pytest.raises(SelfgrowError, match="with 'similar: features' only"):
        build_grower("searched", warm_start={"from": "x", "similar": "scores", "prior": True})
    with pytest.raises(SelfgrowError, match="'after' \\(an integer >= 1"):
        build_grower("searched", warm_start={"from": "x", "similar": "scores", "after": 0})
    with pytest.raises(SelfgrowError, match="'consensus' \\(an integer >= 0"):
        build_grower("searched", warm_start={"from": "x", "consensus": -1})
    learner, _ = learn("searched", {**QUICK, "record": None}, n_tasks=1)
    learner.search_backend = object()
    with pytest.raises(SelfgrowError, match="needs the search in this process"):
        learner.grower._search(learner, None, {}, [], None, later=Later(1, lambda records: []))
