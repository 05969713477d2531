"""The training FLOPs a whole stream may spend, search included, planned again before every task.

A searched grower with `train_budget` B asks, before task t of a stream of N tasks, what a
candidate would cost to the end of the stream if it were chosen and never grown again:

    spent          every earlier task's training and search, as measured
  + search         this task's search: estimated before it runs, measured once it has
  + p x samples    the candidate's training FLOPs per sample x this task's samples still to train
                   (none when the search's training is adopted as the task's)
  + later tasks    the L = N - t - 1 later tasks, each of as many samples as this one, at p plus
                   what the classes they add cost (class-incremental: each later task adds as many
                   outputs to the single head as this one did, each costing `per_class` FLOPs per
                   sample, `selfgrow.nets.cost.training_flops_per_class`)

Samples are the trainer's upper bound (`Trainer.planned_samples`: every epoch and grid setting,
each replay strategy filling every batch, replay counted once a task has been learnt), plus, with a
choice of prediction settings after each task (`selfgrow.growth.prediction_choice`), the samples it
scores at most (at training FLOPs per sample, more than their forward passes cost), so a run
whose choices all fit stays within B; a later task re-plans with what was really spent. Not
projected: a strategy's own extra passes (GEM's memory gradients), which the run still counts.

The search's estimate, before it runs, is a bound on what it can spend (`search_samples`): its N
samples, every trial of every repeat trained on its share of the task through every rung (the trainer's
upper bound on the subset) plus every sample it scores (the new task's validation split at each rung,
the validation memory of earlier tasks at each rung and once before training, each counted at the
candidate's training FLOPs per sample, which a forward pass never exceeds), times the costliest
candidate's training FLOPs per sample. That costliest candidate is the smaller of

  cap            the largest growth within `max_flops` and `max_params` (`growth_points.largest_point`: a
                 maximal point, raised in the space's order, so in a space where another maximal point
                 costs more per sample this part is not strict), and
  fixed point    (B - spent) / (R + N), with R the samples left to train (this task's and the later
                 tasks'): a point is trained only when spent + S + p x R fits B, so with
                 S = N x (B - spent) / (R + N) no trained point costs more than that per sample and the
                 search never spends more than S. This part is strict: the search is budgeted as one
                 more training of the stream's remaining share at the size it may afford. (With R = 0,
                 an adopted search on the last task, it bounds nothing and the cap alone counts.)

Not in the estimate: the knowledge base's probe of the task (counted in the search's measured cost).
The estimate decides whether a search starts and which points are over budget while it runs; the
measured cost decides the choice, and no growth is chosen when nothing fits with it.
"""

from __future__ import annotations

import dataclasses
from dataclasses import dataclass
from typing import Any

from selfgrow.errors import SelfgrowError
from selfgrow.retention.base import overriding


@dataclass(frozen=True)
class TaskBudget:
    """The stream budget as it stands before one task (see the module docstring); all numbers in training FLOPs."""

    total: float
    spent: float
    samples_now: float  # this task's samples still to train after the search (0 when its training is adopted) and to score
    samples_later: float  # the samples of one later task
    later_tasks: int
    new_classes: int  # the outputs each later task adds to a single head (0: the head does not grow)
    search_estimate: float

    def projected(self, per_sample: float, per_class: float = 0.0, search: float | None = None) -> float:
        """The stream's training FLOPs if a net of `per_sample` training FLOPs (`per_class` more per sample for each
        output added) is trained to the end (search: the measured cost of this task's search; None: its estimate)."""
        search = self.search_estimate if search is None else search
        later = self.later_tasks * per_sample + per_class * self.new_classes * self.later_tasks * (self.later_tasks + 1) / 2
        return self.spent + search + per_sample * self.samples_now + self.samples_later * later

    def exceeded(self, per_sample: float, per_class: float = 0.0, search: float | None = None) -> str | None:
        """Why a net of `per_sample` training FLOPs (`per_class` per added output) would break the budget, in words
        (None when it fits)."""
        projected = self.projected(per_sample, per_class, search)
        if projected <= self.total:
            return None
        return f"{projected:.3e} training FLOPs to the end of the stream > train_budget {self.total:.3e}"

    def describe(self, search: float | None = None) -> dict[str, float]:
        """Plain data for the plan's reasons (`search`: the search's measured cost when given, else its estimate)."""
        return {"train_budget": self.total, "spent": self.spent, "search_estimate": self.search_estimate,
                "search": self.search_estimate if search is None else float(search),
                "samples_now": self.samples_now, "samples_later": self.samples_later, "later_tasks": self.later_tasks,
                "new_classes": self.new_classes}


def plan_budget(total: float, learner: Any, task: Any, adopt: bool, search_samples: float = 0.0,
                search_per_sample: float | None = None, scored_per_task: float = 0.0) -> TaskBudget:
    """The `TaskBudget` of `learner` before `task`. The search's estimate: `search_samples` (N, see
    `search_samples`; 0: no search) at the smaller of the cap (`search_per_sample`, or the current net when that
    costs more) and the fixed point (total - spent) / (R + N) (see the module docstring). `scored_per_task`: the
    samples each task scores after its training (`prediction_choice.scored_samples`), counted with its samples."""
    from selfgrow.nets.cost import training_flops_per_sample

    stream_tasks = getattr(learner, "stream_tasks", None)
    if stream_tasks is None:
        raise SelfgrowError("growth train_budget needs the stream's length, which this learner was not told; "
                            "accepted: a run from a config (selfgrow run, bench), or Learner(..., stream_tasks=N).")
    replaying = _replaying(learner)
    n_train = int(task.y_train.numel())
    now = scored_per_task + (0.0 if adopt else float(learner.trainer.planned_samples(n_train, replaying if learner.seen else 0)))
    later = max(0, stream_tasks - task.index - 1)
    samples_later = scored_per_task + float(learner.trainer.planned_samples(n_train, replaying))
    spent = sum(float(r.fit.train_flops) + float(r.plan.search_flops) for r in learner.records)
    head = task.index if learner.scenario == "task" else None
    cap = max(float(training_flops_per_sample(learner.net, head)), search_per_sample or 0.0)
    remaining = now + later * samples_later  # R: with none (an adopted last task) the budget does not bound a candidate
    fixed_point = max(0.0, float(total) - spent) / (remaining + search_samples) if remaining else cap
    return TaskBudget(total=float(total), spent=spent, samples_now=now, samples_later=samples_later,
                      later_tasks=later, new_classes=task.n_classes if learner.scenario == "class" else 0,
                      search_estimate=search_samples * min(cap, fixed_point))


def search_samples(learner: Any, task: Any, trials: int, data_fraction: float, epochs: int, rungs: int,
                   val_memory_per_class: int | None) -> float:
    """At most how many samples a search before `task` trains and scores, at a candidate's training FLOPs each:
    `trials` candidates (repeats included), each trained on `data_fraction` of the task to `epochs` (the last
    rung) and scored on the new task's validation split after each of `rungs` rungs and on the validation memory
    of earlier tasks after each rung and once before training (`CandidateTraining`)."""
    from selfgrow.growth.candidates import subset_indices
    from selfgrow.growth.validation_memory import memory_view

    trainer = dataclasses.replace(learner.trainer, epochs=epochs, lr_grid=None, wd_grid=None, grid_epochs=None)
    n_train = len(subset_indices(task, data_fraction, learner.trainer.seed)) if data_fraction < 1 else len(task.y_train)
    replaying = _replaying(learner) if learner.seen else 0
    memory = sum(len(memory_view(t, val_memory_per_class).y_val) for t in learner.seen)
    scored = rungs * (len(task.y_val) + memory) + memory
    return float(trials * (trainer.planned_samples(int(n_train), replaying) + scored))


def _replaying(learner: Any) -> int:
    """How many of the learner's strategies replay (each fills a batch with as many samples at most)."""
    return len(overriding(learner.retention, "replay"))


__all__ = ["TaskBudget", "plan_budget", "search_samples"]
