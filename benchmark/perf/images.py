"""Images per second of the cached on-device image pipeline against torchvision's ImageFolder +
DataLoader, same model, same transforms, same batches, in one process.

    python run_bench.py perf --images [--device cpu|cuda] [--quick] [--sizes 32 224]

For each size a folder of random images in ImageFolder layout is written to a temporary
directory (PNG at 32 px as the CIFAR releases; JPEG at 256 px for the 224 px ImageNet-style
pipelines). (a) the standard pipeline: `ImageFolder` with torchvision's transforms
(RandomCrop(32, padding 4) + flip, or RandomResizedCrop(224, scale 0.7-1) + flip; ToTensor,
Normalize), a shuffling `DataLoader` with worker processes (pinned memory on a GPU); (b) ours: the
folder decoded once into uint8 (`datasets.images.decode_images`, the cache's decoder; its time is
printed apart), every batch drawn by index and augmented on the device (`DeviceData.train_batch`),
with the images kept on the device, and again streamed from host memory (`--data-placement host`).
Both train a torchvision ResNet-18 from the same initial weights with Adam for the same steps.
Printed: images per second of each (after warm-up steps), their ratio, and the one-off decode.
"""
from __future__ import annotations

import argparse
import copy
import os
import tempfile
import time
from pathlib import Path

import numpy as np
import torch
import torch.nn.functional as F

from benchmark.training.augment import Augmentation
from benchmark.training.feed import DeviceData, EpochSampler
from benchmark.training.harness import resolve_device
from datasets.images import CIFAR_MEAN, CIFAR_STD, IMAGENET_MEAN, IMAGENET_STD


def write_folder(root: Path, size: int, count: int, classes: int = 10) -> list[Path]:
    """`count` random images in ImageFolder layout: PNG at 32 px, JPEG at 256 px for the 224 pipeline."""
    from PIL import Image

    rng = np.random.default_rng(0)
    side, suffix = (32, "png") if size == 32 else (256, "jpg")
    paths = []
    for i in range(count):
        d = root / f"class_{i % classes}"
        d.mkdir(parents=True, exist_ok=True)
        p = d / f"img_{i}.{suffix}"
        Image.fromarray(rng.integers(0, 255, (side, side, 3), dtype=np.uint8)).save(p)
        paths.append(p)
    return paths


def torchvision_transform(size: int):
    from torchvision import transforms as T

    if size == 32:
        return T.Compose([T.RandomCrop(32, padding=4), T.RandomHorizontalFlip(), T.ToTensor(), T.Normalize(CIFAR_MEAN, CIFAR_STD)])
    return T.Compose([T.RandomResizedCrop(224, scale=(0.7, 1.0)), T.RandomHorizontalFlip(), T.ToTensor(),
                      T.Normalize(IMAGENET_MEAN, IMAGENET_STD)])


def train_steps(model: torch.nn.Module, batches, steps: int, warmup: int, device: torch.device) -> float:
    """Images per second over `steps` training steps after `warmup` untimed ones."""
    opt = torch.optim.Adam(model.parameters(), lr=1e-3)
    model.train()
    seen, start = 0, None
    for i, (x, y) in enumerate(batches):
        if i == warmup:
            if device.type == "cuda":
                torch.cuda.synchronize(device)
            start, seen = time.perf_counter(), 0
        loss = F.cross_entropy(model(x.to(device, non_blocking=True)), y.to(device, non_blocking=True))
        opt.zero_grad(set_to_none=True)
        loss.backward()
        opt.step()
        seen += len(y)
        if i + 1 == warmup + steps:
            break
    if device.type == "cuda":
        torch.cuda.synchronize(device)
    return seen / (time.perf_counter() - start)


def standard_batches(root: Path, size: int, batch: int, workers: int, device: torch.device):
    from torchvision.datasets import ImageFolder

    data = ImageFolder(str(root), transform=torchvision_transform(size))
    loader = torch.utils.data.DataLoader(data, batch_size=batch, shuffle=True, num_workers=workers, drop_last=True,
                                         pin_memory=device.type == "cuda", persistent_workers=workers > 0)
    while True:
        yield from loader


def our_batches(paths: list[Path], size: int, batch: int, device: torch.device, placement: str = "device"):
    """Decode once, then index and augment on the device, the images kept there or streamed from
    host memory (`placement`, as the harness feeds them); returns (batches, decode seconds)."""
    from datasets.base import BiasedData, DataInfo, Split
    from datasets.images import decode_images

    start = time.perf_counter()
    x = torch.from_numpy(decode_images(paths, 32 if size == 32 else 256, "square" if size == 32 else "short_side"))
    decode = time.perf_counter() - start
    y = torch.tensor([int(p.parent.name.split("_")[1]) for p in paths])
    if size == 32:
        info = DataInfo(name="perf", num_classes=10, num_bias=10, image_shape=(3, 32, 32), mean=CIFAR_MEAN, std=CIFAR_STD,
                        augmentation=Augmentation("crop_flip", size=32, padding=4))
    else:
        info = DataInfo(name="perf", num_classes=10, num_bias=10, image_shape=(3, 256, 256), mean=IMAGENET_MEAN,
                        std=IMAGENET_STD, augmentation=Augmentation("resized_crop_flip", size=224, scale=(0.7, 1.0)))
    split = Split(x, y, y)
    data = DeviceData(BiasedData({"train": split, "test": split}, info), device, placement)
    generator = torch.Generator(device=device).manual_seed(0)
    sampler = EpochSampler(len(y), batch, True, generator, on_host=data.streamed)

    def batches():
        while True:
            b = data.train_batch(sampler.next(), "train", generator)
            data.prefetch("train", sampler.peek())
            yield b.x, b.y

    return batches(), decode


def main(argv: list[str]) -> int:
    p = argparse.ArgumentParser(prog="run_bench.py perf --images", description=__doc__.split("\n\n")[0])
    p.add_argument("--device", default="auto")
    p.add_argument("--quick", action="store_true", help="few steps (a smoke check of the script itself)")
    p.add_argument("--sizes", type=int, nargs="+", default=[32, 224], choices=[32, 224])
    p.add_argument("--workers", type=int, default=min(8, os.cpu_count() or 1), help="DataLoader workers of the standard pipeline")
    args = p.parse_args(argv)
    device = resolve_device(args.device)
    from methods.models import TorchvisionResNet

    print(f"device: {device} ({torch.cuda.get_device_name(device) if device.type == 'cuda' else 'cpu'}), torch {torch.__version__}, "
          f"threads {torch.get_num_threads()}, DataLoader workers {args.workers}")
    for size in args.sizes:
        batch = 256 if size == 32 else 64
        if device.type == "cpu":
            batch //= 4
        steps, warmup = (3, 1) if args.quick else ((30, 5) if device.type == "cpu" else (100, 10))
        count = max(batch * (steps + warmup) // 4, 4 * batch)
        torch.manual_seed(0)
        init = TorchvisionResNet(18, 10).to(device)
        with tempfile.TemporaryDirectory() as tmp:
            paths = write_folder(Path(tmp), size, count)
            standard = train_steps(copy.deepcopy(init), standard_batches(Path(tmp), size, batch, args.workers, device), steps, warmup, device)
            batches, decode = our_batches(paths, size, batch, device)
            ours = train_steps(copy.deepcopy(init), batches, steps, warmup, device)
            batches, _ = our_batches(paths, size, batch, device, "host")
            streamed = train_steps(copy.deepcopy(init), batches, steps, warmup, device)
        print(f"ResNet-18 at {size} px, batch {batch}, {steps} timed steps ({count} images, decoded once in {decode:.1f} s):")
        print(f"  ImageFolder + DataLoader : {standard:8.1f} images/s")
        print(f"  cached, on-device        : {ours:8.1f} images/s   ratio {ours / standard:.2f}")
        print(f"  cached, streamed (host)  : {streamed:8.1f} images/s   ratio {streamed / standard:.2f}")
    return 0
