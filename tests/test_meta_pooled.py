"""The warm start's `propose: pooled` (every search of the consulted past tasks pooled into a model of their scores)
and `own` (earlier runs of the very task consulted alone, pooled)."""

from __future__ import annotations

import html
import json
import math

import pytest
from optuna.distributions import distribution_to_json
from search_fixtures import QUICK, digits_run, learn
from test_meta_agreement import BASELINE, POINTS, SPACE, first_trials, narrower, wider

from selfgrow.errors import SelfgrowError
from selfgrow.growth import build_grower
from selfgrow.search.meta import FEATURES, Entry, KnowledgeBase
from selfgrow.search.meta.link import KnowledgeLink, WarmStart

HERE = {n: 1.0 for n in FEATURES}


def search(run: str, landscape, task_key: str, points=POINTS, probe: float = 1.0, level: float = 0.5) -> Entry:
    """A past search that tried `points`, each scored `level` + `landscape`, with its meta-features' probe at
    `probe` (the others at 1, as this search's)."""
    candidates = [{"params": p, "status": "complete", "accuracy": level + landscape(p), "cost": 1.0} for p in points]
    best = max(candidates, key=lambda c: c["accuracy"])["params"]
    return Entry(run=run, task=1, grower="searched", features={**HERE, "probe_knn": probe},
                 space={k: distribution_to_json(d) for k, d in SPACE.items()}, candidates=candidates,
                 chosen=dict(BASELINE), best=best, task_key=task_key)


def base(tmp_path, *entries: Entry) -> str:
    journal = str(tmp_path / "base.journal")
    for entry in entries:
        KnowledgeBase(journal).record(entry)
    return journal


def pooled(journal: str, k: int = 1, max_distance: float = 10.0, **options) -> KnowledgeLink:
    """A link consulting `journal` with `propose: pooled` and `own: alone` unless `options` say otherwise."""
    return KnowledgeLink("searched", None, WarmStart(source=journal, k=k, max_distance=max_distance,
                                                     **{"propose": "pooled", "own": "alone", **options}), 0)


def test_earlier_runs_of_this_very_task_are_consulted_alone_and_pooled(tmp_path):
    # two earlier runs of task-a (at two levels of accuracy) where width pays; a nearer other task where it does not
    journal = base(tmp_path, search("a1", wider, "task-a", probe=0.9), search("a2", wider, "task-a", probe=0.9, level=0.7),
                   search("c", narrower, "task-c", probe=1.0))
    offered = pooled(journal).consult(SPACE, HERE, BASELINE, task_key="task-a")
    assert [p["widen:hidden.0"] for p in offered.nearest] == [8.0, 8.0]  # 2k points, k = 1
    knowledge = offered.reasons
    assert knowledge["pooled"]["same task"] is True and knowledge["pooled"]["proposed"] == offered.nearest
    assert [(row["task_key"], row["searches"]) for row in knowledge["consulted"]] == [("task-a", 2)]
    assert knowledge["consulted"][0]["distance"] > 0  # consulted although task-c is nearer
    # the same when the other tasks offer their chosen and best points; not by default (own: off) nor with own: false
    chosen = pooled(journal, propose="chosen").consult(SPACE, HERE, BASELINE, task_key="task-a")
    assert chosen.nearest == offered.nearest
    c = KnowledgeBase(journal).entry("c/task1")
    by_default = KnowledgeLink("searched", None, WarmStart(source=journal, k=1, max_distance=10.0), 0)
    for other in (by_default, pooled(journal, propose="chosen", own=False)):
        offered_by_others = other.consult(SPACE, HERE, BASELINE, task_key="task-a")
        assert offered_by_others.nearest == [c.chosen, c.best] and "pooled" not in offered_by_others.reasons


@pytest.mark.parametrize("propose", ["chosen", "pooled"])
def test_own_first_puts_the_earlier_runs_points_ahead_of_the_other_tasks(tmp_path, propose):
    journal = base(tmp_path, search("a1", wider, "task-a", probe=0.9),
                   search("a2", wider, "task-a", probe=0.9, level=0.7), search("c", narrower, "task-c", probe=1.0))
    alone = pooled(journal).consult(SPACE, HERE, BASELINE, task_key="task-a")
    others = pooled(journal, propose=propose, own=False, max_distance=0.05).consult(SPACE, HERE, BASELINE,
                                                                                   task_key="task-a")
    assert [row["task_key"] for row in others.reasons["consulted"]] == ["task-c"]  # task-a's runs lie beyond 0.05
    first = pooled(journal, propose=propose, own="first").consult(SPACE, HERE, BASELINE, task_key="task-a")
    # the earlier runs' pooled points, then the nearest other task's (k = 1 counts other tasks), no point twice
    assert first.nearest == alone.nearest + [p for p in others.nearest if p not in alone.nearest]
    assert len(first.nearest) > len(alone.nearest)
    assert [row["task_key"] for row in first.reasons["consulted"]] == ["task-a", "task-c"]
    assert first.reasons["own"] == alone.reasons["pooled"]
    assert ("pooled" in first.reasons) == (propose == "pooled")
    from selfgrow.report.html import _knowledge_table

    text = _knowledge_table(first.reasons)
    assert "tried before the other tasks': " + html.escape(json.dumps(alone.nearest[0], sort_keys=True)) in text
    assert "the 1 most similar other tasks" in text and "<td class='words'>2 pooled</td>" in text  # task-a's row
    # a task the base holds no earlier run of: `first` consults as `alone` does
    new = [pooled(journal, propose=propose, own=own).consult(SPACE, HERE, BASELINE, task_key="task-new")
           for own in ("first", "alone")]
    assert new[0].nearest == new[1].nearest and new[0].reasons == new[1].reasons


def test_own_true_and_false_are_alone_and_off():
    assert WarmStart.parse({"from": "x", "own": True}).own == "alone" == WarmStart(own=True).own
    assert WarmStart.parse({"from": "x", "own": False}).own == "off" == WarmStart(own=False).own == WarmStart().own
    assert WarmStart.parse({"from": "x", "own": "first"}).own == "first"
    for bad in ("yes", 1, ["first"]):
        with pytest.raises(SelfgrowError, match="'own' \\('alone', 'first' or 'off'"):
            WarmStart.parse({"from": "x", "own": bad})


def test_without_earlier_runs_of_the_task_the_nearest_tasks_are_pooled(tmp_path):
    journal = base(tmp_path, search("a", wider, "task-a", probe=0.9), search("c", narrower, "task-c", probe=1.0))
    offered = pooled(journal).consult(SPACE, HERE, BASELINE, task_key="task-new")
    assert offered.reasons["pooled"]["same task"] is False
    assert [row["task_key"] for row in offered.reasons["consulted"]] == ["task-c"]
    assert all(p["widen:hidden.0"] == 1.0 for p in offered.nearest) and BASELINE not in offered.nearest
    # the task's earlier runs beyond max_distance are not its own past: the nearest tasks again
    far = pooled(journal, max_distance=0.5).consult(SPACE, HERE, BASELINE, task_key="task-a")
    assert [row["task_key"] for row in far.reasons["consulted"]] == ["task-c"]
    # two tasks pooled: 4 points, none of them no growth, all of them up front
    both = pooled(journal, k=2).consult(SPACE, HERE, BASELINE, task_key="task-new")
    assert len(both.nearest) == 4 and len(both.reasons["consulted"]) == 2 and both.later is None


def test_the_guard_holds_back_the_pooled_points_past_the_first_trials_until_those_agree_with_the_pool(tmp_path):
    journal = base(tmp_path, search("a", wider, "task-a"), search("b", wider, "task-b", level=0.7))
    offered = pooled(journal, k=3, after=3, guard="agreement").consult(SPACE, HERE, BASELINE, task_key="task-new")
    unguarded = pooled(journal, k=3, after=3).consult(SPACE, HERE, BASELINE, task_key="task-new")
    assert len(unguarded.nearest) == 6 and unguarded.later is None  # 2k points, all up front
    # the first after - 1 = 2 points fill the first 3 trials beside no growth; the rest wait for the first scores
    assert offered.nearest == unguarded.nearest[:2] and offered.later.after == 3
    guard = offered.reasons["pooled"]["guard"]
    assert guard["held back"] == unguarded.nearest[2:]
    # the first trials rank as the pool does (width pays): the rest enqueued
    assert offered.later.points(first_trials(wider)) == unguarded.nearest[2:]
    assert guard["tau"] > 0 and guard["enqueued"] is True
    # they rank the other way (a misleading pool): nothing more from it, the sampler goes on
    assert offered.later.points(first_trials(narrower)) == [] and guard["tau"] < 0 and guard["enqueued"] is False
    # too few distinct trained points to compare: asked again after the next batch
    assert offered.later.points(first_trials(wider)[:2]) is None and "fewer than 3" in guard["tau"]


def test_the_sampler_guard_tries_the_pool_beyond_its_first_point_only_once_that_beats_the_other_growth(tmp_path):
    journal = base(tmp_path, search("a", wider, "task-a"), search("b", wider, "task-b", level=0.7))
    offered = pooled(journal, k=2, guard="sampler").consult(SPACE, HERE, BASELINE, task_key="task-new")
    unguarded = pooled(journal, k=2).consult(SPACE, HERE, BASELINE, task_key="task-new")
    first, rest = unguarded.nearest[:1], unguarded.nearest[1:]
    # the sampler fills the rest of the first batch; asked after every batch until there is something to compare
    assert offered.nearest == first and offered.later.after == 1
    guard = offered.reasons["pooled"]["guard"]
    assert guard == {"against": "sampler", "held back": rest}
    sampled = {"widen:hidden.0": 2.0, "deepen:hidden.0": 1}
    # the pool's first point (the widest) above the sampler's: the rest of the pool is tried next
    assert offered.later.points(first_trials(wider, [BASELINE, first[0], sampled])) == rest and guard["enqueued"]
    assert guard["lead"] == [pytest.approx(0.3 + wider(first[0])), pytest.approx(0.3 + wider(sampled))]
    # below it: nothing more from the pool, however far above no growth it scored
    scores = {0: 0.2, 1: 0.6, 2: 0.7}
    trials = [{**r, "rung_scores": [scores[r["trial"]]]} for r in first_trials(wider, [BASELINE, first[0], sampled])]
    assert offered.later.points(trials) == [] and guard["enqueued"] is False and guard["lead"] == [0.6, 0.7]
    # no growth scoring highest does not count against the pool: only other growth does
    scores = {0: 0.9, 1: 0.6, 2: 0.5}
    trials = [{**r, "rung_scores": [scores[r["trial"]]]} for r in first_trials(wider, [BASELINE, first[0], sampled])]
    assert offered.later.points(trials) == rest and guard["enqueued"] is True
    # the first point or any other growth not trained yet: asked again after the next batch
    assert offered.later.points(first_trials(wider, [BASELINE, first[0]])) is None and "asked again" in guard["lead"]
    assert offered.later.points(first_trials(wider, [BASELINE, sampled])) is None


def test_the_guard_leaves_this_tasks_own_earlier_runs_up_front(tmp_path):
    journal = base(tmp_path, search("a1", wider, "task-a"), search("a2", wider, "task-a", level=0.7))
    for guard in ("agreement", "sampler"):
        offered = pooled(journal, k=3, after=2, guard=guard).consult(SPACE, HERE, BASELINE, task_key="task-a")
        assert offered.reasons["pooled"]["same task"] is True
        assert len(offered.nearest) == 6 and offered.later is None and "guard" not in offered.reasons["pooled"]


def test_earlier_runs_of_the_task_from_a_net_of_another_size_are_not_its_own(tmp_path):
    # the same task's earlier run grew a net twice this one's parameters: its widening factors mean other nets there
    other_net = search("a", wider, "task-a", probe=0.9)
    other_net.features["log_params"] = HERE["log_params"] + math.log(2.0)
    journal = base(tmp_path, other_net, search("c", narrower, "task-c", probe=1.0))
    offered = pooled(journal).consult(SPACE, HERE, BASELINE, task_key="task-a")
    assert offered.reasons["pooled"]["same task"] is False and offered.reasons["earlier runs from another net"] == 1
    assert [row["task_key"] for row in offered.reasons["consulted"]] == ["task-c"]  # the nearest task instead
    # within 1.5x of its parameters, it is the task's own past again
    other_net.features["log_params"] = HERE["log_params"] + math.log(1.4)
    near = pooled(base(tmp_path / "near", other_net)).consult(SPACE, HERE, BASELINE, task_key="task-a")
    assert near.reasons["pooled"]["same task"] is True and "earlier runs from another net" not in near.reasons
    from selfgrow.report.html import _knowledge_table

    assert "1 earlier run of this very task grew a net of another size" in _knowledge_table(offered.reasons)


def test_with_transfer_target_earlier_runs_from_another_net_are_its_own_at_their_target_widths(tmp_path):
    # an earlier run of the task from a net of 16 units (twice the parameters) where widening 2x, to 32 units, paid
    # most: from this net of 8 units that is 4x
    def to_32(point: dict) -> float:
        return -0.05 * abs(math.log2(point["widen:hidden.0"]) - 1)

    other_net = search("a", to_32, "task-a", probe=0.9)
    other_net.features["log_params"] = HERE["log_params"] + math.log(2.0)
    other_net.sizes = {"widen:hidden.0": 16.0}
    journal = base(tmp_path, other_net, search("c", narrower, "task-c", probe=1.0))
    here = {"widen:hidden.0": 8.0}
    offered = pooled(journal, transfer="target").consult(SPACE, HERE, BASELINE, task_key="task-a", sizes=here)
    assert offered.reasons["pooled"]["same task"] is True and "earlier runs from another net" not in offered.reasons
    assert offered.nearest[0]["widen:hidden.0"] == 4.0
    # without this search's widths, or by default (relative actions), the earlier run is another net's
    for unsized in (pooled(journal, transfer="target").consult(SPACE, HERE, BASELINE, task_key="task-a"),
                    pooled(journal).consult(SPACE, HERE, BASELINE, task_key="task-a", sizes=here)):
        assert unsized.reasons["pooled"]["same task"] is False and unsized.reasons["earlier runs from another net"] == 1
    with pytest.raises(SelfgrowError, match="'transfer' \\('relative' or 'target'"):
        WarmStart.parse({"from": "base.journal", "transfer": "shapes"})


def test_a_run_from_a_narrower_net_carries_a_wider_runs_factors_as_target_widths(tmp_path):
    from selfgrow.report.html import _knowledge_table

    journal = str(tmp_path / "meta.journal")
    learn("searched", {**QUICK, "record": journal}, n_tasks=2, hidden=[32])
    entry = KnowledgeBase(journal).entries()[0]
    assert entry.sizes == {name: 32.0 for name in entry.space if name.startswith("widen:")} and entry.sizes
    warm = {"from": journal, "k": 1, "max_distance": 10, "within": 0, "own": "alone"}
    for transfer, own in (("target", True), ("relative", False)):
        _, records = learn("searched", {**QUICK, "warm_start": {**warm, "transfer": transfer}}, n_tasks=2, hidden=[8])
        knowledge = records[1].plan.reasons["knowledge"]
        assert knowledge["transfer"] == transfer and (knowledge.get("pooled") is not None) is own
        assert ("earlier runs from another net" in knowledge) is not own
        assert ("carried as the widths they grew to" in _knowledge_table(knowledge)) is own


def test_the_report_says_the_points_were_pooled_from_this_tasks_earlier_runs():
    from selfgrow.report.html import _knowledge_table

    point = {"widen:hidden.0": 8.0, "deepen:hidden.0": 0}
    knowledge = {"base": "journal:b", "k": 1, "max_distance": 1.5, "similar": "features", "propose": "pooled",
                 "consulted": [{"entry": "selfgrow-meta-v1/r/task1", "task": 1, "task_key": "1:digits:2/3",
                                "distance": 0.1, "searches": 3, "outcome": {"latest": 0.9}}],
                 "pooled": {"tasks": 1, "same task": True, "proposed": [point]}}
    page = _knowledge_table(knowledge)
    assert "this very task&#x27;s earlier runs" in page and "searches pooled" in page and "8.0" in page
    assert "held back" not in page
    guard = {"after": 4, "held back": [point, point]}
    for found, said in ((None, "the search ended before"),
                        ({"tau": "fewer than 3 distinct trained points: asked again"}, "fewer than 3 distinct"),
                        ({"tau": 0.33, "enqueued": True}, "Kendall tau 0.33, so they were tried next"),
                        ({"tau": -0.5, "enqueued": False}, "Kendall tau -0.50, so they were never tried")):
        knowledge["pooled"]["guard"] = {**guard, **(found or {})}
        page = _knowledge_table(knowledge)
        assert "The last 2 were held back until the first 4 trials were scored" in page and said in page
    guard = {"against": "sampler", "held back": [point, point]}
    for found, said in ((None, "the search ended before"),
                        ({"lead": "the pool's first point or any other growth not trained yet: asked again"},
                         "not trained yet: asked again"),
                        ({"lead": [0.81, 0.78], "enqueued": True}, "that point scored 0.810 first, the best other "
                                                                  "growth 0.780, so they were tried next"),
                        ({"lead": [0.71, 0.78], "enqueued": False}, "0.710 first, the best other growth 0.780, so "
                                                                   "they were never tried")):
        knowledge["pooled"]["guard"] = {**guard, **(found or {})}
        page = _knowledge_table(knowledge)
        assert ("The last 2 were held back until the pool's first point was scored beside the sampler's first points"
                in html.unescape(page) and said in html.unescape(page))


def test_propose_is_refused_with_a_bad_value_and_with_similar_scores():
    with pytest.raises(SelfgrowError, match="'propose' \\('chosen' or 'pooled'"):
        build_grower("searched", warm_start={"from": "x", "propose": "best"})
    with pytest.raises(SelfgrowError, match="with 'similar: features' only"):
        build_grower("searched", warm_start={"from": "x", "similar": "scores", "propose": "pooled"})
    with pytest.raises(SelfgrowError, match="'own' \\('alone', 'first' or 'off'"):
        build_grower("searched", warm_start={"from": "x", "own": 1})
    for bad in ("yes", 1, ["sampler"]):
        with pytest.raises(SelfgrowError, match="'guard' \\('off', 'agreement' or 'sampler', or true or false"):
            build_grower("searched", warm_start={"from": "x", "propose": "pooled", "guard": bad})
    for guard in (True, "sampler"):  # the chosen points have no pool to check
        with pytest.raises(SelfgrowError, match="with 'propose: pooled' only"):
            build_grower("searched", warm_start={"from": "x", "guard": guard})
    # a check that would come after the search's last batch is refused: the points it holds back could never be tried
    pooled_from = {"from": "x", "propose": "pooled"}
    for options, asked in (({"n_trials": 6, "halving_batch": 3, "warm_start": {**pooled_from, "guard": True}}, 6),
                           ({"n_trials": 6, "halving_batch": 3, "warm_start": {"from": "x", "similar": "scores"}}, 6),
                           ({"n_trials": 4, "halving_batch": 4, "warm_start": {**pooled_from, "guard": "sampler"}}, 4)):
        with pytest.raises(SelfgrowError, match=f"trial {asked} in batches of .* accepted: n_trials above {asked}"):
            build_grower("searched", **options)
    for options in ({"n_trials": 7, "halving_batch": 3, "warm_start": {**pooled_from, "guard": True}},
                    {"n_trials": 6, "halving_batch": 3, "warm_start": {**pooled_from, "guard": True, "after": 3}},
                    {"n_trials": 6, "halving_batch": 3, "warm_start": {**pooled_from, "guard": "sampler"}},
                    {"n_trials": 2, "halving_batch": 2, "warm_start": pooled_from}):  # no check: nothing to refuse
        build_grower("searched", **options)
    parsed = {value: WarmStart.parse({"from": "x", "propose": "pooled", "guard": value}).guard
              for value in (True, False, "off", "agreement", "sampler")}
    assert parsed == {True: "agreement", False: "off", "off": "off", "agreement": "agreement", "sampler": "sampler"}


def test_a_rerun_of_a_stream_tries_the_points_pooled_from_its_earlier_run_right_after_no_growth(tmp_path):
    journal = str(tmp_path / "meta.journal")
    options = {**QUICK, "n_trials": 4, "halving_batch": 4, "warm_start": 0}
    digits_run(tmp_path / "cold", "searched", {**options, "record": journal})
    run_dir, growth = digits_run(tmp_path / "again", "searched", {  # `own: alone`: no `propose` needed
        **options, "record": None, "warm_start": {"from": journal, "k": 1, "max_distance": 10, "within": 0,
                                                  "own": "alone"}})
    for plan in growth:
        knowledge = plan["reasons"]["knowledge"]
        assert knowledge["pooled"]["same task"] is True
        assert [row["task_key"] for row in knowledge["consulted"]] == [knowledge["task_key"]]
        tried = [c["params"] for c in plan["candidates"]]
        proposed = knowledge["pooled"]["proposed"]
        assert 1 <= len(proposed) <= 2 and tried[1:1 + len(proposed)] == proposed  # no growth first, then them
    assert "earlier runs" in (run_dir / "report.html").read_text()


def test_a_guarded_pool_in_a_real_run_tries_its_held_back_points_only_when_the_first_trials_agreed(tmp_path):
    journal = str(tmp_path / "meta.journal")
    options = {**QUICK, "n_trials": 5, "halving_batch": 3, "warm_start": 0}
    digits_run(tmp_path / "cold", "searched", {**options, "record": journal})
    run_dir, growth = digits_run(tmp_path / "pooled", "searched", {
        **options, "record": None, "warm_start": {"from": journal, "k": 2, "max_distance": 10, "within": 0,
                                                  "own": False, "propose": "pooled", "after": 3,
                                                  "guard": "agreement"}})
    for plan in growth:
        pooled = plan["reasons"]["knowledge"]["pooled"]
        guard, proposed = pooled["guard"], pooled["proposed"]
        assert pooled["same task"] is False and guard["held back"] == proposed[2:] and guard["after"] == 3
        tried = [c["params"] for c in plan["candidates"]]
        assert tried[1:3] == proposed[:2]  # no growth, then the two pooled points that fill the first 3 trials
        assert isinstance(guard["tau"], float)  # three distinct points scored: compared after the first batch
        assert (tried[3:] == proposed[2:4]) is guard["enqueued"]  # the next batch: held-back points, or the sampler's
    assert "were held back until the first 3 trials were scored" in (run_dir / "report.html").read_text()


def test_a_pool_guarded_against_the_sampler_in_a_real_run_tries_the_rest_only_when_its_first_point_led(tmp_path):
    journal = str(tmp_path / "meta.journal")
    options = {**QUICK, "n_trials": 7, "halving_batch": 5, "warm_start": 0,  # 18 points: the order tells who chose
               "width_factors": [1.0, 1.25, 1.5, 2.0, 3.0, 4.0], "max_deepen": 2}
    digits_run(tmp_path / "cold", "searched", {**options, "record": journal})
    run_dir, growth = digits_run(tmp_path / "pooled", "searched", {
        **options, "record": None, "warm_start": {"from": journal, "k": 2, "max_distance": 10, "within": 0,
                                                  "own": False, "propose": "pooled", "guard": "sampler"}})
    for plan in growth:
        pooled = plan["reasons"]["knowledge"]["pooled"]
        guard, proposed = pooled["guard"], pooled["proposed"]
        assert guard["against"] == "sampler" and guard["held back"] == proposed[1:]
        candidates = plan["candidates"]
        tried = [c["params"] for c in candidates]
        assert tried[1] == proposed[0]  # no growth, the pool's first point, then the sampler's
        led, best_other = guard["lead"]  # compared on the first rung's scores after the first batch of 5
        first = {str(c["params"]): c["rung_scores"][0] for c in candidates[:5]}
        assert led == round(first[str(tried[1])], 4)
        assert best_other == round(max(v for k, v in first.items() if k not in (str(tried[0]), str(tried[1]))), 4)
        assert guard["enqueued"] is (led > best_other)
        if guard["enqueued"]:  # tried next (the engine skips trained points); else the sampler's, which may match
            assert tried[5:] == [point for point in proposed[1:] if point not in tried[:5]][:2]
    assert "scored beside the sampler's first points" in html.unescape((run_dir / "report.html").read_text())
