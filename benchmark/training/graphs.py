"""CUDA graphs of a loss stage's whole step: forward, backward and the optimiser steps.

A small model's training step is dozens of tiny kernels; launched one by one from Python they
take longer to launch than to run, so the GPU waits on the host. A captured step is replayed
with one launch. What capture demands, and how the harness meets it:

- The captured Python does not run again. A loss that decides something in Python (a branch on
  `self.step`, a schedule) names that decision in its stage's `graph_key`; the harness keeps one
  graph per key, and a key of None runs that step eagerly. Stages without a `graph_key` never
  use graphs.
- Inputs are copied into static tensors before each replay; a batch of another size (an
  epoch's last partial batch) runs eagerly. State a loss updates (per-sample EMAs) must be
  updated in place, and a loss must not read values back to the host.
- Optimisers must be fused (the harness's are on CUDA); they are made capturable and their
  learning rates become device tensors, which schedulers then fill in place.
- Each key first runs `WARMUP` eager steps (they are real steps) on the capture stream, which
  initialises optimiser state and library workspaces outside the capture.
- A capture that fails (an operation that cannot be captured) is reported once through the
  harness log and that key runs eagerly from then on; results do not depend on which path ran.
"""
from __future__ import annotations

from collections import Counter
from typing import Any, Callable, Hashable

import torch
from torch import Tensor

from methods.base import Batch

WARMUP = 3
MIN_TORCH = (2, 8)  # tested on 2.11 (H100); older schedulers rebind tensor learning rates, which a graph would not see

StepFn = Callable[[Batch], dict[str, Tensor]]


def graphs_supported(optimizers: list[torch.optim.Optimizer], device: torch.device, scaler_enabled: bool) -> str | None:
    """Why a stage cannot be captured (None when it can)."""
    if device.type != "cuda":
        return "not on a CUDA device"
    if tuple(int(part) for part in torch.__version__.split("+")[0].split(".")[:2]) < MIN_TORCH:
        return f"torch {torch.__version__} is older than {'.'.join(map(str, MIN_TORCH))} (schedulers must fill tensor learning rates in place)"
    if scaler_enabled:
        return "fp16 loss scaling checks for overflow on the host"
    for opt in optimizers:
        if not all(group.get("fused") for group in opt.param_groups):
            return f"optimiser {type(opt).__name__} is not fused"
    return None


def make_capturable(optimizers: list[torch.optim.Optimizer], device: torch.device) -> None:
    """Capturable optimisers whose learning rate lives in a device tensor (schedulers fill it)."""
    for opt in optimizers:
        for group in opt.param_groups:
            if "capturable" in group:
                group["capturable"] = True
            if not isinstance(group["lr"], Tensor):
                group["lr"] = torch.tensor(float(group["lr"]), device=device)


def portable_state(optimizer: torch.optim.Optimizer) -> dict[str, Any]:
    """The optimiser's state_dict as an uncaptured optimiser holds it (float learning rates, not
    capturable), so a checkpoint taken during a graphed stage resumes on any device."""
    state = optimizer.state_dict()
    for group in state["param_groups"]:
        if isinstance(group["lr"], Tensor):
            group["lr"] = float(group["lr"])
        if "capturable" in group:
            group["capturable"] = False
    return state


class StepGraphs:
    """One loss stage's captured steps, one per graph key."""

    def __init__(self, step: StepFn, key: Callable[[], Hashable], batch_size: int, stream: torch.cuda.Stream,
                 report: Callable[[dict[str, Any]], None]):
        self.step_fn, self.key_fn, self.batch_size = step, key, batch_size
        self.report = report
        self.stream = stream  # warm-up and capture run here; the device is the stream's, not the current one
        self.graphs: dict[Hashable, tuple[torch.cuda.CUDAGraph, Batch, dict[str, Tensor]]] = {}
        self.warm: Counter = Counter()
        self.failed: set[Hashable] = set()
        self.counts: dict[str, Any] = {"graph_steps": 0, "graphs": 0}  # steps replayed, graphs captured (in the stage's timings)

    def step(self, batch: Batch) -> dict[str, Tensor] | None:
        """Run one step through this stage's graphs; None when the caller must run it eagerly."""
        if len(batch.y) != self.batch_size:
            return None
        key = self.key_fn()
        if key is None or key in self.failed:
            return None
        if key not in self.graphs:
            if self.warm[key] < WARMUP:
                self.warm[key] += 1
                return self._on_stream(batch)
            if not self._capture(key, batch):
                return None
        graph, static, out = self.graphs[key]
        for target, source in zip(static, batch):
            target.copy_(source)
        graph.replay()
        self.counts["graph_steps"] += 1
        return out

    def _on_stream(self, batch: Batch) -> dict[str, Tensor]:
        current = torch.cuda.current_stream(self.stream.device)
        self.stream.wait_stream(current)
        with torch.cuda.stream(self.stream):
            out = self.step_fn(batch)
        current.wait_stream(self.stream)
        return out

    def _capture(self, key: Hashable, batch: Batch) -> bool:
        static = type(batch)(*(t.clone() for t in batch))
        graph = torch.cuda.CUDAGraph()
        self.stream.wait_stream(torch.cuda.current_stream(self.stream.device))
        try:
            with torch.cuda.graph(graph, stream=self.stream, capture_error_mode="thread_local"):
                out = self.step_fn(static)
        except Exception as error:  # something in the step cannot be captured: that key runs eagerly
            self.failed.add(key)
            cause = error.__context__ or error  # the step's own error, not the capture's end that it aborted
            reason = f"{type(cause).__name__}: {cause}".splitlines()[0]
            self.counts["capture_failed"] = reason
            self.report({"event": "cuda_graph_failed", "key": repr(key), "reason": reason})
            return False
        self.graphs[key] = (graph, static, out)
        self.counts["graphs"] += 1
        return True
