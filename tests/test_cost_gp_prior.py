"""The cost-gp sampler's prior from past searches (warm_start prior: true): what it proposes with it, when it drops
it, how the knowledge base hands it over, in one process and to distributed workers."""

from __future__ import annotations

import itertools
import math

import optuna
import pytest
from search_fixtures import QUICK, digits_run, distributed_digits_run, learn
from test_cost_gp import CAP, SPACE, _cost, _propose, _Scored

from selfgrow.errors import SelfgrowError
from selfgrow.growth import build_grower
from selfgrow.search import SearchSettings, make_sampler, run_search
from selfgrow.search.cost_gp import MIN_AGREEING, CostGPSampler
from selfgrow.search.distributed import PRIOR_ATTR
from selfgrow.search.storage import make_storage

POINTS = [dict(zip(SPACE, values)) for values in itertools.product(*(d.choices for d in SPACE.values()))]


def _relative(points, sign=1.0):
    """`points` with the made-up landscape's scores (negated with sign -1: a prior pointing the wrong way) minus
    their mean, as a past search's candidates reach the sampler."""
    scores = [sign * _Scored(p).score for p in points]
    mean = sum(scores) / len(scores)
    return [(p, s - mean) for p, s in zip(points, scores)]


def _trials_to_best(prior, seed):
    settings = SearchSettings(n_trials=8, sampler="cost-gp", epochs=[1], halving_batch=2, seed=seed,
                              n_startup_trials=8)  # a start of the whole search: only a prior can end it
    records = [r for r in run_search(settings, f"prior-{seed}", SPACE, _propose, _Scored, prior=prior).records
               if r.get("counted", True)]
    best = max(_Scored(p).score for p in POINTS if _cost(p) <= CAP)
    return next((i + 1 for i, r in enumerate(records) if r.get("accuracy") == best), math.inf)


def test_a_prior_the_search_confirms_ends_the_random_start_and_finds_the_best_point():
    prior = _relative([p for p in POINTS if _cost(p) <= CAP][::3])
    found = [_trials_to_best(prior, seed) for seed in range(4)]
    assert all(trials <= 6 for trials in found), found  # confirmed after 2 batches, the model's first batch finds it
    assert max(_trials_to_best([], seed) for seed in range(4)) > 6  # without it the random start goes on


def test_a_prior_the_search_contradicts_is_left_out_and_one_it_confirms_is_used_during_the_start():
    def proposal_after(prior, told):
        sampler = CostGPSampler(lambda p: _cost(p) if _cost(p) <= CAP else None, seed=0, n_startup_trials=10,
                                prior=prior)
        study = optuna.create_study(directions=["maximize", "minimize"], sampler=sampler)
        for point in told:
            study.enqueue_trial(point)
            trial = study.ask(SPACE)
            study.tell(trial, [_Scored(point).score, _cost(point)])
        return study.ask(SPACE).params

    told = [p for p in POINTS if p["widen:1"] == p["widen:2"] == 1.0][:MIN_AGREEING]  # scores rise with cost
    within = [p for p in POINTS if _cost(p) <= CAP]
    right = _relative(within)
    assert proposal_after(right, told[:MIN_AGREEING - 1]) == proposal_after([], told[:MIN_AGREEING - 1])  # too soon
    random = proposal_after([], told)  # 3 trained of a start of 10: a random point
    assert proposal_after(_relative(within, sign=-1.0), told) == random  # ranks them backwards: dropped
    assert _cost(proposal_after(_relative(within), told)) == CAP  # ranks them rightly: the model proposes
    assert _cost(random) != CAP


def test_only_cost_gp_takes_a_prior_and_a_bad_prior_option_is_refused_in_one_sentence():
    with pytest.raises(SelfgrowError, match="sampler 'tpe' takes no prior"):
        make_sampler("tpe", 0, prior=[({"x": 1}, 0.1)])
    with pytest.raises(SelfgrowError, match="prior: true needs the cost-gp sampler, not 'tpe'"):
        build_grower("searched", sampler="tpe", warm_start={"from": "x", "prior": True})
    with pytest.raises(SelfgrowError, match="'prior' \\(true or false"):
        build_grower("searched", warm_start={"from": "x", "prior": "yes"})


def test_a_run_hands_the_nearest_searches_candidates_to_the_sampler_and_its_report_says_how_many(tmp_path):
    journal = f"journal:{tmp_path / 'meta.journal'}"
    options = {**QUICK, "n_trials": 4, "halving_batch": 2}
    learn("searched", {**options, "record": journal}, n_tasks=1)
    _, warm = learn("searched", {**options, "record": None,
                                 "warm_start": {"from": journal, "k": 1, "max_distance": 10, "prior": True}}, n_tasks=1)
    past = [c for c in warm[0].plan.reasons["knowledge"]["consulted"]]
    assert len(past) == 1
    from selfgrow.search.meta import KnowledgeBase

    entry = next(e for e in KnowledgeBase(journal).entries() if e.key == past[0]["entry"])
    complete = [c for c in entry.candidates if c["status"] == "complete"]
    assert warm[0].plan.reasons["knowledge"]["prior"] == {"candidates": len(complete)}
    run_dir, growth = digits_run(tmp_path / "warm", "searched", {
        **options, "record": None, "warm_start": {"from": journal, "k": 1, "max_distance": 10, "prior": True}})
    count = growth[0]["reasons"]["knowledge"]["prior"]["candidates"]
    assert f"The sampler&#x27;s prior: {count} candidates" in (run_dir / "report.html").read_text()


@pytest.mark.timeout(180)
def test_distributed_workers_read_the_prior_from_the_task_study(tmp_path):
    journal = f"journal:{tmp_path / 'meta.journal'}"
    learn("searched", {**QUICK, "n_trials": 4, "halving_batch": 2, "record": journal}, n_tasks=1, hidden=None)
    result, storage = distributed_digits_run(tmp_path, "prior", {"name": "searched", "options": {
        "n_trials": 2, "epochs": 1, "halving_batch": 1, "record": None,
        "warm_start": {"from": journal, "k": 1, "max_distance": 10, "prior": True}}}, n_tasks=1)
    assert result.accuracy
    task_studies = [s for s in optuna.get_all_study_names(make_storage(storage)) if "-task0-" in s]
    prior = optuna.load_study(study_name=task_studies[0], storage=make_storage(storage)).user_attrs[PRIOR_ATTR]
    assert prior and all(isinstance(point, dict) and isinstance(score, float) for point, score in prior)
