"""Growth explained in words and drawn: sentences and candidate tables from hand-built growth records, specs read
as blocks, what a growth added, frozen shares as the learner records them, the architecture figure."""

from __future__ import annotations

import pytest
import torch

from selfgrow.nets import ops
from selfgrow.nets.base import build
from selfgrow.report.architecture import blocks_of, changes, task_path
from selfgrow.report.architecture_figure import architecture_figure, frozen_share, shown_tasks
from selfgrow.report.explain import candidate_table, growth_sentence, short_number, what_grew
from selfgrow.report.results import Results
from selfgrow.retention.old_weights import Freeze
from selfgrow.train.learner import frozen_entries

MLP_BEFORE = {"kind": "mlp", "hidden": [16, 16], "head": {"kind": "single", "classes": 4}}
MLP_AFTER = {"kind": "mlp", "hidden": [47, 47, 16], "head": {"kind": "single", "classes": 6}}
APPLIED = [{"op": "add_classes", "n": 2}, {"op": "widen", "layer": "hidden.0", "by": 31, "mode": "zero"},
           {"op": "deepen", "at": "hidden.0"}]


def _candidate(trial, accuracy, flops, status, **extra):
    return {"trial": trial, "params": {"phi": float(trial)}, "ops": [], "flops": flops, "n_params": flops // 2,
            "cost": float(flops), "status": status, "accuracy": accuracy, "se": 0.02, "plasticity": accuracy,
            "stability": -0.01, "epochs": 8 if status == "complete" else 3, "rung": 1 if status == "complete" else 0,
            **extra}


SEARCH = {
    "task": 2, "grower": "compound", "applied": APPLIED, "spec_before": MLP_BEFORE, "retention": {},
    "reasons": {"rule": "cheapest candidate within 1 standard errors of the best score (parsimony)"},
    "candidates": [_candidate(0, 0.91, 7000, "complete"), _candidate(1, 0.80, 30000, "pruned", reason="halving"),
                   _candidate(2, 0.93, 14000, "complete"), _candidate(3, 0.95, 60000, "complete")],
    "chosen": 2,
}


def test_a_search_sentence_says_what_grew_how_many_candidates_and_the_rule():
    sentence = growth_sentence(SEARCH, MLP_AFTER)
    assert sentence == (
        "Task 2: widened hidden.0 from 16 to 47 units and added a layer after hidden.0: 4 candidates tried "
        "(1 stopped early or over budget), the chosen one 0.930 ± 0.020 validation accuracy at 14k FLOPs against "
        "0.910 ± 0.020 at 7k FLOPs for the cheapest and 0.950 ± 0.020 at 60k FLOPs for the highest-scoring; "
        "rule: cheapest candidate within 1 standard errors of the best score (parsimony).")


def test_a_search_under_a_stream_budget_says_what_was_spent_before_the_task_and_on_its_search():
    budget = {"train_budget": 3.3e12, "spent": 4.1e11, "search": 1.25e11, "samples_now": 24000.0, "samples_later": 72000.0}
    record = {**SEARCH, "reasons": {**SEARCH["reasons"], "stream_budget": budget}}
    assert growth_sentence(record, MLP_AFTER).endswith(
        "(parsimony); stream training budget 3.3e+12 FLOPs: 4.1e+11 spent before this task, 1.25e+11 for its search.")
    skipped = {"task": 3, "grower": "searched", "applied": [], "spec_before": MLP_AFTER, "candidates": [], "retention": {},
               "reasons": {"rule": "costliest candidate within 1 standard errors of the best score (capacity)",
                           "decision": "no growth: no room in the stream's budget for a search", "stream_budget": budget}}
    assert "no room in the stream's budget for a search; rule: costliest" in growth_sentence(skipped, MLP_AFTER)
    chosen = {**SEARCH, "retention": {"lwf.alpha": 0.25, "replay.classifier": "nme"}}
    assert "; retention set to lwf.alpha=0.25, replay.classifier=nme" in growth_sentence(chosen, MLP_AFTER)
    bounded = {**SEARCH, "reasons": {**SEARCH["reasons"], "stream_budget": {**budget, "search_estimate": 3.9e11}}}
    assert growth_sentence(bounded, MLP_AFTER).endswith("1.25e+11 for its search (bounded at 3.9e+11 before it ran).")


def test_a_choice_after_training_says_which_settings_predict_and_every_points_score():
    scores = [{"settings": {"replay.classifier": "head"}, "accuracy": 0.612, "se": 0.02},
              {"settings": {"replay.classifier": "nme"}, "accuracy": 0.6544, "se": 0.02}]
    record = {**SEARCH, "reasons": {**SEARCH["reasons"],
                                    "predictions": {"chosen": {"replay.classifier": "nme"}, "scores": scores}}}
    assert growth_sentence(record, MLP_AFTER).endswith(
        "(parsimony); after training, predictions by replay.classifier=nme (validation score "
        "replay.classifier=head 0.612, replay.classifier=nme 0.654).")


def test_what_grew_names_head_only_tasks_no_growth_and_widths_after_a_deepening_by_count():
    assert what_grew([{"op": "add_head", "n_classes": 2}], MLP_BEFORE, MLP_BEFORE) == \
        "no growth (a head for 2 classes was added)"
    renamed = [{"op": "deepen", "at": "hidden.0"}, {"op": "widen", "layer": "hidden.2", "by": 4, "mode": "zero"}]
    assert what_grew(renamed, MLP_BEFORE, {**MLP_BEFORE, "hidden": [16, 16, 20]}) == \
        "widened hidden.2 by 4 units and added a layer after hidden.0"
    split = [{"op": "widen", "layer": "hidden.0", "by": 3, "mode": "split"}, {"op": "widen", "layer": "hidden.0", "by": 5}]
    assert what_grew(split, MLP_BEFORE, None) == "widened hidden.0 from 16 to 24 units (3 split, 5 new)"
    pnn_before = {"kind": "pnn", "hidden": [8], "conv": [], "head": {"kind": "multi", "classes": [2]}}
    pnn_after = {**pnn_before, "head": {"kind": "multi", "classes": [2, 2]}}
    assert what_grew([{"op": "add_head", "n_classes": 2}], pnn_before, pnn_after) == "added c1 hidden · 8"


def test_a_rule_grower_gives_its_rule_and_its_own_decision():
    record = {"task": 1, "grower": "schedule", "applied": APPLIED[:2], "spec_before": MLP_BEFORE, "candidates": [],
              "reasons": {"rule": "every 1 task(s): width x1.5", "decision": "1 operator(s)"}}
    assert growth_sentence(record, {**MLP_BEFORE, "hidden": [47, 16]}) == \
        "Task 1: widened hidden.0 from 16 to 47 units: rule: every 1 task(s): width x1.5."


def test_growers_word_their_own_reasons():
    mntdp = {"task": 2, "grower": "mntdp", "applied": [{"op": "add_module", "depth": 1, "index": 2}],
             "reasons": {"variant": "D", "knn_accuracy": {"0": 0.71, "1": 0.93}, "sources": [1]},
             "candidates": [{"reuse": 2, "head": "new", "val_acc": 0.88}, {"reuse": 1, "head": "new", "val_acc": 0.95}],
             "chosen": 1}
    assert growth_sentence(mntdp, None) == (
        "Task 2: added 1 module(s) (1.2): the kNN prior ranked the past tasks' features task 1 0.93, task 0 0.71 and "
        "kept task(s) [1] as source; MNTDP-D weighed 2 paths and kept the one reusing 1 module(s) with head new "
        "(validation accuracy 0.950 against 0.880 for the next best).")
    firefly = {"task": 0, "grower": "firefly", "applied": [{"op": "widen", "layer": "hidden.0", "by": 5, "mode": "zero"}],
               "reasons": {"rounds": [{"round": 0, "candidates": {"split": 16, "new": 8}, "n_chosen": 5,
                                       "chosen": {"hidden.0": {"new": 5}}, "score_threshold": 0.25},
                                      {"round": 1, "stop": "solved"}]},
               "candidates": [{"round": 0, "group": "hidden.0", "kind": "new", "score": -0.5, "chosen": True},
                              {"round": 0, "group": "hidden.0", "kind": "split", "score": 0.1, "chosen": False}]}
    assert growth_sentence(firefly, None) == (
        "Task 0: widened hidden.0 by 5 units: step 0: 16 split and 8 new candidate units scored by |Taylor score|, "
        "the 5 above 0.25 kept (hidden.0: 5 new); then stopped: solved.")
    assert candidate_table(firefly)[1] == [["0", "hidden.0", "new", "1", "1", "0.5", "0.25"],
                                           ["0", "hidden.0", "split", "1", "0", "0.1", "0.25"]]
    bindgrow = {"task": 2, "grower": "bindgrow", "applied": [], "candidates": [],
                "reasons": {"rsa_binding": 1, "binding": 1, "old_tasks": [0, 1], "task_conflicts": [0.5, 0.3],
                            "conflicts": [[0.1, 0.4], [0.05, 0.25]], "delta": 0.6, "nucleus": [1], "rule": "fixed delta 0.6"}}
    assert growth_sentence(bindgrow, None) == (
        "Task 2: no growth: RSA conflict with the old tasks task 0 0.50, task 1 0.30: bound to task 1 (conflict per "
        "depth 0.05, 0.25); δ = 0.6 grew the nucleus at depth(s) [1]; rule: fixed delta 0.6.")


def test_the_candidate_table_marks_the_chosen_and_the_pruned_with_their_fidelity():
    header, rows = candidate_table(SEARCH)
    assert header[0] == "trial" and header[-1] == "status" and len(rows) == 4
    status = header.index("status")
    assert [r[status] for r in rows] == ["complete", "pruned: halving", "chosen", "complete"]
    assert rows[1][header.index("epochs (rung)")] == "3 (0)"
    assert candidate_table({"candidates": []}) == ([], [])


def test_short_numbers():
    assert [short_number(v) for v in (999, 1234, 3.4e6, 2.5e9)] == ["999", "1.23k", "3.4M", "2.5G"]


@pytest.mark.parametrize("spec, names", [
    (MLP_AFTER, ["hidden.0", "hidden.1", "hidden.2"]),
    ({"kind": "convnet", "conv": [{"width": 8}], "fc": [32]}, ["conv.0", "fc.0"]),
    ({"kind": "resnet", "stages": [{"width": 8, "blocks": 2}, {"width": 16, "blocks": 1}]}, ["stem", "stage.0", "stage.1"]),
    ({"kind": "modular", "modules": [{"type": "linear", "width": 8}] * 2, "library": [2, 1], "paths": [[0, 0], [1, 0]]},
     ["module 0.0", "module 0.1", "module 1.0"]),
    ({"kind": "expandable", "extractor": {"kind": "mlp", "hidden": [8]}, "extractor_classes": [2, 2]},
     ["extractor 0 hidden.0", "extractor 1 hidden.0"]),
    ({"kind": "unknown"}, []),
])
def test_every_net_kind_reads_as_blocks(spec, names):
    assert [b.name for b in blocks_of(spec)] == names


def test_changes_align_deepened_stacks_and_grids():
    assert changes(MLP_BEFORE, MLP_AFTER, APPLIED) == {"hidden.0": 31, "hidden.1": "new", "hidden.2": 0}
    assert changes(None, MLP_AFTER, []) == {"hidden.0": 0, "hidden.1": 0, "hidden.2": 0}
    before = {"kind": "modular", "modules": [{"type": "linear", "width": 8}] * 2, "library": [1, 1], "paths": [[0, 0]]}
    after = {**before, "library": [2, 1], "paths": [[0, 0], [1, 0]]}
    assert changes(before, after, []) == {"module 0.0": 0, "module 0.1": "new", "module 1.0": 0}
    assert [b.name for b in task_path(after, 1)] == ["module 0.1", "module 1.0"]
    assert task_path(MLP_AFTER, 0) == []


def test_frozen_entries_follow_freezing_down_to_the_old_rows_of_a_widened_layer():
    net = build({"kind": "mlp", "hidden": [4], "input_shape": [1, 2, 2], "head": {"kind": "multi", "classes": [2]}})
    freeze = Freeze()
    freeze.after_task(type("L", (), {"net": net})(), None)  # everything learnt so far is old
    growth = ops.widen(net, "hidden.0", by=2, mode="zero")
    freeze.on_growth(growth)
    frozen = frozen_entries(growth.net, [freeze])
    assert frozen["layers.0.weight"] == [4 * 4, 6 * 4]  # old units' rows fixed, the 2 new rows train
    assert frozen["layers.0.bias"] == [4, 6]
    assert frozen_entries(growth.net, [])["layers.0.weight"] == [0, 24]
    block = blocks_of(growth.net.spec)[0]
    assert frozen_share(block, frozen) == pytest.approx((16 + 4) / (24 + 6))


def test_the_architecture_figure_draws_every_task_and_caps_long_streams(tmp_path):
    results = Results(costs=[{"spec": MLP_BEFORE, "frozen": {}}, {"spec": MLP_AFTER, "frozen": {"layers.0.weight": [16, 47]}}],
                      growth=[{"applied": []}, {"applied": APPLIED, "spec_before": MLP_BEFORE}],
                      accuracy=[[1.0], [1.0, 1.0]])
    path = architecture_figure(results, tmp_path / "arch.png")
    assert path is not None and path.read_bytes()[:4] == b"\x89PNG"
    assert architecture_figure(Results(costs=[{"spec": {"kind": "unknown"}}]), tmp_path / "none.png") is None
    assert shown_tasks(5) == [0, 1, 2, 3, 4]
    shown = shown_tasks(100)
    assert len(shown) == 12 and shown[0] == 0 and shown[-1] == 99


def test_widen_keeps_what_the_drawing_reads(tmp_path):
    """The spec a widened net reports is what `blocks_of` reads: widths from the net itself, not assumed."""
    net = build({"kind": "mlp", "hidden": [4], "input_shape": [1, 2, 2], "head": {"kind": "single", "classes": 2}})
    grown = ops.widen(net, "hidden.0", by=3).net
    assert [b.width for b in blocks_of(grown.spec)] == [7]
    assert torch.equal(grown.layers[0].weight[:4], net.layers[0].weight)
