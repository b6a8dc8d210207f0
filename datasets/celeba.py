"""CelebA (Liu et al. 2015): blond hair (1) or not (0) to predict, male (1) / female (0) the bias.

Two sources, both under `<data root>/<folder>` (default `celeba`, torchvision's layout):
- `metadata: null` (default): the official partitions from `list_eval_partition.txt` and the
  attributes from `list_attr_celeba.txt`, images in `img_align_celeba/`;
- `metadata: <file>.csv`: a subsampled split as DCWP and DeNetDM use (columns image_id, split,
  Blond_Hair, Male, attributes coded -1/1 or 0/1; DCWP names it metadata_blonde_subsampled.csv).
Blond hair goes with women, so the bias-aligned groups are (blond, female) and (not blond, male)
and the conflicting ones (blond, male) and (not blond, female). Worst-group accuracy is the lowest
of the four (target, gender) group accuracies on the test split, as DCWP and DeNetDM report it.
Stored at Resize(256) + CenterCrop(256) (about 40 GB for all 202,599 images: use a subsampled CSV
or a smaller `side` on small machines); evaluation takes the centre 224 crop, training
RandomResizedCrop(224, scale 0.7-1) + horizontal flip on the device; ImageNet normalisation.
"""
from __future__ import annotations

from pathlib import Path

import numpy as np
import pandas as pd
from PIL import Image

from benchmark.errors import BenchError
from datasets.base import BiasedData, register_dataset
from datasets.metadata import binary, imagenet_pipeline_info, metadata_splits, read_metadata
from datasets.storage import data_root, inside

TARGET, BIAS = "Blond_Hair", "Male"


def make_fixture(tmp: Path) -> dict:
    """torchvision's layout in miniature: 8 attributes, 32 images per aligned and 2 per conflicting
    (target, gender) group in train, 2 per group in valid and test."""
    folder = tmp / "celeba"
    (folder / "img_align_celeba").mkdir(parents=True)
    rng = np.random.default_rng(0)
    names = ["5_o_Clock_Shadow", "Arched_Eyebrows", "Attractive", "Bags_Under_Eyes", "Bald", "Bangs", TARGET, BIAS]
    attrs, parts = [], []
    for split in (0, 1, 2):
        for blond in (0, 1):
            for male in (0, 1):
                for _ in range((32 if blond != male else 2) if split == 0 else 2):
                    image_id = f"{len(attrs) + 1:06d}.jpg"
                    Image.fromarray(rng.integers(0, 255, (36, 30, 3), dtype=np.uint8)).save(folder / "img_align_celeba" / image_id)
                    other = rng.choice([-1, 1], size=len(names) - 2)
                    attrs.append(f"{image_id} " + " ".join(str(v) for v in [*other, 2 * blond - 1, 2 * male - 1]))
                    parts.append(f"{image_id} {split}")
    (folder / "list_attr_celeba.txt").write_text(f"{len(attrs)}\n{' '.join(names)}\n" + "\n".join(attrs) + "\n")
    (folder / "list_eval_partition.txt").write_text("\n".join(parts) + "\n")
    return {"root": tmp, "conflict_pct": 0, "options": {"side": 64, "input_size": 60}}


def torchvision_table(directory: Path) -> pd.DataFrame:
    """image_id, split, Blond_Hair, Male from torchvision's CelebA text files."""
    attr_file, part_file = directory / "list_attr_celeba.txt", directory / "list_eval_partition.txt"
    for f in (attr_file, part_file):
        if not f.is_file():
            raise BenchError(f"celeba needs {f} (torchvision's CelebA layout): download CelebA into <data root>/{directory.name} "
                             "or pass --set celeba.metadata=<subsampled csv>")
    attrs = pd.read_csv(attr_file, sep=r"\s+", skiprows=1)  # the header row names 40 attributes; rows start with the file name
    for column in (TARGET, BIAS):
        if column not in attrs.columns:
            raise BenchError(f"{attr_file} has no {column} column; is this CelebA's list_attr_celeba.txt?")
    parts = pd.read_csv(part_file, sep=r"\s+", header=None, names=["image_id", "split"], index_col=0)
    table = attrs[[TARGET, BIAS]].join(parts, how="inner")
    if len(table) != len(attrs):
        raise BenchError(f"{part_file} lists {len(parts)} images and {attr_file} {len(attrs)}: the two files do not belong together")
    return table.rename_axis("image_id").reset_index()


@register_dataset("celeba", make_fixture=make_fixture)
def load_celeba(root: Path | None, conflict_pct: float, folder: str = "celeba", metadata: str | None = None,
                side: int = 256, input_size: int = 224) -> BiasedData:
    """CelebA: blond hair vs gender (torchvision layout, or a subsampled metadata CSV)."""
    base = data_root(root)
    if base is None:
        raise BenchError(f"celeba needs the CelebA images: put torchvision's CelebA folder at <data root>/{folder} "
                         "and pass --data-root (see docs/datasets.md)")
    directory = inside(base, folder, "celeba.folder")
    if metadata:
        csv = inside(directory, metadata, "celeba.metadata")
        table = read_metadata(csv, "celeba", ["image_id", "split", TARGET, BIAS],
                              f"put the subsampled metadata CSV (image_id, split, {TARGET}, {BIAS}) there")
    else:
        csv = directory / "list_attr_celeba.txt"
        table = torchvision_table(directory)
    images = directory / "img_align_celeba"
    splits = metadata_splits(table, csv, "celeba", lambda row: inside(images, str(row["image_id"]), f"{csv}: image_id"), binary(table[TARGET], csv, TARGET),
                             binary(table[BIAS], csv, BIAS), "split", side, "short_side")
    info = imagenet_pipeline_info("celeba", side, input_size, aligned_pairs=((1, 0), (0, 1)))
    return BiasedData(splits, info, {"folder": str(directory), "metadata": metadata or "torchvision"})
