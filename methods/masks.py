"""Per-weight pruning masks for any network (DCWP; reused by PruSC).

`add_weight_masks(model)` gives every Conv2d and Linear weight of a network a mask-logit tensor
`mask_logits` of the weight's shape (biases and BatchNorm stay unmasked), through
`torch.nn.utils.parametrize`, so the same ResNet, CNN or MLP of `methods.models` becomes a
gated network without a second copy of its architecture. Each mask runs in one of three modes:

- ``dense``: the plain weight (pre-training: the mask is not used at all);
- ``learn``: in train mode, a fresh hard Gumbel-sigmoid sample per forward, shared by the whole
  batch, with straight-through gradients to the logits; in eval mode, the binary mask;
- ``fixed``: the binary mask `logits >= 0` (fine-tuning and evaluation of the pruned network).
"""
from __future__ import annotations

from typing import Iterator

import torch
from torch import Tensor, nn
from torch.nn.utils import parametrize

MASK_MODES = ("dense", "learn", "fixed")


def hard_gumbel_sigmoid(logits: Tensor, temperature: float = 1.0, extra_sigmoid: bool = True) -> Tensor:
    """A {0, 1} sample of Bernoulli gates with straight-through gradients of the relaxed sample.

    The noise is the difference of two Gumbels (logistic noise), eps 1e-10 as the official code.
    `extra_sigmoid=True` is DCWP's code: it feeds sigmoid(logits), not the logits, to the
    relaxation, so a gate is kept with probability sigmoid(sigmoid(logit)), between 0.5 and 0.731
    (spec A.4.3); False is the textbook form (Csordás et al.), kept with probability sigmoid(logit).
    """
    eps = 1e-10
    u0 = torch.rand_like(logits)
    u1 = torch.rand_like(logits)
    noise = -torch.log(torch.log(u1 + eps) / torch.log(u0 + eps) + eps)
    base = torch.sigmoid(logits) if extra_sigmoid else logits
    soft = torch.sigmoid((base + noise) / temperature)
    hard = (soft > 0.5).to(soft.dtype)
    return (hard - soft).detach() + soft


class WeightMask(nn.Module):
    """The parametrization `weight -> weight * mask` of one layer, holding that layer's mask logits."""

    def __init__(self, weight: Tensor, init: float, temperature: float, extra_sigmoid: bool):
        super().__init__()
        self.mask_logits = nn.Parameter(torch.full_like(weight, float(init)))
        self.temperature = float(temperature)
        self.extra_sigmoid = bool(extra_sigmoid)
        self.mode = "dense"

    def binary(self) -> Tensor:
        return (self.mask_logits >= 0).to(self.mask_logits.dtype)

    def forward(self, weight: Tensor) -> Tensor:
        if self.mode == "dense":
            return weight
        if self.mode == "learn" and self.training:
            gate = hard_gumbel_sigmoid(self.mask_logits, self.temperature, self.extra_sigmoid)
        else:
            gate = self.binary()
        return weight * gate.to(weight.dtype)


def add_weight_masks(model: nn.Module, init: float = 1.5, temperature: float = 1.0,
                     extra_sigmoid: bool = True) -> nn.Module:
    """Gate every Conv2d and Linear weight of `model` in place (DCWP's logit init 1.5); returns `model`."""
    layers = [m for m in model.modules() if isinstance(m, (nn.Conv2d, nn.Linear))]
    for layer in layers:
        parametrize.register_parametrization(
            layer, "weight", WeightMask(layer.weight.detach(), init, temperature, extra_sigmoid), unsafe=True)
    return model


def masked_layers(model: nn.Module) -> Iterator[tuple[str, WeightMask]]:
    """(layer name, its mask) for every gated layer, in module order."""
    for name, module in model.named_modules():
        if parametrize.is_parametrized(module, "weight"):
            for p in module.parametrizations["weight"]:
                if isinstance(p, WeightMask):
                    yield name, p


def set_mask_mode(model: nn.Module, mode: str) -> None:
    if mode not in MASK_MODES:
        raise ValueError(f"mask mode must be one of {MASK_MODES}, got {mode!r}")
    for _, mask in masked_layers(model):
        mask.mode = mode


def enter_mask_stage(model: nn.Module, mode: str) -> None:
    """Set the mask mode for a stage and let gradients reach only what it trains: the mask logits
    while masks are learnt (weights frozen), the weights otherwise (mask logits frozen)."""
    set_mask_mode(model, mode)
    for p in weight_parameters(model):
        p.requires_grad_(mode != "learn")
    for p in mask_parameters(model):
        p.requires_grad_(mode == "learn")


def mask_parameters(model: nn.Module) -> list[nn.Parameter]:
    return [mask.mask_logits for _, mask in masked_layers(model)]


def weight_parameters(model: nn.Module) -> list[nn.Parameter]:
    """Every parameter that is not a mask logit (weights, biases, BatchNorm affine)."""
    masks = {id(p) for p in mask_parameters(model)}
    return [p for p in model.parameters() if id(p) not in masks]


def mask_logit_sum(model: nn.Module) -> Tensor:
    """DCWP's sparsity penalty: the raw sum of every mask logit (constant gradient 1 per logit, spec A.4.5)."""
    return torch.stack([mask.mask_logits.sum() for _, mask in masked_layers(model)]).sum()


@torch.no_grad()
def mask_sparsity(model: nn.Module) -> dict[str, float]:
    """Fraction of gated weights whose binary mask is 0: `overall` (element-weighted) and per layer."""
    out: dict[str, float] = {}
    pruned = total = 0
    for name, mask in masked_layers(model):
        zeros = int((mask.mask_logits < 0).sum())
        out[name] = zeros / mask.mask_logits.numel()
        pruned += zeros
        total += mask.mask_logits.numel()
    out["overall"] = pruned / total if total else 0.0
    return out
