"""Small helpers shared by the tests: run one method on one dataset in-process."""
from __future__ import annotations

import subprocess
import sys
from pathlib import Path
from typing import Any

import torch

from benchmark.config import method_hparams
from benchmark.training.harness import Harness, RuntimeOptions, seed_everything
from methods import build

ROOT = Path(__file__).resolve().parent.parent


def harness(method: str, data, seed: int = 0, steps: int | None = None, budget: str = "quick",
            runtime: RuntimeOptions | None = None, device: str = "cpu", **overrides: Any) -> Harness:
    """A harness for `method` on `data`, built as the runner builds one (seeded, then the method), not yet run."""
    hp = method_hparams(method, data.info.name, budget)
    if steps is not None:
        hp["steps"] = steps
    hp.update(overrides)
    seed_everything(seed)
    m = build(method, data.info, hp, torch.device(device))
    return Harness(m, data, seed, eval_every=hp.get("eval_every", 0), runtime=runtime or RuntimeOptions(),
                   channels_last=hp.get("channels_last", False))


def train(method: str, data, seed: int = 0, steps: int | None = None, budget: str = "quick",
          runtime: RuntimeOptions | None = None, **overrides: Any):
    """(method object, RunResult) after training on `data` on the CPU."""
    h = harness(method, data, seed, steps, budget, runtime, **overrides)
    return h.method, h.run()


def params(method) -> torch.Tensor:
    """All of a method's weights in one flat CPU float tensor (to compare two runs)."""
    return torch.cat([p.detach().float().flatten().cpu() for p in method.models.parameters()])


def cli(*args: str, cwd: Path = ROOT, env: dict | None = None, timeout: int = 300) -> subprocess.CompletedProcess:
    """Run `python run_bench.py ARGS` in a subprocess; returns the completed process."""
    import os

    return subprocess.run([sys.executable, str(ROOT / "run_bench.py"), *args], cwd=cwd, capture_output=True, text=True,
                          timeout=timeout, env={**os.environ, **(env or {})})


_CONFLICTING: dict[tuple, float] = {}


def conflicting_acc(method: str, data, seeds: tuple[int, ...], budget: str = "quick", fresh: bool = False,
                    **overrides: Any) -> float:
    """Mean test accuracy (%) on the bias-conflicting groups of the final model over `seeds`; each
    setting trains once per test session (modules comparing with the same ERM share it), unless
    `fresh` (a test that patches the method's code must train again)."""
    key = (method, data.fingerprint["sha256"], tuple(seeds), budget, repr(sorted(overrides.items())))
    if fresh or key not in _CONFLICTING:
        _CONFLICTING[key] = _mean_conflicting_acc(method, data, seeds, budget, **overrides)
    return _CONFLICTING[key]


def _mean_conflicting_acc(method: str, data, seeds: tuple[int, ...], budget: str, **overrides: Any) -> float:
    from benchmark.selection import select_all

    accs = []
    for seed in seeds:
        _, result = train(method, data, seed=seed, budget=budget, **overrides)
        chosen = select_all(result.curve, result.group_total, result.aligned, result.final_stage)
        accs.append(100 * chosen["last"]["test"]["conflicting_acc"])
    return sum(accs) / len(accs)
