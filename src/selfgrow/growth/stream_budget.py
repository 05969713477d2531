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
each replay strategy filling every batch, replay counted once a task has been learnt), so a run
whose choices all fit stays within B; a later task re-plans with what was really spent. Not
projected: a strategy's own extra passes (GEM's memory gradients), which the run still counts.

The search's estimate, before it runs: n_trials x repeats x data_fraction x (last rung / trainer
epochs) of this task's planned training of the costliest net the search may train (the searched
growers pass a largest growth within `max_flops` and `max_params`, `growth_points.largest_point`:
a maximal point, raised in the space's order, so in a space where another maximal point costs more
per sample the bound is not strict); as halving trains most candidates fewer epochs it was 1.5-5x
the real cost on Split-CIFAR-10 (BENCHMARKS.md). It decides whether a search starts and which points are over
budget while it runs; the measured cost decides the choice, and no growth is chosen when nothing
fits with it (the search itself may then have overspent).
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

from selfgrow.errors import SelfgrowError
from selfgrow.retention.base import overriding


@dataclass(frozen=True)
class TaskBudget:
    """The stream budget as it stands before one task (see the module docstring); all numbers in training FLOPs."""

    total: float
    spent: float
    samples_now: float  # this task's samples still to train after the search (0 when the search's training is adopted)
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
        """Plain data for the plan's reasons."""
        return {"train_budget": self.total, "spent": self.spent,
                "search": self.search_estimate if search is None else float(search),
                "samples_now": self.samples_now, "samples_later": self.samples_later, "later_tasks": self.later_tasks,
                "new_classes": self.new_classes}


def plan_budget(total: float, learner: Any, task: Any, search_share: float, adopt: bool,
                search_per_sample: float | None = None) -> TaskBudget:
    """The `TaskBudget` of `learner` before `task`; the search is estimated at `search_share` (n_trials x repeats x
    data_fraction x last rung / epochs) of this task's planned training of a net of `search_per_sample` training
    FLOPs per sample, or of the current net when that costs more (None: the current net)."""
    from selfgrow.nets.cost import training_flops_per_sample

    stream_tasks = getattr(learner, "stream_tasks", None)
    if stream_tasks is None:
        raise SelfgrowError("growth train_budget needs the stream's length, which this learner was not told; "
                            "accepted: a run from a config (selfgrow run, bench), or Learner(..., stream_tasks=N).")
    replaying = len(overriding(learner.retention, "replay"))
    n_train = int(task.y_train.numel())
    now = learner.trainer.planned_samples(n_train, replaying if learner.seen else 0)
    spent = sum(float(r.fit.train_flops) + float(r.plan.search_flops) for r in learner.records)
    head = task.index if learner.scenario == "task" else None
    current = float(training_flops_per_sample(learner.net, head))
    return TaskBudget(total=float(total), spent=spent, samples_now=0.0 if adopt else float(now),
                      samples_later=float(learner.trainer.planned_samples(n_train, replaying)),
                      later_tasks=max(0, stream_tasks - task.index - 1),
                      new_classes=task.n_classes if learner.scenario == "class" else 0,
                      search_estimate=search_share * now * max(current, search_per_sample or 0.0))


__all__ = ["TaskBudget", "plan_budget"]
