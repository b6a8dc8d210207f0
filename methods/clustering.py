"""Cosine k-means in torch, on whatever device the features are (PruSC's representation clustering)."""
from __future__ import annotations

import torch
import torch.nn.functional as F
from torch import Tensor


@torch.no_grad()
def cosine_kmeans(features: Tensor, k: int, generator: torch.Generator, max_iter: int = 100,
                  tol: float = 1e-4) -> Tensor:
    """Cluster ids (N,) of `features` (N, d) under cosine distance, as `kmeans_pytorch` does for PruSC.

    Initial centres are k distinct samples drawn with `generator` (so a seed fixes the result);
    each step assigns every sample to the centre of highest cosine similarity and moves each
    centre to the plain mean of its samples' raw features; it stops when the squared sum of the
    centres' shifts falls below `tol` or after `max_iter` steps. An empty cluster keeps its centre.
    """
    x = features.float()
    n = len(x)
    if not 0 < k <= n:
        raise ValueError(f"cannot form {k} clusters from {n} samples")
    perm = torch.randperm(n, generator=generator, device=generator.device)[:k].to(x.device)
    centres = x[perm].clone()
    unit = F.normalize(x, dim=1)
    assign = torch.zeros(n, dtype=torch.long, device=x.device)
    for _ in range(max_iter):
        assign = (unit @ F.normalize(centres, dim=1).T).argmax(1)
        sums = torch.zeros_like(centres).index_add_(0, assign, x)
        counts = torch.bincount(assign, minlength=k).to(x.dtype)[:, None]
        moved = torch.where(counts > 0, sums / counts.clamp_min(1), centres)
        shift = (moved - centres).norm(dim=1).sum() ** 2
        centres = moved
        if shift < tol:
            break
    return (unit @ F.normalize(centres, dim=1).T).argmax(1)
