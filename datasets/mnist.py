"""MNIST as uint8 arrays, found in the user's data root, the shipped copy, or online.

Search order: `<data root>/MNIST/raw/` (torchvision's layout; the data root is `--data-root`
or $DEBIASBENCH_DATA), then the copy shipped in `datasets/resources/MNIST/raw/`, then
torchvision's download. Every file's MD5 is checked against torchvision's list.
"""
from __future__ import annotations

import gzip
from pathlib import Path

import numpy as np

from benchmark.errors import BenchError
from datasets.storage import SHIPPED, data_root, require_file, torchvision_download

MNIST_FILES = {
    "train-images-idx3-ubyte.gz": "f68b3c2dcbeaaa9fbdd348bbdeb94873",
    "train-labels-idx1-ubyte.gz": "d53e105ee54ea40749a09fcbcd1e9432",
    "t10k-images-idx3-ubyte.gz": "9fb629c4189551a2d022fa330f9573f3",
    "t10k-labels-idx1-ubyte.gz": "ec29112dd5afa0611ce80d1b7f02629c",
}


def read_idx(path: Path) -> np.ndarray:
    """Parse one gzipped IDX file (MNIST's format) into a uint8 array."""
    with gzip.open(path, "rb") as f:
        raw = f.read()
    ndim = raw[3]
    shape = tuple(int.from_bytes(raw[4 + 4 * i: 8 + 4 * i], "big") for i in range(ndim))
    return np.frombuffer(raw, dtype=np.uint8, offset=4 + 4 * ndim).reshape(shape).copy()


def _raw_dirs(root: Path | None) -> list[Path]:
    dirs = []
    user = data_root(root)
    if user is not None:
        dirs.append(user / "MNIST" / "raw")
    dirs.append(SHIPPED / "MNIST" / "raw")
    return dirs


def _download(root: Path | None) -> Path:
    where = "put the four MNIST .gz files in <data root>/MNIST/raw/ (torchvision's layout) and pass --data-root"
    return torchvision_download("MNIST", "MNIST", root, where) / "MNIST" / "raw"


def find_mnist_file(name: str, root: Path | None = None) -> Path:
    """Path of one checked MNIST file; a corrupt copy is an error, not a silent fallback."""
    fix = "delete it and rerun (the shipped copy or torchvision's download takes its place), or copy the original file there"
    for d in _raw_dirs(root):
        if (d / name).exists():
            return require_file(d / name, MNIST_FILES[name], fix)
    d = _download(root)
    if not (d / name).exists():
        raise BenchError(f"MNIST file {name} is missing from {d}: copy the original file there")
    return require_file(d / name, MNIST_FILES[name], fix)


def load_mnist(train: bool, root: Path | None = None) -> tuple[np.ndarray, np.ndarray]:
    """(images uint8 (N, 28, 28), labels uint8 (N,)) of MNIST's training or test set."""
    prefix = "train" if train else "t10k"
    images = read_idx(find_mnist_file(f"{prefix}-images-idx3-ubyte.gz", root))
    labels = read_idx(find_mnist_file(f"{prefix}-labels-idx1-ubyte.gz", root))
    if len(images) != len(labels):
        raise BenchError(f"MNIST {prefix}: {len(images)} images but {len(labels)} labels; the files do not belong together")
    return images, labels
