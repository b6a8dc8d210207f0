"""The perf script's official-style baseline computes what the harness computes (so its speed
ratio compares like with like), and the script runs end to end. No timings are asserted."""
import copy

import numpy as np
import torch

from benchmark.config import method_hparams
from benchmark.training.feed import DeviceData
from benchmark.perf.official import official_lff_state, official_lff_step
from methods import build
from methods.base import Batch
from tests.helpers import cli


def test_official_style_lff_step_equals_the_registered_method(synthetic):
    hp = method_hparams("lff", "synthetic", "quick")
    torch.manual_seed(0)
    ours = build("lff", synthetic.info, hp, torch.device("cpu"))
    models = {k: copy.deepcopy(m) for k, m in ours.models.items()}
    optimizers = {k: torch.optim.Adam(m.parameters(), lr=hp["optimizer"]["lr"]) for k, m in models.items()}
    labels = synthetic.splits["train"].y
    state = official_lff_state(labels, hp["ema_alpha"], synthetic.info.num_classes)
    feed = DeviceData(synthetic, torch.device("cpu"))
    rng = np.random.default_rng(0)
    for _ in range(3):  # the EMA's first update and two later ones
        index = torch.from_numpy(rng.choice(len(labels), 64, replace=False))
        batch = feed.train_batch(index, "train")
        official_lff_step(models, optimizers, batch.x, batch.y, state, index)
        out = ours.loss(Batch(batch.x, batch.y, index))
        for opt in ours.optimizers.values():
            opt.zero_grad()
        out["loss"].backward()
        for opt in ours.optimizers.values():
            opt.step()
    for name in ("biased", "debiased"):
        for a, b in zip(models[name].parameters(), ours.models[name].parameters()):
            assert torch.allclose(a, b, atol=1e-5)


def test_perf_script_runs_and_prints_each_ratio():
    run = cli("perf", "--device", "cpu", "--quick", "--only", "erm", "lff", "--workers", "0", "--repeats", "2", timeout=600)
    assert run.returncode == 0, run.stderr
    assert run.stdout.count("ratio harness / official:") == 2 and "official-style pipeline" in run.stdout
    assert run.stdout.count("2 runs)") == 4 and run.stdout.count("(per run ") == 2, run.stdout


def test_perf_rejects_zero_repeats_in_one_line():
    run = cli("perf", "--device", "cpu", "--repeats", "0", timeout=120)
    assert run.returncode != 0
    assert run.stderr.strip().splitlines() == ["error: --repeats must be at least 1, got 0"], run.stderr


def test_perf_refuses_bf16_on_the_cpu_in_one_line():
    run = cli("perf", "--device", "cpu", "--only", "resnet18", "--variants", "bf16", timeout=120)
    assert run.returncode != 0
    assert run.stderr.strip().splitlines() == [
        "error: --variants bf16 measures CUDA autocast, which the harness does not use on the CPU: run it with --device cuda"], run.stderr
