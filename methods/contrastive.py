"""Supervised contrastive loss over one batch's similarity matrix (DCWP; PruSC's cluster-aware variant).

The caller says, as B x B boolean matrices, which pairs are positives and which pairs form the
denominator of each anchor; the diagonal (an anchor with itself) is never used. Anchors with no
positive, or with an empty denominator, are left out; with no anchor left the loss is 0 (the
official code returns NaN there).
"""
from __future__ import annotations

import torch
import torch.nn.functional as F
from torch import Tensor


def contrastive_loss(features: Tensor, positives: Tensor, denominator: Tensor | None = None,
                     temperature: float = 0.07, reduction: str = "mean", anchors: Tensor | None = None) -> Tensor:
    """-(1/|P(i)|) sum_{p in P(i)} log( exp(s_ip / t) / sum_{j in D(i)} exp(s_ij / t) ), per anchor i.

    `features` (B, d) are L2-normalised here, so s is the cosine similarity. `denominator=None`
    means every other sample of the batch (SupCon; DCWP); positives always count in the
    denominator. `anchors` (B,) restricts which samples may act as anchors. `reduction` is `mean`
    or `sum` over the anchors kept (PruSC's code sums).
    """
    z = F.normalize(features.float(), dim=1)
    logits = z @ z.T / temperature
    off_diagonal = ~torch.eye(len(z), dtype=torch.bool, device=z.device)
    positives = positives & off_diagonal
    denominator = off_diagonal if denominator is None else (denominator | positives) & off_diagonal
    # a large finite fill rather than -inf keeps rows with an empty denominator free of NaN gradients
    log_denominator = torch.logsumexp(logits.masked_fill(~denominator, -1e9), dim=1)
    n_pos = positives.sum(1)
    keep = (n_pos > 0) & denominator.any(1)
    if anchors is not None:
        keep = keep & anchors
    pos_logits = (logits * positives).sum(1)
    per_anchor = -(pos_logits - n_pos * log_denominator) / n_pos.clamp_min(1)
    # masked sums rather than per_anchor[keep]: no data-dependent shape, so a CUDA graph can hold it
    total = torch.where(keep, per_anchor, 0.0).sum()
    return total if reduction == "sum" else total / keep.sum().clamp_min(1)
