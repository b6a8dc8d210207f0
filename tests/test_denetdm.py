"""DeNetDM: the depth premise on the synthetic fixture, the debiasing on Colored MNIST.

The premise (after the product-of-experts stage the deep expert alone is the more biased one) is
checked on the fixture with Colored MNIST's black background (`background: 0`; with the default
tinted background the colour is as easy for the shallow expert and the premise does not hold).
The final comparison with ERM runs on the shipped MNIST at 1 % (2,000 + 2,000 steps, CPU): on the
fixture, plain ERM already learns the shapes from a few dozen conflicting images (about 70 %
conflicting accuracy at 1 %), so the shallow teacher cannot add anything there (measured: below
ERM with and without the product of experts, docs/methods.md, "DeNetDM").
"""
import pytest
import torch

import datasets
from benchmark.config import method_hparams
from benchmark.training.harness import DeviceData, Harness, seed_everything
from benchmark.metrics import group_counts, group_metrics
from benchmark.selection import select_all
from methods import build
from tests.helpers import train

STEPS = 2000  # measured: ERM 28.2, DeNetDM 49.1, without the product of experts 34.2 % conflicting


def _denetdm(data, steps: int, distill_steps: int | None = None, **overrides):
    hp = method_hparams("denetdm", data.info.name, "paper")
    hp["poe_stage"]["steps"] = steps
    hp["distill_stage"]["steps"] = steps if distill_steps is None else distill_steps
    hp.update(overrides)
    seed_everything(0)
    m = build("denetdm", data.info, hp, torch.device("cpu"))
    return m, Harness(m, data, 0, eval_every=steps).run()


def _gap(m, data, branch: str) -> float:
    """Aligned minus conflicting test accuracy of one stage-1 expert alone."""
    test = data.splits["test"]
    with torch.no_grad():
        m.models.eval()
        pred = m.branch_logits(DeviceData(data, torch.device("cpu")).prepare(test.x), branch).argmax(1)
    k = data.info.num_classes
    c, t = group_counts(pred, test.y, test.bias, k, data.info.num_bias)
    g = group_metrics(c.tolist(), t.tolist(), [a == b for a in range(k) for b in range(data.info.num_bias)])
    return g["aligned_acc"] - g["conflicting_acc"]


def _conflicting(result) -> float:
    return 100 * select_all(result.curve, result.group_total, result.aligned, result.final_stage)["last"]["test"]["conflicting_acc"]


@pytest.fixture(scope="module")
def black_background():
    return datasets.load("synthetic", 1.0, background=0.0)


def test_after_the_product_of_experts_the_deep_expert_is_the_biased_one(black_background):
    m, result = _denetdm(black_background, 600)
    assert set(result.timings) == {"poe", "distill"}
    assert _gap(m, black_background, "deep") > _gap(m, black_background, "shallow") + 0.15


def test_trained_apart_the_deep_expert_is_not(black_background):
    m, _ = _denetdm(black_background, 600, poe=False)
    assert _gap(m, black_background, "deep") < _gap(m, black_background, "shallow") + 0.15


@pytest.fixture(scope="module")
def cmnist():
    return datasets.load("cmnist", 1.0)


@pytest.fixture(scope="module")
def erm_conflicting(cmnist):
    _, erm = train("erm", cmnist, seed=0, steps=2 * STEPS)
    return _conflicting(erm)


def test_the_target_beats_erm_on_conflicting_samples(cmnist, erm_conflicting):
    _, result = _denetdm(cmnist, STEPS)
    assert _conflicting(result) > erm_conflicting + 10


def test_without_the_product_of_experts_it_does_not(cmnist, erm_conflicting):
    _, ablated = _denetdm(cmnist, STEPS, poe=False)
    assert _conflicting(ablated) < erm_conflicting + 10


@pytest.mark.parametrize("global_pool,width", [(False, 8 * 3 * 3), (True, 8)])
def test_convnet_classifier_takes_the_encoder_width(global_pool, width):
    """The shallow branch's layer list: flattened (8 channels x 3 x 3 left of 12 px) or pooled."""
    from methods.models import ConvNet

    net = ConvNet((3, 12, 12), [[4, 3, "cbrp"], [8, 3, "cbr"]], num_classes=5, global_pool=global_pool)
    assert net.feature_dim == width
    assert net(torch.zeros(2, 3, 12, 12)).shape == (2, 5)


def test_oracle_poe_selection_hands_stage_two_the_best_epoch(black_background):
    """The official code's stage-1 choice: evaluated once per epoch, the shallow expert's best test
    conflicting accuracy decides which stage-1 models the target starts from."""
    from benchmark.selection import entry_metrics

    m, result = _denetdm(black_background, 300, poe_selection="oracle-test")
    poe = [e for e in result.curve if e["stage"] == "poe"]
    per_epoch = len(black_background.splits["train"]) // 64
    assert [e["step"] for e in poe] == [per_epoch * (i + 1) for i in range(300 // per_epoch)] + ([300] if 300 % per_epoch else [])
    accs = [entry_metrics(e, result.group_total, result.aligned)["test"]["conflicting_acc"] for e in poe]
    kept = result.diagnostics["poe"]
    assert kept["kept_step"] == poe[accs.index(max(accs))]["step"] and kept["kept_value"] == max(accs)
    assert torch.equal(m.models["teacher_classifier"].weight, _classifier_after_poe(black_background, kept["kept_step"]))


def _classifier_after_poe(data, steps: int) -> torch.Tensor:
    """The shared classifier of a stage 1 stopped after `steps` (same seed, so the same trajectory)."""
    m, _ = _denetdm(data, steps, distill_steps=0)
    return m.models["teacher_classifier"].weight


def test_a_convnet_on_too_small_images_is_a_clear_error():
    from benchmark.errors import BenchError
    from methods.models import ConvNet

    with pytest.raises(BenchError, match="12 x 12 input is too small"):
        ConvNet((3, 12, 12), [[8, 7, "cbrp"], [8, 3, "cbrp"], [8, 3, "cbr"]], num_classes=2)
