"""Colored MNIST must be LfF's protocol: colours, noise, order-based conflict assignment, splits."""
import gzip
import shutil

import numpy as np
import pytest
import torch

import datasets
from benchmark.errors import BenchError
from datasets.cmnist import LFF_COLORS
from datasets.lff_protocol import order_based_bias
from datasets.mnist import load_mnist
from datasets.storage import SHIPPED


def lff_reference_assignment(labels: np.ndarray, aligned_ratio: float) -> np.ndarray:
    """LfF's make_attr_labels rule, written as the plain loop it describes."""
    out = np.zeros(len(labels), dtype=np.int64)
    for c in range(10):
        idx = [i for i in range(len(labels)) if labels[i] == c]
        row = [aligned_ratio if j == c else (1 - aligned_ratio) / 9 for j in range(10)]
        milestones = [round(len(idx) * s) for s in np.cumsum(row)]
        for k, i in enumerate(idx):
            out[i] = min(j for j in range(10) if milestones[j] > k)
    return out


@pytest.mark.parametrize("pct,expected", [(0.5, 300), (1, 598), (2, 1199), (5, 3000)])
def test_conflicting_counts_and_which_images(pct, expected):
    data = datasets.load("cmnist", pct)
    train = data.splits["train"]
    assert len(train) == 60000 and len(data.splits["test"]) == 10000
    assert int((train.y != train.bias).sum()) == expected
    _, labels = load_mnist(train=True)
    reference = lff_reference_assignment(labels, 1 - pct / 100)
    assert np.array_equal(train.bias.numpy(), reference)
    assert "valid" not in data.splits


def test_aligned_set_has_one_colour_per_class_and_conflicts_spread(cmnist_1pct):
    train = cmnist_1pct.splits["train"]
    aligned = train.y == train.bias
    for c in range(10):
        assert set(train.bias[aligned & (train.y == c)].tolist()) == {c}
        others = train.bias[~aligned & (train.y == c)]
        counts = torch.bincount(others, minlength=10)
        assert counts[c] == 0 and (counts[torch.arange(10) != c] >= 6).all()  # 6-8 per cell at 1 %


def _stroke_colour(x: torch.Tensor, gray: np.ndarray) -> torch.Tensor:
    """Each image's colour: its pixels divided by the grey level, read at its brightest pixel."""
    g = torch.from_numpy(gray).float().flatten(1)
    k = g.argmax(1)
    pix = x.float().flatten(2)[torch.arange(len(x)), :, k]
    return pix / g[torch.arange(len(x)), k][:, None]


def test_pixels_carry_the_protocol_colour_of_their_bias_label(cmnist_1pct):
    gray, _ = load_mnist(train=True)
    train = cmnist_1pct.splits["train"]
    colour = _stroke_colour(train.x, gray)
    expected = LFF_COLORS[train.bias]
    # sigma = 0.005 noise plus uint8 truncation (< 1/255): 5 sigma + 1/255 bounds every image.
    assert (colour - expected).abs().max() < 5 * 0.005 + 1 / 255 + 1e-6
    nearest = torch.cdist(colour, LFF_COLORS).argmin(1)
    assert torch.equal(nearest, train.bias)
    # conflicting images really have another colour than their class's
    conflicting = train.y != train.bias
    assert (nearest[conflicting] != train.y[conflicting]).all()


def test_test_split_colours_are_uniform(cmnist_1pct):
    test = cmnist_1pct.splits["test"]
    cells = torch.bincount(test.y * 10 + test.bias, minlength=100)
    assert cells.min() >= 89 and cells.max() <= 114
    assert int((test.y == test.bias).sum()) == 1000


def test_same_seed_same_dataset_other_seed_other_noise_only():
    a = datasets.load("cmnist", 2.0, seed=0)
    b = datasets.load("cmnist", 2.0, seed=0)
    c = datasets.load("cmnist", 2.0, seed=1)
    assert a.fingerprint["sha256"] == b.fingerprint["sha256"]
    assert torch.equal(a.splits["train"].x, b.splits["train"].x)
    assert a.fingerprint["sha256"] != c.fingerprint["sha256"]
    assert torch.equal(a.splits["train"].bias, c.splits["train"].bias)


@pytest.mark.parametrize("pct", [0.1, 3.3, 50.0])
def test_any_conflict_pct_matches_within_rounding(pct):
    labels = load_mnist(train=True)[1]
    bias = order_based_bias(labels, 1 - pct / 100)
    frac = float((bias != labels).mean())
    assert abs(frac - pct / 100) <= 10 * 10 / 60000  # at most half a sample per (class, colour) cell


def test_valid_fraction_holds_out_an_evenly_coloured_split():
    data = datasets.load("cmnist", 1.0, valid_fraction=0.1)
    assert len(data.splits["valid"]) == 6000 and len(data.splits["train"]) == 54000
    valid = data.splits["valid"]
    assert abs(float((valid.y == valid.bias).float().mean()) - 0.1) < 0.01
    assert abs(data.conflict_fraction() - 0.01) < 0.001


def test_bad_conflict_pct_is_a_clear_error():
    with pytest.raises(BenchError, match="conflict_pct must be in"):
        datasets.load("cmnist", 0.0)


def test_data_root_is_searched_first_and_corrupt_files_are_named(tmp_path):
    raw = tmp_path / "MNIST" / "raw"
    raw.mkdir(parents=True)
    shutil.copy(SHIPPED / "MNIST" / "raw" / "t10k-labels-idx1-ubyte.gz", raw)
    with gzip.open(raw / "train-labels-idx1-ubyte.gz", "wb") as f:
        f.write(b"not mnist")
    with pytest.raises(BenchError, match=r"train-labels-idx1-ubyte.gz is corrupt \(md5"):
        load_mnist(train=True, root=tmp_path)
    # a file missing from the data root falls back to the shipped copy
    images, labels = load_mnist(train=False, root=tmp_path)
    assert images.shape == (10000, 28, 28) and len(labels) == 10000


def test_valid_bias_train_holds_out_a_split_biased_like_training():
    biased = datasets.load("cmnist", 1.0, valid_fraction=0.1, valid_bias="train")
    even = datasets.load("cmnist", 1.0, valid_fraction=0.1)
    share = lambda split: float((split.y != split.bias).float().mean())  # noqa: E731
    assert len(biased.splits["valid"].y) == 6000 and abs(share(biased.splits["valid"]) - 0.01) < 0.002
    assert abs(share(even.splits["valid"]) - 0.9) < 0.01
    assert torch.equal(biased.splits["train"].x, even.splits["train"].x)  # the training split is the same either way
    both = datasets.load("cmnist", 1.0, valid_fraction=0.1, valid_bias="both")  # one run, every selection rule
    valid, valid_even = both.splits["valid"], both.splits["valid_even"]
    assert len(valid.y) == len(valid_even.y) == 3000 and torch.equal(both.splits["train"].x, even.splits["train"].x)
    assert abs(share(valid) - 0.01) < 0.003 and abs(share(valid_even) - 0.9) < 0.015
    with pytest.raises(BenchError, match="valid_bias must be one of even, train, both"):
        datasets.load("cmnist", 1.0, valid_fraction=0.1, valid_bias="skewed")
