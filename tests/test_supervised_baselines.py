"""GroupDRO, JTT, LC and DFR each beat ERM on the conflicting test images of the synthetic
fixture, and each loses that edge with its key ingredient switched off.

Same data (1 % conflicting), budget (1,200 steps of the final network) and seeds as
tests/test_debiasing_beats_erm.py. The ablations:
- GroupDRO on scrambled bias labels: its groups then carry no bias information. (With uniform
  group weights, step size 0, it still beats ERM here: the per-group mean is itself the group
  supervision; the adversarial update adds nothing measurable on this fixture.)
- JTT with lambda_up = 1: the error set is found but not upweighted.
- LC without its correction: group mixup alone still beats ERM here (63.2 against LC's 69.6 and
  ERM's 53.7; without both, 55.2), so the test is that the correction adds to it.
- DFR refit on the training split, unbalanced: the refit sees the biased data ERM saw.
"""
import pytest
import torch

import datasets
from benchmark.config import method_hparams
from datasets.base import BiasedData, Split
from tests.helpers import conflicting_acc as mean_conflicting_acc
from tests.helpers import train

STEPS = 1200
SEEDS = (0, 1)
MARGIN = 5.0


@pytest.fixture(scope="module")
def data():
    return datasets.load("synthetic", 1.0)


def _settings(method: str, **overrides):
    """The fixture setting with the final network trained for STEPS steps."""
    if method == "jtt":  # the fixture's identification length, the final network's steps as for the others
        hp = method_hparams("jtt", "synthetic", "paper")
        return {"identify": hp["identify"], "retrain": {**hp["retrain"], "steps": STEPS}, **overrides}
    return {"steps": STEPS, **overrides}


def conflicting_acc(method, data, **overrides):
    return mean_conflicting_acc(method, data, SEEDS, **_settings(method, **overrides))


@pytest.fixture(scope="module")
def erm_acc(data):
    return conflicting_acc("erm", data)


@pytest.mark.parametrize("method", ["groupdro", "jtt", "lc", "dfr"])
def test_baseline_beats_erm_on_conflicting_samples(method, data, erm_acc):
    ours = conflicting_acc(method, data)
    assert ours > erm_acc + MARGIN, f"{method}: {ours:.1f} % vs ERM {erm_acc:.1f} % on the conflicting test images"


def _scrambled_train_bias(data: BiasedData) -> BiasedData:
    train = data.splits["train"]
    bias = torch.randint(0, data.info.num_bias, (len(train),), generator=torch.Generator().manual_seed(5))
    return BiasedData({**data.splits, "train": Split(train.x, train.y, bias)}, data.info, {})


def test_groupdro_without_informative_groups_does_not_beat_erm(data, erm_acc):
    assert conflicting_acc("groupdro", _scrambled_train_bias(data)) < erm_acc + MARGIN


def test_jtt_without_upweighting_does_not_beat_erm(data, erm_acc):
    assert conflicting_acc("jtt", data, lambda_up=1) < erm_acc + MARGIN


def test_lc_correction_adds_to_mixup(data):
    assert conflicting_acc("lc", data) > conflicting_acc("lc", data, correct_logits=False)


def test_dfr_refit_on_unbalanced_training_data_does_not_beat_erm(data, erm_acc):
    assert conflicting_acc("dfr", data, retrain_split="train", balance=False, c_grid=[1.0]) < erm_acc + MARGIN


def test_lc_lr_decay_is_off_unless_asked_and_then_steps_both_optimisers(data):
    """LC's `--use_lr_decay` flag: off by default (no scheduler, job ids as before the option
    existed); on, StepLR divides both models' learning rates by lr_gamma every lr_decay_step steps."""
    plain, _ = train("lc", data, steps=6)
    assert not plain.schedulers
    decayed, _ = train("lc", data, steps=6, use_lr_decay=True, lr_decay_step=2, lr_gamma=0.5)
    lrs = {name: opt.param_groups[0]["lr"] for name, opt in decayed.optimizers.items()}
    base = method_hparams("lc", "synthetic", "quick")["optimizer"]["lr"]
    assert lrs == pytest.approx({"main": base / 8, "biased": base * 0.1 / 8})


def test_dfr_refits_on_the_evenly_biased_half_where_two_are_held_out(data):
    """valid_bias both: label-free readers take `valid` (biased like training), group-label readers `valid_even`."""
    import dataclasses

    from methods import build

    hp = method_hparams("dfr", "synthetic", "paper")
    both = dataclasses.replace(data.info, split_sizes=(*data.info.split_sizes, ("valid_even", 10)))
    assert build("dfr", both, hp, "cpu").refit_split() == "valid_even"
    assert build("dfr", data.info, hp, "cpu").refit_split() == "valid"
    assert build("dfr", both, {**hp, "retrain_split": "train"}, "cpu").refit_split() == "train"


def _with_two_validation_halves(data: BiasedData) -> BiasedData:
    """valid_bias both by hand: `valid` biased like training (a slice of it), `valid_even` the fixture's even split."""
    train_split = data.splits["train"]
    biased = Split(train_split.x[:400], train_split.y[:400], train_split.bias[:400])
    return BiasedData({**data.splits, "valid": biased, "valid_even": data.splits["valid"]}, data.info)


def test_a_validation_groups_method_sees_only_the_even_halfs_groups_where_two_are_held_out(data):
    from benchmark.training.harness import Harness
    from methods.base import GroupSet, TrainSet
    from tests.helpers import harness

    both = _with_two_validation_halves(data)
    h: Harness = harness("dfr", both)
    assert h.group_splits == ("valid_even",)
    assert isinstance(h.split_set("valid_even"), GroupSet) and type(h.split_set("valid")) is TrainSet
    assert harness("dfr", data).group_splits == ("valid", "valid_even")  # one validation split: its groups


def test_a_kept_best_group_metric_of_valid_reads_the_even_half_where_two_are_held_out(data):
    from methods.base import Stage
    from tests.helpers import harness

    h = harness("erm", _with_two_validation_halves(data))
    stage = Stage("train", loss=lambda batch: None, keep_best=("valid", "conflicting_acc"))
    total = {"valid": [50] * 16, "valid_even": [50] * 16}
    h.result.group_total.update(total)
    for step, (biased, even) in enumerate([(50, 10), (0, 40)]):  # valid's conflicting accuracy falls, valid_even's rises
        correct = {"valid": [50 if g % 5 == 0 else biased for g in range(16)],
                   "valid_even": [50 if g % 5 == 0 else even for g in range(16)]}
        h._keep_if_best(stage, {"stage": "train", "step": step, **correct})
    assert h.best["step"] == 1 and h.best["value"] == pytest.approx(0.8)
