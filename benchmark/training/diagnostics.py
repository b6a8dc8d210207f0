"""What a method's once-only stages produced, measured against the bias labels for evaluation only.

The harness calls these on what a stage returned (a mined mask, cluster ids, sampling weights)
and stores the numbers beside the result; the method never sees them. `conflicting` is the
boolean mask of the split's bias-conflicting samples.
"""
from __future__ import annotations

from typing import Any

import torch
from torch import Tensor


def mask_summary(mask: Tensor, conflicting: Tensor) -> dict[str, Any]:
    """Size of a mined subset and its precision and recall against the bias-conflicting samples."""
    hits = int((mask & conflicting).sum())
    count, true = int(mask.sum()), int(conflicting.sum())
    return {"count": count, "precision": hits / count if count else 0.0, "recall": hits / true if true else 0.0}


def sampling_mass(weights: Tensor, conflicting: Tensor) -> dict[str, float]:
    """The share of per-sample sampling weights on bias-conflicting samples, beside their share of
    the split (what uniform sampling gives)."""
    conflicting = conflicting.to(weights.device)
    mass = float(weights[conflicting].sum() / weights.sum()) if float(weights.sum()) > 0 else 0.0
    return {"conflicting_sampling_mass": mass, "conflicting_share": float(conflicting.float().mean())}


def group_summary(groups: Tensor, y: Tensor, bias: Tensor, conflicting: Tensor, num_bias: int) -> dict[str, Any]:
    """Sizes of the groups a method formed (e.g. clusters) and their purity with respect to the
    bias attribute: the fraction of samples whose group's most common bias value is their own.
    `chance_purity` is that of a single group holding everything."""
    bias = bias.to(groups.device)
    ids, inverse = torch.unique(groups, return_inverse=True)
    table = torch.zeros(len(ids), num_bias, dtype=torch.long, device=groups.device)
    table.index_put_((inverse, bias), torch.ones_like(bias), accumulate=True)
    return {"count": len(ids), "sizes": table.sum(1).tolist(),
            "bias_purity": float(table.max(1).values.sum() / len(groups)),
            "chance_purity": float(table.sum(0).max() / len(groups)),
            "conflicting_in_aligned_cells": hidden_conflicting(groups, y, conflicting)}


def hidden_conflicting(groups: Tensor, y: Tensor, conflicting: Tensor) -> float:
    """Share of the bias-conflicting samples whose (class, group) cell holds more of its class's
    bias-aligned samples than conflicting ones: balancing over such cells cannot lift them, since
    they are outnumbered where they sit. NaN without conflicting samples."""
    y, conflicting = y.to(groups.device), conflicting.to(groups.device)
    if not bool(conflicting.any()):
        return float("nan")
    cells = torch.unique(torch.stack([y, groups]), dim=1, return_inverse=True)[1]
    n_cells = int(cells.max()) + 1
    in_conflict = torch.zeros(n_cells, device=groups.device).index_add_(0, cells, conflicting.float())
    in_aligned = torch.zeros(n_cells, device=groups.device).index_add_(0, cells, (~conflicting).float())
    hidden = (in_aligned > in_conflict)[cells] & conflicting
    return float(hidden.sum() / conflicting.sum())
