"""Focal-loss ERM: ERM whose loss down-weights the samples it already gets right, (1 - p_y)^gamma."""
from __future__ import annotations

import torch.nn.functional as F
from torch import Tensor

from methods import Batch, Stage, register_method
from methods.base import same_every_step
from methods.erm import ERM


@register_method("focal")  # its YAML: focal.yaml beside this file
class FocalERM(ERM):
    """Focal loss (Lin et al., ICCV 2017) on ERM's network: an example plugin, not a debiasing method of the papers."""

    paper = "Lin et al., Focal Loss for Dense Object Detection, ICCV 2017"

    def stages(self) -> list[Stage]:
        hp = self.hparams
        return [Stage("train", steps=self.stage_steps(hp), loss=self.loss, batch_size=hp["batch_size"], drop_last=hp["drop_last"],
                      graph_key=same_every_step)]  # one path every step: replayed as one CUDA graph on a GPU

    def loss(self, batch: Batch) -> dict[str, Tensor]:
        log_p = F.log_softmax(self.models["net"](batch.x), 1).gather(1, batch.y[:, None]).squeeze(1)
        weight = (1 - log_p.exp()).pow(float(self.hparams["gamma"]))
        return {"loss": -(weight * log_p).mean()}
