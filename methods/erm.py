"""ERM: one network, mean cross-entropy. The baseline every debiasing method is compared with."""
from __future__ import annotations

import torch.nn.functional as F
from torch import Tensor

from methods.base import Batch, Method, Stage, same_every_step
from methods.models import build_model, build_optimizer
from methods.registry import register_method


@register_method("erm")
class ERM(Method):
    """Empirical risk minimisation (the "vanilla" baseline of LfF, Nam et al., NeurIPS 2020).

    Colored MNIST follows LfF's `train_vanilla.py`: a 3-hidden-layer MLP, Adam, batch 256,
    23,500 steps over shuffled epochs that keep the last partial batch. Official code:
    https://github.com/alinlab/LfF
    """

    paper = "Nam et al., Learning from Failure, NeurIPS 2020 (train_vanilla.py)"

    def setup(self) -> None:
        self.models["net"] = build_model(self.hparams["model"], self.info)
        self.optimizers["net"] = build_optimizer(self.hparams["optimizer"], self.models["net"].parameters(), self.device)

    def stages(self) -> list[Stage]:
        hp = self.hparams
        return [Stage("train", steps=self.stage_steps(hp), loss=self.loss, batch_size=hp["batch_size"], drop_last=hp["drop_last"], graph_key=same_every_step)]

    def loss(self, batch: Batch) -> dict[str, Tensor]:
        return {"loss": F.cross_entropy(self.models["net"](batch.x), batch.y)}

    def predict(self, x: Tensor) -> Tensor:
        return self.models["net"](x)
