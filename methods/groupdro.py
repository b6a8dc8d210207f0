"""GroupDRO: minimise the loss of the worst (y, bias) group, with group weights updated online."""
from __future__ import annotations

import torch
import torch.nn.functional as F
from torch import Tensor

from methods.base import GroupBatch, GroupSet, Method, Stage, same_every_step
from methods.groups import balanced_weights, group_means
from methods.models import build_model, build_optimizer
from methods.registry import register_method


@register_method("groupdro")
class GroupDRO(Method):
    """Group distributionally robust optimisation (Sagawa, Koh, Hashimoto, Liang; ICLR 2020).
    Code: https://github.com/kohpangwei/group_DRO

    Uses the training split's group labels (`train-groups`): an oracle row next to label-free
    methods. Each step (loss.py:38-71 of the official code): per-group mean cross-entropy over
    the batch (a group absent from the batch counts 0); the group weights q are multiplied by
    exp(step_size * (group loss + C / sqrt(n_g))) and renormalised, and the loss is q . group
    loss with the weights already updated on this batch. Batches are drawn group-balanced, with
    replacement (`reweight_groups`, on in every official command). The adjustment C/sqrt(n_g)
    enters only the weight update (the official code also adds it to the returned loss through
    an in-place alias, which changes no gradient), and only when C > 0, from training counts.
    """

    paper = "Sagawa et al., Distributionally Robust Neural Networks for Group Shifts, ICLR 2020"
    supervision = "train-groups"
    state_keys = ("group_weights", "train_counts", "train_groups")

    def setup(self) -> None:
        self.models["net"] = build_model(self.hparams["model"], self.info)
        self.optimizers["net"] = build_optimizer(self.hparams["optimizer"], self.models["net"].parameters(), self.device)
        groups = self.info.num_groups
        self.group_weights = torch.full((groups,), 1.0 / groups, device=self.device)
        self.train_counts = torch.zeros(groups, device=self.device)
        self.train_groups = torch.zeros(0, dtype=torch.long, device=self.device)  # each training sample's group

    def stages(self) -> list[Stage]:
        hp = self.hparams
        sampling = self.balanced if hp["reweight_groups"] else None
        return [Stage("count_groups", run=self.count_groups),
                Stage("train", steps=self.stage_steps(hp), loss=self.loss, batch_size=hp["batch_size"], drop_last=hp["drop_last"],
                      sample_weights=sampling, graph_key=same_every_step)]

    def count_groups(self, train_set: GroupSet) -> dict[str, int]:
        """Training group sizes, for balanced sampling and the size adjustment."""
        self.train_groups = train_set.group
        self.train_counts = torch.bincount(train_set.group, minlength=self.info.num_groups).float().to(self.device)
        return {"groups_in_train": int((self.train_counts > 0).sum())}

    def balanced(self) -> Tensor:
        return balanced_weights(self.train_groups, self.info.num_groups)

    def loss(self, batch: GroupBatch) -> dict[str, Tensor]:
        hp = self.hparams
        per_sample = F.cross_entropy(self.models["net"](batch.x), batch.y, reduction="none")
        group_loss, _ = group_means(per_sample, batch.group, self.info.num_groups)
        with torch.no_grad():
            adjusted = group_loss.detach().float()
            if hp["size_adjustment"] > 0:
                adjusted = adjusted + hp["size_adjustment"] / self.train_counts.clamp_min(1.0).sqrt()
            if hp["normalize_loss"]:
                adjusted = adjusted / adjusted.sum()
            self.group_weights.mul_(torch.exp(hp["step_size"] * adjusted))
            self.group_weights.div_(self.group_weights.sum())
        loss = (self.group_weights.to(group_loss.dtype) * group_loss).sum()
        return {"loss": loss, "max_group_weight": self.group_weights.max(), "mean_ce": per_sample.mean()}

    def predict(self, x: Tensor) -> Tensor:
        return self.models["net"](x)
