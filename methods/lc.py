"""LC: logit correction by a biased model's group prior, plus group mixup with its failures."""
from __future__ import annotations

import math

import torch
import torch.nn.functional as F
from torch import Tensor

from methods.base import Batch, Method, Stage
from methods.models import build_model, build_optimizer, build_scheduler
from methods.registry import register_method
from methods.reweighting import gce_loss


def sequential_cell_ema(table: Tensor, seen: Tensor, cells: Tensor, values: Tensor, beta: float) -> None:
    """In place: for each sample in batch order, `table[cell] <- beta * table[cell] + (1 - beta) * value`,
    where a cell's first visit ever stores the value itself (LC util.py:60-67, `avg_type: mv`, which
    loops over the samples one by one). Computed at once: a cell visited k times in the batch keeps
    beta^k of its old value and gives its r-th visit (0-based) the weight (1 - beta) beta^(k-1-r)."""
    flat, done = table.view(-1), seen.view(-1)
    n = len(cells)
    order = torch.sort(cells, stable=True).indices
    counts = torch.bincount(cells, minlength=flat.numel())
    starts = counts.cumsum(0) - counts
    rank = torch.empty_like(cells)
    rank[order] = torch.arange(n, device=cells.device) - starts[cells[order]]
    later = (counts[cells] - 1 - rank).to(values.dtype)  # visits of the same cell after this one
    weight = (1 - beta) * beta ** later
    first_ever = (rank == 0) & (done[cells] == 0)
    weight = torch.where(first_ever, beta ** later, weight)  # its first visit stored the value itself
    keep = torch.where(done > 0, beta ** counts.to(values.dtype), torch.ones_like(flat))
    flat.mul_(keep).index_add_(0, cells, weight * values)
    done.index_fill_(0, cells, 1.0)


def mixup_partners(y: Tensor, minority: Tensor) -> Tensor:
    """Each sample's mixing partner (LC lcl/group_mixup.py:88-98): drawn uniformly, with
    replacement, from the batch's samples of its class that the biased model gets wrong
    (`minority`); in a class with none, a random permutation of the class's samples."""
    n = len(y)
    allowed = (y[:, None] == y[None, :]) & minority[None, :]
    draw = torch.rand(n, n, device=y.device).masked_fill(~allowed, -1.0).argmax(1)
    by_class = torch.sort(y, stable=True).indices
    shuffled = torch.argsort(y.to(torch.float32) + torch.rand(n, device=y.device))  # same classes, random order within
    permutation = torch.empty_like(y)
    permutation[by_class] = shuffled
    return torch.where(allowed.any(1), draw, permutation)


@register_method("lc")
class LC(Method):
    """Logit Correction (Liu, Zhang, Sekhar, Wu, Singhal, Fernandez-Granda; ICLR 2023).
    Code: https://github.com/shengliu66/LC (loss and mixup in amazon-science/lc-loss).

    A biased model trains with GCE on the clean batch, jointly with the main model (one
    backward). Its argmax is each sample's pseudo bias a. A class x pseudo-bias table M holds a
    per-sample sequential EMA (beta 0.995) of the biased model's p(y | x) / tau; the main model
    is trained on group-mixed inputs with cross-entropy of logits + log(M[:, a] + 1e-4) (M's
    columns normalised to sum to 1 where the official code does, Corrupted CIFAR-10). Group
    mixup pairs every sample with a same-class sample the biased model gets wrong, mixing inputs
    and priors with one lambda ~ U(1 - 2 alpha, 1 - alpha) per batch, alpha = 0.5 after a sigmoid
    ramp of `mixup_ramp_steps`. Prediction uses the uncorrected logits. Bias-label-free.
    Official quirks kept: GCE's extra factor q; the Colored MNIST MLP's double division by 255.
    Fixed: the official Colored MNIST evaluation crashes (an unset `pred_label`).
    """

    paper = "Liu et al., Avoiding spurious correlations via logit correction, ICLR 2023"
    state_keys = ("prior", "prior_seen")
    neutral_defaults = {"use_lr_decay": False, "lr_decay_step": 10000, "lr_gamma": 0.1}  # added after the first stored runs

    def setup(self) -> None:
        hp = self.hparams
        c = self.info.num_classes
        for name, spec in (("main", hp["optimizer"]), ("biased", {**hp["optimizer"], "lr": hp["optimizer"]["lr"] * hp["biased_lr_factor"]})):
            self.models[name] = build_model(hp["model"], self.info)
            self.optimizers[name] = build_optimizer(spec, self.models[name].parameters(), self.device)
            if hp["use_lr_decay"]:
                self.schedulers[name] = build_scheduler(hp, self.optimizers[name])
        self.prior = torch.zeros(c, c, device=self.device)  # rows: class y; columns: pseudo bias a
        self.prior_seen = torch.zeros(c, c, device=self.device)

    def stages(self) -> list[Stage]:
        hp = self.hparams
        return [Stage("train", steps=self.stage_steps(hp), loss=self.loss, batch_size=hp["batch_size"], drop_last=hp["drop_last"])]

    def mixup_alpha(self) -> float:
        """0.5 x LC's sigmoid ramp exp(-5 (1 - t/L)^2) over `mixup_ramp_steps` L (1 when L = 0)."""
        ramp = self.hparams["mixup_ramp_steps"]
        t = min(max(self.step, 0), ramp) / ramp if ramp else 1.0
        return 0.5 * math.exp(-5.0 * (1.0 - t) ** 2)

    def loss(self, batch: Batch) -> dict[str, Tensor]:
        hp = self.hparams
        x, y, _ = batch
        logits_b = self.models["biased"](x)
        p_b = torch.softmax(logits_b.detach().float() / hp["tau"], dim=1)
        pseudo_bias = p_b.argmax(1)
        c = self.info.num_classes
        with torch.no_grad():
            sequential_cell_ema(self.prior, self.prior_seen, y * c + pseudo_bias, p_b.gather(1, y[:, None]).squeeze(1), hp["prior_ema"])
            table = self.prior.clone()
            if hp["normalize_prior"]:
                table = table / (table.sum(0, keepdim=True) + hp["prior_eps"])
            correction = table[:, pseudo_bias].T  # per sample: the prior column of its pseudo bias
        if hp["mixup"]:
            alpha = self.mixup_alpha()
            lam = 1.0 - 2.0 * alpha + alpha * float(torch.rand(()))  # U(1 - 2 alpha, 1 - alpha), one per batch
            partner = mixup_partners(y, pseudo_bias != y)
            x = lam * x + (1 - lam) * x[partner]
            correction = lam * correction + (1 - lam) * correction[partner]
        logits = self.models["main"](x).float()
        if hp["correct_logits"]:
            logits = logits + torch.log(correction + hp["prior_eps"])
        loss_main = F.cross_entropy(logits, y)
        loss_b = gce_loss(logits_b, y, hp["gce_q"], hp["gce_official_scaling"]).mean()
        loss = loss_main + hp["lambda_align"] * loss_b
        return {"loss": loss, "loss_main": loss_main, "loss_biased": loss_b, "pseudo_minority": (pseudo_bias != y).float().mean()}

    def predict(self, x: Tensor) -> Tensor:
        return self.models["main"](x)
