"""LfF and DisEnt must beat ERM on the bias-conflicting test images of the synthetic fixture.

Same data, budget (1,200 steps) and seeds for every method; DisEnt's swap start and learning-rate
decay keep the official proportions (every 20 % of the steps). The last test shows the comparison
can fail: LfF with its weights W forced to 1 is no better than ERM.
"""
import pytest

import datasets
import methods.lff
from tests.helpers import conflicting_acc as mean_conflicting_acc

STEPS = 1200
SEEDS = (0, 1)
SCHEDULE = {"disent": {"swap_start": STEPS // 5, "lr_decay_step": STEPS // 5}}


@pytest.fixture(scope="module")
def data():
    return datasets.load("synthetic", 1.0)


def conflicting_acc(method, data, fresh=False, **overrides):
    return mean_conflicting_acc(method, data, SEEDS, fresh=fresh, steps=STEPS, **{**SCHEDULE.get(method, {}), **overrides})


@pytest.fixture(scope="module")
def erm_acc(data):
    return conflicting_acc("erm", data)


@pytest.mark.parametrize("method", ["lff", "disent"])
def test_method_beats_erm_on_conflicting_samples(method, data, erm_acc):
    ours = conflicting_acc(method, data)
    assert ours > erm_acc + 5, f"{method}: {ours:.1f} % vs ERM {erm_acc:.1f} % on the conflicting test images"


def test_lff_without_reweighting_does_not_beat_erm(data, erm_acc, monkeypatch):
    monkeypatch.setattr(methods.lff, "relative_difficulty", lambda b, d: b * 0 + 1)
    assert conflicting_acc("lff", data, fresh=True) < erm_acc + 5
