"""BFFHQ (biased FFHQ; Kim et al. ICCV 2021, packaged by the DisEnt authors): age (young 0 / old 1)
to predict, gender the bias, 0.5 % bias-conflicting training images.

Folder layout of the DisEnt download: `<data root>/bffhq/0.5pct/{align,conflict}/<sub>/<id>_<age>_<gender>.png`,
`<data root>/bffhq/valid/…` and `<data root>/bffhq/test/…` (flat). Which numeral is young or
female is not documented; only "aligned ⇔ equal" is (spec E.3.2). Stored at Resize((224, 224)) as
DisEnt and DeNetDM do (DCWP used 128 px); training RandomCrop(224, padding 4) + horizontal flip on
the device; CIFAR mean/std, as the official code normalises these faces. The papers report the
bias-conflicting test accuracy: the `conflicting` column.
"""
from __future__ import annotations

from pathlib import Path

from benchmark.training.augment import Augmentation
from datasets.base import BiasedData, DataInfo, register_dataset
from datasets.disent_folders import load_release, write_fixture_tree
from datasets.images import CIFAR_MEAN, CIFAR_STD


def make_fixture(tmp: Path) -> dict:
    """A tiny tree of the release's layout, 40 px images (stored at 64, model input 60: DeNetDM's shallow ConvNet needs that much)."""
    write_fixture_tree(tmp / "bffhq", 0.5, 2, (40, 40), per_group=3, extra_aligned=30, flat_eval=True)
    return {"root": tmp, "conflict_pct": 0.5, "options": {"side": 64, "input_size": 60}}


@register_dataset("bffhq", make_fixture=make_fixture)
def load_bffhq(root: Path | None, conflict_pct: float, folder: str = "bffhq", side: int = 224, input_size: int = 224) -> BiasedData:
    """BFFHQ: age vs gender (DisEnt authors' release)."""
    splits, directory = load_release("bffhq", root, conflict_pct, folder, (0.5,), side)
    info = DataInfo(
        name="bffhq", num_classes=2, num_bias=2, image_shape=(3, side, side), mean=CIFAR_MEAN, std=CIFAR_STD,
        augmentation=Augmentation("crop_flip", size=input_size, padding=4), input_kind="large",
    )
    return BiasedData(splits, info, {"generator": "disent-release", "folder": str(directory)})
