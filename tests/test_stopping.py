"""A signal stops a run at the next step with a checkpoint (benchmark/training/stopping.py):
nothing since the last periodic checkpoint is lost, and the rerun resumes from that step."""
from __future__ import annotations

import json
import os
import signal
import subprocess
import sys
import time
from pathlib import Path

import pytest
import torch

from tests.helpers import ROOT

GRID = ["--methods", "erm", "--datasets", "synthetic", "--budget", "quick", "--seeds", "0", "--conflict-pcts", "5",
        "--set", "steps=3000", "--log-every", "20", "--no-progress"]


def _steps_logged(results: Path) -> int:
    logs = list((results / "logs").glob("*.jsonl"))
    if not logs:
        return 0
    steps = [json.loads(line).get("step", 0) for line in logs[0].read_text().splitlines() if '"train"' in line]
    return max(steps, default=0)


def _default_signals() -> None:
    """In the child before exec: SIGINT handled as in a terminal, also where the test process was
    started in the background (whose children inherit SIGINT ignored)."""
    signal.signal(signal.SIGINT, signal.SIG_DFL)


def _start(results: Path) -> subprocess.Popen:
    return subprocess.Popen([sys.executable, str(ROOT / "run_bench.py"), *GRID, "--results-dir", str(results)], cwd=ROOT,
                            stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True, preexec_fn=_default_signals,
                            env={**os.environ, "DEBIASBENCH_THREADS": "1"})


@pytest.mark.parametrize("signum", [signal.SIGINT, signal.SIGTERM])
def test_a_signal_stops_at_the_next_step_with_a_checkpoint(tmp_path, signum):
    run = _start(tmp_path)
    deadline = time.monotonic() + 240
    while _steps_logged(tmp_path) < 100 and run.poll() is None and time.monotonic() < deadline:
        time.sleep(0.2)
    run.send_signal(signum)
    _, err = run.communicate(timeout=120)
    assert run.returncode == 128 + signum, err
    assert "checkpointed at the step they reached" in err and "Traceback" not in err, err
    checkpoints = list((tmp_path / "checkpoints").rglob("*.pt"))
    assert len(checkpoints) == 1 and not list((tmp_path / "jobs").glob("*.json"))
    state = torch.load(checkpoints[0], weights_only=True)
    assert state["position"]["global_step"] >= 100  # the default checkpoint interval (300 s) never came: this is the stop's
    assert not list((tmp_path / "claims").glob("*.json"))  # released: a rerun takes the job at once
    if signum == signal.SIGINT:
        rerun = _start(tmp_path)
        _, err = rerun.communicate(timeout=240)
        assert rerun.returncode == 0, err
        record = json.loads(next((tmp_path / "jobs").glob("*.json")).read_text())
        assert record["resumed_from_step"] == state["position"]["global_step"]


def test_seeds_run_together_each_checkpoint_before_the_stop(synthetic, tmp_path):
    """run_together: the stop reaches every harness at its next step; each saves its own checkpoint."""
    from benchmark.training import stopping
    from benchmark.training.harness import RuntimeOptions, run_together
    from tests.helpers import harness

    def ask_to_stop(progress: dict) -> None:
        if progress["done"] >= 100 and not stopping.requested():
            stopping._requested.append(signal.SIGINT)  # what the handler does on Ctrl-C

    harnesses = [harness("erm", synthetic, seed=s, steps=1000, runtime=RuntimeOptions(
        log_every=50, checkpoint_path=tmp_path / f"s{s}.pt", report_progress=ask_to_stop if s == 0 else None))
        for s in (0, 1)]
    try:
        with pytest.raises(stopping.StopRequested):
            run_together(harnesses)
    finally:
        stopping._requested.clear()
    steps = [torch.load(tmp_path / f"s{s}.pt", weights_only=True)["position"]["global_step"] for s in (0, 1)]
    assert steps[0] == 100 and 100 <= steps[1] <= 101  # seed 1 stops at its own next step
