"""The one training harness: runs a method's stages on a device, evaluates, checkpoints.

Data lives on the device as uint8; batches are drawn by index on the device and normalised
there. Nothing in a step waits on the host: logs accumulate on the device and are read every
`log_every` steps, where a non-finite loss is caught. A method sees `Batch(x, y, index)` and
`TrainSet` only; the bias attribute stays here, for evaluation, except as the group labels of a
`GroupBatch`/`GroupSet` on the splits the method's declared `supervision` covers.
"""
from __future__ import annotations

import dataclasses
import os
import pickle
import random
import sys
import time
import uuid
from contextlib import nullcontext
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Callable, Iterator

import numpy as np
import torch
from torch import Tensor

from benchmark.training import diagnostics, stopping
from benchmark.training.compute import ForwardCounter
from benchmark.errors import BenchError, NonFiniteLossError
from benchmark.failpoints import failpoint
from benchmark.training.feed import DeviceData, EpochSampler, WeightedSampler
from benchmark.training.graphs import StepFn, StepGraphs, graphs_supported, make_capturable, portable_state
from benchmark.metrics import METRIC_NAMES, group_counts, group_metrics
from benchmark.supervision import no_validation_split
from benchmark.selection import EVAL_SPLITS, GROUP_SPLIT, read_split
from datasets.base import BiasedData
from methods.base import GROUP_SPLITS, Batch, GroupSet, Method, Stage, TrainSet

AMP_DTYPES = {"off": None, "bf16": torch.bfloat16, "fp16": torch.float16}
STATE_KEYS = ("position", "models", "optimizers", "schedulers", "scaler", "method", "sampler", "rng", "result")


class Interrupted(Exception):
    """Raised when `stop_after_steps` is reached (tests use it to simulate a killed job)."""


@dataclass
class RuntimeOptions:
    """How a job runs; none of this changes its result, so none of it is in the job id."""

    device: str = "auto"
    log_every: int = 100
    checkpoint_seconds: float = 300.0
    eval_batch_size: int = 2048
    checkpoint_path: Path | None = None
    log: Callable[[dict[str, Any]], None] | None = None
    progress: bool = False
    stop_after_steps: int | None = None
    max_stage_steps: int | None = None  # caps every loss stage (tests step each stage a few times)
    shared_stage_path: Callable[[str], Path] | None = None  # stage name -> where jobs sharing it keep its end state
    data_placement: str = "auto"  # images on the device, or streamed from host memory (benchmark/training/feed.py)
    cuda_graphs: str = "auto"  # auto: capture the steps of stages that allow it (benchmark/training/graphs.py); off: never
    threads: int | None = None  # CPU threads asked for (--threads); None: chosen per job (benchmark/training/threads.py)
    heartbeat_seconds: float = 0.0  # without a progress bar: a line on stderr this often during a job (0: never)
    report_progress: Callable[[dict[str, Any]], None] | None = None  # where the job is, at every log flush (its claim)


def resolve_device(name: str) -> torch.device:
    """`auto` picks CUDA when present; `cuda` and `cuda:N` fail clearly without a GPU."""
    if name == "auto":
        return torch.device("cuda" if torch.cuda.is_available() else "cpu")
    try:
        device = torch.device(name)
    except RuntimeError:
        raise BenchError(f"unknown device {name!r}: use auto, cpu, cuda or cuda:N") from None
    if device.type == "cuda" and not torch.cuda.is_available():
        raise BenchError(f"device {name!r} asked for but no CUDA GPU is visible: use --device cpu or auto")
    return device


def seed_everything(seed: int) -> None:
    random.seed(seed)
    np.random.seed(seed % 2**32)
    torch.manual_seed(seed)


@dataclass
class RunResult:
    curve: list[dict[str, Any]] = field(default_factory=list)
    group_total: dict[str, list[int]] = field(default_factory=dict)
    aligned: list[bool] = field(default_factory=list)
    timings: dict[str, dict[str, float]] = field(default_factory=dict)
    final_stage: str = ""
    sparsity: dict[str, float] | None = None
    diagnostics: dict[str, dict[str, Any]] = field(default_factory=dict)
    artifacts: dict[str, Any] = field(default_factory=dict)  # per-sample arrays (cluster ids), saved beside the result
    resumed_from_step: int = 0
    reused_stages: list[str] = field(default_factory=list)  # run by an earlier job with the same prefix (timings are its)


def accumulate(sums: dict[str, Tensor], out: dict[str, Tensor]) -> None:
    """Add a step's logs to the running sums in place (the sums outlive the step's own tensors)."""
    for k, v in out.items():
        if k in sums:
            sums[k].add_(v)
        else:
            sums[k] = v.clone()


class Harness:
    """Runs one method on one dataset; see `run`."""

    def __init__(self, method: Method, data: BiasedData, seed: int, eval_every: int = 0, amp: str = "off",
                 runtime: RuntimeOptions | None = None, channels_last: bool = False):
        self.method, self.seed, self.eval_every = method, seed, int(eval_every)
        self.rt = runtime or RuntimeOptions()
        self.device = method.device
        self.data = DeviceData(data, self.device, self.rt.data_placement, channels_last)
        if channels_last:  # before the optimisers see the parameters: conversion keeps the Parameter objects
            for model in method.models.values():
                model.to(memory_format=torch.channels_last)
        if amp not in AMP_DTYPES:
            raise BenchError(f"amp must be one of {', '.join(AMP_DTYPES)}, got {amp!r}")
        self.amp_dtype = AMP_DTYPES[amp] if self.device.type == "cuda" else None
        self.scaler = torch.amp.GradScaler("cuda", enabled=self.amp_dtype is torch.float16)
        self.generator = torch.Generator(device=self.device).manual_seed(seed)
        self.group_splits = self._group_splits()
        self.stages = method.stages()
        if self.rt.max_stage_steps is not None:
            for stage in self.stages:
                stage.steps = min(stage.steps, self.rt.max_stage_steps)
        self.result = RunResult(aligned=self.data.aligned_mask(), final_stage=self._final_stage())
        self.position = {"stage": 0, "step": 0, "global_step": 0}
        self.sampler: EpochSampler | WeightedSampler | None = None
        self.best: dict[str, Any] | None = None  # the kept models of a `keep_best` stage
        self.stage_began = time.perf_counter()  # the running stage's start, earlier runs of a resumed job included
        self._check_keep_best()
        self.last_checkpoint = time.monotonic()
        self.bar = None
        self.graph_steps: dict[str, dict[str, int]] = {}
        self.forward_counts: dict[str, dict[str, Any]] = {}  # per stage, until its timings are written
        self.last_heartbeat, self.heartbeat_step = time.monotonic(), 0
        self.progress_anchor: tuple[float, int] | None = None  # (time, global step) where the rate's window began
        self.progress_rate: float | None = None
        self.capture_stream: torch.cuda.Stream | None = None
        self.cpu_rng = torch.get_rng_state()  # where a run of its own would go on from (run_together)

    @property
    def total_steps(self) -> int:
        """Optimiser steps over all loss stages (what progress bars, heartbeats and reports count to)."""
        return sum(s.steps for s in self.stages if s.loss is not None)

    def _group_splits(self) -> tuple[str, ...]:
        """The splits whose group labels the method may see, from its declared supervision."""
        level = self.method.supervision  # one of SUPERVISION: checked when the method was registered
        if level == "valid-groups" and "valid" not in self.data.splits:
            raise BenchError(no_validation_split(self.method.name, self.data.info.name))
        if level == "valid-groups" and GROUP_SPLIT in self.data.splits:
            return (GROUP_SPLIT,)  # valid_bias both: the group labels of the even half only, as the group-label rules read
        return GROUP_SPLITS[level]

    def split_set(self, split: str = "train") -> TrainSet | GroupSet:
        """A whole split as the method may see it: with group labels only where its supervision allows."""
        return self.data.train_set(split, groups=split in self.group_splits)

    def _final_stage(self) -> str:
        evaluated = [s.name for s in self.stages if (s.evaluate and s.loss is not None) or s.refits]
        if not evaluated:
            raise BenchError(f"method {self.method.name} has no evaluated loss stage")
        return evaluated[-1]

    def _check_keep_best(self) -> None:
        for stage in self.stages:
            if stage.keep_best is None:
                continue
            split, metric = stage.keep_best
            if split not in self.data.splits:
                raise BenchError(f"{self.method.name} stage {stage.name!r} keeps its best {split} evaluation, and "
                                 f"{self.data.info.name} has no {split} split: hold one out (e.g. --set "
                                 f"{self.data.info.name}.valid_fraction=0.1) or choose another rule")
            if metric not in METRIC_NAMES or not stage.evaluate:
                raise BenchError(f"{self.method.name} stage {stage.name!r}: keep_best needs an evaluated stage and "
                                 f"one of {', '.join(METRIC_NAMES)}, got {metric!r}")

    # ----- evaluation -------------------------------------------------------------------
    @torch.inference_mode()
    def evaluate_split(self, split: str) -> tuple[list[int], list[int]]:
        x, y, bias = self.data.splits[split]
        preds = []
        with self._autocast():
            for start in range(0, len(y), self.rt.eval_batch_size):
                preds.append(self.method.predict(self.data.prepare(x[start:start + self.rt.eval_batch_size])).argmax(1))
        info = self.data.info
        correct, total = group_counts(torch.cat(preds), y, bias, info.num_classes, info.num_bias)
        return correct.tolist(), total.tolist()

    def evaluate(self, stage: Stage, step: int) -> None:
        self.method.models.eval()
        entry: dict[str, Any] = {"stage": stage.name, "step": step, "global_step": self.position["global_step"]}
        for split in EVAL_SPLITS:
            if split in self.data.splits:
                correct, total = self.evaluate_split(split)
                entry[split] = correct
                self.result.group_total[split] = total
        self.result.curve.append(entry)
        if stage.keep_best is not None:
            self._keep_if_best(stage, entry)
        self.method.train_mode()
        self._log({"event": "eval", **entry})

    def _keep_if_best(self, stage: Stage, entry: dict[str, Any]) -> None:
        split, metric = stage.keep_best
        split = read_split(split, metric, entry)  # a group metric of `valid` reads valid_even where there is one
        value = group_metrics(entry[split], self.result.group_total[split], self.result.aligned)[metric]
        if value is None or (self.best is not None and self.best["stage"] == stage.name and value <= self.best["value"]):
            return
        models = {k: v.detach().clone() for k, v in self.method.models.state_dict().items()}
        self.best = {"stage": stage.name, "step": entry["step"], "value": value, "models": models}

    def _restore_best(self, stage: Stage) -> None:
        """End of a `keep_best` stage: its best evaluated models replace the last ones."""
        best, self.best = self.best, None
        if best is None or best["stage"] != stage.name:
            return
        self.method.models.load_state_dict(best["models"])
        split, metric = stage.keep_best
        self.result.diagnostics.setdefault(stage.name, {}).update(
            kept_step=best["step"], kept_by=f"{split} {metric}", kept_value=best["value"])
        self._log({"event": "kept_best", "stage": stage.name, **self.result.diagnostics[stage.name]})

    def _diagnose(self, stage: str, report: dict[str, Any]) -> dict[str, Any]:
        """JSON-ready summary of what a once-only stage returned: a boolean mask over the training
        split (mined samples) and integer ids per sample (clusters) are summarised against the
        true bias-conflicting samples (`diagnostics.py`, evaluation only) and saved as artifacts."""
        _, y, bias = self.data.splits["train"]
        conflicting = ~self.data.info.is_aligned(y, bias)
        out: dict[str, Any] = {}
        for key, value in report.items():
            if isinstance(value, Tensor) and value.dtype == torch.bool and value.shape == y.shape:
                out[key] = diagnostics.mask_summary(value, conflicting)
                self.result.artifacts[f"{stage}.{key}"] = value.cpu().numpy()
            elif isinstance(value, Tensor) and not value.is_floating_point() and value.shape == y.shape:
                out[key] = diagnostics.group_summary(value.long(), y, bias, conflicting, self.data.info.num_bias)
                self.result.artifacts[f"{stage}.{key}"] = value.cpu().numpy()
            elif isinstance(value, Tensor):
                out[key] = value.tolist()
            else:
                out[key] = value
        return out

    # ----- checkpoints ------------------------------------------------------------------
    def _rng_state(self) -> dict[str, Any]:
        name, keys, pos, has_gauss, cached = np.random.get_state()
        numpy_state = {"name": name, "keys": torch.from_numpy(keys.astype(np.int64)), "pos": int(pos),
                       "has_gauss": int(has_gauss), "cached_gaussian": float(cached)}
        state = {"torch": torch.get_rng_state(), "numpy": numpy_state, "random": random.getstate(),
                 "sampler": self.generator.get_state()}
        if self.device.type == "cuda":
            state["cuda"] = torch.cuda.get_rng_state(self.device)
        return state

    def _set_rng_state(self, state: dict[str, Any]) -> None:
        torch.set_rng_state(state["torch"].cpu())
        n = state["numpy"]
        np.random.set_state((n["name"], n["keys"].cpu().numpy().astype(np.uint32), n["pos"], n["has_gauss"], n["cached_gaussian"]))
        random.setstate(state["random"])
        self.generator.set_state(state["sampler"].cpu())
        if "cuda" in state:
            torch.cuda.set_rng_state(state["cuda"].cpu(), self.device)

    def _state(self) -> dict[str, Any]:
        m = self.method
        in_stage = self.position["step"] > 0
        return {
            "position": {**self.position, "stage_seconds": time.perf_counter() - self.stage_began if in_stage else 0.0},
            "models": m.models.state_dict(),
            "optimizers": {k: portable_state(o) for k, o in m.optimizers.items()},
            "schedulers": {k: s.state_dict() for k, s in m.schedulers.items()},
            "scaler": self.scaler.state_dict(),
            "method": m.extra_state(),
            "sampler": self.sampler.state_dict() if self.sampler else None,
            "rng": self._rng_state(),
            "threads": torch.get_num_threads(),
            "result": {**dataclasses.asdict(self.result),
                       "artifacts": {k: torch.from_numpy(v) for k, v in self.result.artifacts.items()}},
            "best": self.best,
        }

    @staticmethod
    def _write(path: Path, state: dict[str, Any]) -> None:
        path.parent.mkdir(parents=True, exist_ok=True)
        tmp = path.with_name(f".{path.name}.tmp{uuid.uuid4().hex}")  # unique across hosts sharing the store
        torch.save(state, tmp)
        failpoint("checkpoint_write")
        os.replace(tmp, path)

    def save_checkpoint(self, state: dict[str, Any] | None = None) -> None:
        if self.rt.checkpoint_path is not None:
            self._write(self.rt.checkpoint_path, state or self._state())
        self.last_checkpoint = time.monotonic()

    def _restore(self, state: dict[str, Any], optimizers: set[str] | None = None) -> None:
        """Load a saved state; `optimizers` limits which optimisers and schedulers are restored."""
        m = self.method
        m.models.load_state_dict(state["models"])
        for k, o in m.optimizers.items():
            if optimizers is None or k in optimizers:
                o.load_state_dict(state["optimizers"][k])
        for k, s in m.schedulers.items():
            if optimizers is None or k in optimizers:
                s.load_state_dict(state["schedulers"][k])
        self.scaler.load_state_dict(state["scaler"])
        m.load_extra_state(state["method"])
        self._set_rng_state(state["rng"])
        self.position = state["position"]
        result = state["result"]
        self.result = RunResult(**{**result, "artifacts": {k: v.cpu().numpy() for k, v in result["artifacts"].items()}})
        self.best = state.get("best")

    def load_checkpoint(self) -> dict[str, Any] | None:
        """The job's own checkpoint if it has one, else the latest shared stage another job saved."""
        state = self._read(self.rt.checkpoint_path)
        if state is not None:
            self._restore(state)
            self.result.resumed_from_step = self.position["global_step"]
            if self.rt.threads is None and state.get("threads", 0) != torch.get_num_threads():
                torch.set_num_threads(int(state["threads"]))  # the count it started with: its sums round the same
            return state
        for i in reversed(range(len(self.stages))):
            path = self._shared_path(i)
            state = self._read(path)
            if state is not None:
                prefix = self.stages[: i + 1]
                self._restore(state, {n for s in prefix if s.loss is not None for n in s.optimizers})
                self.result.reused_stages = [s.name for s in prefix]
                self._log({"event": "reused", "stages": self.result.reused_stages, "from": str(path)})
                return state
        return None

    def _read(self, path: Path | None) -> dict[str, Any] | None:
        """A saved state, loaded as tensors and plain values only (`weights_only`: a file in a shared
        results directory never runs code). A file that does not load so, or lacks a state's parts
        (cut short by a kill, another format, planted), is logged, deleted and ignored: the job
        starts that part over."""
        if path is None or not path.exists():
            return None
        try:
            state = torch.load(path, map_location=self.device, weights_only=True)
            missing = [k for k in STATE_KEYS if not isinstance(state, dict) or k not in state]
            if not missing:
                return state
            reason = f"not a saved state (it lacks {', '.join(missing)})"
        except pickle.UnpicklingError:
            reason = "it holds objects other than tensors and plain values (an older DebiasBench's file, or planted)"
        except Exception as e:  # cut short by a kill, or not a torch file at all
            reason = f"{type(e).__name__}: {str(e).splitlines()[0] if str(e) else ''}"[:300]
        self._log({"event": "checkpoint_dropped", "path": str(path), "reason": reason})
        print(f"warning: ignored and deleted the unreadable saved state {path}: {reason}; that part of the job runs again",
              file=sys.stderr)
        path.unlink(missing_ok=True)
        return None

    def _shared_path(self, index: int) -> Path | None:
        name = self.stages[index].name
        if self.rt.shared_stage_path is None or name not in self.method.shared_stages:
            return None
        if any(s.loss is not None and not s.optimizers for s in self.stages[: index + 1]):
            raise BenchError(f"{self.method.name} shares stage {name!r}, so every loss stage up to it must name its optimizers")
        return self.rt.shared_stage_path(name)

    # ----- training ---------------------------------------------------------------------
    def _autocast(self):
        if self.amp_dtype is None:
            return nullcontext()
        return torch.autocast(self.device.type, dtype=self.amp_dtype)

    def _log(self, record: dict[str, Any]) -> None:
        if self.rt.log is not None:
            self.rt.log(record)

    def _require_split(self, stage: Stage) -> None:
        if stage.split not in self.data.splits:
            raise BenchError(f"{self.method.name} stage {stage.name!r} trains on the {stage.split!r} split, which "
                             f"{self.data.info.name} does not have: hold one out (e.g. --set {self.data.info.name}.valid_fraction=0.1) "
                             f"or let the stage train on another split (see configs/methods/{self.method.name}.yaml)")

    def _make_sampler(self, stage: Stage) -> EpochSampler | WeightedSampler:
        self._require_split(stage)
        if stage.sample_weights is not None:
            weights = stage.sample_weights().to(self.device)
            _, y, bias = self.data.splits[stage.split]
            self.result.diagnostics.setdefault(stage.name, {}).update(
                diagnostics.sampling_mass(weights, ~self.data.info.is_aligned(y, bias)))
            return WeightedSampler(weights, stage.batch_size, self.generator)
        return EpochSampler(len(self.data.splits[stage.split][1]), stage.batch_size, stage.drop_last, self.generator,
                            on_host=self.data.streamed)

    def _flush(self, stage: Stage, step: int, sums: dict[str, Tensor], count: int) -> None:
        """Read the accumulated logs (the only host sync of the loop); fail on a non-finite loss."""
        keys = list(sums)
        values = torch.stack([sums[k] for k in keys]).tolist() if keys else []
        sums.clear()  # a key absent from the next window stays out of its record
        record = {k: v / count for k, v in zip(keys, values)}
        if not all(np.isfinite(v) for v in record.values()):
            bad = ", ".join(k for k, v in record.items() if not np.isfinite(v))
            raise NonFiniteLossError(
                f"non-finite {bad} in stage {stage.name!r} between steps {step - count + 1} and {step}: "
                f"lower the learning rate or try --set amp=off"
            )
        self._log({"event": "train", "stage": stage.name, "step": step, **record})
        if self.rt.report_progress is not None:
            self._report_progress(stage, step)
        if self.bar is not None:
            self.bar.set_postfix({k: f"{v:.4f}" for k, v in record.items()}, refresh=False)
            self.bar.update(count)
        elif self.rt.heartbeat_seconds and time.monotonic() - self.last_heartbeat >= self.rt.heartbeat_seconds:
            self._heartbeat(stage, step, record.get("loss"))

    def _report_progress(self, stage: Stage, step: int) -> None:
        """Stage, steps done and steps/s, measured over windows of at least 30 s (None before the first)."""
        now, done = time.time(), self.position["global_step"]
        if self.progress_anchor is None:
            self.progress_anchor = (now, done)
        since, at = self.progress_anchor
        if now - since >= 30:
            self.progress_rate, self.progress_anchor = (done - at) / (now - since), (now, done)
        self.rt.report_progress({"stage": stage.name, "step": step, "stage_steps": stage.steps, "done": done,
                                 "total": self.total_steps, "steps_per_s": self.progress_rate, "time": now})

    def _heartbeat(self, stage: Stage, step: int, loss: float | None) -> None:
        """One line on stderr every few minutes of a long job when no progress bar shows (a log file)."""
        now = time.monotonic()
        rate = (self.position["global_step"] - self.heartbeat_step) / max(now - self.last_heartbeat, 1e-9)
        self.last_heartbeat, self.heartbeat_step = now, self.position["global_step"]
        total = self.total_steps
        print(f"  ... {self.method.name} on {self.data.info.name}, seed {self.seed}: stage {stage.name} step {step:,}/{stage.steps:,} "
              f"({self.position['global_step']:,}/{total:,} overall), {rate:.0f} steps/s"
              + ("" if loss is None else f", loss {loss:.4f}"), file=sys.stderr, flush=True)

    def _step_fn(self, stage: Stage, optimizers: list[torch.optim.Optimizer]) -> StepFn:
        """One optimiser step of `stage` on a batch; returns its logs, detached, as float32."""
        scaler = self.scaler

        def step(batch: Batch) -> dict[str, Tensor]:
            with self._autocast():
                out = stage.loss(batch)
            for opt in optimizers:
                opt.zero_grad(set_to_none=True)
            scaler.scale(out["loss"]).backward()
            for opt in optimizers:
                scaler.step(opt)
            scaler.update()
            return {k: v.detach().float() for k, v in out.items()}
        return step

    def _stage_graphs(self, stage: Stage, optimizers: list[torch.optim.Optimizer], step: StepFn) -> StepGraphs | None:
        """CUDA graphs for a stage that allows them (benchmark/training/graphs.py), else None."""
        if stage.graph_key is None or self.rt.cuda_graphs == "off":
            return None
        why_not = graphs_supported(optimizers, self.device, self.scaler.is_enabled())
        if why_not is not None:
            if self.device.type == "cuda":
                self._log({"event": "cuda_graphs_off", "stage": stage.name, "reason": why_not})
            return None
        make_capturable(optimizers, self.device)
        if self.capture_stream is None:  # one per harness: seeds run together never share a capture stream
            self.capture_stream = torch.cuda.Stream(self.device)
        return StepGraphs(step, stage.graph_key, stage.batch_size, self.capture_stream, self._log)

    def _forwards(self, stage: str) -> dict[str, Any]:
        """This process's forward counts of a stage: per optimiser step, plus periodic and once-only passes."""
        return self.forward_counts.setdefault(stage, {"per_step": (0, 0), "passes": 0, "samples": 0})

    def _forward_totals(self, stage: Stage, steps: int) -> dict[str, int]:
        counted = self.forward_counts.pop(stage.name, None)
        if counted is None:  # resumed after the stage's last step: nothing ran here to count
            return {}
        per_pass, per_sample = counted["per_step"]
        return {"forward_passes": per_pass * steps + counted["passes"], "forward_samples": per_sample * steps + counted["samples"]}

    def _train_stage(self, stage: Stage, start: int) -> None:
        for _ in self._stage_steps(stage, start):
            pass

    def _stage_steps(self, stage: Stage, start: int) -> Iterator[None]:
        """Train `stage` from step `start`, yielding after every optimiser step."""
        m = self.method
        names = stage.optimizers or tuple(m.optimizers)
        optimizers = [m.optimizers[n] for n in names]
        schedulers = [m.schedulers[n] for n in names if n in m.schedulers]
        m.train_mode()
        sums: dict[str, Tensor] = {}
        count = 0
        step_fn = self._step_fn(stage, optimizers)
        graphs = self._stage_graphs(stage, optimizers, step_fn)
        if graphs is not None:
            self.graph_steps[stage.name] = graphs.counts  # reported with the stage's timings
        eval_every = self.eval_every if stage.eval_every is None else stage.eval_every
        periodic_every, periodic = stage.periodic or (0, None)
        counted = self._forwards(stage.name)
        for step in range(start, stage.steps):
            m.step = step
            batch = self.data.train_batch(self.sampler.next(), stage.split, self.generator, stage.split in self.group_splits)
            if self.data.streamed:
                self.data.prefetch(stage.split, self.sampler.peek())
            with ForwardCounter(m.models) if step == start else nullcontext() as counter:
                out = graphs.step(batch) if graphs is not None else None
                if out is None:
                    out = step_fn(batch)
            if counter is not None:  # every step of a stage runs the same forwards (benchmark/training/compute.py)
                counted["per_step"] = (counter.passes, counter.samples)
            for sched in schedulers:
                sched.step()
            accumulate(sums, out)
            count += 1
            done = step + 1
            self.position.update(step=done, global_step=self.position["global_step"] + 1)
            if periodic is not None and done % periodic_every == 0:
                with torch.no_grad(), ForwardCounter(m.models) as counter:
                    periodic(self.split_set())
                counted["passes"] += counter.passes
                counted["samples"] += counter.samples
                m.train_mode()
            if stage.evaluate and ((eval_every and done % eval_every == 0) or done == stage.steps):
                self.evaluate(stage, done)
            if done % self.rt.log_every == 0 or done == stage.steps:
                self._flush(stage, done, sums, count)
                count = 0
                if time.monotonic() - self.last_checkpoint > self.rt.checkpoint_seconds:
                    self.save_checkpoint()
            if stopping.requested() is not None or (
                    self.rt.stop_after_steps is not None and self.position["global_step"] >= self.rt.stop_after_steps):
                if count:
                    self._flush(stage, done, sums, count)
                self.save_checkpoint()
                stopping.raise_if_requested()
                raise Interrupted(f"stopped after {self.position['global_step']} steps")
            yield

    def run(self) -> RunResult:
        """Run every stage from the last checkpoint (or the start) and return the curve."""
        for _ in self.steps():
            pass
        return self.result

    def steps(self) -> Iterator[None]:
        """`run`, one optimiser step (or once-only stage) at a time, for `run_together`."""
        state = self.load_checkpoint()
        self._log({"event": "data", "placement": self.data.placement, "device": str(self.device)})
        total = self.total_steps
        if self.rt.progress:
            from tqdm import tqdm

            self.bar = tqdm(total=total, initial=self.position["global_step"], desc=f"{self.method.name}", leave=False,
                            unit="step", dynamic_ncols=True)
        try:
            for i in range(self.position["stage"], len(self.stages)):
                stage = self.stages[i]
                start = self.position["step"] if i == self.position["stage"] else 0
                earlier = self.position.get("stage_seconds", 0.0) if start else 0.0  # this stage's time before a resume
                self.position.update(stage=i, step=start)
                self.stage_began = time.perf_counter() - earlier
                if stage.on_start is not None:
                    stage.on_start()
                if stage.run is not None:
                    if start == 0:
                        self._require_split(stage)
                        with self._autocast(), ForwardCounter(self.method.models) as counter:
                            report = stage.run(self.split_set(stage.split))
                        self._forwards(stage.name).update(passes=counter.passes, samples=counter.samples)
                        if report:
                            self.result.diagnostics[stage.name] = self._diagnose(stage.name, report)
                            self._log({"event": "diagnostics", "stage": stage.name, **self.result.diagnostics[stage.name]})
                        if stage.refits:
                            self.evaluate(stage, 0)
                else:
                    resumed = state is not None and i == state["position"]["stage"] and state["sampler"] is not None
                    self.sampler = self._make_sampler(stage)
                    if resumed:
                        self.sampler.load_state_dict(state["sampler"])
                    yield from self._stage_steps(stage, start)
                    if stage.keep_best is not None:
                        self._restore_best(stage)
                if self.device.type == "cuda":
                    torch.cuda.synchronize(self.device)
                steps = stage.steps if stage.loss is not None else 0
                self.result.timings[stage.name] = {"seconds": time.perf_counter() - self.stage_began, "steps": steps,
                                                   **self._forward_totals(stage, steps), **self.graph_steps.pop(stage.name, {})}
                self.position.update(stage=i + 1, step=0)
                self.sampler = None
                state = self._state()
                self.save_checkpoint(state)
                shared = self._shared_path(i)
                if shared is not None and not shared.exists():
                    self._write(shared, state)
                if i + 1 < len(self.stages):
                    stopping.raise_if_requested()
                if stage.run is not None:
                    yield
        finally:
            if self.bar is not None:
                self.bar.close()
        self.result.sparsity = self.method.sparsity()


def run_together(harnesses: list[Harness]) -> list[RunResult | Exception]:
    """Several harnesses (the seeds of one job) in one process, advanced one step each in turn.

    On a GPU each has its own CUDA stream, so one's kernels run while Python launches the
    next's: small models that leave a GPU idle in a single run keep it busy together. Each
    harness keeps its own copy of the global CPU RNG (the state its construction left, as in a
    run of its own) and its own sampler generator, so every run sees its own data order and, on
    the CPU, ends exactly as its separate run. On a GPU, draws from the default CUDA generator
    (mask sampling, DisEnt's swap) interleave between the runs: same distribution, other
    numbers. A harness that raises stops alone; its exception takes its place in the list. A
    signal's stop (`stopping.StopRequested`) reaches every harness at its next step, each saves
    its checkpoint, and then it is raised.
    """
    runs = []
    for h in harnesses:
        stream = torch.cuda.Stream(h.device) if h.device.type == "cuda" else None
        if stream is not None:
            stream.wait_stream(torch.cuda.current_stream(h.device))
        runs.append({"harness": h, "steps": h.steps(), "stream": stream, "rng": h.cpu_rng, "out": None})
    live = list(runs)
    stopped: stopping.StopRequested | None = None
    while live:
        for run in list(live):
            torch.set_rng_state(run["rng"])
            try:
                with torch.cuda.stream(run["stream"]) if run["stream"] is not None else nullcontext():
                    next(run["steps"])
            except StopIteration:
                run["out"] = run["harness"].result
                live.remove(run)
            except stopping.StopRequested as stop:
                stopped = stop
                live.remove(run)
            except Exception as error:
                run["out"] = error
                live.remove(run)
            run["rng"] = torch.get_rng_state()
    for run in runs:
        if run["stream"] is not None:
            torch.cuda.current_stream(run["harness"].device).wait_stream(run["stream"])
    if stopped is not None:
        raise stopped
    return [run["out"] for run in runs]
