"""NASWOT without training, and the searched growers' first filter built on it (`zero_cost: naswot`)."""

from __future__ import annotations

import math
from types import SimpleNamespace

import pytest
import torch
from search_fixtures import QUICK, learn, learner_for
from trainer_fixtures import make_tasks

from selfgrow.errors import SelfgrowError
from selfgrow.growth import build_grower
from selfgrow.growth.zero_cost import NaswotFilter, naswot
from selfgrow.report.explain import why_chosen

# three inputs whose codes under an identity layer + ReLU are (1, 1), (1, 0), (0, 0): the units on which each pair
# agrees give K = [[2, 1, 0], [1, 2, 1], [0, 1, 2]], whose determinant is 2 * 3 - 1 * 2 = 4
X = torch.tensor([[1.0, 1.0], [1.0, -1.0], [-1.0, -1.0]])


class Identity(torch.nn.Module):
    """An identity linear layer followed by `relus` ReLUs, applied as a module, a function and a method in turn."""

    def __init__(self, relus: int = 1) -> None:
        super().__init__()
        self.linear = torch.nn.Linear(2, 2, bias=False)
        with torch.no_grad():
            self.linear.weight.copy_(torch.eye(2))
        self.relus = relus
        self.relu = torch.nn.ReLU()

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        h = self.linear(x)
        applied = (self.relu, torch.relu, torch.Tensor.relu)
        for k in range(self.relus):
            h = applied[k % 3](h)
        return h


def test_naswot_is_the_log_determinant_of_the_hand_computed_kernel():
    assert naswot(Identity(1), X) == pytest.approx(math.log(4), rel=1e-12)
    # every ReLU counts once however it is applied: k layers of the same codes give k K, det k^3 x 4
    for relus in (2, 3):
        assert naswot(Identity(relus), X) == pytest.approx(math.log(relus**3 * 4), rel=1e-12)


def test_naswot_leaves_the_net_untouched_and_inputs_sharing_a_code_give_minus_infinity():
    net = Identity(1).eval()
    before = {k: v.clone() for k, v in net.state_dict().items()}
    naswot(net, X)
    assert not net.training and all(torch.equal(v, before[k]) for k, v in net.state_dict().items())
    assert naswot(net, torch.tensor([[1.0, 1.0], [2.0, 3.0]])) == -math.inf  # both codes (1, 1): K singular


def test_a_net_without_relu_is_refused_in_one_sentence():
    with pytest.raises(ValueError, match="applied none; accepted: a net whose forward pass applies ReLU"):
        naswot(torch.nn.Linear(2, 2), X)


def filter_of(enqueued: list[dict]) -> NaswotFilter:
    """A filter whose point {"k": k} is the identity net with k ReLUs: score 3 log k + log 4, one FLOP per input."""
    return NaswotFilter(lambda params: Identity(params["k"]), X, lambda net: 1.0, enqueued)


def test_the_filter_screens_a_point_below_the_median_of_those_scored_before_it():
    screen = filter_of([{"k": 2}, {"k": 4}])  # the enqueued points are scored first: median of k = 2, 4 is k ~ 2.83
    assert screen.flops == 2 * len(X)
    assert screen({"k": 3}, []) is None
    reason = screen({"k": 1}, [])
    median = math.log(3**3 * 4)  # of k = 2, 3, 4
    assert reason == f"NASWOT {math.log(4):.2f} below the median {median:.2f} of the 3 other point(s) scored"
    assert screen({"k": 5}, []) is None
    # a point asked again is compared with the others only, and scored once
    assert screen({"k": 3}, []) is None and screen.flops == 5 * len(X)
    assert screen.describe() == {"score": "naswot", "batch": 3, "scored": 5, "screened": 1, "flops": 15.0}


def test_the_first_sampled_point_passes_when_nothing_was_enqueued():
    screen = filter_of([])
    assert screen({"k": 1}, []) is None
    assert screen({"k": 1}, []) is None  # no other point scored yet
    assert screen({"k": 2}, []) is None and screen({"k": 1}, []) is not None


def test_a_searched_grower_screens_points_by_naswot_untrained_and_counts_the_forward_passes():
    # the largest point enqueued beside no growth: the median starts between the two, so smaller points are screened
    largest = {"widen:hidden.0": 4.0, "deepen:hidden.0": 1}
    options = {**QUICK, "n_trials": 4, "width_factors": [1.0, 1.5, 2.0, 3.0, 4.0], "max_deepen": 1,
               "initial_points": [largest], "zero_cost": "naswot",
               "record": None}  # no knowledge base: no meta-feature probe in search_flops
    _, records = learn("searched", options, n_tasks=2, hidden=[32])
    screened_in_all = 0
    for record in records:
        plan = record.plan
        screened = [c for c in plan.candidates if c["status"] == "screened"]
        screened_in_all += len(screened)
        assert all(c["reason"].startswith("NASWOT ") and c["spent_flops"] == 0.0 for c in screened)
        for c in screened:
            score, median = (float(word) for word in c["reason"].split()[1:6:4])
            assert score <= median and c["params"] != largest  # below it, as the reason prints both (2 decimals)
        assert sum(c["status"] != "screened" and c.get("counted", True) for c in plan.candidates) == 4
        filtered = plan.reasons["zero_cost"]
        assert filtered["screened"] == len(screened) and filtered["batch"] == 24  # every training sample of the fixture task
        assert filtered["scored"] >= 1 + len(screened) and filtered["flops"] > 0
        trained = sum(c["spent_flops"] for c in plan.candidates)
        assert plan.search_flops == pytest.approx(trained + filtered["flops"], rel=1e-12)
        assert f"screened {len(screened)} below the median" in why_chosen(plan.explain())
        assert plan.candidates[plan.chosen]["status"] != "screened"
        assert plan.reasons["objectives"][-1].startswith("first filter: NASWOT without training")
    assert screened_in_all > 0


def test_the_filter_is_off_by_default_and_a_bad_score_or_search_workers_are_refused():
    _, records = learn("searched", QUICK, n_tasks=1)
    assert "zero_cost" not in records[0].plan.reasons
    assert not any("NASWOT" in text for text in records[0].plan.reasons["objectives"])
    with pytest.raises(SelfgrowError, match="zero_cost='synflow' is invalid; accepted: null or one of naswot"):
        build_grower("searched", zero_cost="synflow")
    learner = learner_for("searched", {**QUICK, "zero_cost": "naswot"})
    learner.search_backend = SimpleNamespace()
    with pytest.raises(SelfgrowError, match="needs the search in this process; accepted: no search workers"):
        learner.learn(make_tasks(1)[0])
