"""Baseline methods as named config fragments (`method: ewc` in a config or `--method ewc`).

A fragment uses the run config's own sections: `mode` ("shared" or "independent": a fresh net per
task), `net` (`preset` / `options` / `spec`; a `spec` here omits `input_shape` and `head`, which come
from the stream), `growth` (`name`, `options`), `retention` (a list of `{name, options}`) and
`trainer` overrides. Sections a fragment leaves out keep the config's values; keys the user sets
explicitly are meant to win over the fragment.

Budgets and strengths are the common choices for small streams (a 500-sample memory, GEM's and
A-GEM's 100 samples per task, i.e. 500 after five tasks, EWC lambda 100, LwF T = 2); change them
through the config like any option. "icarl" is Rebuffi et al. 2017's method (herding exemplars mixed
into the training set, sigmoid binary cross-entropy with distilled old-class targets, nearest mean of
exemplars at test time), with a 500-sample memory where the paper keeps 2000 on CIFAR-100; "icarl-lwf"
is the simpler variant many papers report as iCaRL-like (LwF's softmax KD at T = 2, a replay batch per
step, the trained head). "searched-meta" records into and
consults the default growth knowledge base (`selfgrow.search.meta`: $SELFGROW_META, else a journal under
~/.cache/selfgrow), so each run's searches start from what earlier runs on similar tasks chose (and, for a stream
run again, from what its own earlier runs of each task found best, their searches pooled).
"""

from __future__ import annotations

import copy
from dataclasses import dataclass, field
from typing import Any

from selfgrow.errors import unknown_name

MEMORY = 500  # replay budget in samples shared by the rehearsal baselines


@dataclass(frozen=True)
class Method:
    """A baseline: a one-line description (for `selfgrow list`), its config fragment, its scenarios.

    `task_il_only`: the method needs the task id at test time (a column, path or mask per task).
    """

    description: str
    config: dict[str, Any] = field(default_factory=dict)
    task_il_only: bool = False


def _fixed(retention: list[dict[str, Any]], **sections: Any) -> dict[str, Any]:
    """A fragment with a non-growing backbone, shared net and the given retention list."""
    return {"mode": "shared", "growth": {"name": "fixed", "options": {}}, "retention": retention, **sections}


def _replay(selection: str, balance: str) -> dict[str, Any]:
    return {"name": "replay", "options": {"budget": MEMORY, "selection": selection, "balance": balance}}


_LWF = {"name": "lwf", "options": {"alpha": 1.0, "temperature": 2.0}}

METHODS: dict[str, Method] = {
    "finetune": Method("fine-tune the configured net task after task, no retention (the lower bound)", _fixed([])),
    "independent": Method(
        "a fresh net per task, trained on that task alone (task id used as an oracle)",
        {**_fixed([]), "mode": "independent"},
    ),
    "joint": Method(
        "train on the union of all tasks seen so far (the upper bound; replays every earlier sample)",
        _fixed([{"name": "joint", "options": {}}]),
    ),
    "fixed-small": Method(
        "fine-tune a fixed small MLP (one hidden layer of 64), no growth, no retention",
        _fixed([], net={"preset": "mlp-small", "options": {}}),
    ),
    "fixed-large": Method(
        "fine-tune a fixed large MLP (two hidden layers of 1000), no growth, no retention",
        _fixed([], net={"preset": "mlp-pmnist", "options": {}}),
    ),
    "ewc": Method(
        "elastic weight consolidation (Kirkpatrick et al. 2017), a Fisher penalty per old task",
        _fixed([{"name": "ewc", "options": {"lam": 100.0}}]),
    ),
    "online-ewc": Method(
        "online EWC (Schwarz et al. 2018), one running Fisher with decay 0.9",
        _fixed([{"name": "ewc", "options": {"lam": 100.0, "online": True, "gamma": 0.9}}]),
    ),
    "lwf": Method("Learning without Forgetting (Li & Hoiem 2016), distillation of old outputs at T=2", _fixed([_LWF])),
    "er": Method(
        f"experience replay of a {MEMORY}-sample reservoir memory (Chaudhry et al. 2019)",
        _fixed([_replay("reservoir", "none")]),
    ),
    "gem": Method(
        f"GEM (Lopez-Paz & Ranzato 2017): {MEMORY // 5} memory samples per task, no update raises an old task's loss",
        _fixed([{"name": "gem", "options": {"per_task": MEMORY // 5}}]),
    ),
    "agem": Method(
        f"A-GEM (Chaudhry et al. 2019): {MEMORY // 5} memory samples per task, one averaged constraint per step",
        _fixed([{"name": "agem", "options": {"per_task": MEMORY // 5}}]),
    ),
    "icarl": Method(
        f"iCaRL (Rebuffi et al. 2017): {MEMORY} herding exemplars in the data, sigmoid BCE distillation, NME classifier",
        _fixed([{**_replay("herding", "class"), "options": {**_replay("herding", "class")["options"], "mix": "dataset",
                                                             "classifier": "nme"}},
                {"name": "icarl_bce", "options": {}}]),
    ),
    "icarl-lwf": Method(
        f"iCaRL-like: {MEMORY}-sample herding memory per class replayed each step + LwF distillation, trained head",
        _fixed([_replay("herding", "class"), _LWF]),
    ),
    "icarl-wa": Method(
        "iCaRL-like rehearsal + distillation with weight aligning of the class-IL head (Zhao et al. 2020)",
        _fixed([_replay("herding", "class"), _LWF, {"name": "bias_correction", "options": {}}]),
    ),
    "bic": Method(
        f"BiC (Wu et al. 2019): {MEMORY}-sample herding memory + LwF, new-class logits corrected on held-out data",
        _fixed([_replay("herding", "class"), _LWF, {"name": "bic", "options": {}}]),
    ),
    "pnn": Method(
        "Progressive Neural Networks (Rusu et al. 2016): a frozen MLP column per task, lateral links (task-IL)",
        _fixed([], net={"spec": {"kind": "pnn", "hidden": [64, 64]}}),
        task_il_only=True,
    ),
    "expandable-rep": Method(
        "expandable representation (simple DER, Yan et al. 2021): an extractor per task, one head, herding memory",
        _fixed([_replay("herding", "class")],
               net={"spec": {"kind": "expandable", "extractor": {"kind": "mlp", "hidden": [64]}}}),
    ),
    "firefly": Method(
        "Firefly descent (Wu et al. 2020): eps-gated splits and new units by Taylor score, top 30% per task",
        {"mode": "shared", "growth": {"name": "firefly", "options": {}}, "retention": []},
    ),
    "firefly-cl": Method(
        "Firefly continual (Wu et al. 2020, 2.4): locked units, unlocked copies, unit masks; set unit_masks: true",
        {"mode": "shared", "growth": {"name": "firefly", "options": {"continual": True, "good_enough": 0.95}},
         "retention": [{"name": "freeze", "options": {}}]},
        task_il_only=True,
    ),
    "mntdp-d": Method(
        "MNTDP-D (Veniat et al. 2021): modular net, kNN task prior, every candidate path trained, best kept",
        _fixed([], growth={"name": "mntdp", "options": {"variant": "D"}},
               net={"preset": "modular-resnet18-reduced", "options": {}}),
        task_il_only=True,
    ),
    "mntdp-s": Method(
        "MNTDP-S (Veniat et al. 2021): modular net, kNN task prior, path distribution learnt by REINFORCE",
        _fixed([], growth={"name": "mntdp", "options": {"variant": "S"}},
               net={"preset": "modular-resnet18-reduced", "options": {}}),
        task_il_only=True,
    ),
    "den": Method(
        "DEN (Yoon et al. 2018): selective retraining, sparse expansion, split of drifted units; needs unit_masks",
        {"mode": "shared", "growth": {"name": "den", "options": {}}, "retention": []},
        task_il_only=True,
    ),
    "learn-to-grow": Method(
        "Learn to Grow (Li et al. 2019): modular net, per depth reuse / adapt / new chosen by a DARTS relaxation",
        _fixed([], growth={"name": "learn-to-grow", "options": {}},
               net={"preset": "modular-resnet18-reduced", "options": {}}),
        task_il_only=True,
    ),
    "searched-meta": Method(
        "growth search warm-started from the knowledge base: the nearest past tasks' best points tried after no growth",
        _fixed([_replay("herding", "class"), _LWF],
               growth={"name": "searched", "options": {"warm_start": {"from": "default", "k": 3, "within": 2}}}),
    ),
    "bindgrow": Method(
        "Learn to Bind and Grow (L2BG): bind to the least RSA-conflicting task, grow the delta-nucleus, slow-lr",
        _fixed([{"name": "slow_lr", "options": {"factor": 0.1}}], growth={"name": "bindgrow", "options": {}},
               net={"spec": {"kind": "jointnet", "modules": [
                   {"type": "stem", "width": 16}, {"type": "blocks", "width": 16, "stride": 2},
                   {"type": "blocks", "width": 32, "stride": 2}, {"type": "blocks", "width": 32, "stride": 2}]}}),
        task_il_only=True,
    ),
}


def method_names() -> list[str]:
    """The names accepted by `resolve_method`, in the order of `METHODS`."""
    return list(METHODS)


def describe_methods() -> dict[str, str]:
    """Name -> one-line description (for `selfgrow list`)."""
    return {name: m.description for name, m in METHODS.items()}


def resolve_method(name: str) -> dict[str, Any]:
    """A fresh copy of the config fragment of method `name` (unknown names raise `SelfgrowError`)."""
    if name not in METHODS:
        raise unknown_name("method", name, METHODS)
    return copy.deepcopy(METHODS[name].config)
