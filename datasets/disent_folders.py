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
import torch
from PIL import Image

from benchmark.errors import BenchError
from datasets.base import Split
from datasets.images import cached_images

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


def disent_split_paths(folder: Path, conflict_pct: float, dataset: str) -> dict[str, list[Path]]:
    """Image files of train (align + conflict), valid (`{pct}/valid`, or `valid` beside `test` as in
    BFFHQ; optional) and test, each in sorted path order."""
    pct_dir = folder / pct_folder(conflict_pct)
    expected = [pct_dir / "align", pct_dir / "conflict", folder / "test"]
    missing = [str(p) for p in expected if not p.is_dir()]
    if missing:
        raise BenchError(
            f"{dataset} needs the DisEnt authors' download: {missing[0]} does not exist; unpack it so that "
            f"<data root>/{folder.name}/{pct_folder(conflict_pct)}/align exists and pass --data-root (see docs/datasets.md)"
        )
    valid = next((d for d in (pct_dir / "valid", folder / "valid") if d.is_dir()), None)
    parts = {
        "train": list_images(pct_dir / "align") + list_images(pct_dir / "conflict"),
        "valid": list_images(valid) if valid is not None else [],
        "test": list_images(folder / "test"),
    }
    for split in ("train", "test"):
        if not parts[split]:
            raise BenchError(f"{dataset}: no images found for split {split!r} under {folder}")
    return {k: v for k, v in parts.items() if v}


def read_disent_layout(folder: Path, conflict_pct: float, side: int, dataset: str) -> dict[str, Split]:
    """Splits of one DisEnt-layout folder: images decoded once at `side` x `side` (Resize((side,
    side)) as DisEnt's transforms) into the image cache, labels from the file names."""
    splits = {}
    for split, paths in disent_split_paths(folder, conflict_pct, dataset).items():
        labels = np.array([parse_labels(p) for p in paths], dtype=np.int64)
        x = cached_images(dataset, split, paths, side, "square")
        splits[split] = Split(torch.from_numpy(x), torch.from_numpy(labels[:, 0]), torch.from_numpy(labels[:, 1]))
    return splits


def load_release(dataset: str, root: Path | None, conflict_pct: float, folder: str, packaged: tuple[float, ...],
                 side: int) -> tuple[dict[str, Split], Path]:
    """The splits of one DisEnt release under the data root, with the clear errors every such
    dataset gives (a ratio it was not released at, no data root, a missing folder)."""
    from datasets.storage import data_root, inside

    if conflict_pct not in packaged:
        raise BenchError(f"{dataset} exists only at conflict_pct {', '.join(f'{p:g}' for p in packaged)}, got {conflict_pct:g}")
    base = data_root(root)
    if base is None:
        raise BenchError(
            f"{dataset} needs the DisEnt authors' download: unpack it so that <data root>/{folder}/{pct_folder(packaged[0])}/align "
            "exists, then pass --data-root <data root> or set DEBIASBENCH_DATA (see docs/datasets.md)"
        )
    directory = inside(base, folder, f"{dataset}.folder")
    return read_disent_layout(directory, conflict_pct, side, dataset), directory


def write_fixture_tree(folder: Path, conflict_pct: float, num_classes: int, size: tuple[int, int],
                       per_group: int = 2, extra_aligned: int = 0, seed: int = 0, flat_eval: bool = False) -> None:
    """A tiny tree in the DisEnt layout (for tests): noise images named `<i>_<label>_<bias>.png`,
    `per_group` per (class, folder) group and `extra_aligned` more aligned training images per class.
    `flat_eval`: BFFHQ's variant, `valid/` and `test/` flat beside the percent folder."""
    rng = np.random.default_rng(seed)
    pct = folder / pct_folder(conflict_pct)
    valid_dir = folder / "valid" if flat_eval else pct / "valid"

    def write(d: Path, label: int, bias: int, i: int) -> None:
        d.mkdir(parents=True, exist_ok=True)
        img = rng.integers(0, 255, (size[0], size[1], 3), dtype=np.uint8)
        Image.fromarray(img).save(d / f"{i}_{label}_{bias}.png")

    i = 0
    for label in range(num_classes):
        for _ in range(per_group):
            write(pct / "align" / str(label), label, label, i)
            write(valid_dir, label, label, i + 1)
            other = (label + 1) % num_classes
            write(pct / "conflict" / str(label), label, other, i + 2)
            for bias in range(num_classes):
                write(folder / "test" if flat_eval else folder / "test" / str(label), label, bias, i + 3 + bias)
            i += 3 + num_classes
        for _ in range(extra_aligned):
            write(pct / "align" / str(label), label, label, i)
            i += 1
