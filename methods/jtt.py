"""JTT: train ERM briefly, then retrain from the same start with its training errors upweighted."""
from __future__ import annotations

import copy
from typing import Any

import torch
import torch.nn.functional as F
from torch import Tensor

from methods.base import Batch, Method, Stage, TrainSet, same_every_step
from methods.biased_model import mine_wrong
from methods.models import build_model, build_optimizer, build_scheduler
from methods.registry import register_method


@register_method("jtt")
class JTT(Method):
    """Just Train Twice (Liu, Haghgoo, Chen, Raghunathan, Koh, Sagawa, Liang, Finn; ICML 2021).
    Code: https://github.com/anniesch/jtt; Colored MNIST settings from DCWP's
    script/train_JTT_cmnist.sh (geonyeong-park/DCWP at 7fee1f7, since removed).

    Stages: `identify` trains an ERM network for T steps; `mine` puts the training samples it
    then misclassifies (eval mode, no augmentation) in the error set; `retrain` trains a second
    network from the identification network's initial weights, on batches drawn with
    replacement where error-set samples weigh `lambda_up` (DCWP's sampler; the official code
    duplicates them instead, giving each lambda_up + 1 copies per epoch: its configs here carry
    that +1). The official code takes its error set from the online train-mode predictions of
    epoch T; we use an eval-mode pass after T steps, as DCWP does. Bias-label-free in training;
    the paper tunes T, lambda_up and early stopping on validation worst-group accuracy, which is
    the `best-valid-worst-group` selection rule here (group labels on validation at selection).
    """

    paper = "Liu et al., Just Train Twice: Improving Group Robustness without Training Group Information, ICML 2021"
    state_keys = ("error_set",)
    # Only the retraining stage reads these: a lambda_up sweep identifies once per (dataset, ratio, seed).
    shared_stages = {"mine": ("lambda_up", "retrain")}

    def setup(self) -> None:
        hp = self.hparams
        self.models["identifier"] = build_model(hp["model"], self.info)
        self.models["final"] = copy.deepcopy(self.models["identifier"])  # DCWP: retrain from the same step-0 weights
        for stage in ("identify", "retrain"):
            model = self.models["identifier" if stage == "identify" else "final"]
            self.optimizers[stage] = build_optimizer(hp[stage]["optimizer"], model.parameters(), self.device)
            if "lr_decay_step" in hp[stage]:
                self.schedulers[stage] = build_scheduler(hp[stage], self.optimizers[stage])
        self.error_set = torch.zeros(self.info.train_size, dtype=torch.bool, device=self.device)

    def stages(self) -> list[Stage]:
        hp = self.hparams
        bs = hp["batch_size"]
        return [
            Stage("identify", steps=self.stage_steps({**hp["identify"], "batch_size": bs, "drop_last": hp["drop_last"]}),
                  loss=lambda batch: self._ce("identifier", batch), batch_size=bs, drop_last=hp["drop_last"],
                  optimizers=("identify",), eval_every=0, graph_key=same_every_step),
            Stage("mine", run=self.mine),
            Stage("retrain", steps=self.stage_steps({**hp["retrain"], "batch_size": bs}), loss=lambda batch: self._ce("final", batch),
                  batch_size=bs, optimizers=("retrain",), sample_weights=self.upweighted, graph_key=same_every_step),
        ]

    def _ce(self, model: str, batch: Batch) -> dict[str, Tensor]:
        return {"loss": F.cross_entropy(self.models[model](batch.x), batch.y)}

    def mine(self, train_set: TrainSet) -> dict[str, Any]:
        self.error_set = mine_wrong(self.models["identifier"], train_set)
        return {"error_set": self.error_set}

    def upweighted(self) -> Tensor:
        return torch.where(self.error_set, float(self.hparams["lambda_up"]), 1.0)

    def predict(self, x: Tensor) -> Tensor:
        return self.models["final"](x)
