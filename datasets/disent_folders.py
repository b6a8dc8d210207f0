"""Reader for the DisEnt authors' folder layout (also read by DCWP and LC).

    <folder>/{0.5pct,1pct,2pct,5pct}/{align,conflict}/**/<anything>_<label>_<bias>.<ext>
    <folder>/{pct}/valid/**/<anything>_<label>_<bias>.<ext>
    <folder>/test/**/<anything>_<label>_<bias>.<ext>

Labels come from the last two `_`-separated fields of the file name, as DisEnt's loader parses
them. Files are read in sorted path order, so the index of every image is stable across machines.
"""
from __future__ import annotations

from pathlib import Path

import numpy as np
from PIL import Image

from benchmark.errors import BenchError

IMAGE_SUFFIXES = {".png", ".jpg", ".jpeg", ".bmp"}


def pct_folder(conflict_pct: float) -> str:
    return f"{conflict_pct:g}pct"


def parse_labels(path: Path) -> tuple[int, int]:
    """(label, bias) from `<anything>_<label>_<bias>.<ext>`."""
    fields = path.stem.split("_")
    try:
        return int(fields[-2]), int(fields[-1])
    except (IndexError, ValueError):
        raise BenchError(f"{path}: file name does not end in _<label>_<bias>; is this the DisEnt layout?") from None


def list_images(folder: Path) -> list[Path]:
    return sorted(p for p in folder.rglob("*") if p.suffix.lower() in IMAGE_SUFFIXES)


def read_images(paths: list[Path], size: tuple[int, int]) -> dict[str, np.ndarray]:
    """Decode images to uint8 (N, 3, H, W), resizing to `size` where they differ."""
    xs, ys, bs = [], [], []
    for p in paths:
        img = Image.open(p).convert("RGB")
        if img.size != (size[1], size[0]):
            img = img.resize((size[1], size[0]), Image.BILINEAR)
        xs.append(np.asarray(img).transpose(2, 0, 1))
        label, bias = parse_labels(p)
        ys.append(label)
        bs.append(bias)
    return {"x": np.stack(xs).astype(np.uint8), "y": np.array(ys, dtype=np.int64), "bias": np.array(bs, dtype=np.int64)}


def read_disent_layout(folder: Path, conflict_pct: float, size: tuple[int, int], dataset: str) -> dict[str, np.ndarray]:
    """Arrays of train (align + conflict), valid and test from one DisEnt-layout folder."""
    pct_dir = folder / pct_folder(conflict_pct)
    expected = [pct_dir / "align", pct_dir / "conflict", folder / "test"]
    missing = [str(p) for p in expected if not p.is_dir()]
    if missing:
        raise BenchError(
            f"{dataset} needs the DisEnt authors' download: {missing[0]} does not exist; unpack it so that "
            f"<data root>/{folder.name}/{pct_folder(conflict_pct)}/align exists and pass --data-root (see README 'Data')"
        )
    parts = {
        "train": list_images(pct_dir / "align") + list_images(pct_dir / "conflict"),
        "valid": list_images(pct_dir / "valid") if (pct_dir / "valid").is_dir() else [],
        "test": list_images(folder / "test"),
    }
    arrays: dict[str, np.ndarray] = {}
    for split, paths in parts.items():
        if not paths:
            if split == "valid":
                continue
            raise BenchError(f"{dataset}: no images found for split {split!r} under {folder}")
        for k, v in read_images(paths, size).items():
            arrays[f"{split}_{k}"] = v
    return arrays


def write_fixture_tree(folder: Path, conflict_pct: float, num_classes: int, size: tuple[int, int],
                       per_group: int = 2, extra_aligned: int = 0, seed: int = 0) -> None:
    """A tiny tree in the DisEnt layout (for tests): noise images named `<i>_<label>_<bias>.png`,
    `per_group` per (class, folder) group and `extra_aligned` more aligned training images per class."""
    rng = np.random.default_rng(seed)
    pct = folder / pct_folder(conflict_pct)

    def write(d: Path, label: int, bias: int, i: int) -> None:
        d.mkdir(parents=True, exist_ok=True)
        img = rng.integers(0, 255, (size[0], size[1], 3), dtype=np.uint8)
        Image.fromarray(img).save(d / f"{i}_{label}_{bias}.png")

    i = 0
    for label in range(num_classes):
        for _ in range(per_group):
            write(pct / "align" / str(label), label, label, i)
            write(pct / "valid", label, label, i + 1)
            other = (label + 1) % num_classes
            write(pct / "conflict" / str(label), label, other, i + 2)
            for bias in range(num_classes):
                write(folder / "test" / str(label), label, bias, i + 3 + bias)
            i += 3 + num_classes
        for _ in range(extra_aligned):
            write(pct / "align" / str(label), label, label, i)
            i += 1
