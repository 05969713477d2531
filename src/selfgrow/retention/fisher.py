"""Diagonal Fisher information of a network on a task's data, from per-sample gradients (torch.func)."""

from __future__ import annotations

import torch
import torch.nn.functional as F
from torch.func import functional_call, grad, vmap

from selfgrow.retention.scenario import task_outputs


def diagonal_fisher(
    net: torch.nn.Module,
    x: torch.Tensor,
    y: torch.Tensor,
    task_index: int,
    scenario: str,
    *,
    empirical: bool = False,
    batch_size: int = 32,
    generator: torch.Generator | None = None,
) -> dict[str, torch.Tensor]:
    """Mean over samples of the squared per-sample gradient of log p(y|x) for each trainable parameter.

    With `empirical=False` (Kirkpatrick et al. 2017's true Fisher) y is drawn from the model's own
    predictive distribution, one draw per sample (an unbiased Monte-Carlo estimate of the diagonal of
    E_x E_{y~p(.|x)} [g g^T]); with `empirical=True` the given labels `y` are used (empirical Fisher).
    `x` must already be normalised. The net is evaluated in eval mode (BatchNorm uses running statistics).
    """
    params = {n: p.detach() for n, p in net.named_parameters() if p.requires_grad}
    buffers = dict(net.named_buffers())
    fisher = {n: torch.zeros_like(p) for n, p in params.items()}

    extra_args = (task_index,) if scenario == "task" else ()

    def log_likelihood(p: dict, xi: torch.Tensor, yi: torch.Tensor) -> torch.Tensor:
        logits = functional_call(net, (p, buffers), (xi.unsqueeze(0), *extra_args))
        return -F.cross_entropy(logits, yi.unsqueeze(0))

    per_sample_grads = vmap(grad(log_likelihood), in_dims=(None, 0, 0))
    was_training = net.training
    net.eval()
    try:
        for start in range(0, x.shape[0], batch_size):
            xb, yb = x[start : start + batch_size], y[start : start + batch_size]
            if not empirical:
                with torch.no_grad():
                    probs = torch.softmax(task_outputs(net, xb, task_index, scenario), dim=1)
                yb = torch.multinomial(probs.cpu(), 1, generator=generator).squeeze(1).to(xb.device)
            for n, g in per_sample_grads(params, xb, yb).items():
                fisher[n] += g.pow(2).sum(0)
    finally:
        net.train(was_training)
    return {n: f / max(1, x.shape[0]) for n, f in fisher.items()}

