"""The cost-gp sampler: a GP over (parameters, log cost) proposes untried points within the budget."""

from __future__ import annotations

import itertools
import math

import optuna
import pytest
from optuna.distributions import CategoricalDistribution, FloatDistribution, IntDistribution
from search_fixtures import learner_for
from trainer_fixtures import make_tasks

from selfgrow.errors import SelfgrowError
from selfgrow.nets import ops
from selfgrow.search import Proposal, SearchSettings, make_sampler, run_search

FACTORS = [1.0, 2.0, 4.0, 8.0]
SPACE = {f"widen:{i}": CategoricalDistribution(FACTORS) for i in range(3)}
CAP = 64.0  # points whose widths multiply to more are over the budget


def _cost(params):
    return math.prod(params[f"widen:{i}"] for i in range(3))


class _Scored:
    """A candidate whose score rises with its log cost, plus a small fixed wobble per point (no noise)."""

    spent_flops = 0.0

    def __init__(self, params):
        self.score = 0.5 + 0.05 * math.log2(_cost(params)) + 0.001 * params["widen:0"]

    def train_to(self, epochs):
        return {"accuracy": self.score, "se": 0.0}


def _propose(params):
    over = f"cost {_cost(params)} > {CAP}" if _cost(params) > CAP else None
    return Proposal(key=str(sorted(params.items())), cost=_cost(params), over_budget=over)


def _search(sampler, seed, n_trials=8):
    settings = SearchSettings(n_trials=n_trials, sampler=sampler, epochs=[1], halving_batch=2, seed=seed,
                              n_startup_trials=4)
    return run_search(settings, f"{sampler}-{seed}", SPACE, _propose, _Scored)


@pytest.mark.parametrize("seed", range(4))
def test_after_its_start_it_proposes_untried_points_within_the_budget_and_climbs_the_cost(seed):
    records = [r for r in _search("cost-gp", seed).records if r.get("counted", True)]
    start, modelled = records[:4], records[4:]
    for i, record in enumerate(modelled):  # never a point asked before (the random start may repeat itself)
        assert record["params"] not in [r["params"] for r in records[:4 + i]]
    assert all(r["status"] == "complete" for r in modelled)  # never over the budget once the model proposes
    # the scores rise with the cost: the model's first proposals are at the budget, above everything the start saw
    assert max(r["cost"] for r in modelled[:2]) == CAP
    assert max(r["accuracy"] for r in modelled) > max(r["accuracy"] for r in start if r["status"] == "complete")


def test_it_finds_the_best_point_within_the_budget_sooner_than_random_search():
    best = max(_Scored(p).score for p in _every_point() if _cost(p) <= CAP)
    found = {sampler: [max(r["accuracy"] for r in _search(sampler, seed).finished()) for seed in range(4)]
             for sampler in ("cost-gp", "random")}
    assert found["cost-gp"] == [best] * 4
    assert sum(found["random"]) < 4 * best


def test_the_same_seed_asks_the_same_points():
    first, again = _search("cost-gp", 3), _search("cost-gp", 3)
    assert [r["params"] for r in first.records] == [r["params"] for r in again.records]


def test_it_reads_categories_integers_and_floats_and_stays_in_their_space():
    space = {"classifier": CategoricalDistribution(["head", "nme"]), "deepen": IntDistribution(0, 2),
             "alpha": FloatDistribution(0.1, 10.0, log=True)}
    study = optuna.create_study(directions=["maximize", "minimize"],
                                sampler=make_sampler("cost-gp", 0, n_startup_trials=3,
                                                     cost_of=lambda p: 1.0 + p["deepen"] + p["alpha"]))
    for _ in range(6):
        trial = study.ask(space)
        value = (trial.params["classifier"] == "nme") + trial.params["deepen"] - abs(math.log(trial.params["alpha"]))
        study.tell(trial, [value, 1.0 + trial.params["deepen"] + trial.params["alpha"]])
    for trial in study.trials:
        assert trial.params["classifier"] in ("head", "nme") and trial.params["deepen"] in (0, 1, 2)
        assert 0.1 <= trial.params["alpha"] <= 10.0


def test_without_the_points_costs_it_is_refused_in_one_sentence():
    with pytest.raises(SelfgrowError, match="sampler 'cost-gp' needs the points' costs.*accepted"):
        make_sampler("cost-gp", 0)


def _every_point():
    return [{"widen:0": a, "widen:1": b, "widen:2": c} for a in FACTORS for b in FACTORS for c in FACTORS]


def test_the_cost_it_reads_is_none_over_the_budget_and_leaves_the_random_streams_alone():
    import torch

    from selfgrow.search.engine import cost_within_budget

    def drawing_propose(params):
        torch.rand(1)  # growing a net draws weights
        return _propose(params)

    cost_of = cost_within_budget(drawing_propose)
    torch.manual_seed(0)
    expected = torch.rand(1)
    torch.manual_seed(0)
    assert cost_of({"widen:0": 2.0, "widen:1": 4.0, "widen:2": 8.0}) == 64.0
    assert cost_of({"widen:0": 8.0, "widen:1": 8.0, "widen:2": 2.0}) is None
    assert torch.equal(torch.rand(1), expected)


def test_candidates_pruned_by_the_halving_count_towards_its_start():
    # batches of 4 raced over two rungs: the complete and the pruned candidates of the first batch make the start of
    # 4, so the second batch is the model's: only untried points within the budget (random search asks some over it)
    def second_batch(sampler, seed):
        settings = SearchSettings(n_trials=8, sampler=sampler, epochs=[1, 2], eta=2, halving_batch=4, seed=seed,
                                  n_startup_trials=4)
        records = run_search(settings, f"halved-{sampler}", SPACE, _propose, _Scored).records
        first = [r for r in records if r["batch"] == 0]
        assert [r["status"] for r in first].count("pruned") >= 1  # the start is not all complete candidates
        return first, [r for r in records if r["trial"] > max(f["trial"] for f in first)]

    for seed in range(4):
        first, later = second_batch("cost-gp", seed)
        assert [r["status"] for r in later if r["status"] == "over_budget"] == []
        assert not any(r["params"] == f["params"] for r in later for f in first)
    assert any(r["status"] == "over_budget" for seed in range(4) for r in second_batch("random", seed)[1])


def test_a_searched_growers_costs_come_from_its_net_grown_on_the_meta_device():
    # what cost-gp asks of every pool point: the same proposal as the real growth, with no memory nor compute, so a
    # point of a quarter of a billion parameters costs what a small one does
    task = make_tasks(1)[0]
    learner = learner_for("searched", {"width_factors": [1.0, 2.0, 8.0], "max_deepen": 1, "max_params": 5000},
                          hidden=[8, 8])
    learner.net = ops.add_classes(learner.net, 2).net
    propose = learner.grower.problem(learner, task)[0]
    space = learner.grower.search_space(learner, task)
    points = [dict(zip(space, values)) for values in itertools.product(
        *([*d.choices] if hasattr(d, "choices") else range(d.low, d.high + 1) for d in space.values()))]
    real = {str(p): propose(p) for p in points}
    propose.sizing(points[0])
    propose.net = None  # from here on only the meta copy can answer (the real growth would fail)
    for point in points:
        sized, grown = propose.sizing(point), real[str(point)]
        assert (sized.key, sized.cost, sized.over_budget, sized.info["n_params"]) == (
            grown.key, grown.cost, grown.over_budget, grown.info["n_params"])
    assert {p.device.type for p in propose._meta.parameters()} == {"meta"}
    wide = learner_for("searched", {"width_factors": [1.0, 8.0], "max_deepen": 1}, hidden=[2048, 2048])
    wide.net = ops.add_classes(wide.net, 2).net
    proposer = wide.grower.problem(wide, task)[0]
    proposer.sizing({"widen:hidden.0": 1.0, "widen:hidden.1": 1.0, "deepen:hidden.0": 0, "deepen:hidden.1": 0})
    proposer.net = None
    # a real growth would take 2 GB: both layers 8x wider and a layer of 16,384 x 16,384 built anew by deepen
    huge = proposer.sizing({"widen:hidden.0": 8.0, "widen:hidden.1": 8.0, "deepen:hidden.0": 1, "deepen:hidden.1": 0})
    assert huge.info["n_params"] > 2 * 16384 * 16384
