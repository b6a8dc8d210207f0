"""Colored MNIST by the LfF protocol (Nam et al., NeurIPS 2020; DeNetDM's tables use it too).

Input: MNIST digits with their strokes coloured (black background), 3 x 28 x 28 uint8.
Target: the digit. Bias: the stroke colour, one of LfF's ten fixed colours plus a small
per-image colour noise (sigma 0.005 at LfF's "severity4", the setting of its README and of
DeNetDM). Bias-aligned means colour == digit.

Which images are bias-conflicting is fixed by MNIST order, exactly as LfF's generator fixes it
(`make_attr_labels` of alinlab/LfF `make_dataset.py`): within each class, in dataset order, the
images are cut into ten consecutive chunks, one per colour, with a fraction 1 - conflict_pct/100
of the class on its own colour and the rest spread evenly over the other nine. At 0.5/1/2/5 %
this gives exactly 300/598/1,199/3,000 conflicting training images.

Splits, as in LfF: `train` = the 60,000 MNIST training images; `test` = the 10,000 MNIST test
images with colours spread evenly (LfF calls it "valid"; it is the set the papers report). There
is no validation split unless `valid_fraction` > 0 holds out that fraction of the training
images, before colours are assigned, as an evenly coloured validation set.

The colour noise comes from the dataset seed (option `seed`, default 0), not the job seed: every
job of a grid trains on the same data, as in the papers. LfF's own noise was unseeded, so our
images equal LfF's up to that noise; the colours, the assignment and the arithmetic are LfF's.
Citation: Nam et al., "Learning from Failure: Training Debiased Classifier from Biased
Classifier", NeurIPS 2020. MNIST: LeCun, Cortes, Burges (CC BY-SA 3.0).
"""
from __future__ import annotations

from pathlib import Path

import numpy as np
import torch

from benchmark.errors import BenchError
from datasets.base import BiasedData, DataInfo, Split, register_dataset
from datasets.mnist import load_mnist
from datasets.storage import cache_dir, load_cached, save_cached

GENERATOR_VERSION = "lff-cmnist-1"

# LfF's `data/resource/colors.th` (identical in DeNetDM): mean stroke colour of each bias value, RGB in [0, 1].
LFF_COLORS = torch.tensor(
    [
        [0.98368233, 0.31251901, 0.16857535],
        [0.99052966, 0.91560525, 0.35151219],
        [0.67296398, 0.46107048, 0.57980818],
        [0.78325194, 0.83155590, 0.60132939],
        [0.08801579, 0.77796334, 0.98180777],
        [0.32139337, 0.96105456, 0.44644988],
        [0.02461588, 0.23565048, 0.75866628],
        [0.55524695, 0.10158014, 0.76176316],
        [0.20772320, 0.39294851, 0.01870239],
        [0.83365762, 0.20240927, 0.26694310],
    ],
    dtype=torch.float32,
)

# LfF `data/colored_mnist_protocol.py`: colour noise std per severity 1..5.
SEVERITY_STD = {1: 0.05, 2: 0.02, 3: 0.01, 4: 0.005, 5: 0.002}

# Aligned fraction of LfF's evenly coloured evaluation split ("valid" in LfF's code).
EVEN_ALIGNED_RATIO = 0.1

SPLIT_STREAM = {"train": 0, "valid": 1, "test": 2}


def order_based_bias(labels: np.ndarray, aligned_ratio: float, num_classes: int = 10) -> np.ndarray:
    """Bias value of every sample, assigned by dataset order within each class (LfF's rule).

    Class c with n_c samples is cut at milestones round(n_c * cumsum(row_c)), where row_c puts
    `aligned_ratio` on value c and (1 - aligned_ratio) / (C - 1) on every other value; the k-th
    sample of the class gets the first value whose milestone exceeds k.
    """
    eye = np.eye(num_classes)
    ratios = aligned_ratio * eye + (1 - aligned_ratio) / (num_classes - 1) * (1 - eye)
    counts = np.array([(labels == c).sum() for c in range(num_classes)])
    milestones = (counts[:, None] * np.cumsum(ratios, axis=1)).round()
    bias = np.zeros(len(labels), dtype=np.int64)
    for c in range(num_classes):
        idx = np.nonzero(labels == c)[0]
        bias[idx] = np.searchsorted(milestones[c], np.arange(len(idx)), side="right")
    return bias


def colorize(gray: np.ndarray, bias: np.ndarray, severity: int, generator: torch.Generator) -> np.ndarray:
    """Colour the strokes: pixel = clamp(colour[bias] + N(0, sigma^2) per image, 0, 1) * grey, truncated to uint8."""
    noise = torch.randn(len(gray), 3, generator=generator) * SEVERITY_STD[severity]
    color = torch.clamp(LFF_COLORS[torch.from_numpy(bias)] + noise, 0.0, 1.0)
    images = color[:, :, None, None] * torch.from_numpy(gray).float()[:, None]
    return images.to(torch.uint8).numpy()


def _stream(seed: int, split: str) -> torch.Generator:
    return torch.Generator().manual_seed(3 * int(seed) + SPLIT_STREAM[split])


def build_cmnist(root: Path | None, conflict_pct: float, seed: int, severity: int, valid_fraction: float) -> dict[str, np.ndarray]:
    """The arrays of every split, built from MNIST by the LfF protocol."""
    train_x, train_y = load_mnist(train=True, root=root)
    test_x, test_y = load_mnist(train=False, root=root)
    parts = {"train": (train_x, train_y), "test": (test_x, test_y)}
    if valid_fraction > 0:
        held = np.random.default_rng(seed).permutation(len(train_y))[: int(round(valid_fraction * len(train_y)))]
        keep = np.setdiff1d(np.arange(len(train_y)), held)  # sorted: the training set keeps MNIST order
        parts["train"] = (train_x[keep], train_y[keep])
        parts["valid"] = (train_x[np.sort(held)], train_y[np.sort(held)])
    arrays = {}
    for split, (gray, y) in parts.items():
        ratio = 1.0 - conflict_pct / 100.0 if split == "train" else EVEN_ALIGNED_RATIO
        bias = order_based_bias(y, ratio)
        arrays[f"{split}_x"] = colorize(gray, bias, severity, _stream(seed, split))
        arrays[f"{split}_y"] = y.astype(np.int64)
        arrays[f"{split}_bias"] = bias
    return arrays


def splits_from_arrays(arrays: dict[str, np.ndarray]) -> dict[str, Split]:
    names = sorted({k.rsplit("_", 1)[0] for k in arrays if k.endswith("_x")})
    return {
        n: Split(torch.from_numpy(arrays[f"{n}_x"]), torch.from_numpy(arrays[f"{n}_y"]), torch.from_numpy(arrays[f"{n}_bias"]))
        for n in names
    }


@register_dataset("cmnist")
def load_cmnist(root: Path | None, conflict_pct: float, seed: int = 0, severity: int = 4, valid_fraction: float = 0.0) -> BiasedData:
    """Colored MNIST, LfF protocol (generated from MNIST; DeNetDM's and LfF's tables)."""
    if not 0 < conflict_pct < 100:
        raise BenchError(f"cmnist: conflict_pct must be in (0, 100), got {conflict_pct:g}; the papers use 0.5 1 2 5")
    if severity not in SEVERITY_STD:
        raise BenchError(f"cmnist: severity must be one of {sorted(SEVERITY_STD)} (LfF's), got {severity}")
    if not 0 <= valid_fraction < 1:
        raise BenchError(f"cmnist: valid_fraction must be in [0, 1), got {valid_fraction}")
    key = f"{GENERATOR_VERSION}_c{conflict_pct:g}_s{seed}_sev{severity}_vf{valid_fraction:g}"
    path = cache_dir() / "cmnist" / f"{key}.npz"
    arrays = load_cached(path)
    if arrays is None:
        arrays = build_cmnist(root, conflict_pct, seed, severity, valid_fraction)
        save_cached(path, arrays)
    splits = splits_from_arrays(arrays)
    info = DataInfo(
        name="cmnist", num_classes=10, num_bias=10, image_shape=(3, 28, 28),
        input_kind="small",
    )
    fingerprint = {"generator": GENERATOR_VERSION, "seed": seed, "severity": severity, "valid_fraction": valid_fraction}
    return BiasedData(splits, info, fingerprint)
