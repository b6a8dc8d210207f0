"""DCWP on the synthetic fixture: every stage and miner runs, a resumed run is identical, and the
pruned subnetwork beats its own ERM pre-training on the conflicting images, unlike DCWP without
mining and contrastive loss."""
import pytest
import torch

import datasets
import methods.dcwp
from benchmark.config import method_hparams
from benchmark.training.harness import Harness, Interrupted, RuntimeOptions, seed_everything
from benchmark.selection import select_all
from methods import build
from methods.masks import mask_parameters


@pytest.fixture(scope="module")
def biased():
    return datasets.load("synthetic", 1.0)


def _run(data, seed=0, runtime=None, **overrides):
    hp = method_hparams("dcwp", "synthetic", "paper")
    hp.update(overrides)
    seed_everything(seed)
    m = build("dcwp", data.info, hp, torch.device("cpu"))
    return m, Harness(m, data, seed, eval_every=hp["eval_every"], runtime=runtime or RuntimeOptions()).run()


def _conflicting(result, stage):
    entry = [e for e in result.curve if e["stage"] == stage][-1]
    totals, aligned = result.group_total["test"], result.aligned
    accs = [c / t for c, t, a in zip(entry["test"], totals, aligned) if t and not a]
    return 100 * sum(accs) / len(accs)


@pytest.mark.parametrize("mining,mine_with,loss", [("wrong", "miner", "gce"), ("wrong", "classifier", "ce"),
                                                    ("ensemble", "miner", "confident_ce")])
def test_every_stage_and_miner_runs(synthetic, mining, mine_with, loss):
    hp = method_hparams("dcwp", "synthetic", "quick")
    hp.update(mining=mining, mine_with=mine_with)
    hp["miner"]["loss"] = loss
    seed_everything(0)
    m = build("dcwp", synthetic.info, hp, torch.device("cpu"))
    result = Harness(m, synthetic, 0, runtime=RuntimeOptions(max_stage_steps=60)).run()
    expected = {"pretrain", "mine", "prune", "finetune"} | ({"pretrain_miner"} if mine_with == "miner" else set())
    assert set(result.timings) == expected
    assert result.final_stage == "finetune"
    assert {e["stage"] for e in result.curve} == {"pretrain", "prune", "finetune"}
    assert set(result.sparsity) >= {"overall", "classifier"} and 0 <= result.sparsity["overall"] <= 1
    mined = result.diagnostics["mine"]["mined"]
    assert mined["count"] == int(m.mined.sum()) and 0 <= mined["precision"] <= 1
    assert (result.artifacts["mine.mined"] == m.mined.numpy()).all()
    if mining == "ensemble":  # 60 steps over 4,000 samples at batch 256: 4 confidence passes
        assert m.confidence.max() > 0


def test_mask_learning_moves_only_the_masks_and_finetuning_only_the_weights(synthetic):
    hp = method_hparams("dcwp", "synthetic", "quick")
    seed_everything(0)
    m = build("dcwp", synthetic.info, hp, torch.device("cpu"))
    clf = m.models["classifier"]
    snapshots = {}

    def snap(name):
        snapshots[name] = ([p.detach().clone() for p in mask_parameters(clf)], clf.classifier.parametrizations.weight.original.detach().clone())

    stages = m.stages()
    for stage in stages:  # record the state at the start of each stage
        start = stage.on_start
        stage.on_start = (lambda s=stage, f=start: (snap(s.name), f and f()))
    m.stages = lambda: stages
    Harness(m, synthetic, 0, runtime=RuntimeOptions(max_stage_steps=30)).run()
    snap("end")
    masks = {k: v[0] for k, v in snapshots.items()}
    weights = {k: v[1] for k, v in snapshots.items()}
    assert all(torch.equal(a, b) for a, b in zip(masks["pretrain"], masks["prune"]))
    assert not all(torch.equal(a, b) for a, b in zip(masks["prune"], masks["finetune"]))
    assert torch.equal(weights["prune"], weights["finetune"])
    assert all(torch.equal(a, b) for a, b in zip(masks["finetune"], masks["end"]))
    assert not torch.equal(weights["finetune"], weights["end"])


def test_a_run_killed_during_mask_learning_resumes_to_identical_results(synthetic, tmp_path):
    hp = method_hparams("dcwp", "synthetic", "quick")
    budget = sum(hp[s]["steps"] for s in ("miner", "pretrain")) + 30
    path = tmp_path / "ckpt.pt"

    def run(stop):
        seed_everything(0)
        m = build("dcwp", synthetic.info, hp, torch.device("cpu"))
        rt = RuntimeOptions(checkpoint_path=path, stop_after_steps=stop, checkpoint_seconds=0.0, log_every=10)
        return m, Harness(m, synthetic, 0, eval_every=hp["eval_every"], runtime=rt).run()

    with pytest.raises(Interrupted):
        run(budget)
    resumed_model, resumed = run(None)
    path.unlink()
    fresh_model, fresh = run(None)
    assert resumed.resumed_from_step == budget
    assert resumed.curve == fresh.curve and resumed.sparsity == fresh.sparsity
    for a, b in zip(resumed_model.models.state_dict().values(), fresh_model.models.state_dict().values()):
        assert torch.equal(a, b)


def _paired_gain(data, **overrides):
    """Mean over seeds of (DCWP's final conflicting accuracy - its own ERM pre-training's)."""
    gains = []
    for seed in (0, 1):
        _, result = _run(data, seed, **overrides)
        final = 100 * select_all(result.curve, result.group_total, result.aligned, result.final_stage)["last"]["test"]["conflicting_acc"]
        gains.append(final - _conflicting(result, "pretrain"))
    return sum(gains) / len(gains)


def test_dcwp_beats_its_erm_network_on_conflicting_samples(biased):
    gain = _paired_gain(biased)
    assert gain > 4, f"DCWP gains only {gain:.1f} points of conflicting accuracy over ERM"


def test_dcwp_without_mining_and_contrastive_loss_does_not(biased, monkeypatch):
    def mine_nothing(self, train_set):
        self.mined = torch.zeros_like(self.mined)
        return {"mined": self.mined}

    monkeypatch.setattr(methods.dcwp.DCWP, "mine", mine_nothing)
    gain = _paired_gain(biased, lambda_con_prune=0.0, lambda_con_retrain=0.0)
    assert gain < 4, f"DCWP without its debiasing parts still gains {gain:.1f} points"


def test_a_lambda_sweep_pretrains_once_and_matches_unshared_runs(tmp_path):
    """Jobs that differ only in pruning/fine-tuning settings start from the first one's mined,
    pre-trained state, and end exactly where a job run on its own ends."""
    from benchmark.config import parse_sets
    from benchmark.grid.jobs import expand_grid
    from benchmark.grid.runner import run_grid, runtime_options
    from benchmark.grid.store import Store

    sets = parse_sets(["dcwp.lambda_sparse=1e-3,1e-2", "dcwp.prune.optimizer.lr=0.01,0.05"])
    jobs = expand_grid(["dcwp"], ["synthetic"], [0], [1], "quick", sets)
    runtime = runtime_options("cpu", max_stage_steps=20)
    shared = Store(tmp_path / "shared")
    assert run_grid(jobs, shared, runtime, progress=False, announce=False)["done"] == 4
    records = {r["job"]["id"]: r for r in shared.results()}
    reused = [r["reused_stages"] for r in records.values()]
    assert sorted(reused) == [[]] + [["pretrain_miner", "pretrain", "mine"]] * 3
    assert len(list((tmp_path / "shared" / "shared").glob("*.pt"))) == 1
    for job in jobs[1:]:
        alone = Store(tmp_path / job.id)
        run_grid([job], alone, runtime, progress=False, announce=False)
        expected = alone.results()[0]
        got = records[job.id]
        assert got["curve"] == expected["curve"] and got["sparsity"] == expected["sparsity"]
        assert expected["reused_stages"] == []
    other_seed = expand_grid(["dcwp"], ["synthetic"], [1], [1], "quick", sets)[:1]
    run_grid(other_seed, shared, runtime, progress=False, announce=False)
    assert [r["reused_stages"] for r in shared.results() if r["job"]["seed"] == 1] == [[]]
