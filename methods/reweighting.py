"""Shared pieces of the reweighting methods (LfF, DisEnt; reused by DCWP and DeNetDM).

- `gce_loss`: generalized cross-entropy, which makes a model lean on easy (bias-aligned) samples.
- `PerSampleEMA`: an exponential moving average of each training sample's loss, indexed by the
  sample's dataset index, with the class-wise max normalisation of LfF's and DisEnt's code.
- `relative_difficulty`: W(x) = L_b / (L_b + L_d), large where the biased model fails.
"""
from __future__ import annotations

import torch
import torch.nn.functional as F
from torch import Tensor, nn


def gce_loss(logits: Tensor, y: Tensor, q: float = 0.7, official_scaling: bool = True) -> Tensor:
    """Per-sample generalized cross-entropy (Zhang & Sabuncu, 2018), as a CE weighted by p_y^q.

    Its gradient is p_y^q times CE's: samples the model already fits dominate, so the model
    learns the easy (bias) cue. LfF's and DisEnt's code (`module/loss.py`) compute
    `q * p_y^q * CE` with p_y detached: the textbook GCE gradient times an extra factor q.
    `official_scaling=True` (default) keeps that factor; False drops it.
    """
    ce = F.cross_entropy(logits, y, reduction="none")
    p_y = torch.softmax(logits.detach().float(), dim=1).gather(1, y[:, None]).squeeze(1)
    weight = p_y.pow(q) * (q if official_scaling else 1.0)
    return weight.to(ce.dtype) * ce


class PerSampleEMA(nn.Module):
    """Exponential moving average of per-sample losses over the whole training set (LfF `util.py:EMA`).

    `update(index, loss, y)`: the first visit of sample i stores its loss; later visits store
    `alpha * old + (1 - alpha) * new`. `normalized(index, y)`: the batch's averages divided by the
    largest average among the training samples of the same class (samples never visited hold 0,
    as in the official code, where the max runs over the whole class). Buffers, so a checkpoint
    keeps them and `.to(device)` moves them.
    """

    def __init__(self, num_samples: int, num_classes: int, alpha: float = 0.7):
        super().__init__()
        self.alpha = float(alpha)
        self.num_classes = num_classes
        self.register_buffer("loss", torch.zeros(num_samples))
        self.register_buffer("updated", torch.zeros(num_samples))
        self.register_buffer("label", torch.zeros(num_samples, dtype=torch.long))

    @torch.no_grad()
    def update(self, index: Tensor, loss: Tensor, y: Tensor) -> None:
        old = self.loss[index]
        seen = self.updated[index]
        self.loss[index] = self.alpha * old + (1 - self.alpha * seen) * loss.detach().float()
        self.updated.index_fill_(0, index, 1.0)  # a scalar fill: no host-to-device copy, so a CUDA graph can hold it
        self.label[index] = y

    @torch.no_grad()
    def class_max(self) -> Tensor:
        """Largest average loss of each class (0 for a class not yet visited)."""
        out = torch.zeros(self.num_classes, device=self.loss.device)
        return out.scatter_reduce(0, self.label, self.loss, reduce="amax", include_self=True)

    @torch.no_grad()
    def normalized(self, index: Tensor, y: Tensor) -> Tensor:
        """Batch averages / class max. A class whose max is exactly 0 gives 0 (the official code would give NaN)."""
        return self.loss[index] / self.class_max()[y].clamp_min(torch.finfo(torch.float32).tiny)


def relative_difficulty(biased: Tensor, debiased: Tensor, eps: float = 1e-8) -> Tensor:
    """W = L_b / (L_b + L_d + eps) on (normalised) per-sample losses: LfF's and DisEnt's sample weight."""
    return biased / (biased + debiased + eps)
