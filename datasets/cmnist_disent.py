"""Colored MNIST as packaged by the DisEnt authors (Lee et al., NeurIPS 2021; DCWP uses it).

Pre-built 28 x 28 RGB images with the DisEnt authors' colours (their generator is unpublished;
the colours are not LfF's), read from the folder layout of their download:
`<data root>/cmnist/{0.5pct,1pct,2pct,5pct}/{align,conflict,valid}` and `<data root>/cmnist/test`,
label and bias in each file name. `valid` has the training split's bias ratio (per the DisEnt
authors); `test` is unbiased. A different dataset from `cmnist`: its numbers are reported apart.
"""
from __future__ import annotations

from pathlib import Path

from datasets.base import BiasedData, DataInfo, register_dataset
from datasets.disent_folders import load_release, write_fixture_tree

PACKAGED_PCTS = (0.5, 1.0, 2.0, 5.0)


def make_fixture(tmp: Path) -> dict:
    """A tiny DisEnt-layout tree for tests: 300 training images, 2 per (class, bias) test group."""
    write_fixture_tree(tmp / "cmnist", 1.0, 10, (28, 28), per_group=2, extra_aligned=26)
    return {"root": tmp, "conflict_pct": 1.0}


@register_dataset("cmnist-disent", make_fixture=make_fixture)
def load_cmnist_disent(root: Path | None, conflict_pct: float, folder: str = "cmnist") -> BiasedData:
    """Colored MNIST, DisEnt authors' pre-built release (DCWP's and DisEnt's tables)."""
    splits, directory = load_release("cmnist-disent", root, conflict_pct, folder, PACKAGED_PCTS, 28)
    info = DataInfo(
        name="cmnist-disent", num_classes=10, num_bias=10, image_shape=(3, 28, 28),
        input_kind="small",
    )
    return BiasedData(splits, info, {"generator": "disent-release", "folder": str(directory)})
