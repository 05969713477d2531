"""The growth knowledge base: meta-features, storage round trip, similarity, transfer, warm start across runs, CLI."""

from __future__ import annotations

import json
import math

import pytest
import torch
from optuna.distributions import CategoricalDistribution, IntDistribution, distribution_to_json
from search_fixtures import QUICK, digits_run, learn, resumed_pair
from trainer_fixtures import make_tasks

from selfgrow.cli import main as cli_main
from selfgrow.errors import SelfgrowError
from selfgrow.growth import build_grower
from selfgrow.search.meta import FEATURES, Entry, KnowledgeBase, nearest, task_features, transfer
from selfgrow.search.meta.base import CANDIDATE_KEYS
from selfgrow.search.meta.link import KnowledgeLink, WarmStart
from selfgrow.search.meta.features import task_identity
from selfgrow.nets.cost import count_params, inference_flops

SPACE = {"widen:hidden.0": distribution_to_json(CategoricalDistribution([1.0, 2.0])),
         "deepen:hidden.0": distribution_to_json(IntDistribution(0, 2))}


def features(**changes: float) -> dict[str, float]:
    return {**{name: 1.0 for name in FEATURES}, **changes}


def entry(run: str = "r1", task: int = 0, grower: str = "searched", **feature_changes: float) -> Entry:
    candidates = [
        {"params": {"widen:hidden.0": 1.0, "deepen:hidden.0": 0}, "status": "complete", "accuracy": 0.5, "cost": 10.0},
        {"params": {"widen:hidden.0": 2.0, "deepen:hidden.0": 1}, "status": "complete", "accuracy": 0.75, "cost": 30.0},
        {"params": {"widen:hidden.0": 2.0, "deepen:hidden.0": 2}, "status": "pruned", "accuracy": 0.25, "cost": 40.0},
    ]
    return Entry(run=run, task=task, grower=grower, features=features(**feature_changes), space=SPACE,
                 candidates=[{"params": c["params"], **{k: c.get(k) for k in CANDIDATE_KEYS}} for c in candidates],
                 chosen=candidates[0]["params"], best=candidates[1]["params"])


def test_meta_features_describe_the_task_and_net_and_leave_both_and_the_rng_untouched():
    learner, _ = learn("fixed", n_tasks=1)
    task = make_tasks(2)[1]
    before = {k: v.clone() for k, v in learner.net.state_dict().items()}
    rng = torch.get_rng_state()
    first, flops = task_features(learner, task, seed=0)
    again, _ = task_features(learner, task, seed=0)
    assert first == again and list(first) == list(FEATURES)
    assert torch.equal(torch.get_rng_state(), rng)
    assert all(torch.equal(before[k], v) for k, v in learner.net.state_dict().items())
    assert (first["task_index"], first["class_il"], first["task_il"], first["new_classes"], first["seen_classes"]) == (
        1.0, 1.0, 0.0, 2.0, 4.0)
    assert first["channels"] == 1.0 and first["log_pixels"] == pytest.approx(math.log(16))
    assert first["log_train_per_class"] == pytest.approx(math.log(len(task.y_train) / 2))
    assert first["log_params"] == pytest.approx(math.log(count_params(learner.net)))
    assert 0.0 <= first["probe_knn"] <= 1.0
    # the probe passes every training sample (fewer than 500) and every validation sample (fewer than 200) once
    assert flops == inference_flops(learner.net, None) * (len(task.y_train) + len(task.y_val))


def test_an_entry_survives_the_storage_export_and_import_and_a_rerecord_replaces_it(tmp_path):
    base = KnowledgeBase(str(tmp_path / "a.journal"))
    first = entry()
    base.record(first)
    assert base.keys() == [first.key] and base.entry(first.key) == first
    assert base.entry("r1/task0") == first
    changed = entry()
    changed.candidates = changed.candidates[:1]
    base.record(changed)
    assert base.keys() == [first.key] and base.entry(first.key).candidates == changed.candidates
    base.set_outcome(first.key, {"after_task": 0.5})
    base.set_outcome(first.key, {"latest": 0.4})
    assert base.entry(first.key).outcome == {"after_task": 0.5, "latest": 0.4}
    base.record(entry(task=1))
    assert base.export(tmp_path / "out.jsonl") == 2
    other = KnowledgeBase(f"journal:{tmp_path / 'b.journal'}")
    assert other.import_file(tmp_path / "out.jsonl") == 2
    assert other.entries() == base.entries()
    # an export written before entries named their task (no task_key) still imports, as tasks of their own
    lines = [json.loads(line) for line in (tmp_path / "out.jsonl").read_text().splitlines()]
    (tmp_path / "old.jsonl").write_text("".join(json.dumps({k: v for k, v in line.items() if k != "task_key"}) + "\n"
                                                for line in lines))
    older = KnowledgeBase(str(tmp_path / "c.journal"))
    assert older.import_file(tmp_path / "old.jsonl") == 2 and [e.task_key for e in older.entries()] == ["", ""]


def test_bad_knowledge_base_input_is_refused_in_one_sentence(tmp_path):
    with pytest.raises(SelfgrowError, match="schema 7 cannot be read; accepted: schema 1"):
        Entry.from_dict({**entry().to_dict(), "schema": 7})
    (tmp_path / "bad.jsonl").write_text(json.dumps(entry().to_dict()) + "\nnot json\n")
    with pytest.raises(SelfgrowError, match="Line 2 of .*bad.jsonl is not a knowledge-base entry"):
        KnowledgeBase(str(tmp_path / "c.journal")).import_file(tmp_path / "bad.jsonl")
    with pytest.raises(SelfgrowError, match="No knowledge-base entry .*nothing/task0"):
        KnowledgeBase(str(tmp_path / "c.journal")).entry("nothing/task0")
    with pytest.raises(SelfgrowError, match="is off"):
        KnowledgeBase("off")
    for bad in ({"k": 1}, {"from": "x", "k": -1}, {"from": "x", "within": -1}, {"from": "x", "size": 2},
                {"from": "x", "max_distance": -0.5}):
        with pytest.raises(SelfgrowError, match="warm_start=.*accepted: an integer >= 0 or a mapping with 'from'"):
            build_grower("searched", warm_start=bad)


def test_a_warm_start_mapping_takes_the_documented_defaults_for_what_it_leaves_out():
    assert WarmStart.parse({"from": "x"}) == WarmStart(within=2, source="x", k=3, max_distance=1.5, surrogate=0,
                                                       prior=False)
    assert WarmStart.parse(4) == WarmStart(within=4)


def test_nearest_standardises_each_feature_skips_missing_ones_and_never_returns_its_own_run_or_another_grower():
    zero = entry(run="a", task_index=0.0, probe_knn=0.5)
    three = entry(run="b", task_index=3.0, probe_knn=float("nan"))
    pool = [three, zero, entry(run="own", task_index=1.0), entry(run="c", grower="compound", task_index=1.0)]
    found = nearest(pool, features(task_index=1.0, probe_knn=0.7), "searched", exclude_run="own")
    # task_index over (3, 0, 1): mean 4/3, standard deviation sqrt(14/9); probe_knn over the finite (0.5, 0.7): 0.1
    spread = math.sqrt(14 / 9)
    assert [e.run for e, _ in found] == ["a", "b"]
    assert found[0][1] == pytest.approx(math.sqrt(((1 / spread) ** 2 + (0.2 / 0.1) ** 2) / 2))
    assert found[1][1] == pytest.approx(2 / spread)
    assert nearest(pool, features(), "firefly") == []


def test_a_distance_does_not_grow_with_the_runs_of_each_task_the_base_holds():
    """A feature on which only the new task differs (8x8 digits against a base of 28x28 searches) is scaled by
    the spread of its distinct values: repeats of a past task leave every distance where one run put it."""
    past = [entry(run="a", task_index=0.0, log_pixels=math.log(784)), entry(run="b", task_index=2.0,
                                                                         log_pixels=math.log(784))]
    query = features(task_index=0.0, log_pixels=math.log(64))
    once = nearest(past, query, "searched")
    # task_index over the distinct (0, 2): spread 1; log_pixels over the distinct (log 784, log 64): half their gap
    assert [(e.run, d) for e, d in once] == [("a", pytest.approx(2 / math.sqrt(2))),
                                             ("b", pytest.approx(math.sqrt((2 ** 2 + 2 ** 2) / 2)))]
    repeated = [entry(run=f"{e.run}{copy}", task_index=e.features["task_index"], log_pixels=math.log(784))
                for copy in range(20) for e in past]
    again = nearest(repeated, query, "searched")
    # every copy of a past search gets the very distance of its twins (the same computation on copied numbers)
    assert sorted({d for _, d in again}) == pytest.approx(sorted(d for _, d in once))


def test_a_consultation_that_finds_nothing_near_enough_says_how_far_the_nearest_past_search_was(tmp_path):
    from optuna.distributions import json_to_distribution

    from selfgrow.report.explain import too_far
    from selfgrow.report.html import _knowledge_table

    journal = str(tmp_path / "base.journal")
    for past in (entry(run="a", task_index=0.0), entry(run="b", task_index=2.0)):
        KnowledgeBase(journal).record(past)
    space = {name: json_to_distribution(text) for name, text in SPACE.items()}
    baseline = {"widen:hidden.0": 1.0, "deepen:hidden.0": 0}
    link = KnowledgeLink("searched", None, WarmStart(source=journal, max_distance=0.5), 0)
    offered = link.consult(space, features(task_index=4.0), baseline)
    # task_index alone varies, over the distinct (0, 2, 4): spread sqrt(8/3); the nearest, b, lies 2 / sqrt(8/3) away
    assert offered.nearest == [] and offered.reasons["consulted"] == []
    assert offered.reasons["searches"] == 2 and offered.reasons["nearest"] == pytest.approx(2 / math.sqrt(8 / 3),
                                                                                           abs=1e-4)
    said = "none of its 2 past searches of this grower within max_distance 0.5 (the nearest at 1.22)"
    assert too_far(offered.reasons) == said and said in _knowledge_table(offered.reasons)
    # a cut-off just past the nearest consults it alone, its farther twin left out
    within = KnowledgeLink("searched", None, WarmStart(source=journal, max_distance=1.3), 0)
    assert [c["entry"] for c in within.consult(space, features(task_index=4.0), baseline).reasons["consulted"]] == [
        "selfgrow-meta-v1/b/task0"]
    empty = KnowledgeLink("searched", None, WarmStart(source=str(tmp_path / "empty.journal")), 0)
    assert too_far(empty.consult(space, features(), baseline).reasons) == "no past search of this grower in it"


def test_k_counts_past_tasks_so_repeated_runs_of_one_task_do_not_crowd_out_the_next_nearest(tmp_path):
    """Three runs of task A (their nets differ, so do their distances) and one of task B: k = 2 consults A's nearest
    search and B's, not two of A's, and hands the prior those two searches' candidates. An entry recorded before
    task keys (key "") counts as a task of its own."""
    from optuna.distributions import json_to_distribution

    journal = str(tmp_path / "base.journal")
    runs = [entry(run=f"a{copy}", task_index=1.0, log_params=1.0 + copy / 10) for copy in range(3)]
    for past in runs:
        past.task_key = "1:mnist[2,3]:2/3"
    for past in (*runs, entry(run="b", task_index=3.0)):
        KnowledgeBase(journal).record(past)
    assert KnowledgeBase(journal).entry("a1/task0").task_key == "1:mnist[2,3]:2/3"
    space = {name: json_to_distribution(text) for name, text in SPACE.items()}
    baseline = {"widen:hidden.0": 1.0, "deepen:hidden.0": 0}
    link = KnowledgeLink("searched", None, WarmStart(source=journal, k=2, prior=True), 0)
    offered = link.consult(space, features(task_index=1.0), baseline)
    assert [c["entry"] for c in offered.reasons["consulted"]] == ["selfgrow-meta-v1/a0/task0",
                                                                  "selfgrow-meta-v1/b/task0"]
    assert len(offered.nearest) == 4 and offered.reasons["prior"] == {"candidates": 4}  # 2 complete per search
    # without keys (entries of an older base) every search is a task of its own: the two nearest are A's
    legacy = str(tmp_path / "legacy.journal")
    for past in (*runs, entry(run="b", task_index=3.0)):
        past.task_key = ""
        KnowledgeBase(legacy).record(past)
    old = KnowledgeLink("searched", None, WarmStart(source=legacy, k=2), 0).consult(space, features(task_index=1.0),
                                                                                   baseline)
    assert [c["entry"] for c in old.reasons["consulted"]] == ["selfgrow-meta-v1/a0/task0", "selfgrow-meta-v1/a1/task0"]


def test_a_task_identity_is_shared_by_the_runs_of_a_stream_and_differs_with_the_classes_or_position():
    from selfgrow.streams import build

    def stream(seed: int, shuffle: bool = False):
        return build("split", dataset="digits", n_tasks=5, max_train_per_class=40, seed=seed,
                     shuffle_classes=shuffle).tasks

    first, again = stream(0)[1], stream(1)[1]
    assert not torch.equal(first.x_train, again.x_train)  # another seed draws other samples of the same classes
    assert task_identity(first) == task_identity(again) == "1:digits[2,3]:2/3"
    assert task_identity(stream(0)[2]) != task_identity(first) != task_identity(stream(0, shuffle=True)[1])


def test_transfer_keeps_shared_names_and_maps_the_rest_by_kind_and_position():
    source = ["widen:hidden.0", "widen:hidden.1", "deepen:hidden.0", "phi"]
    params = {"widen:hidden.1": 2.0, "deepen:hidden.0": 1, "phi": 2}
    space = {"widen:stage.0": None, "widen:stage.1": None, "deepen:stage.0": None, "phi": None}
    assert transfer(params, source, space) == {"widen:stage.1": 2.0, "deepen:stage.0": 1, "phi": 2}
    assert transfer(params, source, {"widen:stage.0": None}) == {}


def test_transfer_carries_a_factor_as_its_target_size_where_both_searches_recorded_sizes():
    from optuna.distributions import CategoricalDistribution, FloatDistribution, IntDistribution

    space = {"widen:stage.0": CategoricalDistribution([1.0, 1.5, 2.0, 4.0]), "deepen:stage.0": IntDistribution(0, 1)}
    source = ["widen:hidden.0", "deepen:hidden.0"]
    then = {"widen:hidden.0": 16.0}  # a past net of 16 units widened 2x: to 32
    params = {"widen:hidden.0": 2.0, "deepen:hidden.0": 1}
    assert transfer(params, source, space, then, {"widen:stage.0": 8.0}) == {"widen:stage.0": 4.0, "deepen:stage.0": 1}
    # 32 units from 12: 2.67x, nearest on a log scale 2x (of 2 and 4); from 64 units no factor shrinks: 1x
    assert transfer(params, source, space, then, {"widen:stage.0": 12.0})["widen:stage.0"] == 2.0
    assert transfer(params, source, space, then, {"widen:stage.0": 64.0})["widen:stage.0"] == 1.0
    # a size unknown on either side: the factor as it was (relative)
    assert transfer(params, source, space, {}, {"widen:stage.0": 8.0})["widen:stage.0"] == 2.0
    assert transfer(params, source, space, then, None)["widen:stage.0"] == 2.0
    # a numeric range: the exact factor
    ranged = {"widen:stage.0": FloatDistribution(1.0, 8.0)}
    assert transfer(params, source, ranged, then, {"widen:stage.0": 10.0})["widen:stage.0"] == pytest.approx(3.2)


def test_a_run_records_every_search_and_its_outcome_and_a_later_run_starts_from_the_nearest(tmp_path):
    journal = f"journal:{tmp_path / 'meta.journal'}"
    learner, records = learn("searched", {**QUICK, "record": journal}, n_tasks=2)
    base = KnowledgeBase(journal)
    run = learner.grower.knowledge.run
    assert base.keys() == [f"selfgrow-meta-v1/{run}/task0", f"selfgrow-meta-v1/{run}/task1"]
    scores = [a for a in learner.evaluate(learner.seen, "val")]
    for task, record, stored in zip(make_tasks(2), records, base.entries()):
        plan = record.plan
        assert [c["params"] for c in stored.candidates] == [c["params"] for c in plan.candidates]
        assert [c["accuracy"] for c in stored.candidates] == [c["accuracy"] for c in plan.candidates]
        assert stored.chosen == plan.candidates[plan.chosen]["params"] and stored.grower == "searched"
        assert stored.task_key == task_identity(task) and task.name in stored.task_key
        assert stored.outcome["latest"] == pytest.approx(sum(scores) / len(scores)) and stored.outcome["latest_task"] == 1
        assert "knowledge" not in plan.reasons
    assert base.entries()[1].outcome["after_task"] == base.entries()[1].outcome["latest"]

    # own: false, or this same task's earlier run would be pooled (tests/test_meta_pooled.py)
    _, warm = learn("searched", {**QUICK, "record": None, "warm_start": {"from": journal, "k": 1, "own": False}},
                    n_tasks=1)
    knowledge = warm[0].plan.reasons["knowledge"]
    (consulted,) = knowledge["consulted"]
    assert consulted["entry"] == base.keys()[0] and consulted["distance"] == 0.0  # the same task on the same net
    first = base.entries()[0]
    assert consulted["proposed"] == [first.chosen, first.best]
    unique = [p for i, p in enumerate(consulted["proposed"]) if p not in consulted["proposed"][:i]]
    assert [c["params"] for c in warm[0].plan.candidates[:len(unique)]] == unique  # its choice was no growth
    assert base.keys() == [f"selfgrow-meta-v1/{run}/task0", f"selfgrow-meta-v1/{run}/task1"]  # nothing recorded


def test_no_growth_is_tried_before_the_points_of_the_past_searches(tmp_path):
    """On real runs not growing is often a search's best and always its cheapest point, so a past search that grew
    does not push it back: the run's first task tries no growth, then the past search's chosen and best points."""
    journal = str(tmp_path / "base.journal")
    past = entry(run="past")
    past.chosen = {"widen:hidden.0": 2.0, "deepen:hidden.0": 0}
    KnowledgeBase(journal).record(past)
    _, records = learn("searched", {**QUICK, "record": None,
                                    "warm_start": {"from": journal, "k": 1, "max_distance": 100}}, n_tasks=1)
    no_growth = {name: (1.0 if name.startswith("widen:") else 0) for name in records[0].plan.candidates[0]["params"]}
    tried = [c["params"] for c in records[0].plan.candidates[:3]]
    assert tried == [no_growth, {**no_growth, **past.chosen}, {**no_growth, **past.best}]


def test_probe_flops_count_in_the_search_and_nothing_is_measured_when_nothing_records(tmp_path, monkeypatch):
    monkeypatch.setenv("SELFGROW_META", "off")
    _, quiet = learn("searched", QUICK, n_tasks=2)
    journal = f"journal:{tmp_path / 'meta.journal'}"
    learner, recorded = learn("searched", {**QUICK, "record": journal}, n_tasks=2)
    assert [c["params"] for r in quiet for c in r.plan.candidates] == [c["params"] for r in recorded for c in r.plan.candidates]
    assert all(r.plan.search_flops > q.plan.search_flops for q, r in zip(quiet, recorded))
    assert KnowledgeBase(journal).keys() and learner.grower.knowledge.active


def test_a_resumed_run_keeps_writing_the_entries_of_its_run(tmp_path):
    journal = f"journal:{tmp_path / 'meta.journal'}"
    learner, resumed, tasks = resumed_pair(tmp_path / "ckpt", "searched", {**QUICK, "record": journal})
    assert resumed.grower.knowledge.run == learner.grower.knowledge.run
    resumed.learn(tasks[2])
    run = learner.grower.knowledge.run
    keys = KnowledgeBase(journal).keys()
    assert sorted(k for k in keys if f"/{run}/" in k) == [f"selfgrow-meta-v1/{run}/task{i}" for i in range(3)]
    assert KnowledgeBase(journal).entry(f"{run}/task0").outcome["latest_task"] == 2


def test_the_meta_command_lists_shows_exports_and_imports(tmp_path, capsys):
    source, target = str(tmp_path / "a.journal"), str(tmp_path / "b.journal")
    KnowledgeBase(source).record(entry())
    assert cli_main(["meta", "--base", source, "list"]) == 0
    listed = capsys.readouterr().out
    assert "r1/task0" in listed and "searched" in listed
    assert cli_main(["meta", "--base", source, "show", "r1/task0"]) == 0
    assert Entry.from_dict(json.loads(capsys.readouterr().out)) == entry()
    assert cli_main(["meta", "--base", source, "export", str(tmp_path / "x.jsonl")]) == 0
    assert cli_main(["meta", "--base", target, "import", str(tmp_path / "x.jsonl")]) == 0
    assert "1 entries added" in capsys.readouterr().out.splitlines()[-1]
    assert KnowledgeBase(target).entries() == [entry()]


def test_a_configured_run_warm_starts_from_a_base_and_its_report_names_the_past_searches_consulted(tmp_path):
    journal = str(tmp_path / "meta.journal")
    digits_run(tmp_path / "cold", "searched", {**QUICK, "record": journal})
    run_dir, growth = digits_run(tmp_path / "warm", "searched", {**QUICK, "record": None, "warm_start": {
        "from": journal, "k": 2, "max_distance": 10, "own": False}})  # the same stream: not its own past alone
    keys = KnowledgeBase(journal).keys()
    consulted = [c["entry"] for c in growth[0]["reasons"]["knowledge"]["consulted"]]
    assert len(keys) == 2 and consulted[0] == keys[0] and sorted(consulted) == sorted(keys)
    page = (run_dir / "report.html").read_text()
    assert "Warm start from the knowledge base" in page and keys[0].split("/", 1)[1] in page
    assert growth[0]["reasons"]["knowledge"]["consulted"][0]["task_key"] in page  # "0:digits[0,1]:0/1"


def test_the_searched_meta_preset_learns_from_the_runs_before_it(tmp_path, monkeypatch):
    from test_methods_end_to_end import run_method

    journal = tmp_path / "meta.journal"
    monkeypatch.setenv("SELFGROW_META", f"journal:{journal}")
    first = run_method(tmp_path / "a", "searched-meta", "class", n_tasks=2, epochs=1)
    assert "knowledge" in first.growth[0]["reasons"] and first.growth[0]["reasons"]["knowledge"]["consulted"] == []
    keys = KnowledgeBase(str(journal)).keys()
    second = run_method(tmp_path / "b", "searched-meta", "class", n_tasks=2, epochs=1)
    consulted = [c["entry"] for p in second.growth for c in p["reasons"]["knowledge"]["consulted"]]
    assert len(keys) == 2 and set(consulted) == set(keys)  # the first run's, never its own
    assert len(KnowledgeBase(str(journal)).keys()) == 4
