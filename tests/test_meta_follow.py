"""The warm start's `by: outcome` (each past task proposes through the search whose run ended best) and `follow`
(the search takes the base's first point unless another candidate scores distinguishably above it)."""

from __future__ import annotations

import math

import pytest
from search_fixtures import digits_run
from test_meta_agreement import BASELINE, POINTS, SPACE, wider
from test_meta_pooled import HERE, base, search

from selfgrow.errors import SelfgrowError
from selfgrow.growth import build_grower
from selfgrow.search.meta import KnowledgeBase
from selfgrow.search.meta.link import KnowledgeLink, WarmStart
from selfgrow.search.meta.transfer import one_per_task, run_outcome


def ended(entry, latest: float | None, task: int = 4):
    """`entry` with its run's outcome after task `task` (None: no outcome yet)."""
    entry.outcome = {} if latest is None else {"latest": latest, "latest_task": task}
    return entry


def test_by_outcome_keeps_each_tasks_search_whose_run_ended_best():
    near, far, farther = (ended(search(run, wider, "task-a"), latest) for run, latest in
                          (("near", 0.60), ("far", 0.70), ("farther", 0.70)))
    other = ended(search("other", wider, "task-b"), 0.10)
    ranked = [(near, 0.1), (other, 0.2), (far, 0.3), (farther, 0.4)]
    assert one_per_task(ranked) == [(near, 0.1), (other, 0.2)]  # the nearest of each task, tasks by nearest
    assert one_per_task(ranked, "outcome") == [(far, 0.3), (other, 0.2)]  # the best end; the nearer of two equals
    # a run killed early ranks below every run that went further, whatever its score; no outcome ranks last
    killed = ended(search("killed", wider, "task-a"), 0.99, task=1)
    unknown = ended(search("new", wider, "task-a"), None)
    assert run_outcome(killed) < run_outcome(near) and run_outcome(unknown) == (-1, -math.inf)
    assert one_per_task([(unknown, 0.0), (killed, 0.1), (near, 0.2)], "outcome") == [(near, 0.2)]


def test_consult_by_outcome_proposes_the_points_of_the_run_that_ended_best(tmp_path):
    # the nearer run chose no growth, the farther one (which ended better) chose the widest point
    worse = ended(search("worse", wider, "task-a", probe=1.0), 0.6)
    better = ended(search("better", wider, "task-a", probe=0.8), 0.7)
    better.chosen = dict(POINTS[-1])
    journal = str(tmp_path / "base.journal")
    for entry in (worse, better):
        KnowledgeBase(journal).record(entry)
        KnowledgeBase(journal).set_outcome(entry.key, entry.outcome)

    def consult(by: str):
        link = KnowledgeLink("searched", None, WarmStart(source=journal, k=1, max_distance=10.0, by=by), 0)
        return link.consult(SPACE, HERE, BASELINE, task_key="task-a")

    nearest, best_ended = consult("distance"), consult("outcome")
    assert [row["entry"] for row in nearest.reasons["consulted"]] == [worse.key]
    assert [row["entry"] for row in best_ended.reasons["consulted"]] == [better.key]
    assert best_ended.nearest[0] == POINTS[-1] and best_ended.reasons["by"] == "outcome"
    assert best_ended.reasons["consulted"][0]["outcome"]["latest"] == 0.7


def test_by_and_follow_are_parsed_and_refused_in_one_sentence():
    parsed = WarmStart.parse({"from": "x", "by": "outcome", "follow": True})
    assert (parsed.by, parsed.follow) == ("outcome", True)
    assert (WarmStart().by, WarmStart().follow) == ("distance", False)
    for bad in ({"by": "score"}, {"follow": "yes"}, {"by": "outcome", "propose": "pooled"},
                {"follow": True, "similar": "scores"}, {"by": "outcome", "similar": "scores"}):
        with pytest.raises(SelfgrowError, match="'by' \\('distance' or 'outcome'") as error:
            WarmStart.parse({"from": "x", **bad})
        assert str(error.value).count(". ") == 0  # one sentence


def record(trial: int, accuracy: float, se: float, cost: float, point: dict) -> dict:
    return {"trial": trial, "accuracy": accuracy, "se": se, "cost": cost, "params": point}


def test_follow_takes_the_bases_point_unless_another_scores_more_than_z_standard_errors_above_it():
    grower = build_grower("searched", warm_start={"from": "x", "follow": True})
    small, point = {"w": 1.0}, {"w": 4.0}
    choice = record(0, 0.70, 0.02, 1.0, small)  # what parsimony takes: the cheapest within 1 se of the best
    # the base's point scores 0.72 +- 0.02: 0.02 below the best, less than the combined standard error (0.028)
    among = [choice, record(1, 0.72, 0.02, 4.0, point), record(2, 0.74, 0.02, 2.0, {"w": 2.0})]
    reasons = {"knowledge": {}}
    assert grower._followed(choice, point, among, reasons) is among[1]
    assert reasons["knowledge"]["follow"] == {"point": point, "trial": 1, "followed": True}
    # 0.08 below the best, more than one combined standard error: the rule's choice stands
    among[1] = record(1, 0.66, 0.02, 4.0, point)
    assert grower._followed(choice, point, among, reasons) is choice and not reasons["knowledge"]["follow"]["followed"]
    # at z = 5 the same gap is noise: followed
    wide = build_grower("searched", z=5.0, warm_start={"from": "x", "follow": True})
    assert wide._followed(choice, point, among, reasons) is among[1]
    # the point never finished among those the rule may choose (over the stream's budget): the rule's choice
    assert grower._followed(choice, point, among[::2], reasons) is choice
    assert reasons["knowledge"]["follow"] == {"point": point, "trial": None, "followed": False}


def test_a_run_following_the_base_trains_its_first_point_to_the_end_and_takes_it_unless_beaten(tmp_path):
    journal = str(tmp_path / "meta.journal")
    options = {"n_trials": 4, "epochs": [1, 2], "halving_batch": 4, "warm_start": 0}
    for seed in (0, 1):  # two earlier runs of the stream, each with its outcome
        digits_run(tmp_path / f"past{seed}", "searched", {**options, "seed": seed, "record": journal})
    entries = KnowledgeBase(journal).entries()
    _, growth = digits_run(tmp_path / "follow", "searched", {
        **options, "record": None, "warm_start": {"from": journal, "k": 1, "max_distance": 10, "within": 0,
                                                  "by": "outcome", "follow": True}})
    for plan in growth:
        knowledge = plan["reasons"]["knowledge"]
        consulted = knowledge["consulted"][0]
        same_task = [e for e in entries if e.task_key == consulted["task_key"]]
        assert consulted["entry"] == max(same_task, key=run_outcome).key  # the run of that task that ended best
        follow, candidates = knowledge["follow"], plan["candidates"]
        assert follow["point"] == consulted["proposed"][0]
        trained = [c for c in candidates if c["params"] == follow["point"] and c["trial"] == follow["trial"]]
        assert trained and trained[0]["status"] == "complete"  # never pruned: trained through the last rung
        chosen = candidates[plan["chosen"]]
        finished = [c for c in candidates if c["status"] == "complete"]
        top = max(finished, key=lambda c: c["accuracy"])
        beaten = top["accuracy"] - trained[0]["accuracy"] > math.hypot(top["se"], trained[0]["se"]) + 1e-12
        assert follow["followed"] is not beaten
        assert (chosen["params"] == follow["point"]) if follow["followed"] else True
        if follow["followed"]:
            assert "the knowledge base's point" in plan["reasons"]["decision"]
        # the row names its rule with the prior in it
        assert plan["reasons"]["rule"] == ("the knowledge base's first point unless a candidate scores more than 1 "
                                           "standard errors above it (follow), else the cheapest candidate within 1 "
                                           "standard errors of the best score (parsimony)")


def test_the_report_says_which_search_proposed_and_whether_the_search_followed_it():
    from selfgrow.report.html import _knowledge_table

    row = {"entry": "selfgrow-meta-v1/r/task0", "task": 0, "task_key": "t0", "distance": 0.1,
           "proposed": [{"w": 2.0}, {"w": 4.0}], "outcome": {"after_task": 0.8, "latest": 0.7}}
    knowledge = {"base": "journal:b", "k": 1, "consulted": [row], "by": "outcome",
                 "follow": {"point": {"w": 2.0}, "trial": 3, "followed": True}}
    text = _knowledge_table(knowledge)
    assert "(each by its search whose run ended best)" in text
    assert "took the first proposed point, {&quot;w&quot;: 2.0} (trial 3)" in text
    beaten = _knowledge_table({**knowledge, "by": "distance", "follow": {**knowledge["follow"], "followed": False}})
    assert "(each by its nearest search)" in beaten and "a candidate scored distinguishably above it" in beaten
    unfinished = _knowledge_table({**knowledge, "follow": {"point": {"w": 2.0}, "trial": None, "followed": False}})
    assert "it did not finish among the candidates the rule may choose" in unfinished
