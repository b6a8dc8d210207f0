"""What LfF's `make_dataset.py` does the same way for Colored MNIST and Corrupted CIFAR-10.

Both datasets keep the source's splits (train = the training set, "valid" = the test set with the
bias spread evenly, which we call `test`) and assign the bias attribute by dataset order within
each class (`make_attr_labels`), so which images are bias-conflicting is fixed by the source's
order: identical across runs and seeds. Only how an image is given its bias value differs
(a colour for MNIST, a corruption for CIFAR-10).
"""
from __future__ import annotations

from typing import Callable

import numpy as np
import torch

from benchmark.errors import BenchError
from datasets.base import Split

# Aligned fraction of LfF's evenly biased evaluation split ("valid" in LfF's code): 1/10 per value.
EVEN_ALIGNED_RATIO = 0.1


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


def build_protocol_arrays(
    train: tuple[np.ndarray, np.ndarray],
    test: tuple[np.ndarray, np.ndarray],
    conflict_pct: float,
    seed: int,
    valid_fraction: float,
    apply_bias: Callable[[str, np.ndarray, np.ndarray], np.ndarray],
    valid_bias: str = "even",
) -> dict[str, np.ndarray]:
    """`{split}_x/_y/_bias` arrays: bias assigned by order, then images biased by `apply_bias(split, images, bias)`.

    `valid_fraction` > 0 holds out that fraction of the training images (chosen by `seed`, before
    bias values are assigned) as a validation split, LfF itself has none: evenly biased
    (`valid_bias: even`, like the test split), or biased as the training split, at the same
    conflict ratio (`valid_bias: train`: DomainBed's training-domain validation, for selection
    rules that see no group labels), or both (`valid_bias: both`): the held-out images split in
    two halves, `valid` biased as training and `valid_even` evenly, so that one run serves the
    rules without group labels and those with them (benchmark/selection.py).
    """
    check_valid_bias(valid_bias)
    parts = {"train": train, "test": test}
    if valid_fraction > 0:
        train_x, train_y = train
        order = np.random.default_rng(seed).permutation(len(train_y))[: int(round(valid_fraction * len(train_y)))]
        held = np.sort(order)
        keep = np.setdiff1d(np.arange(len(train_y)), held)  # sorted: the training set keeps the source order
        parts["train"] = (train_x[keep], train_y[keep])
        if valid_bias == "both":
            half = len(order) // 2
            for name, rows in (("valid", np.sort(order[:half])), ("valid_even", np.sort(order[half:]))):
                parts[name] = (train_x[rows], train_y[rows])
        else:
            parts["valid"] = (train_x[held], train_y[held])
    arrays = {}
    for split, (images, y) in parts.items():
        biased = split == "train" or (split == "valid" and valid_bias in ("train", "both"))
        ratio = 1.0 - conflict_pct / 100.0 if biased else EVEN_ALIGNED_RATIO
        bias = order_based_bias(y, ratio)
        arrays[f"{split}_x"] = apply_bias(split, images, bias)
        arrays[f"{split}_y"] = y.astype(np.int64)
        arrays[f"{split}_bias"] = bias
    return arrays


VALID_BIAS = ("even", "train", "both")


def check_valid_bias(valid_bias: str) -> None:
    if valid_bias not in VALID_BIAS:
        raise BenchError(f"valid_bias must be one of {', '.join(VALID_BIAS)} (even: evenly biased like the test split; "
                         f"train: biased like the training split; both: half of each, as valid and valid_even), got {valid_bias!r}")


def valid_key(valid_fraction: float, valid_bias: str) -> str:
    """The cache-key part of the validation split (unchanged from before `valid_bias` for the even one)."""
    return f"vf{valid_fraction:g}" + ("" if valid_bias == "even" else f"_vb{valid_bias}")


def splits_from_arrays(arrays: dict[str, np.ndarray]) -> dict[str, Split]:
    """`Split`s from the `{split}_x/_y/_bias` arrays of a cache file."""
    names = sorted({k.rsplit("_", 1)[0] for k in arrays if k.endswith("_x")})
    return {
        n: Split(torch.from_numpy(arrays[f"{n}_x"]), torch.from_numpy(arrays[f"{n}_y"]), torch.from_numpy(arrays[f"{n}_bias"]))
        for n in names
    }
