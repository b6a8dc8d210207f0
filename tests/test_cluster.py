"""Scale-out: claims on a shared store, Dask and submitit launchers, concurrent runners, a killed worker."""
import json
import os
import signal
import subprocess
import sys
import time

import pytest

from benchmark.grid.claims import read_claim, try_claim
from benchmark.grid.jobs import expand_grid
from benchmark.grid.runner import run_job, runtime_options
from benchmark.grid.store import Store
from tests.helpers import ROOT, cli

GRID = ["--methods", "erm", "--datasets", "synthetic", "--seeds", "0", "1", "--budget", "quick", "--set", "steps=120",
        "--no-progress"]
ONE_THREAD = {"OMP_NUM_THREADS": "1", "DEBIASBENCH_THREADS": "1", "DEBIASBENCH_CLAIM_TTL": "3"}


def stored(root):
    """Job name -> (final test metrics, evaluation curve) of every stored result."""
    out = {}
    for path in sorted((root / "jobs").glob("*.json")):
        rec = json.loads(path.read_text())
        out[path.stem] = (rec["metrics"]["last"]["test"], rec["curve"])
    return out


def runs_per_job(root):
    """How many times each job started: the harness logs one `data` event per start."""
    counts = {}
    for log in (root / "logs").glob("*.jsonl"):
        counts[log.stem] = sum(json.loads(line)["event"] == "data" for line in log.read_text().splitlines())
    return counts


@pytest.fixture(scope="module")
def serial(tmp_path_factory):
    root = tmp_path_factory.mktemp("serial")
    run = cli(*GRID, "--results-dir", str(root), env=ONE_THREAD)
    assert run.returncode == 0, run.stderr
    return stored(root)


def test_a_claim_is_exclusive_and_a_stale_one_is_taken_over(tmp_path, monkeypatch):
    monkeypatch.setenv("DEBIASBENCH_CLAIM_TTL", "0.5")
    path = tmp_path / "claims" / "job.json"
    mine, _ = try_claim(path)
    other, holder = try_claim(path)
    assert mine is not None and other is None and holder["owner"] == mine.content["owner"]
    time.sleep(1.0)  # the heartbeat keeps it fresh past the ttl
    assert try_claim(path)[0] is None
    mine.release()
    assert not path.exists()
    dead = {"owner": "dead", "host": "h", "pid": 1, "heartbeat": time.time() - 10, "started": 0, "attempt": 1, "history": []}
    path.write_text(json.dumps(dead))
    taken, _ = try_claim(path)
    assert taken.attempt == 2 and taken.content["history"][0]["pid"] == 1 and "no heartbeat" in taken.content["history"][0]["reason"]
    taken.release()


def test_a_job_that_lost_its_worker_too_often_fails_with_the_history(tmp_path, monkeypatch, synthetic):
    monkeypatch.setenv("DEBIASBENCH_MAX_ATTEMPTS", "2")
    monkeypatch.setenv("DEBIASBENCH_CLAIM_TTL", "1")
    job = expand_grid(["erm"], ["synthetic"], [0], None, "quick")[0]
    store = Store(tmp_path)
    history = [{"attempt": 1, "host": "a", "pid": 11, "reason": "worker stopped: no heartbeat for 99 s (claim ttl 1 s)"}]
    store.claim_path(job).parent.mkdir(parents=True)
    store.claim_path(job).write_text(json.dumps({"owner": "x", "host": "b", "pid": 12, "heartbeat": 0, "started": 0,
                                                 "attempt": 2, "history": history}))
    out = run_job(job, str(tmp_path), runtime_options("cpu"))
    assert out["status"] == "failed" and out["reason"].startswith("gave up after 2 lost attempts: a:11")
    assert not store.claim_path(job).exists() and store.failures()[0]["reason"] == out["reason"]


def test_dask_local_cluster_gives_the_serial_results(tmp_path, serial):
    pytest.importorskip("dask.distributed")
    run = cli(*GRID, "--backend", "dask", "--jobs", "2", "--results-dir", str(tmp_path), env=ONE_THREAD, timeout=600)
    assert run.returncode == 0, run.stderr
    assert stored(tmp_path) == serial


def test_submitit_local_executor_runs_the_grid(tmp_path, serial):
    pytest.importorskip("submitit")
    run = cli(*GRID, "--backend", "slurm", "--slurm-cluster", "local", "--slurm-time-min", "10", "--results-dir", str(tmp_path),
              env=ONE_THREAD, timeout=600)
    assert run.returncode == 0, run.stderr
    assert "submitted 2 tasks" in run.stdout and stored(tmp_path) == serial


def test_two_concurrent_runners_finish_every_job_exactly_once(tmp_path):
    grid = ["--methods", "erm", "--datasets", "synthetic", "--seeds", "0", "1", "2", "3", "--budget", "quick",
            "--set", "steps=120", "--no-progress", "--results-dir", str(tmp_path)]
    env = {**os.environ, **ONE_THREAD}
    runners = [subprocess.Popen([sys.executable, str(ROOT / "run_bench.py"), *grid], cwd=ROOT, env=env,
                                stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True) for _ in range(2)]
    outputs = [r.communicate(timeout=600) for r in runners]
    assert [r.returncode for r in runners] == [0, 0], outputs
    assert len(stored(tmp_path)) == 4 and set(runs_per_job(tmp_path).values()) == {1}
    assert not list((tmp_path / "claims").glob("*.json"))
    status = cli("status", str(tmp_path))
    assert status.returncode == 0 and status.stdout.splitlines()[-1].split()[1:] == ["4", "0", "0", "0", "0"]


def test_a_killed_worker_is_retried_from_its_checkpoint_to_the_same_numbers(tmp_path):
    grid = ["--methods", "erm", "--datasets", "synthetic", "--seeds", "0", "--budget", "quick", "--set", "steps=3000",
            "--set", "eval_every=500", "--no-progress", "--checkpoint-minutes", "0.01", "--log-every", "50"]
    env = {**os.environ, **ONE_THREAD}
    victim = subprocess.Popen([sys.executable, str(ROOT / "run_bench.py"), *grid, "--results-dir", str(tmp_path / "shared")],
                              cwd=ROOT, env=env, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL, start_new_session=True)
    checkpoints = tmp_path / "shared" / "checkpoints"
    deadline = time.time() + 300
    while not list(checkpoints.glob("*.pt")) and time.time() < deadline:
        time.sleep(0.2)
    time.sleep(1.0)
    os.killpg(victim.pid, signal.SIGKILL)
    victim.wait()
    claims = list((tmp_path / "shared" / "claims").glob("*.json"))
    assert len(claims) == 1 and not list((tmp_path / "shared" / "jobs").glob("*.json"))
    assert read_claim(claims[0])["attempt"] == 1
    status = cli("status", str(tmp_path / "shared"), env=ONE_THREAD)
    (total,) = [line for line in status.stdout.splitlines() if line.startswith("all ")]
    assert total.split()[1:3] in (["0", "1"], ["0", "0"])  # running, or already stalled
    retry = cli(*grid, "--results-dir", str(tmp_path / "shared"), env=ONE_THREAD, timeout=600)
    assert retry.returncode == 0, retry.stderr
    (record,) = [json.loads(p.read_text()) for p in (tmp_path / "shared" / "jobs").glob("*.json")]
    assert record["resumed_from_step"] > 0 and len(record["lost_attempts"]) == 1
    assert "no heartbeat" in record["lost_attempts"][0]["reason"]
    whole = cli(*grid, "--results-dir", str(tmp_path / "whole"), env=ONE_THREAD, timeout=600)
    assert whole.returncode == 0, whole.stderr
    assert stored(tmp_path / "shared") == stored(tmp_path / "whole")


def test_ray_local_cluster_gives_the_serial_results(tmp_path, serial):
    pytest.importorskip("ray")
    run = cli(*GRID, "--backend", "ray", "--results-dir", str(tmp_path), env={**ONE_THREAD, "RAY_ADDRESS": ""}, timeout=600)
    assert run.returncode == 0, run.stderr
    assert stored(tmp_path) == serial


def test_a_missing_extra_is_named():
    from benchmark.grid.backends import _need
    from benchmark.errors import BenchError

    with pytest.raises(BenchError, match=r"--backend ray needs no_such_module: pip install -e '.\[ray\]'"):
        _need("no_such_module", "ray", "ray")


def test_of_two_runners_that_saw_the_same_stale_claim_only_one_takes_it(tmp_path, monkeypatch):
    from benchmark.grid import claims

    path = tmp_path / "claims" / "job.json"
    path.parent.mkdir()
    stale = {"owner": "dead", "host": "h", "pid": 1, "heartbeat": time.time() - 1000, "started": 0, "attempt": 1, "history": []}
    path.write_text(json.dumps(stale))
    first, _ = try_claim(path)  # runner A takes it over
    assert first is not None and first.attempt == 2
    real = claims.read_claim
    calls = []

    def late_reader(p):  # runner B read the claim before A replaced it
        calls.append(p)
        return dict(stale) if len(calls) == 1 else real(p)

    monkeypatch.setattr(claims, "read_claim", late_reader)
    second, holder = claims.try_claim(path)
    assert second is None and holder["owner"] == first.content["owner"]
    assert real(path)["owner"] == first.content["owner"]
    first.release()


def test_a_worker_whose_claim_was_taken_over_does_not_store_its_result(tmp_path, monkeypatch, synthetic):
    from benchmark.grid import claims

    monkeypatch.setattr(claims.Claim, "still_ours", lambda self: False)
    job = expand_grid(["erm"], ["synthetic"], [0], None, "quick", [("steps", [20])])[0]
    out = run_job(job, str(Store(tmp_path).root), runtime_options("cpu"))
    assert out["status"] == "elsewhere" and not list((tmp_path / "jobs").glob("*.json"))
