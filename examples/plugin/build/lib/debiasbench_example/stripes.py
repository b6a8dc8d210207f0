"""Coloured stripes: the target is the stripes' direction (horizontal or vertical), the bias their colour."""
from __future__ import annotations

from pathlib import Path

import numpy as np
import torch

from benchmark.errors import BenchError
from datasets import BiasedData, DataInfo, Split, register_dataset

COLORS = np.array([[220, 40, 40], [40, 180, 220]], dtype=np.float32)  # colour c goes with direction c


def _split(n: int, conflict: float, rng: np.random.Generator) -> Split:
    y = rng.integers(0, 2, n)
    bias = np.where(rng.random(n) < conflict, 1 - y, y)
    phase = rng.integers(0, 4, n)
    grid = (np.arange(16)[None, :] + phase[:, None]) % 4 < 2              # (n, 16): which rows/columns are lit
    lit = np.where(y[:, None, None] == 0, grid[:, :, None], grid[:, None, :])  # horizontal or vertical stripes
    # colour fills the image; the stripes are more than twice as bright: a colour shortcut beside a harder signal
    images = COLORS[bias][:, :, None, None] * (0.3 + 0.7 * lit[:, None].astype(np.float32))
    images += rng.uniform(0, 60, images.shape)
    return Split(torch.from_numpy(np.clip(images, 0, 255).astype(np.uint8)), torch.from_numpy(y), torch.from_numpy(bias))


@register_dataset("stripes")  # its YAML: stripes.yaml beside this file
def load_stripes(root: Path | None, conflict_pct: float, seed: int = 0, size: int = 2000) -> BiasedData:
    """Coloured stripes (an example plugin dataset): direction = target, colour = bias, 2 x 2 groups."""
    if not 0 < conflict_pct < 100:
        raise BenchError(f"stripes: conflict_pct must be in (0, 100), got {conflict_pct:g}")
    rng = np.random.default_rng(seed)
    splits = {"train": _split(size, conflict_pct / 100, rng), "valid": _split(400, 0.5, rng), "test": _split(400, 0.5, rng)}
    info = DataInfo(name="stripes", num_classes=2, num_bias=2, image_shape=(3, 16, 16), input_kind="small")
    return BiasedData(splits, info, {"generator": "stripes-1", "seed": seed})
