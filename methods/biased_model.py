"""A biased model's view of the training set: per-sample outputs and mined bias-conflicting samples.

LfF and DisEnt train a biased model alongside the debiased one; DCWP trains one to mine the
samples it gets wrong (its `wrong` miner). These helpers see the training split only through a
`TrainSet` (images, targets, indices), never its bias labels.
"""
from __future__ import annotations

from typing import Callable

import torch
import torch.nn.functional as F
from torch import Tensor, nn

from methods.base import TrainSet


@torch.no_grad()
def _over_train_set(model: nn.Module, forward: Callable[[Tensor], Tensor], train_set: TrainSet, batch_size: int) -> Tensor:
    """`forward` of every training sample, in order, with `model` in eval mode (its mode restored after)."""
    was_training = model.training
    model.eval()
    out = torch.cat([forward(b.x).float() for b in train_set.batches(batch_size)])
    model.train(was_training)
    return out


def train_set_outputs(model: nn.Module, train_set: TrainSet, batch_size: int = 1024) -> dict[str, Tensor]:
    """Per training sample (model in eval mode): logits, predicted class, cross-entropy, p(true class)."""
    logits = _over_train_set(model, model, train_set, batch_size)
    y = train_set.y
    return {
        "logits": logits,
        "pred": logits.argmax(1),
        "loss": F.cross_entropy(logits, y, reduction="none"),
        "p_true": torch.softmax(logits, 1).gather(1, y[:, None]).squeeze(1),
    }


def train_set_features(model: nn.Module, train_set: TrainSet, batch_size: int = 1024) -> Tensor:
    """Penultimate features (`model.extract`) of every training sample, in order, model in eval mode."""
    return _over_train_set(model, model.extract, train_set, batch_size)


def mine_wrong(model: nn.Module, train_set: TrainSet, batch_size: int = 1024) -> Tensor:
    """Boolean mask of the training samples the biased model misclassifies (likely bias-conflicting)."""
    out = train_set_outputs(model, train_set, batch_size)
    return out["pred"] != train_set.y


def confident_cross_entropy(logits: Tensor, y: Tensor, eta: float) -> Tensor:
    """Mean cross-entropy over the samples whose p(true class) exceeds `eta` (0 when none does).

    DCWP's `ensemble` miner trains its biased model this way, so it keeps fitting the samples it
    already finds easy (spec A.2); the official code takes a mean over an empty set (NaN) instead.
    """
    ce = F.cross_entropy(logits, y, reduction="none")
    confident = (torch.softmax(logits.detach().float(), 1).gather(1, y[:, None]).squeeze(1) > eta).to(ce.dtype)
    return (ce * confident).sum() / confident.sum().clamp_min(1.0)
