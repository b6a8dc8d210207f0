"""ISIC skin lesions with coloured patches (the PruSC code's metadata layout): benign (0) or
malignant (1) to predict, the presence of a coloured patch (1) the bias.

`<data root>/isic/<metadata>` (PruSC reads `raw_val_4groups.csv`) with the columns isic_id, split,
benign_malignant, patches; images at `<data root>/isic/<isic_id>` (with `.jpg` or `.png` appended
when the id has no extension). Patches appear on benign lesions only in the source data, so the
bias-aligned groups are (benign, patch) and (malignant, no patch). Stored at Resize(256) +
CenterCrop(256); evaluation takes the centre 224 crop, training RandomResizedCrop(224, scale
0.7-1) + horizontal flip on the device; ImageNet normalisation (PruSC's transforms, spec B.9).
"""
from __future__ import annotations

from pathlib import Path

import numpy as np
import pandas as pd
from PIL import Image

from datasets.base import BiasedData, register_dataset
from datasets.metadata import binary, imagenet_pipeline_info, metadata_splits, release_table
from datasets.storage import inside

SUFFIXES = ("", ".jpg", ".png", ".jpeg")


def make_fixture(tmp: Path) -> dict:
    """A tiny release: 32 images per aligned and 2 per conflicting group in train, 2 per group in
    valid and test (malignant lesions with a patch only in the evaluation splits)."""
    folder = tmp / "isic"
    folder.mkdir(parents=True)
    rng = np.random.default_rng(0)
    rows = []
    for split in (0, 1, 2):
        for y, word in ((0, "benign"), (1, "malignant")):
            for patch in (0, 1):
                aligned = (y == 0) == (patch == 1)
                n = (32 if aligned else 2) if split == 0 else 2
                for _ in range(n):
                    isic_id = f"ISIC_{len(rows):07d}"
                    Image.fromarray(rng.integers(0, 255, (30, 36, 3), dtype=np.uint8)).save(folder / f"{isic_id}.jpg")
                    rows.append({"isic_id": isic_id, "split": split, "benign_malignant": word, "patches": patch})
    pd.DataFrame(rows).to_csv(folder / "raw_val_4groups.csv", index=False)
    return {"root": tmp, "conflict_pct": 0, "options": {"side": 64, "input_size": 60}}


def _image(directory: Path, isic_id: str, csv: Path) -> Path:
    path = inside(directory, isic_id, f"{csv}: isic_id")
    for suffix in SUFFIXES:
        if path.with_name(path.name + suffix).is_file():
            return path.with_name(path.name + suffix)
    return path  # reported as missing by the image cache


@register_dataset("isic", make_fixture=make_fixture)
def load_isic(root: Path | None, conflict_pct: float, folder: str = "isic", metadata: str = "raw_val_4groups.csv",
              side: int = 256, input_size: int = 224) -> BiasedData:
    """ISIC: benign vs malignant with coloured patches (PruSC's metadata layout)."""
    hint = (f"put the ISIC images and PruSC's metadata CSV ({metadata}: isic_id, split, benign_malignant, patches) "
            f"in <data root>/{folder} and pass --data-root (see docs/datasets.md)")
    directory, csv, table = release_table(root, "isic", folder, metadata, ["isic_id", "split", "benign_malignant", "patches"], hint)
    target = binary(table["benign_malignant"], csv, "benign_malignant", {"benign": 0, "malignant": 1})
    splits = metadata_splits(table, csv, "isic", lambda row: _image(directory, str(row["isic_id"]), csv), target,
                             binary(table["patches"], csv, "patches"), "split", side, "short_side")
    info = imagenet_pipeline_info("isic", side, input_size, aligned_pairs=((0, 1), (1, 0)))
    return BiasedData(splits, info, {"folder": str(directory), "metadata": metadata})
