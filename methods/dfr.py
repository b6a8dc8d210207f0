"""DFR: ERM, then the last layer refit on group-balanced validation features."""
from __future__ import annotations

from typing import Any

import torch
from torch import Tensor

from methods.base import GroupSet, Stage, TrainSet
from methods.biased_model import train_set_features
from methods.erm import ERM
from methods.groups import balanced_subset, worst_group_accuracy
from methods.registry import register_method
from methods.sparse_logistic import fit_l1_logistic, predict_scores


@register_method("dfr")
class DFR(ERM):
    """Deep Feature Reweighting (Kirichenko, Izmailov, Wilson; ICLR 2023).
    Code: https://github.com/PolinaKirichenko/deep_feature_reweighting

    Uses the validation split's group labels (`valid-groups`), never the training split's. After
    ERM (`train`), the last layer is refit (`retrain_last_layer`, DFR^Val_Tr of
    dfr_evaluate_spurious.py) on penultimate features of the validation split, in eval mode:
    L1 logistic regression (liblinear's objective, methods/sparse_logistic.py), its C chosen
    from `c_grid` by worst-group accuracy on a random half of the validation split after fitting
    on a group-balanced subset of the other half (features standardised by that subset; ties to
    the larger C), then `retrains` fits on fresh group-balanced subsets of the whole split,
    standardised by the training features' statistics, averaged. The averaged solution, with
    the standardisation folded in, replaces the network's last layer. With `balance: false`
    the fits use the whole split (an ablation); `retrain_split: train` refits on the training
    split, whose groups a valid-groups method cannot see, so only unbalanced. Where the dataset
    holds out two validation halves (`valid_bias: both`), `retrain_split: valid` refits on the
    evenly biased one, `valid_even`: the half for readers of group labels (the other, biased like
    training, has a few dozen conflicting images at 1 %).
    """

    paper = "Kirichenko et al., Last Layer Re-Training is Sufficient for Robustness to Spurious Correlations, ICLR 2023"
    supervision = "valid-groups"
    state_keys = ("feature_mean", "feature_std")

    def setup(self) -> None:
        super().setup()
        self.feature_mean = torch.zeros(0, device=self.device)
        self.feature_std = torch.zeros(0, device=self.device)

    def stages(self) -> list[Stage]:
        return [*super().stages(), Stage("feature_stats", run=self.feature_stats),
                Stage("retrain_last_layer", run=self.retrain, split=self.refit_split(), refits=True)]

    def refit_split(self) -> str:
        split = self.hparams["retrain_split"]
        return "valid_even" if split == "valid" and self.info.size("valid_even") else split

    def feature_stats(self, train_set: TrainSet) -> None:
        """Mean and std of the training features (labels unused), for the final standardisation."""
        features = train_set_features(self.models["net"], train_set).double()
        self.feature_mean = features.mean(0)
        self.feature_std = _safe_std(features)

    def _fit(self, features: Tensor, y: Tensor, c: float, mean: Tensor, std: Tensor) -> tuple[Tensor, Tensor]:
        hp = self.hparams
        return fit_l1_logistic((features - mean) / std, y, self.info.num_classes, c, hp["max_iter"], hp["tol"])

    def _subset(self, group: Tensor | None, n: int) -> Tensor:
        return balanced_subset(group) if self.hparams["balance"] else torch.arange(n, device=self.device)

    def retrain(self, split: TrainSet | GroupSet) -> dict[str, Any]:
        hp = self.hparams
        group = split.group if isinstance(split, GroupSet) else None
        if group is None and (hp["balance"] or len(hp["c_grid"]) > 1):
            raise ValueError("dfr: balancing and choosing C need the refit split's groups: retrain_split must be valid "
                             "(or set balance: false and a single-value c_grid)")
        features, y = train_set_features(self.models["net"], split).double(), split.y
        c = self._tune_c(features, y, group) if len(hp["c_grid"]) > 1 else float(hp["c_grid"][0])
        weights, biases = [], []
        for _ in range(hp["retrains"] if hp["balance"] else 1):  # without balancing every fit would see the same data
            chosen = self._subset(group, len(y))
            w, b = self._fit(features[chosen], y[chosen], c, self.feature_mean, self.feature_std)
            weights.append(w)
            biases.append(b)
        w, b = torch.stack(weights).mean(0), torch.stack(biases).mean(0)
        head = self.models["net"].classifier
        with torch.no_grad():  # scores of standardised features, written as a layer over the raw ones
            head.weight.copy_((w / self.feature_std).to(head.weight.dtype))
            head.bias.copy_((b - (w * self.feature_mean / self.feature_std).sum(1)).to(head.bias.dtype))
        return {"c": c, "nonzero_weights": float((w != 0).double().mean())}

    def _tune_c(self, features: Tensor, y: Tensor, group: Tensor) -> float:
        """C with the best worst-group accuracy on a random half, fit on a balanced subset of the other."""
        order = torch.randperm(len(y)).to(y.device)
        held, fit = order[: len(y) // 2], order[len(y) // 2:]
        fit = fit[self._subset(group[fit], len(fit))]
        mean, std = features[fit].mean(0), _safe_std(features[fit])
        scores = []
        for c in self.hparams["c_grid"]:
            w, b = self._fit(features[fit], y[fit], float(c), mean, std)
            pred = predict_scores((features[held] - mean) / std, w, b).argmax(1)
            scores.append(worst_group_accuracy(pred, y[held], group[held]))
        return float(self.hparams["c_grid"][scores.index(max(scores))])  # the first maximum: the larger C on a tie


def _safe_std(features: Tensor) -> Tensor:
    """Population std per feature, 1 where it is 0 (scikit-learn's StandardScaler)."""
    std = features.std(0, unbiased=False)
    return torch.where(std > 0, std, torch.ones_like(std))
