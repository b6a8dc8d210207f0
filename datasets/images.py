"""Image files -> one uint8 array per split at the stored resolution, decoded once and cached.

The official loaders decode and resize every image with PIL in every epoch. Here a dataset's
files are decoded once, in parallel threads, into a uint8 (N, 3, S, S) array that is cached under
the dataset cache (`$DEBIASBENCH_CACHE`) with a key over the file list, the files' sizes and
modification times and the resize rule, so a changed or added file rebuilds it. Training then
draws batches by index and augments them on the device (benchmark/training/augment.py).

Resize rules (what the official eval transforms do before any crop):
- `square`: Resize((S, S)) (DisEnt's BFFHQ and CIFAR folders);
- `short_side`: Resize(S) on the shorter side, then CenterCrop(S) (the ImageNet-style pipelines of
  CelebA, Waterbirds, ISIC; a centre crop of the model's input size is taken at evaluation).
"""
from __future__ import annotations

import hashlib
import os
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path

import numpy as np
from PIL import Image

from benchmark.errors import BenchError
from datasets.storage import cache_dir, load_cached, save_cached

RESIZE_RULES = ("square", "short_side")
# normalisation statistics the official transforms use
CIFAR_MEAN, CIFAR_STD = (0.4914, 0.4822, 0.4465), (0.2023, 0.1994, 0.2010)  # DisEnt data/util.py:190-212 (also on BFFHQ)
IMAGENET_MEAN, IMAGENET_STD = (0.485, 0.456, 0.406), (0.229, 0.224, 0.225)


def _decode(path: Path, side: int, rule: str) -> np.ndarray:
    try:
        img = Image.open(path).convert("RGB")
    except (OSError, ValueError) as e:
        raise BenchError(f"{path}: cannot read this image ({e}); replace or remove it") from None
    if rule == "square":
        if img.size != (side, side):
            img = img.resize((side, side), Image.BILINEAR)
    else:
        w, h = img.size
        scale = side / min(w, h)
        if (w, h) != (side, side):
            img = img.resize((max(side, round(w * scale)), max(side, round(h * scale))), Image.BILINEAR)
        w, h = img.size
        left, top = int(round((w - side) / 2.0)), int(round((h - side) / 2.0))
        img = img.crop((left, top, left + side, top + side))
    return np.asarray(img, dtype=np.uint8).transpose(2, 0, 1)


def decode_images(paths: list[Path], side: int, rule: str) -> np.ndarray:
    """uint8 (N, 3, side, side) from image files, decoded in parallel threads."""
    if rule not in RESIZE_RULES:
        raise BenchError(f"unknown resize rule {rule!r}; known: {', '.join(RESIZE_RULES)}")
    out = np.empty((len(paths), 3, side, side), dtype=np.uint8)

    def one(i: int) -> None:
        out[i] = _decode(paths[i], side, rule)

    with ThreadPoolExecutor(max_workers=min(16, os.cpu_count() or 1)) as pool:
        list(pool.map(one, range(len(paths))))
    return out


def files_key(paths: list[Path], side: int, rule: str) -> str:
    """A short hash of the file list with each file's size and mtime, and the resize rule."""
    h = hashlib.sha256(f"{side}:{rule}".encode())
    for p in paths:
        st = p.stat()
        h.update(f"{p}:{st.st_size}:{st.st_mtime_ns}\n".encode())
    return h.hexdigest()[:16]


def cached_images(dataset: str, split: str, paths: list[Path], side: int, rule: str) -> np.ndarray:
    """The decoded images of one split, from the cache when the files have not changed."""
    missing = [p for p in paths if not p.is_file()]
    if missing:
        raise BenchError(f"{dataset}: {len(missing)} image file(s) listed in its metadata are missing, "
                         f"e.g. {missing[0]}; check --data-root and the dataset's folder option")
    cache = cache_dir() / dataset / f"{split}_{side}_{rule}_{files_key(paths, side, rule)}.npz"
    arrays = load_cached(cache)
    if arrays is None:
        arrays = {"x": decode_images(paths, side, rule)}
        save_cached(cache, arrays)
    return arrays["x"]
