"""Colored MNIST as packaged by the DisEnt authors (Lee et al., NeurIPS 2021; DCWP uses it).

Pre-built 28 x 28 RGB images with the DisEnt authors' colours (their generator is unpublished;
the colours are not LfF's), read from the folder layout of their download:
`<data root>/cmnist/{0.5pct,1pct,2pct,5pct}/{align,conflict,valid}` and `<data root>/cmnist/test`,
label and bias in each file name. `valid` has the training split's bias ratio (per the DisEnt
authors); `test` is unbiased. A different dataset from `cmnist`: its numbers are reported apart.
"""
from __future__ import annotations

from pathlib import Path

from benchmark.errors import BenchError
from datasets.base import BiasedData, DataInfo, register_dataset
from datasets.cmnist import splits_from_arrays
from datasets.disent_folders import read_disent_layout, write_fixture_tree
from datasets.storage import cache_dir, data_root, load_cached, save_cached

PACKAGED_PCTS = (0.5, 1.0, 2.0, 5.0)


def make_fixture(tmp: Path) -> dict:
    """A tiny DisEnt-layout tree for tests: 300 training images, 2 per (class, bias) test group."""
    write_fixture_tree(tmp / "cmnist", 1.0, 10, (28, 28), per_group=2, extra_aligned=26)
    return {"root": tmp, "conflict_pct": 1.0}


@register_dataset("cmnist-disent", make_fixture=make_fixture)
def load_cmnist_disent(root: Path | None, conflict_pct: float, folder: str = "cmnist") -> BiasedData:
    """Colored MNIST, DisEnt authors' pre-built release (DCWP's and DisEnt's tables)."""
    if conflict_pct not in PACKAGED_PCTS:
        raise BenchError(f"cmnist-disent exists only at conflict_pct {', '.join(f'{p:g}' for p in PACKAGED_PCTS)}, got {conflict_pct:g}")
    base = data_root(root)
    if base is None:
        raise BenchError(
            "cmnist-disent needs the DisEnt authors' download: unpack it so that <data root>/cmnist/0.5pct/align exists, "
            "then pass --data-root <data root> or set DEBIASBENCH_DATA (see README 'Data')"
        )
    directory = base / folder
    cache = cache_dir() / "cmnist-disent" / f"{str(directory.resolve()).replace('/', '_')}_{conflict_pct:g}.npz"
    arrays = load_cached(cache)
    if arrays is None:
        arrays = read_disent_layout(directory, conflict_pct, (28, 28), "cmnist-disent")
        save_cached(cache, arrays)
    splits = splits_from_arrays(arrays)
    info = DataInfo(
        name="cmnist-disent", num_classes=10, num_bias=10, image_shape=(3, 28, 28),
        augmentation="none", input_kind="small",
    )
    return BiasedData(splits, info, {"generator": "disent-release", "folder": str(directory)})
