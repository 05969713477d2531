"""MNTDP-S (thesis Algorithm 3): a distribution over the candidate paths learnt with REINFORCE, jointly with
fresh modules shared by every path, then the most likely path fine-tuned on the whole training set.

One fresh module is added at every depth and one head for the task; all candidates run through
them, so a fresh module serves several paths. The training set is split in two stratified halves.
Steps alternate: odd steps sample a path from Gamma and take a gradient step on the fresh modules
and head with a batch of the first half; even steps sample a path and take a REINFORCE step on
Gamma with a batch of the second half; once the most likely path has probability above 0.99 every
step trains the modules. The REINFORCE loss is (loss - b) * log Gamma(path) - entropy_weight *
H(Gamma), b a running mean of the even steps' losses (variance reduction) and the entropy term
the thesis' regulariser against early convergence. The path of highest probability is then
rebuilt on the learner's net with only the fresh modules it uses (the others are discarded),
starting from their searched weights, and trained by the learner's trainer as configured.

Deviations from the thesis: Gamma is one categorical over the candidate paths rather than a
product of per-layer multinomials restricted to paths that branch to the right; on that support
both describe the same distributions. One path is sampled per mini-batch (Algorithm 3), not one
per input. The search steps use the trainer's optimizer, lr and weight decay; its lr grid and
early stopping apply to the final fine-tuning only. The entropy weight defaults to 0.1 instead of
the thesis' 1 (the grower's option): with Adam on the path logits, weight 1 kept Gamma within
0.2-0.42 for all four paths of a tiny digits S^- stream after 2,000 steps, so its argmax was
noise, while 0.1 let the better paths gain mass (a measurement on small tasks, not a tuning).
"""

from __future__ import annotations

import sys
from typing import Any

import torch
import torch.nn.functional as F
from tqdm.auto import tqdm

from selfgrow.errors import SelfgrowError
from selfgrow.growth.base import GrowthPlan
from selfgrow.growth.mntdp.deterministic import SearchOutcome
from selfgrow.growth.mntdp.paths import Candidate
from selfgrow.growth.mntdp.training import (
    fit_candidate,
    materialise,
    trained_parameter_count,
)

CONVERGED = 0.99  # Algorithm 3: once a path has this probability only the modules are trained
BASELINE_DECAY = 0.9


def search_stochastic(
    learner: Any, task: Any, space: list[Candidate], steps: int, path_lr: float, entropy_weight: float
) -> SearchOutcome:
    """Learn Gamma over `space` with shared fresh modules, then fine-tune its most likely path."""
    from selfgrow.data import stratified_split
    from selfgrow.train import resolve_device
    from selfgrow.train.batches import endless_batches, to_input
    from selfgrow.train.interrupt import check as check_interrupt

    trainer = learner.trainer
    device = resolve_device(trainer.device)
    supernet, prefixes = _supernet(learner, task)
    supernet.to(device).train()
    theta = [p for n, p in supernet.named_parameters() if n.startswith(prefixes)]
    for name, p in supernet.named_parameters():
        p.requires_grad_(name.startswith(prefixes))
    module_optimizer = trainer._optimizer([{"scale": 1.0, "params": theta}], trainer.lr, trainer.weight_decay)
    gamma = torch.zeros(len(space), requires_grad=True)
    path_optimizer = torch.optim.Adam([gamma], lr=path_lr)
    train_flops, infer_flops = _path_flops(supernet, task.index, space)
    heads = [c.source if c.reuse_head else task.index for c in space]

    seed = trainer.seed * 1_000_003 + task.index
    module_half, path_half = stratified_split(task.y_train, 0.5, seed)
    if min(len(module_half), len(path_half)) < 2:
        raise SelfgrowError(
            f"mntdp-S splits the training set in two halves of at least 2 samples; task {task.name!r} has {len(task.y_train)}."
        )
    generator = torch.Generator().manual_seed(seed + 1)
    augment = torch.Generator().manual_seed(seed + 2)
    batch_size = max(2, trainer.batch_size)  # BatchNorm needs 2 samples in train mode
    batches = [endless_batches(module_half, batch_size, generator), endless_batches(path_half, batch_size, generator)]
    baseline: float | None = None
    spent = 0.0
    show = sys.stderr.isatty() if trainer.progress is None else bool(trainer.progress)
    for step in tqdm(range(steps), desc=f"mntdp-S task {task.index}", leave=False, disable=not show):
        check_interrupt()
        probabilities = F.softmax(gamma.detach(), dim=0)
        train_modules = step % 2 == 1 or float(probabilities.max()) > CONVERGED
        idx = next(batches[0 if step % 2 == 1 else 1])
        k = int(torch.multinomial(probabilities, 1, generator=generator))
        x = to_input(task.x_train[idx].to(device), task, augment)
        y = task.y_train[idx].to(device)
        with torch.set_grad_enabled(train_modules):
            loss = F.cross_entropy(supernet.head(supernet.path_features(x, space[k].path), heads[k]), y)
        if train_modules and loss.requires_grad:
            module_optimizer.zero_grad(set_to_none=True)
            loss.backward()
            module_optimizer.step()
            spent += train_flops[k] * len(idx)
            continue
        spent += infer_flops[k] * len(idx)
        if train_modules:
            continue  # a reused whole predictor has nothing to train
        value = float(loss)
        baseline = value if baseline is None else baseline
        reinforce_step(gamma, path_optimizer, k, value - baseline, entropy_weight)
        baseline = BASELINE_DECAY * baseline + (1 - BASELINE_DECAY) * value

    probabilities = F.softmax(gamma.detach(), dim=0).tolist()
    chosen = max(range(len(space)), key=lambda i: (probabilities[i], -i))
    net, state = materialise(learner, task, space[chosen])
    if not space[chosen].reuse_head:  # start the fine-tuning from the searched fresh modules and head
        searched = supernet.state_dict()
        net.load_state_dict({name: searched[name] for name in net.state_dict()})
    fit = fit_candidate(learner, task, space[chosen], net, state)
    scores = [{"probability": p, "new_params": trained_parameter_count(supernet, task.index, c)}
              for p, c in zip(probabilities, space)]
    scores[chosen]["val_acc"] = fit.val_acc
    return SearchOutcome(scores, chosen, net, fit, spent)


def reinforce_step(gamma: torch.Tensor, optimizer: torch.optim.Optimizer, k: int, advantage: float, entropy_weight: float) -> None:
    """One step on the path logits `gamma` after path `k` scored `advantage` (loss minus baseline):
    minimise advantage * log Gamma(k) - entropy_weight * H(Gamma), the REINFORCE estimate of the
    expected loss's gradient plus the entropy bonus."""
    log_p = F.log_softmax(gamma, dim=0)
    entropy = -(log_p.exp() * log_p).sum()
    optimizer.zero_grad(set_to_none=True)
    (advantage * log_p[k] - entropy_weight * entropy).backward()
    optimizer.step()


def _supernet(learner: Any, task: Any) -> tuple[torch.nn.Module, tuple[str, ...]]:
    """The learner's net with a fresh module at every depth, and the name prefixes of what the search trains."""
    library = learner.net.spec["library"]
    ops = [{"op": "add_module", "kwargs": {"depth": d}} for d in range(len(library))]
    supernet = GrowthPlan(ops=ops).apply(learner.net)[0]
    prefixes = tuple(f"library.{d}.{m}." for d, m in enumerate(library)) + (f"head.heads.{task.index}.",)
    return supernet, prefixes


def _path_flops(supernet: torch.nn.Module, task_index: int, space: list[Candidate]) -> tuple[list[float], list[float]]:
    """Training and inference FLOPs per sample of each candidate path."""
    from selfgrow.nets import build
    from selfgrow.nets.cost import inference_flops, training_flops_per_sample

    train, infer = [], []
    for c in space:
        net = build({**supernet.spec, "paths": supernet.spec["paths"][:-1] + [list(c.path)]})
        train.append(float(training_flops_per_sample(net, task_index)))
        infer.append(float(inference_flops(net, task_index)))
    return train, infer
