"""Export stored runs to TensorBoard event files (`--tensorboard DIR`; `pip install -e ".[tensorboard]"`).

One folder per job under DIR, named like its result file: the training logs (every logged loss of
every stage, `train/<stage>/<key>`) from RESULTS_DIR/logs when they are there, and the evaluation
curve from the result itself (`test/<metric>`, `valid/<metric>` in percent), both against the
global optimiser step. Then `tensorboard --logdir DIR`.
"""
from __future__ import annotations

import json
from pathlib import Path
from typing import Any

from benchmark.errors import BenchError
from benchmark.grid.jobs import stored_name
from benchmark.metrics import METRIC_NAMES
from benchmark.selection import entry_metrics


def _writer(folder: Path) -> Any:
    try:
        from torch.utils.tensorboard import SummaryWriter
    except ImportError:
        raise BenchError('--tensorboard needs the tensorboard package: pip install -e ".[tensorboard]"') from None
    return SummaryWriter(log_dir=str(folder))


def _stage_offsets(record: dict[str, Any]) -> dict[str, int]:
    """Global step at which each stage starts (stages in the order their timings were written)."""
    offsets, total = {}, 0
    for stage, timing in (record.get("timings") or {}).items():
        offsets[stage] = total
        total += int(timing.get("steps") or 0)
    return offsets


def export(records: list[dict[str, Any]], results_dir: str | Path, out_dir: str | Path) -> list[Path]:
    """Write one event folder per record; returns the folders."""
    folders = []
    for record in records:
        name = stored_name(record["job"])
        folder = Path(out_dir) / name
        writer = _writer(folder)
        offsets = _stage_offsets(record)
        log = Path(results_dir) / "logs" / f"{name}.jsonl"
        if log.is_file():
            for line in log.read_text().splitlines():
                try:
                    event = json.loads(line)
                except ValueError:
                    continue  # a line cut by a crash
                if event.get("event") == "train" and event.get("stage") in offsets:
                    step = offsets[event["stage"]] + int(event["step"])
                    for key, value in event.items():
                        if key not in ("time", "event", "stage", "step") and isinstance(value, (int, float)):
                            writer.add_scalar(f"train/{event['stage']}/{key}", value, step)
        for entry in record.get("curve", []):
            metrics = entry_metrics(entry, record["group_total"], record["aligned_groups"])
            step = int(entry.get("global_step", entry["step"]))
            for split, values in metrics.items():
                for metric in METRIC_NAMES:
                    if values.get(metric) is not None:
                        writer.add_scalar(f"{split}/{metric}", 100 * values[metric], step)
        writer.close()
        folders.append(folder)
    return folders
