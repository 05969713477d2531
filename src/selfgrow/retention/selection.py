"""How a replay memory ranks candidate samples: random keys (reservoir) or iCaRL herding order."""

from __future__ import annotations

import torch
import torch.nn.functional as F


def reservoir_keys(n: int, generator: torch.Generator) -> torch.Tensor:
    """Uniform random keys; keeping the k smallest keys of everything seen is a uniform k-subset, as reservoir sampling."""
    return torch.rand(n, generator=generator)


def herding_order(features: torch.Tensor, limit: int) -> torch.Tensor:
    """Rank of each sample in iCaRL's herding (Rebuffi et al. 2017), inf for samples not picked.

    Features are L2-normalised; step k picks the unpicked sample whose addition brings the mean of the
    k picked samples closest to the class mean. Only the first `limit` picks are ranked.
    """
    phi = F.normalize(features.float(), dim=1)
    target = phi.mean(0)
    rank = torch.full((phi.shape[0],), float("inf"))
    picked_sum = torch.zeros_like(target)
    available = torch.ones(phi.shape[0], dtype=torch.bool, device=phi.device)
    for k in range(1, min(limit, phi.shape[0]) + 1):
        distance = (target - (picked_sum + phi) / k).norm(dim=1)
        distance[~available] = float("inf")
        best = int(distance.argmin())
        rank[best] = k - 1
        available[best] = False
        picked_sum += phi[best]
    return rank


def group_ranks(groups: torch.Tensor, priority: torch.Tensor) -> torch.Tensor:
    """Position of each sample within its group when groups are sorted by ascending priority."""
    by_priority = torch.argsort(priority, stable=True)
    order = by_priority[torch.argsort(groups[by_priority], stable=True)]
    sorted_groups = groups[order]
    starts = torch.searchsorted(sorted_groups, sorted_groups, right=False)
    ranks = torch.empty_like(order)
    ranks[order] = torch.arange(order.numel()) - starts
    return ranks


def equal_quotas(n_groups: int, budget: int) -> torch.Tensor:
    """`budget` slots split as equally as possible over groups in arrival order (earlier groups get the remainder)."""
    quotas = torch.full((n_groups,), budget // max(1, n_groups), dtype=torch.long)
    quotas[: budget % max(1, n_groups)] += 1
    return quotas
