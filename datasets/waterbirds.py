"""Waterbirds (Sagawa et al., ICLR 2020): bird type (landbird 0 / waterbird 1) on a land (0) or
water (1) background, from the standard `metadata.csv` release (img_filename, y, split, place;
split 0 train, 1 valid, 2 test). The training split's own ratio: 240 of 4,795 images (5 %) show a
bird on the other background. Images are stored at Resize(256) + CenterCrop(256); evaluation
takes the centre 224 crop (= Resize(256) + CenterCrop(224)), training PruSC's RandomResizedCrop(224,
scale 0.7-1) + horizontal flip, on the device, with ImageNet normalisation.
"""
from __future__ import annotations

from pathlib import Path

import numpy as np
from PIL import Image

from datasets.base import BiasedData, register_dataset
from datasets.metadata import binary, imagenet_pipeline_info, metadata_splits, release_table
from datasets.storage import inside


def make_fixture(tmp: Path) -> dict:
    """A tiny release: 32 images per aligned and 2 per conflicting group in train, 2 per group in
    valid and test, 40 x 30 px (stored at 64, model input 60: enough for every method's networks)."""
    folder = tmp / "waterbirds"
    rng = np.random.default_rng(0)
    rows = ["img_id,img_filename,y,split,place"]
    i = 0
    for split, per_group in ((0, 32), (1, 2), (2, 2)):
        for y in (0, 1):
            for place in (0, 1):
                for _ in range(per_group if (split or y == place) else 2):
                    name = f"{i:03d}.{'Bird' if y else 'Land'}/img_{i}.jpg"
                    (folder / name).parent.mkdir(parents=True, exist_ok=True)
                    Image.fromarray(rng.integers(0, 255, (30, 40, 3), dtype=np.uint8)).save(folder / name)
                    rows.append(f"{i},{name},{y},{split},{place}")
                    i += 1
    (folder / "metadata.csv").write_text("\n".join(rows) + "\n")
    return {"root": tmp, "conflict_pct": 5.0, "options": {"side": 64, "input_size": 60}}


@register_dataset("waterbirds", make_fixture=make_fixture)
def load_waterbirds(root: Path | None, conflict_pct: float, folder: str = "waterbirds", metadata: str = "metadata.csv",
                    side: int = 256, input_size: int = 224) -> BiasedData:
    """Waterbirds: bird type vs background (Sagawa et al.; metadata.csv release)."""
    hint = ("download the Waterbirds release (waterbird_complete95_forest2water2), unpack it as "
            f"<data root>/{folder} with its metadata.csv, and pass --data-root (see docs/datasets.md)")
    directory, csv, table = release_table(root, "waterbirds", folder, metadata, ["img_filename", "y", "split", "place"], hint)
    splits = metadata_splits(table, csv, "waterbirds", lambda row: inside(directory, str(row["img_filename"]), f"{csv}: img_filename"),
                             binary(table["y"], csv, "y"), binary(table["place"], csv, "place"), "split", side, "short_side")
    return BiasedData(splits, imagenet_pipeline_info("waterbirds", side, input_size), {"folder": str(directory), "metadata": metadata})
