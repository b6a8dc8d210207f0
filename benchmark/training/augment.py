"""Training augmentation on the device, for a whole batch at once.

The official pipelines run torchvision transforms per image on PIL images in DataLoader workers.
Here the images already sit on the device as uint8 at the stored resolution, and a batch is
augmented in a few tensor operations, with its random parameters drawn from the harness's
generator (so a resumed run continues the same stream). Each kind re-creates one torchvision
pipeline; the parameter samplers follow torchvision's `get_params` rules so that the crops and
flips have the same distribution (tests/test_augment.py checks it against torchvision):

- `none`: the stored images as they are.
- `flip`: RandomHorizontalFlip.
- `crop_flip`: RandomCrop(size, padding, fill 0) + RandomHorizontalFlip (CIFAR, BFFHQ in DisEnt).
- `resized_crop_flip`: RandomResizedCrop(size, scale, ratio, bilinear) + RandomHorizontalFlip
  (CelebA, Waterbirds, ISIC).

Evaluation images are centre-cropped to the model's input size (`center_crop`), which with a
cache stored at Resize(256) + CenterCrop(256) is exactly torchvision's Resize(256) + CenterCrop(224).
"""
from __future__ import annotations

import math
from dataclasses import dataclass

import torch
import torch.nn.functional as F
from torch import Tensor

from benchmark.errors import BenchError

KINDS = ("none", "flip", "crop_flip", "resized_crop_flip")


@dataclass(frozen=True)
class Augmentation:
    """One training transform: its kind, output size and parameters."""

    kind: str = "none"
    size: int | None = None            # output side; None = the stored size
    padding: int = 0                   # crop_flip
    scale: tuple[float, float] = (0.08, 1.0)            # resized_crop_flip (torchvision's defaults)
    ratio: tuple[float, float] = (3 / 4, 4 / 3)

    def __post_init__(self) -> None:
        if self.kind not in KINDS:
            raise BenchError(f"unknown augmentation {self.kind!r}; known: {', '.join(KINDS)}")

    def __call__(self, x: Tensor, generator: torch.Generator) -> Tensor:
        """Augment a float batch (B, C, H, W) with values in the stored range (before normalisation)."""
        if self.kind == "none":
            return center_crop(x, self.size)
        if self.kind == "crop_flip":
            x = random_crop(x, self.size or x.shape[-1], self.padding, generator)
        elif self.kind == "resized_crop_flip":
            x = random_resized_crop(x, self.size or x.shape[-1], self.scale, self.ratio, generator)
        else:
            x = center_crop(x, self.size)
        return random_flip(x, generator)


def _uniform(n: int, generator: torch.Generator) -> Tensor:
    return torch.rand(n, generator=generator, device=generator.device)


def center_crop(x: Tensor, size: int | None) -> Tensor:
    """The central size x size window (no-op when `size` is None or the stored size)."""
    if size is None or (x.shape[-2] == size and x.shape[-1] == size):
        return x
    h, w = x.shape[-2:]
    if size > h or size > w:
        raise BenchError(f"cannot centre-crop {h}x{w} images to {size}: store them at least that large")
    top, left = int(round((h - size) / 2.0)), int(round((w - size) / 2.0))
    return x[..., top:top + size, left:left + size]


def random_flip(x: Tensor, generator: torch.Generator) -> Tensor:
    """Each image mirrored left-right with probability 1/2."""
    flip = _uniform(len(x), generator) < 0.5
    return torch.where(flip.view(-1, 1, 1, 1), x.flip(-1), x)


def crop_offsets(n: int, free_h: int, free_w: int, generator: torch.Generator) -> tuple[Tensor, Tensor]:
    """Top and left offsets of RandomCrop, uniform over the free range (inclusive), per sample."""
    top = (_uniform(n, generator) * (free_h + 1)).long().clamp_max(free_h)
    left = (_uniform(n, generator) * (free_w + 1)).long().clamp_max(free_w)
    return top, left


def random_crop(x: Tensor, size: int, padding: int, generator: torch.Generator) -> Tensor:
    """RandomCrop(size, padding) with zero fill: pad, then one size x size window per image."""
    if padding:
        x = F.pad(x, (padding, padding, padding, padding))
    b, _, h, w = x.shape
    top, left = crop_offsets(b, h - size, w - size, generator)
    ar = torch.arange(size, device=x.device)
    rows = (top[:, None] + ar)[:, None, :, None]             # (B, 1, size, 1)
    cols = (left[:, None] + ar)[:, None, None, :]            # (B, 1, 1, size)
    batch = torch.arange(b, device=x.device)[:, None, None, None]
    channels = torch.arange(x.shape[1], device=x.device)[None, :, None, None]
    return x[batch, channels, rows, cols]


def resized_crop_boxes(n: int, height: int, width: int, scale: tuple[float, float], ratio: tuple[float, float],
                       generator: torch.Generator, attempts: int = 10) -> Tensor:
    """(top, left, h, w) per sample, by torchvision's RandomResizedCrop.get_params rule: up to ten
    draws of an area fraction in `scale` and a log-uniform aspect ratio in `ratio`, the first that
    fits wins, its position uniform; if none fits, the centre crop at the closest allowed ratio."""
    area = height * width
    target = area * (scale[0] + (scale[1] - scale[0]) * _uniform(n * attempts, generator).view(n, attempts))
    log_lo, log_hi = math.log(ratio[0]), math.log(ratio[1])
    aspect = torch.exp(log_lo + (log_hi - log_lo) * _uniform(n * attempts, generator).view(n, attempts))
    w = torch.round(torch.sqrt(target * aspect)).long()
    h = torch.round(torch.sqrt(target / aspect)).long()
    fits = (w > 0) & (h > 0) & (w <= width) & (h <= height)
    first = torch.where(fits.any(1), fits.float().argmax(1), torch.full((n,), -1, device=fits.device))
    pick = first.clamp_min(0)[:, None]
    h, w = h.gather(1, pick).squeeze(1), w.gather(1, pick).squeeze(1)
    in_ratio = width / height
    if in_ratio < ratio[0]:
        fh, fw = int(round(width / ratio[0])), width
    elif in_ratio > ratio[1]:
        fh, fw = height, int(round(height * ratio[1]))
    else:
        fh, fw = height, width
    ok = first >= 0
    h = torch.where(ok, h, torch.full_like(h, fh))
    w = torch.where(ok, w, torch.full_like(w, fw))
    u, v = _uniform(n, generator), _uniform(n, generator)
    top = torch.where(ok, (u * (height - h + 1)).long().clamp_max(height - h), (height - h) // 2)
    left = torch.where(ok, (v * (width - w + 1)).long().clamp_max(width - w), (width - w) // 2)
    return torch.stack([top, left, h, w], 1)


def random_resized_crop(x: Tensor, size: int, scale: tuple[float, float], ratio: tuple[float, float],
                        generator: torch.Generator) -> Tensor:
    """RandomResizedCrop: each image's box resampled bilinearly to size x size in one grid_sample.
    Sample points are clamped to the box, as when the box is cut out first and then resized."""
    b, _, height, width = x.shape
    box = resized_crop_boxes(b, height, width, scale, ratio, generator).to(x.dtype)
    top, left, h, w = box.unbind(1)
    steps = torch.arange(size, device=x.device, dtype=x.dtype) + 0.5

    def axis(start: Tensor, length: Tensor, full: int) -> Tensor:
        pixel = (start[:, None] + steps * (length[:, None] / size) - 0.5).clamp(start[:, None], (start + length - 1)[:, None])
        return (pixel + 0.5) * (2.0 / full) - 1.0           # pixel centre -> grid_sample's [-1, 1]

    gx, gy = axis(left, w, width), axis(top, h, height)     # (B, size) each
    grid = torch.stack([gx[:, None, :].expand(b, size, size), gy[:, :, None].expand(b, size, size)], -1)
    return F.grid_sample(x, grid, mode="bilinear", padding_mode="border", align_corners=False)
