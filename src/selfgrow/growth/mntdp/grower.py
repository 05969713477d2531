"""The `mntdp` grower: Modular Networks with Task-Driven Prior (Veniat's thesis, section 5.5; Veniat et al. 2021).

Before each task after the first: the kNN prior ranks the past tasks (`prior`), the search space
perturbs the paths of the `k` best (`paths`), and MNTDP-D (`deterministic`, Algorithm 4) or
MNTDP-S (`stochastic`, Algorithm 3) picks a path and trains it. The plan creates only the chosen
path's fresh modules (unchosen ones are never added to the learner's net, i.e. discarded), routes
the task through it and hands over the trained weights and fit, so the learner does not train
again; once a later task arrives the path's modules are frozen (`ModularNet` freezes the modules
of every task but the newest). The first task trains the initial path, module 0 at every depth.

Deviations from the thesis and why:
- With k > 1 the space is the union of each source's perturbations; the thesis' k = all also
  mixes old modules of different tasks in one path. The union keeps the space linear in k.
- Reusing a source's classifier (`reuse_head`, for the S^- case where the task itself returns)
  copies it into the new task's head, left untrained, since each task of the modular net owns
  its head.
- Candidate training FLOPs (besides the winner's) and the prior's forward passes (counted as
  whole forward passes, head included) are the plan's `search_flops`.
- The grower holds no state between tasks: every decision is made from the learner's net and the
  task, with seeds derived from the trainer's seed and the task index and fresh modules drawn
  from the global generator that the run's checkpoints restore, so a resumed run decides alike.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

from selfgrow.errors import SelfgrowError
from selfgrow.growth.base import Grower, GrowthPlan, register_grower
from selfgrow.growth.mntdp.deterministic import SearchOutcome, search_deterministic
from selfgrow.growth.mntdp.paths import search_space
from selfgrow.growth.mntdp.prior import knn_prior, prior_sample, top_sources
from selfgrow.growth.mntdp.stochastic import search_stochastic
from selfgrow.options import option

VARIANTS = ("D", "S")


@dataclass
class MNTDPOptions:
    """MNTDP's options (see `MNTDPGrower`)."""

    variant: str = option("D", note="'D' or 'S'")
    k: int = option(1, at_least=1)
    n_neighbors: int = option(5, at_least=1)
    knn_samples: int = option(1000, at_least=2)
    reuse_depths: list[int] | None = option(None, at_least=0, nonempty=True)
    reuse_head: bool = True
    steps: int = option(1000, at_least=2)
    path_lr: float = option(0.01, above=0)
    entropy_weight: float = option(0.1, at_least=0)

    def __post_init__(self) -> None:
        if self.variant.upper() not in VARIANTS:
            raise SelfgrowError(f"mntdp variant={self.variant!r} is invalid; accepted: 'D' or 'S'.")


@register_grower("mntdp")
class MNTDPGrower(Grower):
    """MNTDP on a modular net, task-incremental: kNN prior, restricted path space, search D or S.

    Options: `variant` "D" (train every candidate, keep the best on validation) or "S" (REINFORCE
    over paths with shared fresh modules); `k` past tasks kept by the prior (k >= the number of
    past tasks: all); `n_neighbors` and `knn_samples` (training samples, seeded) of the kNN;
    `reuse_depths` the numbers of source modules a candidate may keep (None: 0..L); `reuse_head`
    whether the source's whole predictor, classifier included, is a candidate; for S: `steps`
    (module and path updates together), `path_lr` (Adam on the path logits) and `entropy_weight`.
    """

    Options = MNTDPOptions

    def __init__(self, **options: Any) -> None:
        super().__init__(**options)
        self.variant = self.variant.upper()
        self.reuse_depths = None if self.reuse_depths is None else list(self.reuse_depths)
        self.path_lr = float(self.path_lr)
        self.entropy_weight = float(self.entropy_weight)

    def plan(self, learner: Any, task: Any) -> GrowthPlan:
        net = _check(learner, task)
        base = {"variant": self.variant}
        if not learner.seen:
            path = net.path(task.index)
            return GrowthPlan(reasons={
                **base, "rule": "first task: its path trains a fresh module at every depth", "path": list(path),
                "new_modules": [[d, m] for d, m in enumerate(path)], "head_from": None,
            })  # fmt: skip
        past = [t.index for t in learner.seen]
        seed = learner.trainer.seed
        knn = knn_prior(net, task, past, self.n_neighbors, self.knn_samples, seed, learner.trainer.eval_batch_size)
        sources = top_sources(knn, self.k)
        space = search_space(net, sources, self.reuse_depths, self.reuse_head, task.n_classes)
        if not space:
            raise SelfgrowError(
                f"mntdp has no candidate path for task {task.name!r}: reuse_depths is {self.reuse_depths!r} and "
                "the source's classifier has another number of classes; allow some reuse depths."
            )
        outcome = self._search(learner, task, space)
        chosen = space[outcome.chosen]
        prior_flops = len(prior_sample(task, self.knn_samples, seed)) * sum(_forward_flops(net, j) for j in past)
        reasons = {
            **base,
            "rule": f"kNN prior keeps tasks {sources}; MNTDP-{self.variant} picks among {len(space)} paths",
            "knn_accuracy": {str(j): acc for j, acc in knn.items()},
            "sources": sources,
            "path": list(chosen.path),
            "new_modules": chosen.describe()["new_modules"],
            "head_from": chosen.source if chosen.reuse_head else None,
        }
        return GrowthPlan(
            search_flops=prior_flops + outcome.search_flops,
            ops=chosen.ops(task.index),
            reasons=reasons,
            candidates=[{**c.describe(), **score} for c, score in zip(space, outcome.scores)],
            chosen=outcome.chosen,
            weights=outcome.net.state_dict(),
            fit=outcome.fit,
        )

    def _search(self, learner: Any, task: Any, space: list) -> SearchOutcome:
        if self.variant == "D":
            return search_deterministic(learner, task, space)
        return search_stochastic(learner, task, space, self.steps, self.path_lr, self.entropy_weight)


def _check(learner: Any, task: Any) -> Any:
    """The learner's modular net, after checking that MNTDP applies to this learner and task."""
    from selfgrow.nets.modular import ModularNet

    if learner.scenario != "task":
        raise SelfgrowError(f"mntdp needs the task-incremental scenario (a path and head per task id); got {learner.scenario!r}.")
    if learner.independent:
        raise SelfgrowError("mntdp grows one shared modular net; set mode: shared.")
    if not isinstance(learner.net, ModularNet):
        raise SelfgrowError(f"mntdp needs a 'modular' net (e.g. net preset modular-resnet18-reduced); got kind {learner.net.kind!r}.")
    if learner.retention:
        names = ", ".join(r.name for r in learner.retention)
        raise SelfgrowError(f"mntdp keeps old tasks by freezing their modules and takes no retention strategy; remove {names}.")
    if learner.seen and len(task.y_val) == 0:
        raise SelfgrowError(f"mntdp scores paths on the validation split, but task {task.name!r} has none; set stream val_fraction above 0.")
    return learner.net


def _forward_flops(net: Any, task_index: int) -> float:
    from selfgrow.nets.cost import inference_flops

    return float(inference_flops(net, task_index))
