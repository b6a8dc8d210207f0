"""Speed of the harness's hot loop against a bare PyTorch loop on the same tensors.

    python run_bench.py perf [--device cpu|cuda] [--quick]            against the official pipelines (benchmark/perf/official.py)
    python run_bench.py perf --bare [--device cpu|cuda] [--quick] [--steps N]        this file
    python run_bench.py perf --images [--device cpu|cuda] [--quick] [--sizes 32 224]   (benchmark/perf/images.py)
    python run_bench.py perf --threads [--quick]      CPU threads alone and under load (benchmark/perf/threads.py)

Both loops train the official Colored MNIST ERM model (LfF's MLP, Adam 1e-3, batch 256) on the
same uint8 Colored MNIST tensors on the same device, from the same initial weights and for the
same number of steps, in one process; the bare loop is the minimum any trainer does (sample
indices, gather, to float, forward, backward, step). Printed: steps per second of each, their
ratio, and peak memory. Each loop runs `--repeats` times and the best time counts.
"""
from __future__ import annotations

import argparse
import copy
import time

import torch
import torch.nn.functional as F

from benchmark.errors import BenchError
from benchmark.training.harness import Harness, RuntimeOptions, resolve_device


def _sync(device: torch.device) -> None:
    if device.type == "cuda":
        torch.cuda.synchronize(device)


def bare_loop(model: torch.nn.Module, x_u8: torch.Tensor, y: torch.Tensor, steps: int, batch: int, lr: float) -> float:
    """Seconds for `steps` plain training steps over shuffled epochs."""
    device = x_u8.device
    opt = torch.optim.Adam(model.parameters(), lr=lr, **({"fused": True} if device.type == "cuda" else {}))
    gen = torch.Generator(device=device).manual_seed(0)
    n = len(y)
    perm, pos = torch.randperm(n, generator=gen, device=device), 0
    _sync(device)
    start = time.perf_counter()
    for _ in range(steps):
        if pos >= n:
            perm, pos = torch.randperm(n, generator=gen, device=device), 0
        idx = perm[pos:pos + batch]
        pos += batch
        loss = F.cross_entropy(model(x_u8[idx].float() / 255.0), y[idx])
        opt.zero_grad(set_to_none=True)
        loss.backward()
        opt.step()
    _sync(device)
    return time.perf_counter() - start


def harness_loop(data, device: torch.device, steps: int, state: dict) -> tuple[float, torch.nn.Module]:
    """Seconds for the same steps through the harness (ERM, its logging and NaN checks included)."""
    from benchmark.config import method_hparams
    from methods import build

    hp = method_hparams("erm", "cmnist", "paper")
    hp.update(steps=steps, eval_every=0)
    torch.manual_seed(0)
    method = build("erm", data.info, hp, device)
    method.models["net"].load_state_dict(state)
    harness = Harness(method, data, seed=0, runtime=RuntimeOptions(log_every=100, checkpoint_seconds=1e9))
    stage = harness.stages[0]
    harness.sampler = harness._make_sampler(stage)
    _sync(device)
    start = time.perf_counter()
    harness._train_stage(stage, 0)
    _sync(device)
    return time.perf_counter() - start, method.models["net"]


def main(argv: list[str]) -> int:
    if "--threads" in argv:
        from benchmark.perf.threads import main as threads_main

        return threads_main([a for a in argv if a != "--threads"])
    if "--images" in argv:
        from benchmark.perf.images import main as images_main

        return images_main([a for a in argv if a != "--images"])
    if "--bare" not in argv:
        from benchmark.perf.official import main as official_main

        return official_main(argv)
    argv = [a for a in argv if a != "--bare"]
    p = argparse.ArgumentParser(prog="run_bench.py perf --bare", description=__doc__.split("\n\n")[0])
    p.add_argument("--device", default="auto")
    p.add_argument("--quick", action="store_true", help="fewer steps (a smoke check of the script itself)")
    p.add_argument("--steps", type=int, default=None)
    p.add_argument("--repeats", type=int, default=3)
    args = p.parse_args(argv)
    device = resolve_device(args.device)
    steps = args.steps or (200 if args.quick else 2000)
    if steps < 1:
        raise BenchError("--steps must be positive")

    from benchmark.imports import project_packages

    datasets_pkg, methods_pkg = project_packages()
    data = datasets_pkg.load("cmnist", 1.0)
    from benchmark.config import method_hparams

    hp = method_hparams("erm", "cmnist", "paper")
    torch.manual_seed(0)
    init = methods_pkg.build("erm", data.info, hp, device).models["net"]
    state = copy.deepcopy(init.state_dict())
    x = data.splits["train"].x.to(device)
    y = data.splits["train"].y.to(device)
    if device.type == "cuda":
        torch.cuda.reset_peak_memory_stats(device)

    bare_times, harness_times = [], []
    for _ in range(args.repeats):
        model = copy.deepcopy(init)
        model.load_state_dict(state)
        bare_times.append(bare_loop(model, x, y, steps, hp["batch_size"], hp["optimizer"]["lr"]))
        harness_times.append(harness_loop(data, device, steps, state)[0])
    bare, ours = min(bare_times), min(harness_times)
    print(f"device: {device} ({torch.cuda.get_device_name(device) if device.type == 'cuda' else 'cpu'}), "
          f"torch {torch.__version__}, threads {torch.get_num_threads()}")
    print(f"model: ERM MLP 2352-100-100-100-10, batch {hp['batch_size']}, {steps} steps, best of {args.repeats}")
    print(f"bare PyTorch loop : {steps / bare:9.1f} steps/s")
    print(f"harness loop      : {steps / ours:9.1f} steps/s")
    print(f"harness time / bare time: {ours / bare:.3f}  (target <= 1.2)")
    if device.type == "cuda":
        print(f"peak GPU memory: {torch.cuda.max_memory_allocated(device) / 2**20:.1f} MiB")
    return 0
