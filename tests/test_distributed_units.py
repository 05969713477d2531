"""Pieces of the distributed search in one process: slots and retries, heartbeats, claims within the trial budget,
artifacts, per-candidate determinism, the winner's weights, a resumed coordinator reusing its study, config errors."""

from __future__ import annotations

import io
import json
import shutil
import threading
import time

import optuna
import pytest
import torch
from optuna.distributions import IntDistribution
from optuna.trial import TrialState, create_trial
from search_fixtures import distributed_digits_run, learner_for
from trainer_fixtures import make_tasks

from selfgrow.cli import main
from selfgrow.config_cli import parse_run_args
from selfgrow.errors import SelfgrowError
from selfgrow.experiment import run
from selfgrow.growth import build_grower
from selfgrow.growth.candidates import CandidateTraining, candidate_seed
from selfgrow.nets import build, ops
from selfgrow.search import SearchSettings
from selfgrow.search.artifacts import (
    download,
    make_artifact_store,
    pack,
    unpack,
    upload,
)
from selfgrow.search.distributed import RETRIED_ATTR, collect, settings_for
from selfgrow.search.engine import RECORD_ATTR
from selfgrow.search.liveness import HEARTBEAT_ATTR, Heartbeat, fail_stale_trials
from selfgrow.search.storage import make_storage, redact
from selfgrow.search.worker import claim
from selfgrow.train import accuracy

SPACE = {"x": IntDistribution(0, 9)}


def _told(number: int, status: str = "complete", **extra) -> dict:
    return {"trial": number, "batch": number, "params": {"x": number}, "cost": float(number), "status": status,
            **({"accuracy": 0.5} if status == "complete" else {}), **extra}


def _add(study, state, number, record=None, retries=None):
    """A trial of `state` with params x=number, its record, and (for a retry) the number of the trial it retries."""
    study.add_trial(create_trial(
        state=state, params={"x": number}, distributions=SPACE,
        values=[0.5, float(number)] if state == TrialState.COMPLETE else None,
        user_attrs={RECORD_ATTR: json.dumps(record)} if record else {},
        system_attrs={RETRIED_ATTR: retries} if retries is not None else {}))


def _study():
    return optuna.create_study(directions=["maximize", "minimize"])


def test_slots_take_the_result_of_their_last_retry_and_read_as_a_single_process_search():
    study = _study()
    _add(study, TrialState.COMPLETE, 0, _told(0))
    _add(study, TrialState.FAIL, 1)  # its worker died
    _add(study, TrialState.COMPLETE, 2, _told(2, batch=2), retries=1)  # the retry, raced alone
    _add(study, TrialState.COMPLETE, 3, _told(3, same_as=2, batch=3))  # a repeat of the retried point
    _add(study, TrialState.FAIL, 4, _told(4, "beyond_budget"))  # never a slot
    records = collect(study.get_trials(), 3, max_retry=2, give_up_after=60)
    assert [r["trial"] for r in records] == [0, 1, 2]  # slots, numbered as a single-process search numbers trials
    assert records[1]["params"] == {"x": 2} and records[1]["lost_trials"] == [1]
    assert records[2]["params"] == {"x": 3} and records[2]["same_as"] == 1  # trial 2 fills slot 1
    assert [r["batch"] for r in records] == [0, 1, 2]  # batches numbered by the slots of their first trials
    assert "lost_trials" not in records[0]


def test_a_slot_waits_for_its_retry_and_fails_when_retries_are_spent():
    study = _study()
    _add(study, TrialState.FAIL, 0)
    _add(study, TrialState.WAITING, 0, retries=0)
    assert collect(study.get_trials(), 1, max_retry=2, give_up_after=60) == [None]
    assert collect(study.get_trials()[:1], 2, max_retry=2, give_up_after=60) == [None, None]  # slots not all asked
    study = _study()
    _add(study, TrialState.FAIL, 0)
    _add(study, TrialState.FAIL, 0, retries=0)
    assert collect(study.get_trials(), 1, max_retry=2, give_up_after=60) == [None]  # a second retry is to come
    (record,) = collect(study.get_trials(), 1, max_retry=1, give_up_after=60)
    assert record["status"] == "failed" and "2 tries" in record["reason"] and record["lost_trials"] == [0, 1]
    (record,) = collect(study.get_trials(), 1, max_retry=5, give_up_after=0)  # the retry never appeared
    assert record["status"] == "failed"


def test_a_journal_sweep_fails_a_silent_trial_and_queues_it_again(tmp_path):
    storage = make_storage(f"journal:{tmp_path / 'j.log'}")
    study = optuna.create_study(storage=storage, directions=["maximize", "minimize"])
    silent, beating = study.ask(SPACE), study.ask(SPACE)
    with Heartbeat(storage, [beating._trial_id], interval=0.05):
        time.sleep(0.3)
        fail_stale_trials(study, storage, grace=0.2, max_retry=1)
        beat = study.get_trials()[beating.number].system_attrs[HEARTBEAT_ATTR]
        assert time.time() - beat < 0.2
    trials = study.get_trials()
    assert trials[silent.number].state == TrialState.FAIL and trials[beating.number].state == TrialState.RUNNING
    (retry,) = trials[2:]
    assert retry.state == TrialState.WAITING and retry.system_attrs[RETRIED_ATTR] == silent.number
    assert study.ask(SPACE).params == silent.params  # the retry is asked first, with the same point


def test_claims_take_waiting_trials_first_and_stay_within_the_budget():
    storage = optuna.storages.InMemoryStorage()
    study = optuna.create_study(storage=storage, directions=["maximize", "minimize"])
    study.enqueue_trial({"x": 7})
    settings = SearchSettings(n_trials=2, halving_batch=4, epochs=[1])
    first = claim(study, storage, settings, SPACE, "w")
    assert [t.params["x"] for t in first][:1] == [7] and len(first) == 2
    assert claim(study, storage, settings, SPACE, "w") == []
    study.enqueue_trial({"x": 3})  # e.g. a second worker asked concurrently: a point past the budget
    assert claim(study, storage, settings, SPACE, "w") == []
    last = study.get_trials()[-1]
    assert last.state == TrialState.FAIL and json.loads(last.user_attrs[RECORD_ATTR])["status"] == "beyond_budget"


def test_points_over_the_budget_are_turned_away_uncounted_between_the_slots():
    study = _study()
    _add(study, TrialState.COMPLETE, 0, _told(0))
    _add(study, TrialState.PRUNED, 1, _told(1, "over_budget", batch=None, counted=False))  # turned away at its ask
    _add(study, TrialState.COMPLETE, 2, _told(2))
    records = collect(study.get_trials(), 2, max_retry=2, give_up_after=60)
    assert [r["trial"] for r in records] == [0, 1, 2]  # numbered as the single-process search numbers them
    assert [r["batch"] for r in records] == [0, None, 1] and records[1]["counted"] is False
    assert collect(study.get_trials(), 3, max_retry=2, give_up_after=60)[3:] == [None]  # a counted slot to come


def test_claims_turn_points_over_the_budget_away_untrained_and_count_only_the_others():
    from selfgrow.search import Proposal
    from selfgrow.search.engine import UNTRAINED_FACTOR

    def propose(params):
        over = f"x={params['x']} > {limit}" if params["x"] > limit else None
        return Proposal(key=str(params["x"]), cost=float(params["x"]), over_budget=over)

    storage = optuna.storages.InMemoryStorage()
    study = optuna.create_study(storage=storage, directions=["maximize", "minimize"],
                                sampler=optuna.samplers.RandomSampler(seed=0))
    settings = SearchSettings(n_trials=2, halving_batch=4, epochs=[1])
    limit = 4
    claimed = claim(study, storage, settings, SPACE, "w", propose)
    assert len(claimed) == 2 and all(t.params["x"] <= limit for t in claimed)
    turned = [t for t in study.get_trials() if t.number not in {c.number for c in claimed}]
    records = [json.loads(t.user_attrs[RECORD_ATTR]) for t in turned]
    assert all(t.state == TrialState.PRUNED for t in turned)
    assert all(r["status"] == "over_budget" and r["counted"] is False and r["params"]["x"] > limit for r in records)
    assert claim(study, storage, settings, SPACE, "w", propose) == []  # two slots taken, whatever was turned away
    limit = -1  # nothing fits: after its share of turned-away points a claim takes them as trials
    study = optuna.create_study(storage=storage, directions=["maximize", "minimize"])
    (claimed,) = claim(study, storage, SearchSettings(n_trials=1, halving_batch=4, epochs=[1]), SPACE, "w", propose)
    assert claimed.number == UNTRAINED_FACTOR


def test_every_told_trial_carries_its_record_and_key():
    from selfgrow.search import Proposal, run_search
    from selfgrow.search.engine import KEY_ATTR

    class Fixed:
        spent_flops = 1.0

        def train_to(self, epochs):
            return {"accuracy": 0.25 * epochs}

    settings = SearchSettings(n_trials=3, epochs=[1, 2], halving_batch=3, seed=0)
    outcome = run_search(settings, "records", {"x": IntDistribution(0, 1)},
                         lambda p: Proposal(key=str(p["x"]), cost=float(p["x"])), lambda p: Fixed(),
                         enqueue=[{"x": 0}, {"x": 1}])
    for trial, record in zip(outcome.study.trials, outcome.records, strict=True):
        assert json.loads(trial.user_attrs[RECORD_ATTR]) == record and trial.user_attrs[KEY_ATTR] == str(trial.params["x"])
    assert outcome.records[2]["same_as"] == outcome.records[2]["params"]["x"]  # the third point repeats one of two


class _MemoryBucket:
    """Stands in for Optuna's Boto3ArtifactStore: the same three calls, objects kept in a dict per bucket."""

    buckets: dict[str, dict[str, bytes]] = {}

    def __init__(self, bucket_name: str) -> None:
        self.objects = self.buckets.setdefault(bucket_name, {})

    def open_reader(self, artifact_id: str) -> io.BytesIO:
        return io.BytesIO(self.objects[artifact_id])

    def write(self, artifact_id: str, content_body: io.BufferedIOBase) -> None:
        self.objects[artifact_id] = content_body.read()

    def remove(self, artifact_id: str) -> None:
        del self.objects[artifact_id]


def test_an_s3_bucket_holds_the_artifacts_through_optunas_store(monkeypatch, tmp_path):
    import optuna.artifacts

    monkeypatch.setattr(optuna.artifacts, "Boto3ArtifactStore", _MemoryBucket)
    store = make_artifact_store("s3://selfgrow-runs")
    storage = optuna.storages.InMemoryStorage()
    ref = upload(store, storage, optuna.create_study(storage=storage), "state.pt", pack({"w": torch.ones(2)}))
    assert list(_MemoryBucket.buckets["selfgrow-runs"]) == [ref["artifact"]]
    assert torch.equal(unpack(download(make_artifact_store("s3://selfgrow-runs/"), ref))["w"], torch.ones(2))
    config, _ = parse_run_args(["--storage", "journal:/x/j.log", "--workers", "1", "--artifacts", "s3://selfgrow-runs"])
    assert settings_for(config, tmp_path / "run").artifacts == "s3://selfgrow-runs"  # a URL, not a path


@pytest.mark.parametrize("location, message", [
    ("s3://bucket/prefix", "a whole bucket"),
    ("ftp://host/dir", "accepted: a directory, s3://BUCKET or gs://BUCKET"),
    ("gs://", "accepted: a directory"),
])
def test_unsupported_artifact_locations_are_refused_with_what_is_accepted(location, message):
    with pytest.raises(SelfgrowError, match=message):
        make_artifact_store(location)


def test_an_object_store_without_its_client_package_says_what_to_install(monkeypatch):
    import optuna.artifacts

    def missing(bucket_name: str) -> None:
        raise ImportError("boto3 is not installed")

    monkeypatch.setattr(optuna.artifacts, "Boto3ArtifactStore", missing)
    with pytest.raises(SelfgrowError, match="need the boto3 package"):
        make_artifact_store("s3://bucket")


def test_artifacts_round_trip_and_refuse_changed_or_unsafe_bytes(tmp_path):
    store = make_artifact_store(tmp_path / "artifacts")
    storage = optuna.storages.InMemoryStorage()
    study = optuna.create_study(storage=storage)
    state = {"weights": {"w": torch.arange(6.0).reshape(2, 3)}, "meta": {"task": 2, "ids": (1, 2)}}
    ref = upload(store, storage, study, "state.pt", pack(state))
    back = unpack(download(store, ref))
    assert torch.equal(back["weights"]["w"], state["weights"]["w"]) and back["meta"] == {"task": 2, "ids": [1, 2]}
    (tmp_path / "artifacts" / ref["artifact"]).write_bytes(pack({"weights": {}}))
    with pytest.raises(SelfgrowError, match="does not match the sha256"):
        download(store, ref)
    buffer = io.BytesIO()
    torch.save({"format": 1, "state": "{}", "tensors": {}, "code": threading.Thread}, buffer)  # needs pickle
    with pytest.raises(SelfgrowError, match="cannot be read"):
        unpack(buffer.getvalue())


def test_a_candidate_trains_alike_whatever_is_trained_beside_it():
    learner = learner_for("fixed")
    task = make_tasks(1)[0]
    learner.net = ops.add_classes(learner.net, 2).net
    grow = [{"op": "widen", "kwargs": {"layer": "hidden.0", "by": 4, "mode": "zero"}}]
    seed = candidate_seed(0, task.index, json.dumps(grow))
    alone = CandidateTraining(learner, task, grow, seed=seed)
    alone.train_to(1)
    alone.train_to(2)
    torch.manual_seed(123)  # the global stream is elsewhere now
    raced = CandidateTraining(learner, task, grow, seed=seed)
    raced.train_to(1)
    other = CandidateTraining(learner, task, [], seed=1)  # as in a race: others train between the rungs
    other.train_to(1)
    torch.rand(5)
    raced.train_to(2)
    a, b = alone.state_dict(), raced.state_dict()
    assert a.keys() == b.keys() and all(torch.equal(a[k], b[k]) for k in a)
    assert seed != candidate_seed(0, task.index + 1, json.dumps(grow))


def test_keep_winner_hands_the_chosen_candidates_trained_weights_to_the_learner():
    options = {"n_trials": 3, "epochs": 1, "halving_batch": 3, "width_factors": [1.0, 2.0], "max_deepen": 0,
               "initial_points": [{"widen:hidden.0": 2.0}, {"widen:elsewhere": 2.0}]}
    nets = {}
    for keep in (True, False):
        torch.manual_seed(0)
        learner = learner_for("searched", {**options, "keep_winner": keep})
        plans: list = []
        plan = learner.grower.plan
        learner.grower.plan = lambda lrn, tsk, plan=plan, plans=plans: plans.append(plan(lrn, tsk)) or plans[-1]
        task = make_tasks(1)[0]
        learner.learn(task)
        nets[keep] = learner.net
        (chosen_plan,) = plans
        candidates = chosen_plan.candidates
        assert [c["params"] for c in candidates[:2]] == [{"widen:hidden.0": 1.0}, {"widen:hidden.0": 2.0}]
        chosen = candidates[chosen_plan.chosen]
        if keep:
            winner = build(learner.net.spec)
            winner.load_state_dict(chosen_plan.weights)
            assert {"0": accuracy(winner, task, "class", "val")} == chosen["val_accuracy"]
            assert "training starts from its trained weights" in chosen_plan.reasons["decision"]
        else:
            assert chosen_plan.weights is None
    assert nets[True].spec == nets[False].spec  # the same choice, trained on from different weights
    kept, grown = nets[True].state_dict(), nets[False].state_dict()
    assert any(not torch.equal(kept[k], grown[k]) for k in kept)
    with pytest.raises(SelfgrowError, match="initial_points"):
        build_grower("searched", initial_points={"widen:hidden.0": 2.0})


@pytest.mark.timeout(180)
def test_a_resumed_coordinator_reuses_the_finished_trials_of_its_study(tmp_path):
    first, storage = distributed_digits_run(tmp_path, "resumed", {"name": "compound", "options": {
        "n_trials": 2, "epochs": 1, "halving_batch": 1}}, n_tasks=2)
    run_dir = tmp_path / "runs" / "resumed"
    shutil.rmtree(run_dir / "checkpoints" / "task_001")  # as if killed during task 1
    studies = optuna.get_all_study_names(make_storage(storage))
    trials = {name: len(optuna.load_study(study_name=name, storage=make_storage(storage)).trials) for name in studies}
    resumed = run(None, resume_dir=run_dir, quiet=True)  # no worker: every trial is already done
    assert resumed.accuracy == first.accuracy
    assert {name: len(optuna.load_study(study_name=name, storage=make_storage(storage)).trials)
            for name in studies} == trials


def test_distributed_options_are_checked_in_one_sentence(tmp_path, capsys):
    config, _ = parse_run_args(["--storage", "journal:/x/j.log", "--workers", "2", "--artifacts", "/x/a"])
    assert (config.distributed.storage, config.distributed.workers, config.distributed.artifacts) == (
        "journal:/x/j.log", 2, "/x/a")
    bad = [
        (["--growth.name", "compound", "--storage", "memory", "--workers", "2"], "needs a storage the workers share"),
        (["--artifacts", str(tmp_path)], "need a distributed search"),
        (["--workers", "-1"], "distributed.workers"),
        (["--storage", "mongo://x"], "Cannot open the study database mongo://x"),
    ]
    for args, message in bad:
        assert main(["run", "--output", str(tmp_path), *args]) == 2
        err = capsys.readouterr().err.strip()
        assert message in err and len(err.splitlines()) == 1, err
    assert main(["worker", "--storage", "journal:/x", "--study", "s", "--threads", "0"]) == 2
    assert "--threads 0" in capsys.readouterr().err
    assert redact("postgresql+psycopg2://me:secret@db:5432/x") == "postgresql+psycopg2://***@db:5432/x"
    assert redact("sqlite:///a.db") == "sqlite:///a.db" and redact("journal:/a") == "journal:/a"
