"""LfF: a biased model trained with GCE, and a debiased model trained on the samples it fails."""
from __future__ import annotations

import torch.nn.functional as F
from torch import Tensor

from methods.base import Batch, Method, Stage, same_every_step
from methods.models import build_model, build_optimizer
from methods.registry import register_method
from methods.reweighting import PerSampleEMA, gce_loss, relative_difficulty


@register_method("lff")
class LfF(Method):
    """Learning from Failure (Nam, Cha, Ahn, Lee, Shin; NeurIPS 2020). Code: https://github.com/alinlab/LfF

    Two networks of the same architecture train together on the same batches. The biased one
    minimises GCE, so it learns the easy bias cue. The debiased one minimises cross-entropy
    weighted per sample by W = L_b / (L_b + L_d), where L are per-sample EMAs of each model's
    loss normalised by their class maximum: samples the biased model fails (bias-conflicting)
    get large weights. Official order per step (train.py:183-241): both forwards, EMA update,
    class-wise normalisation, W, then one backward of mean GCE_b + mean(W * CE_d) and a step of
    both optimisers. Official quirks kept: GCE with its extra factor q (`gce_official_scaling`),
    the MLP's second division by 255 (`model.input_divisor`), the debiased loss divided by the
    batch size rather than by the sum of W. Bias-label-free.
    """

    paper = "Nam et al., Learning from Failure: Training Debiased Classifier from Biased Classifier, NeurIPS 2020"
    state_keys = ("ema_biased", "ema_debiased")

    def setup(self) -> None:
        hp = self.hparams
        for name in ("biased", "debiased"):
            self.models[name] = build_model(hp["model"], self.info)
            self.optimizers[name] = build_optimizer(hp["optimizer"], self.models[name].parameters(), self.device)
        n, c = self.info.train_size, self.info.num_classes
        self.ema_biased = PerSampleEMA(n, c, hp["ema_alpha"]).to(self.device)
        self.ema_debiased = PerSampleEMA(n, c, hp["ema_alpha"]).to(self.device)

    def stages(self) -> list[Stage]:
        hp = self.hparams
        return [Stage("train", steps=self.stage_steps(hp), loss=self.loss, batch_size=hp["batch_size"], drop_last=hp["drop_last"], graph_key=same_every_step)]

    def loss(self, batch: Batch) -> dict[str, Tensor]:
        x, y, index = batch
        logits_b = self.models["biased"](x)
        logits_d = self.models["debiased"](x)
        ce_b = F.cross_entropy(logits_b, y, reduction="none")
        ce_d = F.cross_entropy(logits_d, y, reduction="none")
        self.ema_biased.update(index, ce_b, y)
        self.ema_debiased.update(index, ce_d, y)
        weight = relative_difficulty(self.ema_biased.normalized(index, y), self.ema_debiased.normalized(index, y))
        loss_b = gce_loss(logits_b, y, self.hparams["gce_q"], self.hparams["gce_official_scaling"]).mean()
        loss_d = (weight * ce_d).mean()
        return {"loss": loss_b + loss_d, "loss_biased": loss_b, "loss_debiased": loss_d, "mean_weight": weight.mean()}

    def predict(self, x: Tensor) -> Tensor:
        return self.models["debiased"](x)
