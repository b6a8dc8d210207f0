"""Corrupted CIFAR-10 as packaged by the DisEnt authors (Lee et al., NeurIPS 2021; DCWP and LC read it).

32 x 32 PNGs in their folder layout, `<data root>/cifar10c/{0.5pct,1pct,2pct,5pct}/{align,conflict,
valid}/<class>/…_<label>_<corruption>.png` and `<data root>/cifar10c/test/<class>/…`. Which ten
corruptions and which severity it holds is not recoverable from any released code (spec E.2.5), so
it is a different dataset from `cifar10c` (LfF's generator, Type0): numbers are reported apart.
Training transform RandomCrop(32, padding 4) + horizontal flip, on the device; CIFAR mean/std.
"""
from __future__ import annotations

from pathlib import Path

from benchmark.training.augment import Augmentation
from datasets.base import BiasedData, DataInfo, register_dataset
from datasets.disent_folders import load_release, write_fixture_tree
from datasets.images import CIFAR_MEAN, CIFAR_STD

PACKAGED_PCTS = (0.5, 1.0, 2.0, 5.0)


def make_fixture(tmp: Path) -> dict:
    """A tiny tree of the release's layout: 100 training images, 2 per (class, corruption) test group."""
    write_fixture_tree(tmp / "cifar10c", 2.0, 10, (32, 32), per_group=1, extra_aligned=8)
    return {"root": tmp, "conflict_pct": 2.0}


@register_dataset("cifar10c-disent", make_fixture=make_fixture)
def load_cifar10c_disent(root: Path | None, conflict_pct: float, folder: str = "cifar10c") -> BiasedData:
    """Corrupted CIFAR-10, DisEnt authors' release (DisEnt's, DCWP's and LC's tables)."""
    splits, directory = load_release("cifar10c-disent", root, conflict_pct, folder, PACKAGED_PCTS, 32)
    info = DataInfo(
        name="cifar10c-disent", num_classes=10, num_bias=10, image_shape=(3, 32, 32), mean=CIFAR_MEAN, std=CIFAR_STD,
        augmentation=Augmentation("crop_flip", size=32, padding=4), input_kind="cifar",
    )
    return BiasedData(splits, info, {"generator": "disent-release", "folder": str(directory)})
