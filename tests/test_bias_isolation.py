"""Bias labels never reach a method in training: not in batches, not in whole-split stages."""
import pytest
import torch

import methods
from benchmark.config import method_hparams
from benchmark.harness import Harness, RuntimeOptions, seed_everything
from datasets.base import BiasedData, Split
from methods import build
from methods.base import Batch, Stage, TrainSet
from methods.erm import ERM


def test_training_types_have_no_bias_field():
    assert Batch._fields == ("x", "y", "index")
    assert not hasattr(TrainSet, "bias") and "bias" not in TrainSet.__slots__


def _with_train_bias(data: BiasedData, bias: torch.Tensor) -> BiasedData:
    train = data.splits["train"]
    splits = {**data.splits, "train": Split(train.x, train.y, bias)}
    return BiasedData(splits, data.info, {})


@pytest.mark.parametrize("method", sorted(methods.METHODS))
def test_training_is_invariant_to_the_training_bias_labels(method, synthetic):
    """Scrambling the training split's bias labels must not change a single trained weight, for any method."""
    scrambled = torch.randint(0, synthetic.info.num_bias, (len(synthetic.splits["train"]),), generator=torch.Generator().manual_seed(5))
    weights = []
    for data in (synthetic, _with_train_bias(synthetic, scrambled)):
        hp = method_hparams(method, "synthetic", "quick")
        seed_everything(0)
        m = build(method, data.info, hp, "cpu")
        Harness(m, data, 0, runtime=RuntimeOptions(max_stage_steps=40)).run()
        weights.append(torch.cat([p.detach().flatten() for p in m.models.parameters()]))
    assert torch.equal(weights[0], weights[1])


class Spy(ERM):
    """ERM that records what the harness hands it."""

    seen: list = []

    def stages(self):
        return [Stage("look", run=self.look), *super().stages()]

    def look(self, train_set):
        Spy.seen.append(train_set)

    def loss(self, batch):
        Spy.seen.append(batch)
        return super().loss(batch)


def test_once_per_stage_functions_and_batches_see_no_bias(synthetic):
    Spy.seen = []
    hp = method_hparams("erm", "synthetic", "quick")
    hp["steps"] = 3
    m = Spy(synthetic.info, hp, torch.device("cpu"))
    Harness(m, synthetic, 0).run()
    train_set, *batches = Spy.seen
    assert isinstance(train_set, TrainSet) and not hasattr(train_set, "bias")
    assert len(batches) == 3 and all(type(b) is Batch for b in batches)
    assert all(type(b) is Batch for b in train_set.batches(256))
