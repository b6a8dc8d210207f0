"""LfF and DisEnt must beat ERM on the bias-conflicting test images of the synthetic fixture.

Same data, budget (1,200 steps) and seeds for every method; DisEnt's swap start and learning-rate
decay keep the official proportions (every 20 % of the steps). The last test shows the comparison
can fail: LfF with its weights W forced to 1 is no better than ERM.
"""
import pytest

import datasets
import methods.lff
from benchmark.selection import select_all
from tests.helpers import train

STEPS = 1200
SEEDS = (0, 1)
SCHEDULE = {"disent": {"swap_start": STEPS // 5, "lr_decay_step": STEPS // 5}}


@pytest.fixture(scope="module")
def data():
    return datasets.load("synthetic", 1.0)


def conflicting_acc(method, data, **overrides):
    accs = []
    for seed in SEEDS:
        _, result = train(method, data, seed=seed, steps=STEPS, **{**SCHEDULE.get(method, {}), **overrides})
        chosen = select_all(result.curve, result.group_total, result.aligned, result.final_stage)
        accs.append(100 * chosen["last"]["test"]["conflicting_acc"])
    return sum(accs) / len(accs)


@pytest.fixture(scope="module")
def erm_acc(data):
    return conflicting_acc("erm", data)


@pytest.mark.parametrize("method", ["lff", "disent"])
def test_method_beats_erm_on_conflicting_samples(method, data, erm_acc):
    ours = conflicting_acc(method, data)
    assert ours > erm_acc + 5, f"{method}: {ours:.1f} % vs ERM {erm_acc:.1f} % on the conflicting test images"


def test_lff_without_reweighting_does_not_beat_erm(data, erm_acc, monkeypatch):
    monkeypatch.setattr(methods.lff, "relative_difficulty", lambda b, d: b * 0 + 1)
    assert conflicting_acc("lff", data) < erm_acc + 5
