"""Networks shared by every method, built from a config spec such as `{name: mlp, hidden: [100, 100, 100]}`.

`build_model` gives a classifier (logits); `build_encoder` the same network without its last
linear layer, with the width of its features (DisEnt's encoders, DeNetDM's branches).
"""
from __future__ import annotations

import hashlib
from pathlib import Path
from typing import Any, Callable

import torch
import torch.nn.functional as F
from torch import Tensor, nn

from benchmark.errors import BenchError
from datasets.base import DataInfo


class MLP(nn.Module):
    """Fully connected ReLU network over flattened (C, H, W) images (LfF's and DisEnt's Colored MNIST models).

    `input_divisor` divides the input once more inside the model: LfF's and DisEnt's `module/mlp.py`
    divide their already [0, 1] `ToTensor` input by 255 again, so their MLPs see values in [0, 1/255].
    With `num_classes=None` the network ends at its last hidden ReLU (an encoder).
    """

    def __init__(self, in_features: int, hidden: list[int], num_classes: int | None, input_divisor: float = 1.0):
        super().__init__()
        layers: list[nn.Module] = []
        width = in_features
        for h in hidden:
            layers += [nn.Linear(width, h), nn.ReLU()]
            width = h
        self.features = nn.Sequential(*layers)
        self.classifier = nn.Linear(width, num_classes) if num_classes else nn.Identity()
        self.feature_dim = width
        self.input_divisor = float(input_divisor)

    def extract(self, x: Tensor) -> Tensor:
        """Penultimate features."""
        return self.features(x.flatten(1) / self.input_divisor)

    def forward(self, x: Tensor) -> Tensor:
        return self.classifier(self.extract(x))


class SmallCNN(nn.Module):
    """DCWP's Colored MNIST network (GateCNN without its gates; spec A.8): three 4x4 stride-2
    convolutions (no bias) with BatchNorm and ReLU, global average pooling, a linear classifier.
    The default widths 64/128/256 give 660,992 conv and linear weights for 10 classes."""

    def __init__(self, in_channels: int, channels: list[int], num_classes: int | None):
        super().__init__()
        layers: list[nn.Module] = []
        width = in_channels
        for c in channels:
            layers += [nn.Conv2d(width, c, 4, 2, 1, bias=False), nn.BatchNorm2d(c), nn.ReLU()]
            width = c
        self.features = nn.Sequential(*layers)
        self.feature_dim = width
        self.classifier = nn.Linear(width, num_classes) if num_classes else nn.Identity()

    def extract(self, x: Tensor) -> Tensor:
        return F.adaptive_avg_pool2d(self.features(x), 1).flatten(1)

    def forward(self, x: Tensor) -> Tensor:
        return self.classifier(self.extract(x))


class ConvNet(nn.Module):
    """A plain convolutional encoder from a layer list (DeNetDM's shallow branches).

    Each layer is `[out_channels, kernel, ops]`: `ops` orders the convolution `c` (no padding, as
    the official code), BatchNorm `b`, ReLU `r` and 2x2 max-pooling `p`, e.g. "cbrp". The output
    is global-average-pooled (`global_pool`) or flattened.
    """

    def __init__(self, image_shape: tuple[int, int, int], layers: list[list[Any]], num_classes: int | None,
                 global_pool: bool = False):
        super().__init__()
        modules: list[nn.Module] = []
        width = image_shape[0]
        for out, kernel, ops in layers:
            for op in ops:
                if op == "c":
                    modules.append(nn.Conv2d(width, int(out), int(kernel)))
                    width = int(out)
                elif op == "b":
                    modules.append(nn.BatchNorm2d(width))
                elif op == "r":
                    modules.append(nn.ReLU())
                elif op == "p":
                    modules.append(nn.MaxPool2d(2, 2))
                else:
                    raise BenchError(f"convnet layer ops use c, b, r, p; got {ops!r}")
        self.features = nn.Sequential(*modules)
        self.global_pool = global_pool
        try:
            with torch.no_grad():
                out = self.features.eval()(torch.zeros(1, *image_shape))
        except RuntimeError:
            raise BenchError(f"convnet {layers}: a {image_shape[1]} x {image_shape[2]} input is too small for these "
                             "convolutions and poolings; use larger images (the dataset's input_size option)") from None
        self.feature_dim = width if global_pool else out.numel()
        self.features.train()
        self.classifier = nn.Linear(self.feature_dim, num_classes) if num_classes else nn.Identity()

    def extract(self, x: Tensor) -> Tensor:
        out = self.features(x)
        return F.adaptive_avg_pool2d(out, 1).flatten(1) if self.global_pool else out.flatten(1)

    def forward(self, x: Tensor) -> Tensor:
        return self.classifier(self.extract(x))


class CifarBasicBlock(nn.Module):
    """BasicBlock of the CIFAR ResNets (He et al., 2016) with the parameter-free "option A" shortcut."""

    def __init__(self, in_planes: int, planes: int, stride: int):
        super().__init__()
        self.conv1 = nn.Conv2d(in_planes, planes, 3, stride, 1, bias=False)
        self.bn1 = nn.BatchNorm2d(planes)
        self.conv2 = nn.Conv2d(planes, planes, 3, 1, 1, bias=False)
        self.bn2 = nn.BatchNorm2d(planes)
        self.pad = planes - in_planes if (stride != 1 or in_planes != planes) else 0

    def shortcut(self, x: Tensor) -> Tensor:
        if not self.pad:
            return x
        return F.pad(x[:, :, ::2, ::2], (0, 0, 0, 0, self.pad // 2, self.pad // 2))

    def forward(self, x: Tensor) -> Tensor:
        out = F.relu(self.bn1(self.conv1(x)))
        return F.relu(self.bn2(self.conv2(out)) + self.shortcut(x))


class CifarResNet(nn.Module):
    """ResNet-20 for 32 px images (LfF `module/resnet.py`): 3 stages x 3 blocks, 16/32/64 channels,
    zero-padding shortcuts, Kaiming-normal init of conv and linear weights; 0.27 M parameters."""

    def __init__(self, num_classes: int | None, blocks_per_stage: int = 3):
        super().__init__()
        self.conv1 = nn.Conv2d(3, 16, 3, 1, 1, bias=False)
        self.bn1 = nn.BatchNorm2d(16)
        stages, in_planes = [], 16
        for planes, stride in ((16, 1), (32, 2), (64, 2)):
            for i in range(blocks_per_stage):
                stages.append(CifarBasicBlock(in_planes, planes, stride if i == 0 else 1))
                in_planes = planes
        self.layers = nn.Sequential(*stages)
        self.feature_dim = 64
        self.classifier = nn.Linear(64, num_classes) if num_classes else nn.Identity()
        for m in self.modules():
            if isinstance(m, (nn.Conv2d, nn.Linear)):
                nn.init.kaiming_normal_(m.weight)

    def extract(self, x: Tensor) -> Tensor:
        out = self.layers(F.relu(self.bn1(self.conv1(x))))
        return F.adaptive_avg_pool2d(out, 1).flatten(1)

    def forward(self, x: Tensor) -> Tensor:
        return self.classifier(self.extract(x))


def imagenet_weights(depth: int) -> Any:
    """torchvision's ImageNet weights for ResNet-18/50 (V1, as DCWP and PruSC load): from the folder
    `--weights` / $DEBIASBENCH_WEIGHTS names, else torch's hub cache (downloaded when online).
    A file is checked against the hash in its name; a missing one is one error saying where to put it.
    """
    import os

    import torchvision

    weights = {18: torchvision.models.ResNet18_Weights.IMAGENET1K_V1,
               50: torchvision.models.ResNet50_Weights.IMAGENET1K_V1}[depth]
    name = Path(weights.url).name
    folder = os.environ.get("DEBIASBENCH_WEIGHTS")
    if folder:
        path = Path(folder) / name
        if not path.is_file():
            raise BenchError(f"--weights {folder} has no {name}: download it from {weights.url} into that folder")
        digest = hashlib.sha256(path.read_bytes()).hexdigest()
        if not digest.startswith(name.rsplit("-", 1)[1].split(".")[0]):
            raise BenchError(f"{path} does not match the hash in its name: download it again from {weights.url}")
        return torch.load(path, map_location="cpu", weights_only=True)
    try:
        return weights.get_state_dict(progress=False, check_hash=True)
    except Exception as e:
        path = Path(torch.hub.get_dir()) / "checkpoints" / name
        raise BenchError(
            f"ImageNet weights for ResNet-{depth} are not available ({type(e).__name__}): put {name} from {weights.url} "
            f"at {path} or in a folder passed as --weights, or set model.pretrained=false to train from scratch") from None


class TorchvisionResNet(nn.Module):
    """torchvision ResNet-18/50 with a fresh fc: from scratch (DisEnt's CIFAR10-C and BFFHQ models) or
    ImageNet-initialised (`pretrained`, DCWP's and PruSC's backbones)."""

    def __init__(self, depth: int, num_classes: int | None, pretrained: bool = False):
        super().__init__()
        import torchvision

        net = {18: torchvision.models.resnet18, 50: torchvision.models.resnet50}[depth](weights=None)
        if pretrained:
            net.load_state_dict(imagenet_weights(depth))
        self.feature_dim = net.fc.in_features
        net.fc = nn.Identity()
        self.body = net
        self.classifier = nn.Linear(self.feature_dim, num_classes) if num_classes else nn.Identity()

    def extract(self, x: Tensor) -> Tensor:
        return self.body(x)

    def forward(self, x: Tensor) -> Tensor:
        return self.classifier(self.extract(x))


def _mlp(spec: dict[str, Any], info: DataInfo, num_classes: int | None) -> nn.Module:
    c, h, w = info.input_shape
    return MLP(c * h * w, list(spec["hidden"]), num_classes, spec.get("input_divisor", 1.0))


MODELS: dict[str, Callable[[dict[str, Any], DataInfo, int | None], nn.Module]] = {
    "mlp": _mlp,
    "cnn": lambda spec, info, k: SmallCNN(info.input_shape[0], list(spec.get("channels", [64, 128, 256])), k),
    "convnet": lambda spec, info, k: ConvNet(tuple(info.input_shape), spec["layers"], k, spec.get("global_pool", False)),
    "resnet20": lambda spec, info, k: CifarResNet(k),
    "resnet18": lambda spec, info, k: TorchvisionResNet(18, k, spec.get("pretrained", False)),
    "resnet50": lambda spec, info, k: TorchvisionResNet(50, k, spec.get("pretrained", False)),
}


def _build(spec: dict[str, Any], info: DataInfo, num_classes: int | None) -> nn.Module:
    name = spec.get("name")
    if name not in MODELS:
        raise BenchError(f"unknown model {name!r}; available models: {', '.join(sorted(MODELS))}")
    return MODELS[name](spec, info, num_classes)


def build_model(spec: dict[str, Any], info: DataInfo) -> nn.Module:
    """Classifier named by `spec["name"]`, sized for the dataset."""
    return _build(spec, info, info.num_classes)


def build_encoder(spec: dict[str, Any], info: DataInfo) -> tuple[nn.Module, int]:
    """The same network without its final linear layer, and the width of its features."""
    net = _build(spec, info, None)
    return net, net.feature_dim


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


def build_scheduler(spec: dict[str, Any], optimizer: torch.optim.Optimizer) -> torch.optim.lr_scheduler.LRScheduler:
    """StepLR from `{lr_decay_step, lr_gamma}`, stepped every optimiser step (the official loops' convention)."""
    return torch.optim.lr_scheduler.StepLR(optimizer, int(spec["lr_decay_step"]), float(spec["lr_gamma"]))
