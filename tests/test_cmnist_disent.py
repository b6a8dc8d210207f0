"""The DisEnt folder reader, on a small generated tree in the authors' layout."""
import pytest
import torch

import datasets
from benchmark.errors import BenchError
from datasets.disent_folders import write_fixture_tree


def test_reads_the_disent_layout(tmp_path):
    write_fixture_tree(tmp_path / "cmnist", 2.0, 10, (28, 28), per_group=2)
    data = datasets.load("cmnist-disent", 2.0, root=tmp_path)
    train, test, valid = data.splits["train"], data.splits["test"], data.splits["valid"]
    assert len(train) == 40 and len(valid) == 20 and len(test) == 200
    assert int((train.y != train.bias).sum()) == 20  # the conflict/ folder
    assert torch.equal(valid.y, valid.bias)
    assert torch.bincount(test.y * 10 + test.bias, minlength=100).min() == 2
    assert train.x.shape[1:] == (3, 28, 28) and train.x.dtype == torch.uint8


def test_missing_download_says_where_to_put_it(tmp_path):
    with pytest.raises(BenchError, match="DisEnt authors' download"):
        datasets.load("cmnist-disent", 1.0, root=tmp_path)
    with pytest.raises(BenchError, match="only at conflict_pct"):
        datasets.load("cmnist-disent", 3.0, root=tmp_path)


def test_bad_file_names_are_reported(tmp_path):
    write_fixture_tree(tmp_path / "cmnist", 1.0, 10, (28, 28), per_group=1)
    bad = next((tmp_path / "cmnist" / "test").rglob("*.png"))
    bad.rename(bad.with_name("nolabels.png"))
    with pytest.raises(BenchError, match="_<label>_<bias>"):
        datasets.load("cmnist-disent", 1.0, root=tmp_path)
