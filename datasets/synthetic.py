"""A tiny synthetic biased dataset for tests: the target is a shape, the bias its colour.

4 classes of small 3 x 12 x 12 images: a filled square, a horizontal bar, a vertical bar and a
cross, each drawn at one of `positions` x `positions` places, with grey-level noise. The colour
tints the whole image (the background at `background` of full strength, 0.35 by default; 0 gives
Colored MNIST's black background) and paints the shape brighter, so colour is far more salient than shape:
a plain ERM model trained with few bias-conflicting images leans on colour, which is what
debiasing methods must undo, while the shape stays learnable (ERM on uniformly coloured data
reaches 100 %). Colour c is aligned with shape c. `train` has `conflict_pct` percent conflicting
images; `valid` and `test` have colours spread evenly. Generated from the dataset seed in well
under a second; nothing is cached.
"""
from __future__ import annotations

from pathlib import Path

import numpy as np
import torch

from benchmark.errors import BenchError
from datasets.base import BiasedData, DataInfo, Split, register_dataset

SIZE = 12
COLORS = np.array([[230, 40, 40], [40, 200, 40], [50, 80, 230], [220, 200, 40]], dtype=np.float32) / 255.0
NUM_CLASSES = len(COLORS)


def _shape_mask(kind: int, rng: np.random.Generator, positions: int) -> np.ndarray:
    m = np.zeros((SIZE, SIZE), dtype=np.float32)
    r, c = rng.integers(1, 1 + positions, size=2)
    if kind == 0:
        m[r:r + 6, c:c + 6] = 1
    elif kind == 1:
        m[r + 2:r + 4, c:c + 7] = 1
    elif kind == 2:
        m[r:r + 7, c + 2:c + 4] = 1
    else:
        m[r + 3, c:c + 7] = 1
        m[r:r + 7, c + 3] = 1
    return m


def _draw(y: np.ndarray, bias: np.ndarray, rng: np.random.Generator, positions: int, background: float) -> np.ndarray:
    imgs = np.zeros((len(y), 3, SIZE, SIZE), dtype=np.float32)
    for i, (yi, bi) in enumerate(zip(y, bias)):
        color = np.clip(COLORS[bi] + rng.normal(0, 0.03, 3), 0, 1)
        imgs[i] = color[:, None, None] * (background + (1 - background) * _shape_mask(int(yi), rng, positions))[None]
    imgs += rng.uniform(0, 0.15, imgs.shape).astype(np.float32)
    return (np.clip(imgs, 0, 1) * 255).astype(np.uint8)


def _split(n: int, conflict: float, rng: np.random.Generator, positions: int, background: float) -> Split:
    y = np.arange(n) % NUM_CLASSES
    rng.shuffle(y)
    bias = y.copy()
    flip = rng.permutation(n)[: int(round(conflict * n))]
    bias[flip] = (y[flip] + rng.integers(1, NUM_CLASSES, size=len(flip))) % NUM_CLASSES
    return Split(torch.from_numpy(_draw(y, bias, rng, positions, background)), torch.from_numpy(y), torch.from_numpy(bias))


@register_dataset("synthetic", fixture=True)
def load_synthetic(root: Path | None, conflict_pct: float, seed: int = 0, train_size: int = 4000, eval_size: int = 400,
                   positions: int = 4, background: float = 0.35) -> BiasedData:
    """Tiny shapes-vs-colours fixture for tests (4 classes, 3 x 12 x 12)."""
    if not 0 < conflict_pct < 100:
        raise BenchError(f"synthetic: conflict_pct must be in (0, 100), got {conflict_pct:g}")
    rng = np.random.default_rng(seed)
    even = 1 - 1 / NUM_CLASSES
    splits = {
        "train": _split(train_size, conflict_pct / 100, rng, positions, background),
        "valid": _split(eval_size, even, rng, positions, background),
        "test": _split(eval_size, even, rng, positions, background),
    }
    info = DataInfo(
        name="synthetic", num_classes=NUM_CLASSES, num_bias=NUM_CLASSES, image_shape=(3, SIZE, SIZE),
        mean=(0.5, 0.5, 0.5), std=(0.5, 0.5, 0.5), input_kind="small",
    )
    return BiasedData(splits, info, {"generator": "synthetic-1", "seed": seed})
