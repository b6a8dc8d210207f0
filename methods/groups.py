"""Shared pieces of the methods that use group labels ((y, bias) pairs; see `supervision` in
methods/base.py): per-group means, group-balanced sample weights and subsets, worst-group accuracy.
Group ids are `y * num_bias + bias`; a group absent from a batch or split counts 0 samples.
"""
from __future__ import annotations

import torch
from torch import Tensor


def group_sums(values: Tensor, group: Tensor, num_groups: int) -> tuple[Tensor, Tensor]:
    """(sum of `values` per group, number of samples per group), both of length `num_groups`."""
    sums = torch.zeros(num_groups, dtype=values.dtype, device=values.device).index_add(0, group, values)
    counts = torch.zeros(num_groups, dtype=values.dtype, device=values.device).index_add(0, group, torch.ones_like(values))
    return sums, counts


def group_means(values: Tensor, group: Tensor, num_groups: int) -> tuple[Tensor, Tensor]:
    """(mean of `values` per group, samples per group); an absent group's mean is 0, as GroupDRO's
    code divides by count + [count == 0] (kohpangwei/group_DRO loss.py:95-101)."""
    sums, counts = group_sums(values, group, num_groups)
    return sums / (counts + (counts == 0).to(counts.dtype)), counts


def balanced_weights(group: Tensor, num_groups: int) -> Tensor:
    """Per-sample weights 1 / (size of the sample's group): every group is drawn equally often in
    expectation (GroupDRO's `--reweight_groups`, dro_dataset.py:43-69)."""
    counts = torch.bincount(group, minlength=num_groups).float()
    return 1.0 / counts[group]


def balanced_subset(group: Tensor) -> Tensor:
    """Indices of a random subset holding every present group at the size of the smallest one
    (DFR's `balance_val`, dfr_evaluate_spurious.py:82-89); groups absent from the split are skipped."""
    present = torch.unique(group)
    smallest = int(torch.bincount(group)[present].min())
    picks = [members[torch.randperm(len(members))[:smallest].to(members.device)]
             for members in (torch.nonzero(group == g).squeeze(1) for g in present)]
    return torch.cat(picks)


def worst_group_accuracy(pred: Tensor, y: Tensor, group: Tensor) -> float:
    """Lowest accuracy over the groups present (DFR tunes its C by it on validation)."""
    return min(float((pred[group == g] == y[group == g]).float().mean()) for g in torch.unique(group))
