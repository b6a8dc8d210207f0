"""Bias labels never reach a method in training unless it declares them: not in batches, not in
whole-split stages. A `none` method's weights ignore every bias label; a `train-groups` method's
follow the training ones; a `valid-groups` method's follow only the validation split's."""
import pytest
import torch

import methods
from benchmark.errors import BenchError
from benchmark.config import method_hparams
from benchmark.training.harness import Harness, RuntimeOptions, seed_everything
from datasets.base import BiasedData, Split
from methods import build
from methods.base import Batch, GroupBatch, GroupSet, Stage, TrainSet
from methods.erm import ERM


def test_training_types_have_no_bias_field():
    assert Batch._fields == ("x", "y", "index")
    assert not hasattr(TrainSet, "bias") and "bias" not in TrainSet.__slots__
    assert GroupBatch._fields == ("x", "y", "index", "group")


def _with_bias(data: BiasedData, split: str, bias: torch.Tensor) -> BiasedData:
    old = data.splits[split]
    return BiasedData({**data.splits, split: Split(old.x, old.y, bias)}, data.info, {})


def _weights_after(method: str, data: BiasedData) -> torch.Tensor:
    hp = method_hparams(method, "synthetic", "quick")
    seed_everything(0)
    m = build(method, data.info, hp, "cpu")
    Harness(m, data, 0, runtime=RuntimeOptions(max_stage_steps=40)).run()
    return torch.cat([p.detach().flatten() for p in m.models.parameters()])


def _scrambled(data: BiasedData, split: str) -> BiasedData:
    n = len(data.splits[split])
    return _with_bias(data, split, torch.randint(0, data.info.num_bias, (n,), generator=torch.Generator().manual_seed(5)))


def _levels(*levels: str) -> list[str]:
    return sorted(m for m, cls in methods.METHODS.items() if cls.supervision in levels)


@pytest.mark.parametrize("method", _levels("none", "valid-groups"))
def test_training_is_invariant_to_the_training_bias_labels(method, synthetic):
    """Scrambling the training split's bias labels must not change a single trained weight of a
    method that does not declare `train-groups`."""
    assert torch.equal(_weights_after(method, synthetic), _weights_after(method, _scrambled(synthetic, "train")))


@pytest.mark.parametrize("method", _levels("none"))
def test_label_free_training_is_invariant_to_the_validation_bias_labels(method, synthetic):
    assert torch.equal(_weights_after(method, synthetic), _weights_after(method, _scrambled(synthetic, "valid")))


@pytest.mark.parametrize("method", _levels("train-groups"))
def test_training_group_methods_follow_the_training_bias_labels(method, synthetic):
    """The converse: a method that trains on group labels must change when they change."""
    assert not torch.equal(_weights_after(method, synthetic), _weights_after(method, _scrambled(synthetic, "train")))


@pytest.mark.parametrize("method", _levels("valid-groups"))
def test_validation_group_methods_follow_the_validation_bias_labels(method, synthetic):
    assert not torch.equal(_weights_after(method, synthetic), _weights_after(method, _scrambled(synthetic, "valid")))


class Spy(ERM):
    """ERM that records what the harness hands it."""

    seen: list = []

    def stages(self):
        return [Stage("look", run=self.look), *super().stages()]

    def look(self, train_set):
        type(self).seen.append(train_set)

    def loss(self, batch):
        type(self).seen.append(batch)
        return super().loss(batch)


def _seen_by(spy: type, data, steps: int) -> list:
    """Everything the harness handed `spy` (an ERM that records its inputs) in `steps` steps."""
    spy.seen = []
    hp = method_hparams("erm", "synthetic", "quick")
    hp["steps"] = steps
    Harness(spy(data.info, hp, torch.device("cpu")), data, 0).run()
    return spy.seen


def test_once_per_stage_functions_and_batches_see_no_bias(synthetic):
    train_set, *batches = _seen_by(Spy, synthetic, 3)
    assert isinstance(train_set, TrainSet) and not hasattr(train_set, "bias")
    assert len(batches) == 3 and all(type(b) is Batch for b in batches)
    assert all(type(b) is Batch for b in train_set.batches(256))


class GroupSpy(Spy):
    """The same spy declaring training groups: it gets the group types, with the true groups."""

    supervision = "train-groups"


def test_declared_training_groups_reach_the_method_as_group_types(synthetic):
    train_set, *batches = _seen_by(GroupSpy, synthetic, 3)
    train = synthetic.splits["train"]
    assert isinstance(train_set, GroupSet) and torch.equal(train_set.group, train.y * synthetic.info.num_bias + train.bias)
    assert len(batches) == 3 and all(type(b) is GroupBatch for b in batches)
    for b in batches:
        assert torch.equal(b.group, train_set.group[b.index])


class ValidSpy(Spy):
    """Declares validation groups and also looks at the validation split."""

    supervision = "valid-groups"

    def stages(self):
        return [Stage("look_valid", run=self.look, split="valid"), *super().stages()]


def test_validation_groups_reach_only_validation_stages(synthetic):
    valid_set, train_set, *batches = _seen_by(ValidSpy, synthetic, 2)
    assert isinstance(valid_set, GroupSet) and len(valid_set) == len(synthetic.splits["valid"])
    assert type(train_set) is TrainSet and all(type(b) is Batch for b in batches)


def test_validation_groups_without_a_validation_split_is_one_clear_error(cmnist_1pct):
    hp = method_hparams("erm", "cmnist", "quick")
    m = ValidSpy(cmnist_1pct.info, hp, torch.device("cpu"))
    with pytest.raises(BenchError, match=r"--set cmnist.valid_fraction=0.1"):
        Harness(m, cmnist_1pct, 0)
