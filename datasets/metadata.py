"""Datasets described by a metadata CSV (one row per image: file, split, target, bias attribute).

Waterbirds, ISIC and CelebA's subsampled splits are distributed this way. `read_metadata` checks
the columns a loader needs and says which are missing; `metadata_splits` turns the rows into
`Split`s, decoding the images once into the cache (datasets/images.py).
"""
from __future__ import annotations

from pathlib import Path
from typing import Callable

import numpy as np
import pandas as pd
import torch

from benchmark.training.augment import Augmentation
from benchmark.errors import BenchError
from datasets.base import DataInfo, Split
from datasets.images import IMAGENET_MEAN, IMAGENET_STD, cached_images
from datasets.storage import data_root, inside

SPLIT_NAMES = {0: "train", 1: "valid", 2: "test", "0": "train", "1": "valid", "2": "test",
               "train": "train", "val": "valid", "valid": "valid", "validation": "valid", "test": "test"}


def read_metadata(csv: Path, dataset: str, columns: list[str], hint: str) -> pd.DataFrame:
    """The metadata table, or one clear error when the file or one of `columns` is missing."""
    if not csv.is_file():
        raise BenchError(f"{dataset} needs {csv}: {hint}")
    try:
        table = pd.read_csv(csv)
    except (OSError, ValueError, pd.errors.ParserError) as e:
        raise BenchError(f"{csv}: not a readable CSV ({e})") from None
    absent = [c for c in columns if c not in table.columns]
    if absent:
        raise BenchError(f"{csv} lacks the column(s) {', '.join(absent)} that {dataset} reads "
                         f"(it has {', '.join(map(str, table.columns))})")
    return table


def release_table(root: Path | None, dataset: str, folder: str, metadata: str, columns: list[str],
                  hint: str) -> tuple[Path, Path, pd.DataFrame]:
    """(the release's folder, its metadata CSV, the table) under the data root, both paths kept
    inside it (`inside`); one clear error when there is no data root or the CSV lacks a column."""
    base = data_root(root)
    if base is None:
        raise BenchError(f"{dataset} needs its images and metadata CSV: {hint}")
    directory = inside(base, folder, f"{dataset}.folder")
    csv = inside(directory, metadata, f"{dataset}.metadata")
    return directory, csv, read_metadata(csv, dataset, columns, hint)


def split_of(values: pd.Series, csv: Path) -> pd.Series:
    """Split names from the codes 0/1/2 or the words train/val/test."""
    names = values.map(lambda v: SPLIT_NAMES.get(v if not isinstance(v, str) else v.strip().lower()))
    if names.isna().any():
        bad = values[names.isna()].iloc[0]
        raise BenchError(f"{csv}: unknown split value {bad!r} (expected 0/1/2 or train/val/test)")
    return names


def binary(values: pd.Series, csv: Path, column: str, words: dict[str, int] | None = None) -> np.ndarray:
    """0/1 labels from integers, booleans, -1/1 (CelebA's coding) or the given words."""
    def code(v: object) -> int:
        if isinstance(v, str):
            key = v.strip().lower()
            if words and key in words:
                return words[key]
            if key.lstrip("-").isdigit():
                v = int(key)
            else:
                raise BenchError(f"{csv}: column {column} has the value {v!r}; expected 0/1" +
                                 (f" or {'/'.join(words)}" if words else ""))
        v = int(v)  # type: ignore[call-overload]
        if v not in (-1, 0, 1):
            raise BenchError(f"{csv}: column {column} has the value {v}; expected 0/1 (or -1/1)")
        return max(v, 0)

    return np.array([code(v) for v in values], dtype=np.int64)


def imagenet_pipeline_info(name: str, side: int, input_size: int,
                           aligned_pairs: tuple[tuple[int, int], ...] | None = None) -> DataInfo:
    """The binary ImageNet-style protocol of Waterbirds, CelebA and ISIC (DCWP's and PruSC's
    transforms): images stored at `side`, RandomResizedCrop(input_size, scale 0.7-1) + flip in
    training, the centre crop at evaluation, ImageNet normalisation."""
    return DataInfo(
        name=name, num_classes=2, num_bias=2, image_shape=(3, side, side), mean=IMAGENET_MEAN, std=IMAGENET_STD,
        augmentation=Augmentation("resized_crop_flip", size=input_size, scale=(0.7, 1.0)), input_kind="large",
        aligned_pairs=aligned_pairs,
    )


def metadata_splits(table: pd.DataFrame, csv: Path, dataset: str, image_path: Callable[[pd.Series], Path],
                    target: np.ndarray, bias: np.ndarray, split_column: str, side: int, rule: str) -> dict[str, Split]:
    """Splits from metadata rows: images decoded (or read from the cache), labels as given."""
    names = split_of(table[split_column], csv)
    splits = {}
    for name in ("train", "valid", "test"):
        rows = np.flatnonzero((names == name).to_numpy())
        if len(rows) == 0:
            continue
        paths = [image_path(table.iloc[i]) for i in rows]
        x = cached_images(dataset, name, paths, side, rule)
        splits[name] = Split(torch.from_numpy(x), torch.from_numpy(target[rows]), torch.from_numpy(bias[rows]))
    return splits
