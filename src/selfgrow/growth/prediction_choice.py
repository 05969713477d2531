"""Settings that decide only how a trained net predicts, chosen after each task's training on validation data.

Some options of a retention strategy change nothing in training, only how the trained net's outputs
become predictions (the strategy's `prediction_settings`: the replay memory's `classifier`, its head
or iCaRL's nearest mean of exemplars). A search grower need not train a candidate per value of such
a setting, as its `retention_space` does: once the task is trained, every combination of values in
the grower's `prediction_space` is scored as growth candidates are (`selfgrow.search.objectives`:
the mean validation accuracy over the new task's validation split and the validation memory of the
earlier tasks), all on the same samples, so the comparison is paired, and the highest score is kept
(the present values when tied). The cost is forward passes over the validation data, counted as
search FLOPs (a strategy's own preparation, such as computing the nearest means, counts as its
after-task steps do: not at all). The next task's growth candidates are scored with the values
chosen here.
"""

from __future__ import annotations

import itertools
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from typing import Any

from selfgrow.errors import SelfgrowError
from selfgrow.growth.candidates import validation_accuracies
from selfgrow.growth.validation_memory import memory_view
from selfgrow.retention.base import Retention, overriding
from selfgrow.retention.settings import apply_settings, check_setting_values, current_settings, setting_target, setting_value
from selfgrow.search.objectives import candidate_objectives


@dataclass
class PredictionChoice:
    """The settings chosen after a task's training, the scores behind the choice, and what scoring them cost."""

    settings: dict[str, float | str]
    reasons: dict[str, Any]
    flops: float


def check_prediction_space(strategies: Sequence[Retention], space: Mapping[str, Sequence[Any]]) -> None:
    """Refuse a setting that is not one of its strategy's `prediction_settings`, or a value it cannot take."""
    for key, values in space.items():
        strategy, attribute = setting_target(strategies, key)
        if attribute not in strategy.prediction_settings:
            accepted = ", ".join(f"{strategy.name}.{a}" for a in strategy.prediction_settings) or "none of its settings"
            raise SelfgrowError(f"Prediction setting {key!r} changes how {strategy.name} trains, not only how the net "
                                f"predicts, so it cannot be chosen after training; accepted: {accepted} "
                                f"(search it with the growth in retention_space instead).")
        check_setting_values(strategies, key, values)


def prediction_points(present: Mapping[str, float | str], space: Mapping[str, Sequence[Any]]) -> list[dict[str, Any]]:
    """Every combination of the space's values, the present one first (it wins ties), each once."""
    keys = list(space)
    points = [dict(present)]
    for values in itertools.product(*(sorted({setting_value(v) for v in space[k]}, key=str) for k in keys)):
        point = dict(zip(keys, values))
        if point not in points:
            points.append(point)
    return points


def choose_predictions(learner: Any, task: Any, space: Mapping[str, Sequence[Any]],
                       per_class: int | None) -> PredictionChoice:
    """Score every point of `space` on the learner's trained net (see the module docstring), leave the strategies set
    to the highest-scoring one with their predictions ready, and say why."""
    strategies = learner.retention
    check_prediction_space(strategies, space)
    present = {k: setting_value(v) for k, v in current_settings(strategies, list(space)).items()}
    seen = [t for t in learner.seen if t.index != task.index] + [task]  # the earlier tasks, then the trained one
    scored, flops, samples = [], 0.0, 0
    for index, point in enumerate(prediction_points(present, space)):
        if index:  # the present point's predictions were made ready by the strategies' after-task steps
            _set(learner, task, point)
        measured, spent = validation_accuracies(learner, task, seen, learner.net, overriding(strategies, "predict"),
                                                per_class, learner.trainer.eval_batch_size)
        flops += spent
        samples = sum(n for _, n in measured.values())  # the same samples for every point
        objectives = candidate_objectives({k: a for k, (a, _) in measured.items()},
                                          {k: n for k, (_, n) in measured.items()}, str(task.index))
        scored.append({"settings": point, "accuracy": objectives["accuracy"], "se": objectives["se"],
                       "plasticity": objectives["plasticity"]})
    best = max(scored, key=lambda s: s["accuracy"])  # the first maximum: the present point on a tie
    if best is not scored[-1]:
        _set(learner, task, best["settings"])
    reasons = {"chosen": dict(best["settings"]), "scores": scored, "samples": samples,
               "decision": "highest mean validation accuracy over the seen tasks, on the same samples for every point"}
    return PredictionChoice(settings=dict(best["settings"]), reasons=reasons, flops=flops)


def scored_samples(learner: Any, task: Any, space: Mapping[str, Sequence[Any]], per_class: int | None) -> float:
    """At most how many samples the choice after one task of the stream scores, for a stream budget: every point of
    `space` on a validation split as large as `task`'s and the validation memory of every other task of the stream
    (each as large as `task`'s)."""
    tasks = getattr(learner, "stream_tasks", None) or task.index + 1
    points = 1
    for values in space.values():
        points *= len({setting_value(v) for v in values}) + 1  # the present value may lie outside the space
    return float(points * (len(task.y_val) + (tasks - 1) * len(memory_view(task, per_class).y_val)))


def _set(learner: Any, task: Any, point: Mapping[str, Any]) -> None:
    """Set the strategies to `point` and make their predictions ready."""
    apply_settings(learner.retention, point)
    for strategy in {id(s): s for s in (setting_target(learner.retention, k)[0] for k in point)}.values():
        strategy.prepare_predictions(learner, task)


__all__ = ["PredictionChoice", "check_prediction_space", "choose_predictions", "prediction_points", "scored_samples"]
