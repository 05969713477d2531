"""BiC's bias correction (Wu et al. 2019, "Large scale incremental learning"): after each task, a two-parameter
linear layer on the new classes' logits, learnt on a small held-out set balanced over old and new classes."""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

import torch
import torch.nn.functional as F

from selfgrow.options import option
from selfgrow.retention.base import Retention
from selfgrow.retention.registry import register_retention
from selfgrow.retention.scenario import model_input, net_device, require_scenario
from selfgrow.retention.tensors import tensor_bytes
from selfgrow.streams.task import Task


@dataclass
class BiCOptions:
    """BiC's options: the held-out samples kept per class, and the fit of (alpha, beta)."""

    per_class: int = option(10, at_least=1, note="held-out validation samples kept per class")
    steps: int = option(300, at_least=1, note="full-batch Adam steps fitting alpha and beta")
    lr: float = option(0.01, above=0)
    seed: int = 0


def corrected(logits: torch.Tensor, corrections: list[tuple[list[int], float, float]]) -> torch.Tensor:
    """Logits with each task's correction q_k = alpha * o_k + beta applied to the columns of its classes (eq. 5)."""
    out = logits.clone()
    for classes, alpha, beta in corrections:
        idx = torch.as_tensor(classes, device=logits.device)
        out[:, idx] = alpha * logits[:, idx] + beta
    return out


def fit_correction(logits: torch.Tensor, y: torch.Tensor, new: list[int], earlier: list[tuple[list[int], float, float]],
                   steps: int, lr: float) -> tuple[float, float]:
    """alpha, beta for the `new` classes' logits minimising the cross-entropy of the corrected logits on (logits, y),
    the earlier corrections held fixed (BiC's stage 2: only the bias layer learns)."""
    base = corrected(logits, earlier).detach()
    idx = torch.as_tensor(new, device=logits.device)
    params = torch.tensor([1.0, 0.0], device=logits.device, requires_grad=True)
    optimizer = torch.optim.Adam([params], lr=lr)
    for _ in range(steps):
        optimizer.zero_grad()
        out = base.clone()
        out[:, idx] = params[0] * base[:, idx] + params[1]
        F.cross_entropy(out, y).backward()
        optimizer.step()
    alpha, beta = params.detach().tolist()
    return float(alpha), float(beta)


@register_retention("bic")
class BiC(Retention):
    """BiC's second stage: after each task but the first, (alpha, beta) for that task's classes are fit on a
    validation set balanced over every class seen (eq. 5 and 6 of the paper), and every task's correction
    is applied at test time (the `predict` hook) on the class-IL head.

    Deviations, stated: the held-out set is `per_class` samples of each class from its task's validation
    split, kept by this strategy (counted in `memory_mb`), where the paper splits its exemplar memory 9:1
    before training (here the replay memory stays whole and the validation splits are never trained on);
    the corrections act at test time only, not inside the teacher's targets during later tasks; the
    first stage (training with exemplars and distillation) is the run's other strategies (the method
    preset `bic`: herding memory + LwF with alpha 1, where the paper weighs lambda = n/(n+m)).
    Class-IL only.
    """

    Options = BiCOptions
    decides_predictions_after_task = True

    def __init__(self, **options: Any) -> None:
        super().__init__(**options)
        self.generator = torch.Generator().manual_seed(int(self.seed))
        self.held_out = {"x": torch.empty(0), "y_global": torch.empty(0, dtype=torch.long)}
        self.corrections: list[tuple[list[int], float, float]] = []

    def before_task(self, learner: Any, task: Task) -> None:
        require_scenario(self.name, learner.scenario, ("class",))

    def after_task(self, learner: Any, task: Task) -> None:
        self._keep(task)
        seen = sorted(set(self.held_out["y_global"].tolist()))
        new = sorted(task.class_ids)
        if len(seen) > len(new) and len(task.y_val):
            logits = self._logits(learner.net, task)
            alpha, beta = fit_correction(logits, self.held_out["y_global"], new, self.corrections, self.steps, self.lr)
            self.corrections.append((new, alpha, beta))

    def predict(self, net: torch.nn.Module, x: torch.Tensor, task: Task, scenario: str,
                seen_class_ids: list[int] | None) -> torch.Tensor | None:
        if scenario != "class" or not self.corrections:
            return None
        logits = corrected(net(x), self.corrections)
        if seen_class_ids is not None:
            mask = torch.full((logits.shape[1],), float("-inf"), device=logits.device)
            mask[torch.as_tensor(seen_class_ids, device=logits.device)] = 0.0
            logits = logits + mask
        return logits.argmax(1)

    def _keep(self, task: Task) -> None:
        """Add `per_class` random validation samples of each of the task's classes to the held-out set."""
        y = task.y_val.cpu()
        keep = []
        for c in y.unique().tolist():
            members = (y == c).nonzero().squeeze(1)
            keep.append(members[torch.randperm(len(members), generator=self.generator)[: self.per_class]])
        if not keep:
            return
        rows = torch.cat(keep)
        x = task.x_val.cpu()[rows]
        self.held_out = {
            "x": x if len(self.held_out["x"]) == 0 else torch.cat([self.held_out["x"], x]),
            "y_global": torch.cat([self.held_out["y_global"], task.global_labels(y[rows])]),
        }

    def _logits(self, net: torch.nn.Module, task: Task) -> torch.Tensor:
        """The net's logits of the held-out images (normalised as `task`'s, eval mode)."""
        device = net_device(net)
        was_training = net.training
        net.eval()
        with torch.no_grad():
            logits = torch.cat([net(model_input(x.to(device), task)) for x in self.held_out["x"].split(512)])
        net.train(was_training)
        return logits.cpu()

    def memory_bytes(self) -> int:
        return tensor_bytes(self.held_out)

    def state_dict(self) -> dict[str, Any]:
        return {"held_out/x": self.held_out["x"], "held_out/y_global": self.held_out["y_global"],
                "corrections": [[list(c), a, b] for c, a, b in self.corrections], "generator": self.generator.get_state()}

    def load_state_dict(self, state: dict[str, Any]) -> None:
        self.held_out = {"x": state["held_out/x"], "y_global": state["held_out/y_global"]}
        self.corrections = [([int(c) for c in classes], float(a), float(b)) for classes, a, b in state["corrections"]]
        self.generator.set_state(state["generator"])
