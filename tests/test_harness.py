"""Harness: determinism, resume from a checkpoint, NaN handling, sampling, selection rules."""
import pytest
import torch

from benchmark.config import method_hparams
from benchmark.errors import BenchError, NonFiniteLossError
from benchmark.training.feed import EpochSampler, WeightedSampler
from benchmark.training.harness import Harness, Interrupted, RuntimeOptions
from benchmark.selection import select_all
from methods.base import Stage
from methods.erm import ERM
from tests.helpers import params, train


def test_same_job_twice_gives_identical_results(synthetic):
    m1, r1 = train("erm", synthetic, seed=3, steps=120)
    m2, r2 = train("erm", synthetic, seed=3, steps=120)
    assert torch.equal(params(m1), params(m2))
    assert r1.curve == r2.curve
    m3, _ = train("erm", synthetic, seed=4, steps=120)
    assert not torch.equal(params(m1), params(m3))


def test_interrupted_job_resumes_from_its_checkpoint_to_the_same_numbers(synthetic, tmp_path):
    full_model, full = train("erm", synthetic, steps=250, eval_every=50)
    ckpt = tmp_path / "job.pt"
    with pytest.raises(Interrupted):
        train("erm", synthetic, steps=250, eval_every=50, runtime=RuntimeOptions(checkpoint_path=ckpt, stop_after_steps=130))
    assert ckpt.exists()
    resumed_model, resumed = train("erm", synthetic, steps=250, eval_every=50, runtime=RuntimeOptions(checkpoint_path=ckpt))
    assert resumed.resumed_from_step == 130
    assert resumed.timings["train"]["steps"] == 250 and resumed.timings["train"]["seconds"] > 0
    assert torch.equal(params(full_model), params(resumed_model))
    assert [e["step"] for e in resumed.curve] == [50, 100, 150, 200, 250]
    assert resumed.curve == full.curve


def test_non_finite_loss_fails_the_job_with_its_reason(synthetic):
    with pytest.raises(NonFiniteLossError, match="non-finite loss in stage 'train'"):
        train("erm", synthetic, steps=200, runtime=RuntimeOptions(log_every=20),
              optimizer={"name": "sgd", "lr": 1e30, "weight_decay": 0.0})


def test_epoch_sampler_visits_every_sample_once_per_epoch_keeping_the_partial_batch():
    g = torch.Generator().manual_seed(0)
    s = EpochSampler(10, 4, drop_last=False, generator=g)
    batches = [s.next() for _ in range(3)]
    assert [len(b) for b in batches] == [4, 4, 2]
    assert sorted(torch.cat(batches).tolist()) == list(range(10))
    s = EpochSampler(10, 4, drop_last=True, generator=g)
    assert [len(s.next()) for _ in range(3)] == [4, 4, 4]


def test_weighted_sampler_follows_the_weights():
    g = torch.Generator().manual_seed(0)
    w = torch.tensor([0.0, 1.0, 3.0])
    idx = WeightedSampler(w, 4000, g).next()
    counts = torch.bincount(idx, minlength=3)
    assert counts[0] == 0 and 2.6 < counts[2] / counts[1] < 3.4


def test_selection_rules_pick_the_right_checkpoints():
    total = {"valid": [10, 10], "test": [10, 10]}
    aligned = [True, False]
    curve = [
        {"stage": "train", "step": 1, "valid": [5, 9], "test": [9, 9]},
        {"stage": "train", "step": 2, "valid": [9, 1], "test": [10, 2]},
        {"stage": "train", "step": 3, "valid": [6, 6], "test": [7, 3]},
    ]
    chosen = select_all(curve, total, aligned, "train")
    assert chosen["last"]["step"] == 3
    assert chosen["best-valid-unbiased"]["step"] == 1       # valid unbiased .70, .50, .60
    assert chosen["best-valid-worst-group"]["step"] == 3    # valid worst .5, .1, .6
    assert chosen["oracle-test"]["step"] == 1               # test unbiased .90, .60, .50
    no_valid = select_all([{k: v for k, v in e.items() if k != "valid"} for e in curve], {"test": total["test"]}, aligned, "train")
    assert set(no_valid) == {"last", "oracle-test"}


def test_unknown_device_and_missing_gpu_are_clear_errors():
    from benchmark.training.harness import resolve_device

    with pytest.raises(BenchError, match="unknown device"):
        resolve_device("tpu-9")
    if not torch.cuda.is_available():
        with pytest.raises(BenchError, match="no CUDA GPU"):
            resolve_device("cuda")


class Reporter(ERM):
    """ERM with a once-only stage that returns a flag vector and a grouping of the training split,
    and a final stage that trains on the validation split."""

    def stages(self):
        train = super().stages()[0]
        tune = Stage("tune", steps=5, loss=self.loss, batch_size=32, split="valid")
        return [Stage("report", run=self.report), train, tune]

    def report(self, train_set):
        return {"flags": train_set.y == 0, "groups": train_set.y, "note": 3}


def test_once_only_stage_reports_are_summarised_with_bias_labels_by_the_harness(synthetic):
    hp = method_hparams("erm", "synthetic", "quick")
    hp["steps"] = 5
    m = Reporter(synthetic.info, hp, torch.device("cpu"))
    result = Harness(m, synthetic, 0).run()
    report = result.diagnostics["report"]
    _, bias = synthetic.splits["train"].y, synthetic.splits["train"].bias
    y = synthetic.splits["train"].y
    conflicting = y != bias
    flagged = y == 0
    assert report["note"] == 3
    assert report["flags"]["count"] == int(flagged.sum())
    assert report["flags"]["precision"] == pytest.approx(float((flagged & conflicting).sum() / flagged.sum()))
    assert report["flags"]["recall"] == pytest.approx(float((flagged & conflicting).sum() / conflicting.sum()))
    groups = report["groups"]
    assert groups["count"] == synthetic.info.num_classes and sum(groups["sizes"]) == len(y)
    assert groups["bias_purity"] == pytest.approx(1 - float(conflicting.float().mean()))  # each class's majority colour
    assert set(result.artifacts) == {"report.flags", "report.groups"}
    assert result.timings["tune"]["steps"] == 5 and result.final_stage == "tune"
    assert synthetic.info.size("valid") == len(synthetic.splits["valid"]) and synthetic.info.size("nope") == 0


def test_a_stage_on_a_missing_split_is_a_clear_error(synthetic):
    import dataclasses

    data = dataclasses.replace(synthetic, splits={k: v for k, v in synthetic.splits.items() if k != "valid"})
    hp = method_hparams("erm", "synthetic", "quick")
    m = Reporter(data.info, hp, torch.device("cpu"))
    with pytest.raises(BenchError, match="trains on the 'valid' split"):
        Harness(m, data, 0, runtime=RuntimeOptions(max_stage_steps=2)).run()


class KeepsBest(ERM):
    """ERM whose one stage keeps its evaluation with the best test accuracy; SGD at a learning
    rate this high makes the accuracy jump between evaluations, so the best is not the last."""

    def stages(self):
        import dataclasses

        return [dataclasses.replace(super().stages()[0], eval_every=10, keep_best=("test", "unbiased_acc"))]


def _keeps_best(data, runtime=None):
    hp = method_hparams("erm", "synthetic", "quick")
    hp.update(steps=120, optimizer={"name": "sgd", "lr": 0.5, "weight_decay": 0.0})
    torch.manual_seed(0)
    m = KeepsBest(data.info, hp, torch.device("cpu"))
    harness = Harness(m, data, 0, runtime=runtime)
    return m, harness, harness.run()


def test_a_keep_best_stage_ends_with_its_best_evaluated_models(synthetic, tmp_path):
    from benchmark.metrics import group_metrics

    m, harness, result = _keeps_best(synthetic)
    accs = [group_metrics(e["test"], result.group_total["test"], result.aligned)["unbiased_acc"] for e in result.curve]
    kept = result.diagnostics["train"]
    best = result.curve[accs.index(max(accs))]
    assert kept["kept_step"] == best["step"] != result.curve[-1]["step"]
    assert kept["kept_value"] == max(accs) and kept["kept_by"] == "test unbiased_acc"
    m.models.eval()
    assert harness.evaluate_split("test")[0] == best["test"]

    ckpt = tmp_path / "job.pt"
    with pytest.raises(Interrupted):
        _keeps_best(synthetic, RuntimeOptions(checkpoint_path=ckpt, stop_after_steps=best["step"] + 5))
    resumed, _, again = _keeps_best(synthetic, RuntimeOptions(checkpoint_path=ckpt))
    assert again.resumed_from_step == best["step"] + 5 and again.diagnostics["train"] == kept
    assert torch.equal(params(resumed), params(m))


def test_keeping_the_best_validation_models_needs_a_validation_split(synthetic):
    import dataclasses

    data = dataclasses.replace(synthetic, splits={k: v for k, v in synthetic.splits.items() if k != "valid"})
    m = ERM(data.info, method_hparams("erm", "synthetic", "quick"), torch.device("cpu"))
    m.stages = lambda: [dataclasses.replace(ERM.stages(m)[0], keep_best=("valid", "conflicting_acc"))]
    with pytest.raises(BenchError, match="no valid split"):
        Harness(m, data, 0)
