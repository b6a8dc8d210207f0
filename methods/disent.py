"""DisEnt: disentangled intrinsic and bias features, reweighting, and feature-swap augmentation."""
from __future__ import annotations

import torch
import torch.nn.functional as F
from torch import Tensor, nn

from methods.base import Batch, Method, Stage
from methods.models import build_encoder, build_optimizer
from methods.registry import register_method
from methods.reweighting import PerSampleEMA, gce_loss, relative_difficulty


class EncoderClassifier(nn.Module):
    """An encoder and a linear classifier over the concatenation [z_intrinsic, z_bias]."""

    def __init__(self, encoder: nn.Module, feature_dim: int, num_classes: int):
        super().__init__()
        self.encoder = encoder
        self.classifier = nn.Linear(2 * feature_dim, num_classes)


@register_method("disent")
class DisEnt(Method):
    """Learning Debiased Representation via Disentangled Feature Augmentation (Lee, Kim, Lee, Lee, Choo;
    NeurIPS 2021). Code: https://github.com/kakaoenterprise/Learning-Debiased-Disentangled

    An intrinsic encoder E_i and a bias encoder E_b each feed a classifier over the concatenated
    features [z_i, z_b]; C_i sees z_b detached and C_b sees z_i detached, so E_b only learns
    through the GCE-trained C_b (the bias) and E_i only through C_i, trained with cross-entropy
    reweighted by W = L_b / (L_b + L_i) (per-sample EMAs, class-max normalised, as LfF). After
    `swap_start` steps, z_b is permuted within the batch to synthesise bias-conflicting
    features: C_i must still predict y, C_b the label of the sample whose z_b it got, each
    weighted as in `learner.py:504-566` (the swap loss reuses the unswapped W). The learning rate
    decays by `lr_gamma` every `lr_decay_step` steps counted from `swap_start`. Inference: C_i on
    [z_i, z_b]. Official quirks kept: GCE with its extra factor q, the MLP's second division by
    255. Bias-label-free.
    """

    paper = "Lee et al., Learning Debiased Representation via Disentangled Feature Augmentation, NeurIPS 2021"
    state_keys = ("ema_bias", "ema_intrinsic")

    def setup(self) -> None:
        hp = self.hparams
        c = self.info.num_classes
        start, every, gamma = hp["swap_start"], hp["lr_decay_step"], hp["lr_gamma"]
        for name in ("intrinsic", "bias"):
            encoder, dim = build_encoder(hp["model"], self.info)
            self.models[name] = EncoderClassifier(encoder, dim, c)
            self.optimizers[name] = build_optimizer(hp["optimizer"], self.models[name].parameters(), self.device)
            # StepLR stepped only from `swap_start` on (learner.py:447-449, 574-576): decays at start + k * every.
            self.schedulers[name] = torch.optim.lr_scheduler.LambdaLR(
                self.optimizers[name], lambda t: gamma ** (max(0, t - start) // every))
        self.ema_bias = PerSampleEMA(self.info.train_size, c, hp["ema_alpha"]).to(self.device)
        self.ema_intrinsic = PerSampleEMA(self.info.train_size, c, hp["ema_alpha"]).to(self.device)

    def stages(self) -> list[Stage]:
        hp = self.hparams
        return [Stage("train", steps=self.stage_steps(hp), loss=self.loss, batch_size=hp["batch_size"], drop_last=hp["drop_last"],
                      graph_key=lambda: self.step > hp["swap_start"])]  # one graph before the feature swap starts, one after

    def _heads(self, z_i: Tensor, z_b: Tensor) -> tuple[Tensor, Tensor]:
        """(C_i logits with z_b detached, C_b logits with z_i detached)."""
        pred_i = self.models["intrinsic"].classifier(torch.cat([z_i, z_b.detach()], 1))
        pred_b = self.models["bias"].classifier(torch.cat([z_i.detach(), z_b], 1))
        return pred_i, pred_b

    def loss(self, batch: Batch) -> dict[str, Tensor]:
        hp = self.hparams
        x, y, index = batch
        z_i = self.models["intrinsic"].encoder(x)
        z_b = self.models["bias"].encoder(x)
        pred_i, pred_b = self._heads(z_i, z_b)
        ce_i = F.cross_entropy(pred_i, y, reduction="none")
        ce_b = F.cross_entropy(pred_b, y, reduction="none")
        self.ema_intrinsic.update(index, ce_i, y)
        self.ema_bias.update(index, ce_b, y)
        weight = relative_difficulty(self.ema_bias.normalized(index, y), self.ema_intrinsic.normalized(index, y))
        gce = lambda logits, target: gce_loss(logits, target, hp["gce_q"], hp["gce_official_scaling"]).mean()  # noqa: E731
        loss_dis = (weight * ce_i).mean() + hp["lambda_dis"] * gce(pred_b, y)
        loss_swap = torch.zeros((), device=x.device)
        if self.step > hp["swap_start"]:
            perm = torch.randperm(len(y), device=x.device)
            swap_i, swap_b = self._heads(z_i, z_b[perm])
            loss_swap = (weight * F.cross_entropy(swap_i, y, reduction="none")).mean() + hp["lambda_swap_b"] * gce(swap_b, y[perm])
            loss = loss_dis + hp["lambda_swap"] * loss_swap
        else:
            loss = loss_dis
        return {"loss": loss, "loss_dis": loss_dis, "loss_swap": loss_swap, "mean_weight": weight.mean()}

    def predict(self, x: Tensor) -> Tensor:
        z_i = self.models["intrinsic"].encoder(x)
        z_b = self.models["bias"].encoder(x)
        return self.models["intrinsic"].classifier(torch.cat([z_i, z_b], 1))
