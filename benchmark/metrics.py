"""Accuracy metrics over (y, bias) groups. Defined once here; every table names them.

With A[y, b] the accuracy of the samples with target y and bias value b (empty groups skipped):
- overall_acc: correct / all samples (sample-weighted).
- unbiased_acc: mean of A over non-empty groups (LfF's and DeNetDM's "unbiased accuracy").
- worst_group_acc: min of A over non-empty groups.
- aligned_acc: mean of A over the non-empty bias-aligned groups (group-mean, as LfF).
- conflicting_acc: mean of A over the non-empty bias-conflicting groups (group-mean).
All are fractions in [0, 1] here; reports print percent.
"""
from __future__ import annotations

from typing import Any, Sequence

import torch
from torch import Tensor

METRIC_NAMES = ("unbiased_acc", "worst_group_acc", "aligned_acc", "conflicting_acc", "overall_acc")
METRIC_LABELS = {
    "unbiased_acc": "unbiased",
    "worst_group_acc": "worst-group",
    "aligned_acc": "aligned",
    "conflicting_acc": "conflicting",
    "overall_acc": "overall",
}


def group_counts(pred: Tensor, y: Tensor, bias: Tensor, num_classes: int, num_bias: int) -> tuple[Tensor, Tensor]:
    """(correct, total) per group, flattened as index y * num_bias + bias."""
    group = y * num_bias + bias
    size = num_classes * num_bias
    total = torch.bincount(group, minlength=size)
    correct = torch.bincount(group, weights=(pred == y).to(torch.float64), minlength=size).round().long()
    return correct, total


def group_metrics(correct: Sequence[int], total: Sequence[int], aligned: Sequence[bool]) -> dict[str, Any]:
    """Every metric of the module docstring from per-group counts and the aligned-group mask."""
    c = torch.as_tensor(list(correct), dtype=torch.float64)
    t = torch.as_tensor(list(total), dtype=torch.float64)
    a = torch.as_tensor(list(aligned), dtype=torch.bool)
    present = t > 0
    acc = torch.where(present, c / t.clamp(min=1), torch.full_like(c, float("nan")))

    def mean(mask: Tensor) -> float | None:
        m = mask & present
        return float(acc[m].mean()) if bool(m.any()) else None

    return {
        "overall_acc": float(c.sum() / t.sum()),
        "unbiased_acc": mean(torch.ones_like(a)),
        "worst_group_acc": float(acc[present].min()),
        "aligned_acc": mean(a),
        "conflicting_acc": mean(~a),
        "group_acc": [None if not p else float(v) for v, p in zip(acc, present)],
    }
