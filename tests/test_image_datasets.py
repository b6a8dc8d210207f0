"""Image dataset loaders on tiny trees in each release's own layout: counts, labels, bias attributes,
conflicting fractions, the decode cache, and the errors a user sees."""
import numpy as np
import pandas as pd
import pytest
import torch
from PIL import Image

import datasets
from benchmark.errors import BenchError
from benchmark.grid.jobs import expand_grid


def _load(name, tmp_path, **options):
    args = datasets.DATASETS[name].make_fixture(tmp_path)
    return datasets.load(name, args["conflict_pct"], root=args["root"], **{**args.get("options", {}), **options})


def _conflicting(data, split):
    s = data.splits[split]
    return int((~data.info.is_aligned(s.y, s.bias)).sum())


# (dataset, {split: size}, {split: conflicting}, input side): what each fixture writes
EXPECTED = [
    ("bffhq", {"train": 72, "valid": 6, "test": 12}, {"train": 6, "valid": 0, "test": 6}, 60),
    ("cifar10c-disent", {"train": 100, "valid": 10, "test": 100}, {"train": 10, "valid": 0, "test": 90}, 32),
    ("waterbirds", {"train": 68, "valid": 8, "test": 8}, {"train": 4, "valid": 4, "test": 4}, 60),
    ("isic", {"train": 68, "valid": 8, "test": 8}, {"train": 4, "valid": 4, "test": 4}, 60),
    ("celeba", {"train": 68, "valid": 8, "test": 8}, {"train": 4, "valid": 4, "test": 4}, 60),
]


@pytest.mark.parametrize("name,sizes,conflicting,side", EXPECTED, ids=[e[0] for e in EXPECTED])
def test_fixture_layout_loads_with_the_right_counts(name, sizes, conflicting, side, tmp_path):
    data = _load(name, tmp_path)
    assert {k: len(v) for k, v in data.splits.items()} == sizes
    assert {k: _conflicting(data, k) for k in data.splits} == conflicting
    assert data.info.input_shape == (3, side, side)
    for split in data.splits.values():
        assert split.x.dtype == torch.uint8 and set(split.y.tolist()) <= set(range(data.info.num_classes))


def test_disent_layout_labels_come_from_the_file_names(tmp_path):
    folder = tmp_path / "cifar10c"
    for sub in ("2pct/align/3", "2pct/conflict/3", "test/3"):
        (folder / sub).mkdir(parents=True)
    pixels = np.full((32, 32, 3), 7, dtype=np.uint8)
    Image.fromarray(pixels).save(folder / "2pct/align/3/a1_3_3.png")
    Image.fromarray(pixels).save(folder / "2pct/conflict/3/c1_3_8.png")
    Image.fromarray(pixels).save(folder / "test/3/t1_3_5.png")
    data = datasets.load("cifar10c-disent", 2.0, root=tmp_path)
    assert data.splits["train"].y.tolist() == [3, 3] and data.splits["train"].bias.tolist() == [3, 8]
    assert data.splits["test"].bias.tolist() == [5] and "valid" not in data.splits
    assert int(data.splits["train"].x[0, 0, 0, 0]) == 7


def test_isic_aligned_groups_are_benign_with_patch_and_malignant_without(tmp_path):
    data = _load("isic", tmp_path)
    y, bias = torch.tensor([0, 0, 1, 1]), torch.tensor([1, 0, 0, 1])
    assert data.info.is_aligned(y, bias).tolist() == [True, False, True, False]
    table = pd.read_csv(tmp_path / "isic" / "raw_val_4groups.csv")
    train = table[table.split == 0]
    assert data.splits["train"].y.tolist() == (train.benign_malignant == "malignant").astype(int).tolist()
    assert data.splits["train"].bias.tolist() == train.patches.tolist()


def test_celeba_subsampled_csv_gives_the_same_labels_as_torchvision_layout(tmp_path):
    full = _load("celeba", tmp_path)
    folder = tmp_path / "celeba"
    attrs = pd.read_csv(folder / "list_attr_celeba.txt", sep=r"\s+", skiprows=1)
    parts = pd.read_csv(folder / "list_eval_partition.txt", sep=r"\s+", header=None, index_col=0)
    keep = attrs.index[::2]  # a subsample: every other image
    table = pd.DataFrame({"image_id": keep, "split": parts.loc[keep, 1].values,
                          "Blond_Hair": attrs.loc[keep, "Blond_Hair"].values, "Male": attrs.loc[keep, "Male"].values})
    table.to_csv(folder / "subsampled.csv", index=False)
    sub = datasets.load("celeba", 0, root=tmp_path, metadata="subsampled.csv", side=64, input_size=60)
    order = list(attrs.index[parts.loc[attrs.index, 1].values == 0])
    picked = [order.index(i) for i in keep if parts.loc[i, 1] == 0]
    assert sub.splits["train"].y.tolist() == full.splits["train"].y[picked].tolist()
    assert sub.splits["train"].bias.tolist() == full.splits["train"].bias[picked].tolist()
    assert torch.equal(sub.splits["train"].x, full.splits["train"].x[picked])


def test_decoded_images_are_cached_and_rebuilt_when_a_file_changes(tmp_path, monkeypatch):
    import datasets.images as images

    first = _load("waterbirds", tmp_path)
    calls = []
    real = images.decode_images
    monkeypatch.setattr(images, "decode_images", lambda *a: calls.append(1) or real(*a))
    again = _load_again("waterbirds", tmp_path)
    assert calls == [] and torch.equal(first.splits["train"].x, again.splits["train"].x)
    path = next((tmp_path / "waterbirds").rglob("*.jpg"))
    Image.fromarray(np.zeros((30, 40, 3), dtype=np.uint8)).save(path)
    _load_again("waterbirds", tmp_path)
    assert len(calls) == 1  # only the split holding the changed file is decoded again


def _load_again(name, tmp_path):
    return datasets.load(name, 5.0, root=tmp_path, side=64, input_size=60)


@pytest.mark.parametrize("name,message", [
    ("bffhq", "DisEnt authors' download"), ("cifar10c-disent", "DisEnt authors' download"),
    ("isic", "raw_val_4groups.csv"), ("celeba", "torchvision's CelebA layout"), ("waterbirds", "metadata.csv"),
])
def test_missing_data_says_where_to_put_it(name, message, tmp_path):
    pct = {"bffhq": 0.5, "cifar10c-disent": 1.0, "waterbirds": 5.0}.get(name, 0)
    with pytest.raises(BenchError, match=message):
        datasets.load(name, pct, root=tmp_path)


def test_a_missing_metadata_column_is_named(tmp_path):
    _load("isic", tmp_path)
    csv = tmp_path / "isic" / "raw_val_4groups.csv"
    pd.read_csv(csv).drop(columns="patches").to_csv(csv, index=False)
    with pytest.raises(BenchError, match="lacks the column\\(s\\) patches"):
        datasets.load("isic", 0, root=tmp_path, side=64, input_size=60)


def test_fixed_releases_run_as_released_only():
    (job,) = expand_grid(["erm"], ["isic"], [0], None, "quick")
    assert job.conflict_pct == 0 and "as released" in job.label
    with pytest.raises(BenchError, match="isic exists only at conflict_pct 0"):
        expand_grid(["erm"], ["isic"], [0], [1.0], "quick")
