"""The store survives a run killed midway: rerun finishes every job exactly once."""
import json
import os
import signal
import subprocess
import sys
import time

import pytest

from benchmark.errors import BenchError
from benchmark.grid.jobs import expand_grid
from benchmark.grid.store import Store, write_json_atomic
from tests.helpers import ROOT

GRID = ["--methods", "erm", "--datasets", "synthetic", "--budget", "quick", "--seeds", "0", "1", "2", "3", "4", "5",
        "--no-progress", "--checkpoint-minutes", "0"]


def test_killed_run_resumes_and_finishes_every_job_once(tmp_path):
    out = tmp_path / "res"
    cmd = [sys.executable, str(ROOT / "run_bench.py"), *GRID, "--results-dir", str(out)]
    short_ttl = {**os.environ, "DEBIASBENCH_CLAIM_TTL": "3"}  # the killed runner's claim expires in 3 s (default: 2 minutes)
    proc = subprocess.Popen(cmd, cwd=ROOT, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL, env=short_ttl)
    deadline = time.time() + 240
    while time.time() < deadline and not list((out / "jobs").glob("*.json")):
        time.sleep(0.02)
    proc.send_signal(signal.SIGKILL)
    proc.wait()
    first = {p.name: p.read_bytes() for p in (out / "jobs").glob("*.json")}
    assert 1 <= len(first) < 6, "the kill should land mid-grid"
    for blob in first.values():
        json.loads(blob)  # nothing half-written

    rerun = subprocess.run(cmd, cwd=ROOT, capture_output=True, text=True, timeout=300, env=short_ttl)
    assert rerun.returncode == 0, rerun.stderr
    assert f"{6 - len(first)} run now, {len(first)} already in the store" in rerun.stderr
    final = {p.name: p.read_bytes() for p in (out / "jobs").glob("*.json")}
    assert len(final) == 6
    assert all(final[name] == blob for name, blob in first.items())  # finished jobs were not run again
    assert not list((out / "checkpoints").glob("*")) and not list((out / "jobs").glob(".*"))


def test_atomic_write_leaves_no_partial_file_on_error(tmp_path):
    path = tmp_path / "x.json"
    write_json_atomic(path, {"a": 1})
    with pytest.raises(ValueError):
        write_json_atomic(path, {"a": float("nan")})
    assert json.loads(path.read_text()) == {"a": 1}
    assert [p.name for p in tmp_path.iterdir()] == ["x.json"]


def test_failure_is_recorded_then_cleared_by_success(tmp_path):
    store = Store(tmp_path)
    job = expand_grid(["erm"], ["synthetic"], [0], [5], "quick")[0]
    store.write_failure(job, "boom")
    assert store.failures()[0]["reason"] == "boom" and not store.is_done(job)
    store.write_result(job, {"job": job.describe(), "metrics": {}})
    assert store.is_done(job) and store.failures() == []


def test_unreadable_stored_result_is_named(tmp_path):
    (tmp_path / "jobs").mkdir()
    (tmp_path / "jobs" / "broken.json").write_text("{")
    with pytest.raises(BenchError, match="broken.json"):
        Store(tmp_path).results()


def test_checkpoint_left_by_a_kill_is_resumed(tmp_path):
    """A job killed mid-training continues from its checkpoint when the grid reruns."""
    from benchmark.grid.runner import run_job, runtime_options

    store = Store(tmp_path)
    job = expand_grid(["erm"], ["synthetic"], [0], [5], "quick")[0]
    out = run_job(job, str(tmp_path), runtime_options("cpu", stop_after_steps=200, checkpoint_seconds=0))
    assert out["status"] == "failed" and "Interrupted" in out["reason"] and store.checkpoint_path(job).exists()
    out = run_job(job, str(tmp_path), runtime_options("cpu"))
    assert out["status"] == "done"
    record = store.results()[0]
    assert record["resumed_from_step"] == 200 and not store.checkpoint_path(job).exists()
