"""The gradient projections of GEM and A-GEM on flat vectors: what the strategies apply after backward."""

from __future__ import annotations

import numpy as np
import torch
from scipy.optimize import nnls


def gem_project(g: torch.Tensor, memory: torch.Tensor, margin: float = 0.0) -> torch.Tensor:
    """GEM's update (Lopez-Paz and Ranzato 2017, eqs. 10-13): the closest `z` to `g` with <z, g_k> >= 0.

    `memory` holds one earlier task's gradient g_k per row. When no constraint is violated `g` is
    returned as it is; otherwise the dual of min_z 1/2 |g - z|^2 s.t. G z >= 0,
    min_v 1/2 v^T G G^T v + g^T G^T v with v >= margin, is solved and z = G^T v + g. With
    v = margin + w the dual is a non-negative least-squares problem in w on a square root of G G^T
    (its eigen-decomposition, so a singular Gram matrix needs no ridge), solved exactly by
    Lawson-Hanson in float64. Deviation: the paper adds gamma to v* after the solve; adding it
    after can break the constraints when memory gradients conflict, so `margin` is a lower bound on v
    (the form the authors' released code solves), which keeps G z >= 0 and still leans towards
    positive backward transfer.
    """
    if memory.numel() == 0 or bool((memory @ g >= 0).all()):
        return g
    G = memory.detach().double().cpu().numpy()
    gram = G @ G.T
    b = gram @ np.full(len(G), float(margin)) + G @ g.detach().double().cpu().numpy()
    values, vectors = np.linalg.eigh(gram)
    keep = values > values.max() * len(G) * np.finfo(np.float64).eps
    root, basis = np.sqrt(values[keep]), vectors[:, keep]
    w = nnls(root[:, None] * basis.T, -(basis.T @ b) / root)[0]
    v = torch.from_numpy(margin + w).to(g.device, torch.float64)
    return (memory.double().T @ v + g.double()).to(g.dtype)


def agem_project(g: torch.Tensor, reference: torch.Tensor) -> torch.Tensor:
    """A-GEM's update (Chaudhry et al. 2019, eq. 11): g - (g.g_ref / g_ref.g_ref) g_ref when g.g_ref < 0, else g."""
    dot = torch.dot(g, reference)
    norm = torch.dot(reference, reference)
    if dot >= 0 or norm == 0:
        return g
    return g - (dot / norm) * reference
