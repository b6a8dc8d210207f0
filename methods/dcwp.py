"""DCWP: prune an ERM network into a debiased subnetwork, guided by mined bias-conflicting samples."""
from __future__ import annotations

from typing import Any

import torch
import torch.nn.functional as F
from torch import Tensor

from methods.base import Batch, Method, Stage, TrainSet, same_every_step
from methods.biased_model import confident_cross_entropy, mine_wrong, train_set_outputs
from methods.contrastive import contrastive_loss
from methods.masks import (
    add_weight_masks,
    enter_mask_stage,
    mask_logit_sum,
    mask_parameters,
    mask_sparsity,
    weight_parameters,
)
from methods.models import build_model, build_optimizer, build_scheduler
from methods.registry import register_method
from methods.reweighting import gce_loss

POSITIVE_RULES = ("mined_column", "either_mined")


@register_method("dcwp")
class DCWP(Method):
    """Training Debiased Subnetworks with Contrastive Weight Pruning (Park, Lee, Lee, Ye; CVPR 2023).
    Code: https://github.com/geonyeong-park/DCWP

    Stages, as the official code runs them (spec dcwp-prusc.md part A):
    1. `pretrain_miner`: the mining network trains alone, with GCE (`miner.loss: gce`, the
       `--select_with_GCE` runs), CE, or CE on confident samples (`confident_ce`, the `ensemble`
       miner, which also averages 1 - p(y|x) over the training split once per epoch).
    2. `pretrain`: the network to be pruned trains as plain ERM (its end is evaluated: the
       unpruned reference of the sparsity plots).
    3. `mine`: the mining network's errors (`wrong`) or its averaged low confidence above `tau`
       (`ensemble`) flag the likely bias-conflicting samples.
    4. `prune`: weights frozen, per-weight mask logits learnt through hard Gumbel-sigmoid gates
       with CE + lambda_sparse * sum(logits) + lambda_con_prune * contrastive loss, on batches
       drawn with replacement where flagged samples weigh `prune_upweight` (80, hard-coded).
    5. `finetune`: binary mask (logit >= 0) frozen; the remaining weights train with CE +
       lambda_con_retrain * contrastive loss, flagged samples drawn with weight `lambda_upweight`.
    The final model is the fine-tuned subnetwork; `sparsity()` is the fraction of gated weights
    masked to zero. The official code trains the two networks of stages 1-2 side by side on the
    same batches; they share nothing, so training them one after the other gives the same
    distribution of results. Colored MNIST mines with a separate SGD run (the two-run protocol of
    `train_ours_cmnist.sh`), which `miner` carries.

    Official code behaviour kept, each a named option: the extra sigmoid inside the Gumbel-sigmoid
    (`mask.extra_sigmoid`), the raw logit sum as sparsity penalty, contrastive positives = same
    class and the *other* sample flagged (`positives: mined_column`; `either_mined` is the evident
    intent), GCE's extra factor q (`gce_official_scaling`). Fixed: an empty contrastive anchor set
    or an empty confident set gives 0, not NaN. Not reproduced: the mining pass's training
    augmentation. Bias-label-free.
    """

    paper = "Park et al., Training Debiased Subnetworks with Contrastive Weight Pruning, CVPR 2023"
    state_keys = ("mined", "confidence")
    dense_stage = "pretrain"
    # Only the pruning and fine-tuning stages read these, so a sweep over any of them mines and
    # pre-trains once per (dataset, ratio, seed). `mask` is not listed: its init is saved with the model.
    shared_stages = {"mine": ("lambda_sparse", "lambda_con_prune", "lambda_con_retrain", "prune", "finetune",
                              "prune_upweight", "lambda_upweight", "positives", "temperature")}

    def setup(self) -> None:
        hp = self.hparams
        if hp["positives"] not in POSITIVE_RULES:
            raise ValueError(f"dcwp positives must be one of {POSITIVE_RULES}, got {hp['positives']!r}")
        n = self.info.train_size
        clf = add_weight_masks(build_model(hp["model"], self.info), **hp["mask"])
        self.models["classifier"] = clf
        stage_params = {"pretrain": weight_parameters(clf), "prune": mask_parameters(clf), "finetune": weight_parameters(clf)}
        if self.uses_miner:
            self.models["miner"] = build_model(hp["model"], self.info)
            stage_params["miner"] = list(self.models["miner"].parameters())
        for name, params in stage_params.items():
            spec = hp["miner"] if name == "miner" else hp[name]
            self.optimizers[name] = build_optimizer(spec["optimizer"], params, self.device)
            if "lr_decay_step" in spec:
                self.schedulers[name] = build_scheduler(spec, self.optimizers[name])
        self.mined = torch.zeros(n, dtype=torch.bool, device=self.device)
        self.confidence = torch.zeros(n, device=self.device)

    @property
    def uses_miner(self) -> bool:
        """Whether a separate mining network is trained (not when `wrong` mines with the ERM network)."""
        return self.hparams["mining"] == "ensemble" or self.hparams["mine_with"] == "miner"

    def stages(self) -> list[Stage]:
        hp = self.hparams
        bs = hp["batch_size"]
        out = []
        if self.uses_miner:
            periodic = None
            if hp["mining"] == "ensemble":
                every = max(1, self.info.train_size // bs)
                periodic = (every, lambda train_set: self._accumulate_confidence(train_set, every))
            out.append(Stage("pretrain_miner", steps=hp["miner"]["steps"], loss=self.miner_loss, batch_size=bs,
                             optimizers=("miner",), evaluate=False, periodic=periodic, graph_key=same_every_step))
        out += [
            Stage("pretrain", steps=hp["pretrain"]["steps"], loss=self.pretrain_loss, batch_size=bs,
                  optimizers=("pretrain",), eval_every=0, on_start=lambda: self._mode("dense"), graph_key=same_every_step),
            Stage("mine", run=self.mine),
            Stage("prune", steps=hp["prune"]["steps"], loss=self.prune_loss, batch_size=bs, optimizers=("prune",),
                  sample_weights=lambda: self._flag_weights(hp["prune_upweight"]),
                  eval_every=hp["prune"]["eval_every"], on_start=lambda: self._mode("learn"), graph_key=same_every_step),
            Stage("finetune", steps=hp["finetune"]["steps"], loss=self.finetune_loss, batch_size=bs,
                  optimizers=("finetune",), sample_weights=lambda: self._flag_weights(hp["lambda_upweight"]),
                  on_start=lambda: self._mode("fixed"), graph_key=same_every_step),
        ]
        return out

    def _mode(self, mode: str) -> None:
        enter_mask_stage(self.models["classifier"], mode)

    def _flag_weights(self, upweight: float) -> Tensor:
        return torch.where(self.mined, float(upweight), 1.0)

    def _accumulate_confidence(self, train_set: TrainSet, every: int) -> None:
        p_true = train_set_outputs(self.models["miner"], train_set)["p_true"]
        self.confidence += (1.0 - p_true) * every / self.hparams["miner"]["steps"]

    def miner_loss(self, batch: Batch) -> dict[str, Tensor]:
        hp = self.hparams
        logits = self.models["miner"](batch.x)
        kind = hp["miner"]["loss"]
        if kind == "gce":
            loss = gce_loss(logits, batch.y, hp["gce_q"], hp["gce_official_scaling"]).mean()
        elif kind == "confident_ce":
            loss = confident_cross_entropy(logits, batch.y, hp["eta"])
        else:
            loss = F.cross_entropy(logits, batch.y)
        return {"loss": loss}

    def pretrain_loss(self, batch: Batch) -> dict[str, Tensor]:
        return {"loss": F.cross_entropy(self.models["classifier"](batch.x), batch.y)}

    def mine(self, train_set: TrainSet) -> dict[str, Any]:
        hp = self.hparams
        if hp["mining"] == "ensemble":
            self.mined = self.confidence > hp["tau"]
        else:
            model = self.models["miner"] if hp["mine_with"] == "miner" else self.models["classifier"]
            self.mined = mine_wrong(model, train_set)
        return {"mined": self.mined}

    def _contrastive(self, features: Tensor, batch: Batch) -> Tensor:
        same_class = batch.y[:, None] == batch.y[None, :]
        flagged = self.mined[batch.index]
        if self.hparams["positives"] == "mined_column":
            positives = same_class & flagged[None, :]
        else:
            positives = same_class & (flagged[:, None] | flagged[None, :])
        return contrastive_loss(features, positives, temperature=self.hparams["temperature"])

    def _forward(self, batch: Batch) -> tuple[Tensor, Tensor]:
        clf = self.models["classifier"]
        features = clf.extract(batch.x)
        return clf.classifier(features), features

    def prune_loss(self, batch: Batch) -> dict[str, Tensor]:
        hp = self.hparams
        logits, features = self._forward(batch)
        ce = F.cross_entropy(logits, batch.y)
        penalty = mask_logit_sum(self.models["classifier"])
        con = self._contrastive(features, batch)
        loss = ce + hp["lambda_sparse"] * penalty + hp["lambda_con_prune"] * con
        return {"loss": loss, "ce": ce, "contrastive": con, "logit_sum": penalty.detach()}

    def finetune_loss(self, batch: Batch) -> dict[str, Tensor]:
        logits, features = self._forward(batch)
        ce = F.cross_entropy(logits, batch.y)
        con = self._contrastive(features, batch)
        return {"loss": ce + self.hparams["lambda_con_retrain"] * con, "ce": ce, "contrastive": con}

    def predict(self, x: Tensor) -> Tensor:
        return self.models["classifier"](x)

    def sparsity(self) -> dict[str, float]:
        return mask_sparsity(self.models["classifier"])
