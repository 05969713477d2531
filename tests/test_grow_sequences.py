"""L2BG's global search over grow sequences: a trial is a whole bindgrow run with one shared δ.

Known answers: a sequence's gain is Δ of its final validation accuracies against the grower's baselines;
δ = 0 expands nothing and δ = 1 expands every layer, so the sequence of δ = 1 holds more parameters; a
sequence equals a `selfgrow run` of the same δ; repeated δ are not re-run; the front holds exactly the
non-dominated sequences; a killed search continues with its finished trials.
"""

from __future__ import annotations

import json

import optuna
import pytest
import yaml

from trainer_fixtures import bindgrow_digits_config

from selfgrow import grow_sequences
from selfgrow.cli import main
from selfgrow.config import from_dict
from selfgrow.errors import SelfgrowError
from selfgrow.grow_sequences import run_sequence, search_grow_sequences, search_in_folder
from selfgrow.search.pareto import pareto_front
from selfgrow.search.storage import make_storage


def config_dict(tmp_path=None, name="seq"):
    return bindgrow_digits_config(str(tmp_path / "runs") if tmp_path else "runs", name, n_trials=2, halving_batch=2)


@pytest.fixture(scope="module")
def ends():
    """The sequences of δ = 0 and δ = 1 on a 3-task digits stream."""
    config = from_dict(config_dict())
    return run_sequence(config, 0.0), run_sequence(config, 1.0)


def test_a_sequence_is_scored_by_the_gain_of_its_final_validation_accuracy(ends):
    for sequence in ends:
        assert len(sequence.val_accuracy) == len(sequence.test_accuracy) == 3
        base = [sequence.baselines[str(t)] for t in range(3)]
        assert all(0 < e <= 1 for e in base)
        by_hand = sum((e - (1 - acc)) / e for e, acc in zip(base, sequence.val_accuracy)) / 3
        assert sequence.gain == pytest.approx(by_hand, rel=1e-12)
        assert sequence.bindings[0] is None and all(b in range(t) for t, b in enumerate(sequence.bindings) if t)
        assert sequence.train_flops > 0


def test_delta_zero_expands_nothing_and_delta_one_every_layer(ends):
    none, every = ends
    assert none.nuclei == [[], [], []]
    assert every.nuclei == [[], [0, 1], [0, 1]]
    assert none.params < every.params


def test_a_sequence_is_the_run_of_the_same_delta(tmp_path, ends):
    data = config_dict(tmp_path, "plain")
    data["growth"]["options"]["delta"] = 1.0
    path = tmp_path / "config.yaml"
    path.write_text(yaml.safe_dump(data))
    assert main(["run", "--config", str(path)]) == 0
    results = json.loads((tmp_path / "runs" / "plain" / "results.json").read_text())
    assert results["accuracy"][-1] == pytest.approx(ends[1].test_accuracy, abs=1e-12)
    assert results["costs"][-1]["params"] == ends[1].params


def test_the_search_runs_each_delta_once_and_keeps_the_non_dominated(monkeypatch, ends):
    runs = []

    def fake(config, delta):  # the two real end sequences, and a middle one that is dominated by δ = 0
        runs.append(delta)
        none, every = ends
        made = {0.0: none, 1.0: every}.get(delta) or grow_sequences.SequenceTrial(
            0.5, min(none.gain, every.gain) - 0.1, every.params, every.val_accuracy, every.test_accuracy, {}, {}, [], [],
            1.0, 0.0)
        return grow_sequences.SequenceTrial.from_dict({**made.to_dict(), "trials": []})

    monkeypatch.setattr(grow_sequences, "run_sequence", fake)
    reused = []
    search = search_grow_sequences(from_dict(config_dict()), n_trials=7, delta_step=0.5, sampler="random",
                                   on_trial=lambda n, s, r: reused.append(r))
    assert sorted(runs) == sorted(set(runs)) and len(reused) == 7 and sum(not r for r in reused) == len(runs)
    assert sum(len(s.trials) for s in search.sequences) == 7
    points = [(s.gain, float(s.params)) for s in search.sequences]
    assert search.front == pareto_front(points)
    assert all(search.sequences[i].delta != 0.5 for i in search.front)
    assert search.chosen in search.front


def test_a_killed_search_continues_with_its_finished_trials(monkeypatch, tmp_path, ends):
    runs = []

    def fake(config, delta):
        runs.append(delta)
        return grow_sequences.SequenceTrial.from_dict({**ends[0].to_dict(), "delta": delta, "trials": []})

    monkeypatch.setattr(grow_sequences, "run_sequence", fake)
    storage = f"journal:{tmp_path / 'j.log'}"
    config = from_dict(config_dict())
    first = search_grow_sequences(config, n_trials=2, delta_step=0.25, storage=storage)
    study = optuna.load_study(study_name="grow-sequences", storage=make_storage(storage))
    study.ask()  # the trial a kill interrupted: asked, never told
    ran_before = list(runs)
    second = search_grow_sequences(config, n_trials=4, delta_step=0.25, storage=storage)
    assert sum(len(s.trials) for s in second.sequences) == 4
    assert {s.delta for s in first.sequences} <= {s.delta for s in second.sequences}
    assert not set(runs[len(ran_before):]) & set(ran_before)  # no finished sequence ran again
    states = [t.state for t in optuna.load_study(study_name="grow-sequences", storage=make_storage(storage)).trials]
    assert states.count(optuna.trial.TrialState.FAIL) == 1


def test_the_command_writes_the_search_and_refuses_another_config_in_its_folder(monkeypatch, tmp_path, ends, capsys):
    monkeypatch.setattr(grow_sequences, "run_sequence", lambda config, delta: grow_sequences.SequenceTrial.from_dict(
        {**ends[1].to_dict(), "delta": delta, "trials": []}))
    path = tmp_path / "config.yaml"
    path.write_text(yaml.safe_dump(config_dict(tmp_path)))
    assert main(["sequences", "--config", str(path), "--trials", "3", "--delta-step", "0.5"]) == 0
    folder = tmp_path / "runs" / "seq"
    saved = json.loads((folder / "sequences.json").read_text())
    assert saved["n_trials"] == 3 and saved["rule"] == "knee" and "| δ |" in (folder / "sequences.md").read_text()
    assert "chosen by knee" in capsys.readouterr().out
    assert main(["sequences", "--config", str(path), "--trials", "3", "--trainer.epochs", "3"]) == 2
    assert "holds a grow-sequence search of another config" in capsys.readouterr().err
    with pytest.raises(SelfgrowError, match="another config"):
        search_in_folder(from_dict({**config_dict(tmp_path), "seed": 1}), quiet=True)
    with pytest.raises(SelfgrowError, match="n_trials=0"):  # checked before the folder is written
        search_in_folder(from_dict({**config_dict(tmp_path), "name": "other"}), quiet=True, n_trials=0)
    assert not (tmp_path / "runs" / "other").exists()


@pytest.mark.parametrize("change, message", [
    ({"growth": {"name": "mntdp"}}, "set growth.name: bindgrow"),
    ({"n_trials": 0}, "n_trials=0 is invalid"),
    ({"delta_step": 0.3}, "not a whole number of delta_step 0.3"),
    ({"delta_range": (0.5, 0.2)}, "delta_range=\\[0.5, 0.2\\] is invalid"),
    ({"rule": "best"}, "rule='best' is invalid"),
    ({"population_size": 1}, "population_size=1"),
    ({"sampler": "cost-gp"}, "sampler 'cost-gp' needs the points' costs"),  # a sequence's cost comes after its run
])
def test_bad_searches_are_one_sentence_errors(change, message):
    data = config_dict()
    if "growth" in change:
        data["growth"] = change.pop("growth")
    with pytest.raises(SelfgrowError, match=message):
        search_grow_sequences(from_dict(data), **change)
