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
images, before colours are assigned, as an evenly coloured validation set (`valid_bias: even`),
or one coloured like the training split at the same conflict ratio (`valid_bias: train`: the
validation split of the tuning rules that use no group labels), or half of each (`valid_bias:
both`: `valid` biased like training, `valid_even` evenly; benchmark/selection.py reads each for
the rules it serves).

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
from datasets.base import BiasedData, DataInfo, register_dataset
from datasets.lff_protocol import build_protocol_arrays, check_valid_bias, splits_from_arrays, valid_key
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

SPLIT_STREAM = {"train": 0, "valid": 1, "test": 2}
EVEN_VALID_STREAM = 1_000_003  # valid_bias both: the evenly coloured half's colour noise, apart from the 3 * seed + k streams of every seed below 500,001


def colorize(gray: np.ndarray, bias: np.ndarray, severity: int, generator: torch.Generator) -> np.ndarray:
    """Colour the strokes: pixel = clamp(colour[bias] + N(0, sigma^2) per image, 0, 1) * grey, truncated to uint8."""
    noise = torch.randn(len(gray), 3, generator=generator) * SEVERITY_STD[severity]
    color = torch.clamp(LFF_COLORS[torch.from_numpy(bias)] + noise, 0.0, 1.0)
    images = color[:, :, None, None] * torch.from_numpy(gray).float()[:, None]
    return images.to(torch.uint8).numpy()


def _stream(seed: int, split: str) -> torch.Generator:
    if split == "valid_even":
        return torch.Generator().manual_seed(EVEN_VALID_STREAM + int(seed))
    return torch.Generator().manual_seed(3 * int(seed) + SPLIT_STREAM[split])


def build_cmnist(root: Path | None, conflict_pct: float, seed: int, severity: int, valid_fraction: float,
                 valid_bias: str = "even") -> dict[str, np.ndarray]:
    """The arrays of every split, built from MNIST by the LfF protocol."""
    return build_protocol_arrays(
        load_mnist(train=True, root=root), load_mnist(train=False, root=root), conflict_pct, seed, valid_fraction,
        lambda split, gray, bias: colorize(gray, bias, severity, _stream(seed, split)), valid_bias,
    )


@register_dataset("cmnist")
def load_cmnist(root: Path | None, conflict_pct: float, seed: int = 0, severity: int = 4, valid_fraction: float = 0.0,
                valid_bias: str = "even") -> BiasedData:
    """Colored MNIST, LfF protocol (generated from MNIST; DeNetDM's and LfF's tables)."""
    if not 0 < conflict_pct < 100:
        raise BenchError(f"cmnist: conflict_pct must be in (0, 100), got {conflict_pct:g}; the papers use 0.5 1 2 5")
    if severity not in SEVERITY_STD:
        raise BenchError(f"cmnist: severity must be one of {sorted(SEVERITY_STD)} (LfF's), got {severity}")
    if not 0 <= valid_fraction < 1:
        raise BenchError(f"cmnist: valid_fraction must be in [0, 1), got {valid_fraction}")
    check_valid_bias(valid_bias)
    key = f"{GENERATOR_VERSION}_c{conflict_pct:g}_s{seed}_sev{severity}_{valid_key(valid_fraction, valid_bias)}"
    path = cache_dir() / "cmnist" / f"{key}.npz"
    arrays = load_cached(path)
    if arrays is None:
        arrays = build_cmnist(root, conflict_pct, seed, severity, valid_fraction, valid_bias)
        save_cached(path, arrays)
    splits = splits_from_arrays(arrays)
    info = DataInfo(
        name="cmnist", num_classes=10, num_bias=10, image_shape=(3, 28, 28),
        input_kind="small",
    )
    fingerprint = {"generator": GENERATOR_VERSION, "seed": seed, "severity": severity, "valid_fraction": valid_fraction,
                   **({"valid_bias": valid_bias} if valid_bias != "even" else {})}
    return BiasedData(splits, info, fingerprint)
