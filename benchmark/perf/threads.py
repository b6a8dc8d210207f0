"""Intra-op threads on the CPU: training speed with 1..N threads, alone and beside a competing process.

    python run_bench.py perf --threads [--quick] [--steps N] [--models mlp cnn]

PyTorch's CPU kernels split each operation over `torch.get_num_threads()` threads that meet at a
barrier after every kernel. With as many threads as cores and one other busy process, a barrier
waits each time for a thread that the OS has descheduled: small models, whose kernels last
microseconds, slow down tens of times. This script measures it on the two small-image networks
(LfF's MLP and DCWP's CNN on Colored MNIST, ERM steps through the harness, batch 256), each
thread count alone and beside one competitor: `spin` (one busy Python loop, any CPU-bound
process) and `train` (a second copy of the same training at the machine's default threads, as
another run_bench would be). It prints steps/s and the slowdown under load, which is what
`benchmark.grid.runner.default_threads` is chosen from (see docs/performance.md, "CPU threads under load").
"""
from __future__ import annotations

import argparse
import os
import subprocess
import sys
import time

import torch

from benchmark.errors import BenchError

MODELS = {"mlp": {"name": "mlp", "hidden": [100, 100, 100], "input_divisor": 255},
          "cnn": {"name": "cnn", "channels": [64, 128, 256]}}
SPIN = "while True: pass"


def steps_per_second(model: str, threads: int, steps: int) -> float:
    """ERM steps/s on Colored MNIST (1 %) with `model` and `threads` intra-op threads, after a warm-up."""
    from benchmark.config import method_hparams
    from benchmark.training.harness import Harness, RuntimeOptions
    from benchmark.imports import project_packages

    torch.set_num_threads(threads)
    datasets_pkg, methods_pkg = project_packages()
    data = datasets_pkg.load("cmnist", 1.0)
    hp = method_hparams("erm", "cmnist", "paper")
    hp.update(model=MODELS[model], steps=steps + 20, eval_every=0)
    torch.manual_seed(0)
    harness = Harness(methods_pkg.build("erm", data.info, hp, torch.device("cpu")), data, seed=0,
                      runtime=RuntimeOptions(device="cpu", log_every=100, checkpoint_seconds=1e9))
    stage = harness.stages[0]
    harness.sampler = harness._make_sampler(stage)
    steps_iter = harness._stage_steps(stage, 0)
    for _ in range(20):  # warm-up: allocator, first-call overheads
        next(steps_iter)
    start = time.perf_counter()
    for _ in steps_iter:
        pass
    return steps / (time.perf_counter() - start)


def _competitor(kind: str, model: str, steps: int) -> subprocess.Popen:
    if kind == "spin":
        code = SPIN
    else:  # another training run at the default thread count, looping until killed
        code = (f"from benchmark.perf.threads import steps_per_second\n"
                f"while True: steps_per_second({model!r}, {torch.get_num_threads()}, {steps})")
    return subprocess.Popen([sys.executable, "-c", code], stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)


def main(argv: list[str]) -> int:
    p = argparse.ArgumentParser(prog="run_bench.py perf --threads", description=__doc__.split("\n\n")[0])
    p.add_argument("--quick", action="store_true", help="fewer steps (a smoke check of the script itself)")
    p.add_argument("--steps", type=int, default=None, help="timed steps per measurement (default 400; --quick 30)")
    p.add_argument("--models", nargs="+", choices=sorted(MODELS), default=sorted(MODELS))
    p.add_argument("--competitors", nargs="+", choices=("spin", "train"), default=["spin", "train"])
    args = p.parse_args(argv)
    steps = args.steps or (30 if args.quick else 400)
    if steps < 1:
        raise BenchError(f"--steps must be 1 or more, got {steps}")
    cores = os.cpu_count() or 1
    counts = sorted({1, 2, cores} & set(range(1, cores + 1)))
    print(f"cpu cores: {cores}, torch {torch.__version__}, default threads {torch.get_num_threads()}; "
          f"ERM on Colored MNIST, batch 256, {steps} timed steps each")
    print(f"{'model':<5} {'threads':>7} {'alone':>9} " + " ".join(f"{'+' + c:>9} {'slowdown':>8}" for c in args.competitors))
    for model in args.models:
        for threads in counts:
            alone = steps_per_second(model, threads, steps)
            cells = []
            for kind in args.competitors:
                other = _competitor(kind, model, steps)
                try:
                    time.sleep(2.0)  # let it start and load its data
                    loaded = steps_per_second(model, threads, steps)
                finally:
                    other.kill()
                    other.wait()
                cells.append(f"{loaded:9.1f} {alone / loaded:7.1f}x")
            print(f"{model:<5} {threads:>7} {alone:9.1f} " + " ".join(cells), flush=True)
    print("steps/s; slowdown = alone / beside the competitor (1.0x = unaffected)")
    return 0
