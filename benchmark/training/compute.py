"""Compute accounting: what a run spent, per stage, so that tables can show it beside accuracy.

Per stage a result records its optimiser steps, its wall time, and its forward passes through the
method's networks: `forward_passes` (calls) and `forward_samples` (samples), counted at the
outermost call into any of the method's modules (a network, or a head run on stored features).
A loss stage's forwards are counted on its first step in the process and multiplied by its steps
(every step of a stage runs the same networks on the same batch size; counting every step would
slow the hot loop, and a replayed CUDA graph runs no Python to count); once-only stages (mining,
clustering, feature extraction) and periodic passes over the training split are counted in full.
Evaluation passes are not training compute and are left out.
"""
from __future__ import annotations

import math
from typing import Any

from torch import Tensor, nn


class ForwardCounter:
    """Counts outermost forward calls into `models` and the samples they carry while entered."""

    def __init__(self, models: nn.Module):
        self.models = models
        self.passes = 0
        self.samples = 0
        self._depth = 0
        self._handles: list[Any] = []

    def _pre(self, module: nn.Module, args: tuple[Any, ...]) -> None:
        if self._depth == 0:
            first = args[0] if args else None
            self.passes += 1
            self.samples += int(first.shape[0]) if isinstance(first, Tensor) and first.dim() else 0
        self._depth += 1

    def _post(self, module: nn.Module, args: tuple[Any, ...], output: Any) -> None:
        self._depth -= 1

    def __enter__(self) -> "ForwardCounter":
        for module in self.models.modules():
            if module is self.models:
                continue  # the container itself is never called
            self._handles.append(module.register_forward_pre_hook(self._pre))
            self._handles.append(module.register_forward_hook(self._post))
        return self

    def __exit__(self, *exc: Any) -> None:
        for handle in self._handles:
            handle.remove()
        self._handles.clear()
        self._depth = 0


def totals(record: dict[str, Any]) -> dict[str, float]:
    """A stored result's training compute over all its stages: steps, forward samples (NaN when it
    predates the count) and seconds (of the stages it ran itself and those reused from another job)."""
    timings = record.get("timings") or {}
    steps = sum(int(t.get("steps") or 0) for t in timings.values())
    counted = [t.get("forward_samples") for t in timings.values()]
    samples = float(sum(counted)) if counted and all(c is not None for c in counted) else math.nan
    seconds = float(sum(float(t.get("seconds") or 0.0) for t in timings.values()))
    return {"steps": float(steps), "forward_samples": samples, "train_seconds": seconds}
