"""The one structure every dataset loader returns, and the registry that finds loaders.

A loader turns (root, conflict_pct, options) into a `BiasedData`: uint8 images (N, C, H, W),
target `y` and bias attribute `bias` per split, plus a `DataInfo` that says everything a method
or the harness may know about the data without seeing labels (sizes, normalisation, which
(y, bias) pairs count as bias-aligned).
"""
from __future__ import annotations

import dataclasses
import hashlib
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Callable

import torch
from torch import Tensor

from benchmark.training.augment import Augmentation
from benchmark.errors import BenchError
from benchmark.plugins import register_config


@dataclass
class Split:
    """One split: images as uint8 (N, C, H, W), target `y` and bias attribute `bias` (int64)."""

    x: Tensor
    y: Tensor
    bias: Tensor

    def __post_init__(self) -> None:
        n = len(self.x)
        if self.x.dtype != torch.uint8 or self.x.dim() != 4:
            raise ValueError(f"images must be uint8 (N, C, H, W), got {self.x.dtype} {tuple(self.x.shape)}")
        if len(self.y) != n or len(self.bias) != n:
            raise ValueError(f"split sizes differ: {n} images, {len(self.y)} labels, {len(self.bias)} bias labels")
        self.y = self.y.long()
        self.bias = self.bias.long()

    def __len__(self) -> int:
        return len(self.x)


@dataclass(frozen=True)
class DataInfo:
    """What a method may know about a dataset: shapes and conventions, never labels."""

    name: str
    num_classes: int
    num_bias: int
    image_shape: tuple[int, int, int]
    mean: tuple[float, ...] = (0.0, 0.0, 0.0)
    std: tuple[float, ...] = (1.0, 1.0, 1.0)
    # training transform, run on the device; its `size` is the model's input side (evaluation
    # centre-crops the stored images to it)
    augmentation: Augmentation = Augmentation()
    input_kind: str = "small"
    # (y, bias) pairs that count as bias-aligned; None means "y == bias".
    aligned_pairs: tuple[tuple[int, int], ...] | None = None
    train_size: int = 0  # filled in by BiasedData from the train split
    # ((split, number of samples), ...): also filled in by BiasedData, so a method can size epochs
    split_sizes: tuple[tuple[str, int], ...] = ()

    @property
    def input_shape(self) -> tuple[int, int, int]:
        """What the model sees: the stored images, centre-cropped or augmented to `augmentation.size`."""
        side = self.augmentation.size
        return self.image_shape if side is None else (self.image_shape[0], side, side)

    def size(self, split: str) -> int:
        """Number of samples of `split` (0 when the dataset has no such split)."""
        return dict(self.split_sizes).get(split, 0)

    @property
    def num_groups(self) -> int:
        """Number of (y, bias) groups; group ids are `y * num_bias + bias` (GroupDRO's numbering)."""
        return self.num_classes * self.num_bias

    def group_of(self, y: Tensor, bias: Tensor) -> Tensor:
        """Group id of each (y, bias) pair."""
        return y * self.num_bias + bias

    def is_aligned(self, y: Tensor, bias: Tensor) -> Tensor:
        """Boolean mask: which (y, bias) pairs are bias-aligned under this dataset's convention."""
        if self.aligned_pairs is None:
            return y == bias
        mask = torch.zeros_like(y, dtype=torch.bool)
        for ya, ba in self.aligned_pairs:
            mask |= (y == ya) & (bias == ba)
        return mask


@dataclass
class BiasedData:
    """Splits (`train`, `test`, optionally `valid`), their `DataInfo`, and a fingerprint."""

    splits: dict[str, Split]
    info: DataInfo
    fingerprint: dict[str, Any] = field(default_factory=dict)

    def __post_init__(self) -> None:
        self.check()
        sizes = tuple(sorted((name, len(split)) for name, split in self.splits.items()))
        self.info = dataclasses.replace(self.info, train_size=len(self.splits["train"]), split_sizes=sizes)
        if not self.fingerprint.get("sha256"):
            self.fingerprint = {**self.fingerprint, "sha256": hash_splits(self.splits)}

    def check(self) -> None:
        """Fail at load, with a clear message, if the data came out wrong."""
        info = self.info
        side = info.augmentation.size
        if side is not None and side > min(info.image_shape[1:]):
            raise BenchError(f"{info.name}: the model input ({side} px) is larger than the stored images "
                             f"({info.image_shape[1]} x {info.image_shape[2]}): lower input_size or raise side")
        for name, split in self.splits.items():
            if split.x.shape[1:] != torch.Size(info.image_shape):
                raise BenchError(f"{info.name}/{name}: images are {tuple(split.x.shape[1:])}, expected {info.image_shape}")
            if len(split) == 0:
                raise BenchError(f"{info.name}/{name}: the split is empty")
            if int(split.y.min()) < 0 or int(split.y.max()) >= info.num_classes:
                raise BenchError(f"{info.name}/{name}: target labels outside 0..{info.num_classes - 1}")
            if int(split.bias.min()) < 0 or int(split.bias.max()) >= info.num_bias:
                raise BenchError(f"{info.name}/{name}: bias labels outside 0..{info.num_bias - 1}")
        if "train" not in self.splits or "test" not in self.splits:
            raise BenchError(f"{info.name}: a dataset needs 'train' and 'test' splits, got {sorted(self.splits)}")

    def conflict_fraction(self, split: str = "train") -> float:
        s = self.splits[split]
        return float((~self.info.is_aligned(s.y, s.bias)).float().mean())


def hash_splits(splits: dict[str, Split]) -> str:
    """sha256 over every split's images and labels: the exact data a job trained and tested on."""
    h = hashlib.sha256()
    for name in sorted(splits):
        s = splits[name]
        h.update(name.encode())
        for t in (s.x, s.y, s.bias):
            h.update(str(tuple(t.shape)).encode())
            h.update(t.contiguous().numpy().tobytes())
    return h.hexdigest()


Loader = Callable[..., BiasedData]


@dataclass(frozen=True)
class DatasetEntry:
    name: str
    loader: Loader
    description: str
    fixture: bool = False
    make_fixture: Callable[[Path], dict[str, Any]] | None = None


DATASETS: dict[str, DatasetEntry] = {}




def register_dataset(name: str, fixture: bool = False, make_fixture: Callable[[Path], dict[str, Any]] | None = None,
                     config: str | Path | None = None) -> Callable[[Loader], Loader]:
    """Decorator: register a loader `fn(root, conflict_pct, **options) -> BiasedData` under `name`.

    Checked at import: the name is new and its YAML exists (configs/datasets/<name>.yaml; for a
    dataset from another package, `config` or <name>.yaml beside its module). `fixture=True`
    marks test data (left out of `--datasets all`). `make_fixture(tmp_dir)` writes a tiny copy of
    the dataset's on-disk layout for tests and returns the `load` arguments that read it
    (`root`, `conflict_pct`, options); datasets generated from shipped data need none.
    """

    def wrap(fn: Loader) -> Loader:
        if name in DATASETS:
            raise RuntimeError(f"dataset {name!r} is registered twice ({DATASETS[name].loader.__module__} and {fn.__module__})")
        register_config("datasets", name, fn, config)
        doc = (fn.__doc__ or "").strip().splitlines()
        DATASETS[name] = DatasetEntry(name, fn, doc[0] if doc else "", fixture, make_fixture)
        return fn

    return wrap


def load(name: str, conflict_pct: float, root: str | Path | None = None, **options: Any) -> BiasedData:
    """Load dataset `name` at `conflict_pct` percent bias-conflicting training samples."""
    if name not in DATASETS:
        raise BenchError(f"unknown dataset {name!r}; registered datasets: {', '.join(sorted(DATASETS))}")
    return DATASETS[name].loader(root=Path(root) if root else None, conflict_pct=float(conflict_pct), **options)
