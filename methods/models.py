"""Networks shared by every method, built from a config spec such as `{name: mlp, hidden: [100, 100, 100]}`."""
from __future__ import annotations

from typing import Any, Callable

import torch
from torch import Tensor, nn

from benchmark.errors import BenchError
from datasets.base import DataInfo


class MLP(nn.Module):
    """Fully connected ReLU network over flattened (C, H, W) images (LfF's Colored MNIST model).

    `input_divisor` divides the input once more inside the model: LfF's `module/mlp.py` divides
    its already [0, 1] `ToTensor` input by 255 again, so its MLP sees values in [0, 1/255].
    """

    def __init__(self, in_features: int, hidden: list[int], num_classes: int, input_divisor: float = 1.0):
        super().__init__()
        layers: list[nn.Module] = []
        width = in_features
        for h in hidden:
            layers += [nn.Linear(width, h), nn.ReLU()]
            width = h
        self.features = nn.Sequential(*layers)
        self.classifier = nn.Linear(width, num_classes)
        self.feature_dim = width
        self.input_divisor = float(input_divisor)

    def extract(self, x: Tensor) -> Tensor:
        """Penultimate features."""
        return self.features(x.flatten(1) / self.input_divisor)

    def forward(self, x: Tensor) -> Tensor:
        return self.classifier(self.extract(x))


def _mlp(spec: dict[str, Any], info: DataInfo) -> nn.Module:
    c, h, w = info.image_shape
    return MLP(c * h * w, list(spec["hidden"]), info.num_classes, spec.get("input_divisor", 1.0))


MODELS: dict[str, Callable[[dict[str, Any], DataInfo], nn.Module]] = {"mlp": _mlp}


def build_model(spec: dict[str, Any], info: DataInfo) -> nn.Module:
    """Network named by `spec["name"]`, sized for the dataset."""
    name = spec.get("name")
    if name not in MODELS:
        raise BenchError(f"unknown model {name!r}; available models: {', '.join(sorted(MODELS))}")
    return MODELS[name](spec, info)


def build_optimizer(spec: dict[str, Any], params: Any, device: torch.device) -> torch.optim.Optimizer:
    """Optimiser from `{name: adam|sgd, lr, weight_decay, ...}`; fused kernels on CUDA."""
    name = spec.get("name", "adam").lower()
    kwargs: dict[str, Any] = {"lr": float(spec["lr"]), "weight_decay": float(spec.get("weight_decay", 0.0))}
    if device.type == "cuda":
        kwargs["fused"] = True
    if name == "adam":
        if "betas" in spec:
            kwargs["betas"] = tuple(spec["betas"])
        return torch.optim.Adam(params, **kwargs)
    if name == "sgd":
        return torch.optim.SGD(params, momentum=float(spec.get("momentum", 0.0)), **kwargs)
    raise BenchError(f"unknown optimizer {name!r}; available: adam, sgd")
