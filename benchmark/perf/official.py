"""Steps per second of the harness against a re-creation of the official pipelines, same model,
batch, optimiser and steps, in one process.

    python run_bench.py perf [--device cpu|cuda] [--quick] [--repeats N] [--workers N] [--only erm lff resnet18]

Three workloads: ERM and LfF with LfF's Colored MNIST MLP (batch 256, Adam 1e-3), and ERM with a
torchvision ResNet-18 on 32 px images (Corrupted CIFAR-10's shape; RandomCrop(32, pad 4) + flip
+ CIFAR normalisation; batch 256, Adam 1e-3). The official side is written from what the official
code does (specs: LfF `train.py`, `train_vanilla.py`, `data/util.py`, `util.py`), not copied:
- a Dataset over the uint8 HWC arrays returning (index, image, attributes), with torchvision's
  transforms per image (`ToTensor` for Colored MNIST; `ToPILImage`, `RandomCrop`,
  `RandomHorizontalFlip`, `ToTensor`, `Normalize` for CIFAR), a shuffling `DataLoader` with worker
  processes and pinned memory (LfF: 16 workers; here min(16, cores)), re-created at each epoch end;
- ERM: forward, mean cross-entropy, step, and the loss read with `.item()` every step;
- LfF: per-sample losses copied to the CPU, the per-sample EMA and its class-wise maximum kept on
  the CPU with a Python loop over classes, NaN checks with `.item()` after each quantity, then the
  GCE + weighted cross-entropy step of both networks.
Ours: the same data on the device as uint8, through `Harness._train_stage` of the registered
`erm` / `lff` method (on CUDA with its steps replayed as CUDA graphs; also timed without them,
and as 3 seeds trained together in one process, `harness.run_together`, counted in all).
Each timed segment runs `--repeats` times (default 3), the official one and ours in turn so that
both see the same machine load. Printed per workload: the median steps/s of each with their
range, the ratio of the medians with the range of the per-repeat ratios, peak memory (GPU memory
on CUDA, else the process's peak resident size) and, on CUDA, the GPU's mean utilisation.
"""
from __future__ import annotations

import argparse
import copy
import os
import resource
import threading
import time
from typing import Any, Callable

import numpy as np
import torch
import torch.nn.functional as F

from benchmark.errors import BenchError
from benchmark.training.harness import Harness, RuntimeOptions, resolve_device, run_together
from methods.reweighting import gce_loss


class OfficialDataset(torch.utils.data.Dataset):
    """(index, image, (target, bias)) per item, the image through torchvision transforms (LfF's IdxDataset)."""

    def __init__(self, images_hwc: np.ndarray, y: np.ndarray, bias: np.ndarray, transform: Callable):
        self.images, self.attr, self.transform = images_hwc, torch.from_numpy(np.stack([y, bias], 1)), transform

    def __len__(self) -> int:
        return len(self.images)

    def __getitem__(self, i: int):
        return i, self.transform(self.images[i]), self.attr[i]


def official_transform(kind: str):
    from torchvision import transforms as T

    from datasets.images import CIFAR_MEAN, CIFAR_STD

    if kind == "cmnist":
        return T.ToTensor()
    return T.Compose([T.ToPILImage(), T.RandomCrop(32, padding=4), T.RandomHorizontalFlip(), T.ToTensor(),
                      T.Normalize(CIFAR_MEAN, CIFAR_STD)])


def official_batches(dataset: OfficialDataset, batch: int, workers: int, device: torch.device):
    """LfF's infinite iterator: a shuffling DataLoader, re-created when an epoch ends."""
    loader = torch.utils.data.DataLoader(dataset, batch_size=batch, shuffle=True, num_workers=workers,
                                         pin_memory=device.type == "cuda", persistent_workers=workers > 0)
    while True:
        yield from loader


def official_erm_step(models: dict, optimizers: dict, data: torch.Tensor, label: torch.Tensor, state: dict) -> None:
    loss = F.cross_entropy(models["net"](data), label)
    optimizers["net"].zero_grad()
    loss.backward()
    optimizers["net"].step()
    state["log"] = loss.item()


def official_lff_state(labels: torch.Tensor, alpha: float, classes: int) -> dict[str, Any]:
    """The CPU-side state LfF's loop keeps: both per-sample loss EMAs, which samples were seen, the labels."""
    n = len(labels)
    return {"ema_b": torch.zeros(n), "ema_d": torch.zeros(n), "updated_mask": torch.zeros(n), "alpha": alpha,
            "classes": classes, "labels": labels}


def official_lff_step(models: dict, optimizers: dict, data: torch.Tensor, label: torch.Tensor, state: dict,
                      index: torch.Tensor) -> None:
    """LfF train.py's step: CPU-side EMA and class-wise normalisation, .item() checks, joint update."""
    logit_b, logit_d = models["biased"](data), models["debiased"](data)
    if np.isnan(logit_b.mean().item()):
        raise BenchError("logit_b is NaN")
    loss_b = F.cross_entropy(logit_b, label, reduction="none").cpu().detach()
    loss_d = F.cross_entropy(logit_d, label, reduction="none").cpu().detach()
    for name, value in (("loss_b", loss_b), ("loss_d", loss_d)):
        if np.isnan(value.mean().item()):
            raise BenchError(f"{name} is NaN")
    label_cpu = label.cpu()
    weights = []
    for ema, new in ((state["ema_b"], loss_b), (state["ema_d"], loss_d)):
        ema[index] = state["alpha"] * ema[index] + (1 - state["alpha"] * state["updated_mask"][index]) * new
        normalised = ema[index].clone()
        for c in range(state["classes"]):
            members = np.where(label_cpu == c)[0]
            normalised[members] /= ema[np.where(state["labels"] == c)[0]].max()
        weights.append(normalised)
    state["updated_mask"][index] = 1.0
    weight = weights[0] / (weights[0] + weights[1] + 1e-8)
    if np.isnan(weight.mean().item()):
        raise BenchError("loss_weight is NaN")
    loss = gce_loss(logit_b, label, 0.7, True).mean() + (F.cross_entropy(logit_d, label, reduction="none") * weight.to(data.device)).mean()
    state["updated"] = state.get("updated", 0.0) + weight.mean().item() * data.size(0)
    for opt in optimizers.values():
        opt.zero_grad()
    loss.backward()
    for opt in optimizers.values():
        opt.step()


class Utilisation:
    """Mean GPU utilisation (%) sampled every 0.2 s while running (CUDA with NVML only)."""

    def __init__(self, device: torch.device):
        self.device, self.samples, self.stop = device, [], threading.Event()

    def __enter__(self) -> "Utilisation":
        if self.device.type == "cuda":
            try:
                torch.cuda.utilization(self.device)
            except Exception:  # no NVML on this machine: no number
                return self
            self.thread = threading.Thread(target=self._run, daemon=True)
            self.thread.start()
        return self

    def _run(self) -> None:
        while not self.stop.wait(0.2):
            self.samples.append(torch.cuda.utilization(self.device))

    def __exit__(self, *exc: Any) -> None:
        self.stop.set()

    @property
    def mean(self) -> float | None:
        return float(np.mean(self.samples)) if self.samples else None


def _peak_memory(device: torch.device) -> str:
    if device.type == "cuda":
        return f"{torch.cuda.max_memory_allocated(device) / 2**20:.0f} MiB GPU"
    return f"{resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 2**10:.0f} MiB RSS (process peak so far)"


def _timed(device: torch.device, run: Callable[[], None]) -> tuple[float, str, float | None]:
    if device.type == "cuda":
        torch.cuda.synchronize(device)
        torch.cuda.reset_peak_memory_stats(device)
    with Utilisation(device) as util:
        start = time.perf_counter()
        run()
        if device.type == "cuda":
            torch.cuda.synchronize(device)
        seconds = time.perf_counter() - start
    return seconds, _peak_memory(device), util.mean


def workload_data(name: str):
    """(BiasedData, method config dataset name) of a workload."""
    from benchmark.imports import project_packages

    datasets_pkg, _ = project_packages()
    if name in ("erm", "lff"):
        return datasets_pkg.load("cmnist", 1.0), "cmnist"
    from benchmark.training.augment import Augmentation
    from datasets.base import BiasedData, DataInfo, Split
    from datasets.images import CIFAR_MEAN, CIFAR_STD

    rng = np.random.default_rng(0)
    n = 10240
    y = torch.from_numpy(rng.integers(0, 10, n))
    split = Split(torch.from_numpy(rng.integers(0, 256, (n, 3, 32, 32), dtype=np.uint8)), y, y)
    info = DataInfo(name="perf32", num_classes=10, num_bias=10, image_shape=(3, 32, 32), mean=CIFAR_MEAN, std=CIFAR_STD,
                    augmentation=Augmentation("crop_flip", size=32, padding=4), input_kind="cifar")
    return BiasedData({"train": split, "test": split}, info), "cifar10c-disent"


def run_workload(name: str, device: torch.device, steps: int, warmup: int, workers: int, repeats: int = 1,
                 variants: tuple[str, ...] = ()) -> dict[str, Any]:
    """Steps/s of each side (lists, one per repeat), peak memory and utilisation of the last repeat.
    `variants` (keys of `NUMERICS`) are timed on the harness side as well, each on its own copy of
    the model from the same initial weights; the official side stays fp32 NCHW, as the official code runs."""
    from benchmark.config import method_hparams
    from methods import build

    data, config_dataset = workload_data(name)
    method_name = "lff" if name == "lff" else "erm"
    hp = method_hparams(method_name, config_dataset, "paper")
    hp.update(steps=warmup + steps, eval_every=0, batch_size=256)
    torch.manual_seed(0)
    ours = build(method_name, data.info, hp, device)
    initial = {k: copy.deepcopy(m.state_dict()) for k, m in ours.models.items()}

    train = data.splits["train"]
    dataset = OfficialDataset(train.x.permute(0, 2, 3, 1).contiguous().numpy(), train.y.numpy(), train.bias.numpy(),
                              official_transform("cmnist" if name != "resnet18" else "cifar"))
    models = {k: copy.deepcopy(m) for k, m in ours.models.items()}
    for k, m in models.items():
        m.load_state_dict(initial[k])
        m.train()
    optimizers = {k: torch.optim.Adam(m.parameters(), lr=hp["optimizer"]["lr"]) for k, m in models.items()}
    labels = train.y
    state = official_lff_state(labels, hp.get("ema_alpha", 0.7), data.info.num_classes)
    batches = official_batches(dataset, 256, workers, device)

    def official(count: int) -> None:
        for _ in range(count):
            index, images, attr = next(batches)
            images, attr = images.to(device), attr.to(device)
            if name == "lff":
                official_lff_step(models, optimizers, images, attr[:, 0], state, index)
            else:
                official_erm_step(models, optimizers, images, attr[:, 0], state)

    official(warmup)
    out: dict[str, Any] = {"official": [], "ours": [], "eager": [], "together": [], "variants": {v: [] for v in variants}}
    variant_models = {}
    for variant in variants:
        torch.manual_seed(0)
        variant_models[variant] = build(method_name, data.info, hp, device)
    for _ in range(repeats):
        official_s, out["official_mem"], out["official_util"] = _timed(device, lambda: official(steps))
        ours_s, out["ours_mem"], out["ours_util"] = _timed_harness(ours, data, steps, warmup, "auto")
        out["official"].append(steps / official_s)
        out["ours"].append(steps / ours_s)
        for variant, model in variant_models.items():
            out["variants"][variant].append(steps / _timed_harness(model, data, steps, warmup, "auto", NUMERICS[variant])[0])
        if device.type == "cuda":
            for k, m in ours.models.items():
                m.load_state_dict(initial[k])
            out["eager"].append(steps / _timed_harness(ours, data, steps, warmup, "off")[0])
            seconds, _, out["together_util"] = _timed(device, lambda: _seeds_together(method_name, hp, data, device, warmup + steps))
            out["together"].append(SEEDS_TOGETHER * (warmup + steps) / seconds)
    batches.close()
    return out


def _median(values: list[float]) -> float:
    return float(np.median(values))


def _spread(values: list[float]) -> str:
    """`median (min-max, n runs)`, or the one value."""
    if len(values) == 1:
        return f"{values[0]:.1f}"
    return f"{_median(values):.1f} ({min(values):.1f}-{max(values):.1f}, {len(values)} runs)"


SEEDS_TOGETHER = 3


def _timed_harness(method: Any, data: Any, steps: int, warmup: int, cuda_graphs: str,
                   numerics: dict[str, Any] | None = None) -> tuple[float, str, float | None]:
    """Seconds (and peak memory, utilisation) of `steps` harness steps after `warmup` untimed ones."""
    harness = Harness(method, data, seed=0, runtime=RuntimeOptions(log_every=100, checkpoint_seconds=1e9, cuda_graphs=cuda_graphs),
                      **(numerics or {}))
    stage = harness.stages[0]
    stage.evaluate = False  # the official loops' evaluations are not timed either
    harness.sampler = harness._make_sampler(stage)
    stage.steps = warmup
    harness._train_stage(stage, 0)
    stage.steps = warmup + steps
    return _timed(method.device, lambda: harness._train_stage(stage, warmup))


def _seeds_together(method_name: str, hp: dict[str, Any], data: Any, device: torch.device, steps: int) -> None:
    """`SEEDS_TOGETHER` seeds of the workload trained together in this process (`run_together`), warm-up included."""
    from methods import build

    harnesses = []
    for seed in range(SEEDS_TOGETHER):
        torch.manual_seed(seed)
        harness = Harness(build(method_name, data.info, hp, device), data, seed=seed,
                          runtime=RuntimeOptions(log_every=100, checkpoint_seconds=1e9, max_stage_steps=steps))
        harness.stages[0].evaluate = False
        harnesses.append(harness)
    for result in run_together(harnesses):
        if isinstance(result, Exception):
            raise result


WORKLOADS = {
    "erm": "ERM, LfF's Colored MNIST MLP (2352-100-100-100-10), batch 256",
    "lff": "LfF (two MLPs, GCE, per-sample EMA), Colored MNIST, batch 256",
    "resnet18": "ERM, torchvision ResNet-18 from scratch, 32 px, RandomCrop + flip, batch 256",
}
# Labelled harness options timed beside the default fp32 NCHW run (`--variants`): they round
# differently from the official fp32, so a run that uses them is a job of its own (`--set channels_last=true`,
# `--set amp=bf16`). Autocast applies on CUDA only.
NUMERICS = {"channels_last": {"channels_last": True}, "bf16": {"amp": "bf16"},
            "channels_last+bf16": {"channels_last": True, "amp": "bf16"}}
STEPS = {"cpu": {"erm": 600, "lff": 400, "resnet18": 8}, "cuda": {"erm": 3000, "lff": 2000, "resnet18": 300}}


def main(argv: list[str]) -> int:
    p = argparse.ArgumentParser(prog="run_bench.py perf", description=__doc__.split("\n\n")[0])
    p.add_argument("--device", default="auto")
    p.add_argument("--quick", action="store_true", help="a tenth of the steps (a smoke check of the script itself)")
    p.add_argument("--workers", type=int, default=min(16, os.cpu_count() or 1), help="official DataLoader workers (LfF: 16)")
    p.add_argument("--only", nargs="+", choices=sorted(WORKLOADS), default=list(WORKLOADS))
    p.add_argument("--repeats", type=int, default=3, help="timed runs of each side, taken in turn (median and range printed)")
    p.add_argument("--variants", nargs="+", choices=sorted(NUMERICS), default=[],
                   help="harness options also timed on the ResNet-18 workload (bf16: CUDA only)")
    args = p.parse_args(argv)
    if args.repeats < 1:
        raise BenchError(f"--repeats must be at least 1, got {args.repeats}")
    device = resolve_device(args.device)
    if device.type != "cuda" and any("bf16" in v for v in args.variants):
        raise BenchError("--variants bf16 measures CUDA autocast, which the harness does not use on the CPU: run it with --device cuda")
    print(f"device: {device} ({torch.cuda.get_device_name(device) if device.type == 'cuda' else 'cpu'}), torch {torch.__version__}, "
          f"threads {torch.get_num_threads()}, official DataLoader workers {args.workers}")
    for name in args.only:
        steps = STEPS[device.type][name] // (10 if args.quick else 1) or 1
        warmup = max(2, steps // 10)
        r = run_workload(name, device, steps, warmup, args.workers, args.repeats,
                         tuple(args.variants) if name == "resnet18" else ())
        util = lambda u: "" if u is None else f", GPU {u:.0f} % busy"  # noqa: E731
        ratios = [ours / official for ours, official in zip(r["ours"], r["official"])]
        print(f"{WORKLOADS[name]}, {steps} timed steps after {warmup}, steps/s median (range):")
        print(f"  official-style pipeline : {_spread(r['official'])}  (peak {r['official_mem']}{util(r['official_util'])})")
        print(f"  harness                 : {_spread(r['ours'])}  (peak {r['ours_mem']}{util(r['ours_util'])})")
        print(f"  ratio harness / official: {_median(r['ours']) / _median(r['official']):.2f}"
              + (f"  (per run {min(ratios):.2f}-{max(ratios):.2f})" if len(ratios) > 1 else ""))
        for variant, speeds in r["variants"].items():
            label = f"harness, {variant}"
            print(f"  {label:<24}: {_spread(speeds)}  (ratio to official x{_median(speeds) / _median(r['official']):.2f})")
        if r["eager"]:
            print(f"  harness without CUDA graphs: {_spread(r['eager'])}  (graphs x{_median(r['ours']) / _median(r['eager']):.2f})")
            print(f"  {SEEDS_TOGETHER} seeds together in one process: {_spread(r['together'])} in all{util(r['together_util'])}"
                  f"  (ratio to official x{_median(r['together']) / _median(r['official']):.2f})")
    return 0
