"""The results store: one JSON per finished job, written atomically; JSONL logs; checkpoints.

Layout under the results directory:
    jobs/<job name>.json        finished jobs (config, metrics, curve, timings, environment)
    failed/<job name>.json      the last failure of a job (reason, traceback); cleared on success
    logs/<job name>.jsonl       training and evaluation log lines
    checkpoints/<job name>.pt   the in-flight job's last checkpoint; removed when it finishes
    artifacts/<job name>.npz    per-sample arrays a job produced (mined flags, cluster ids), if any
    shared/<method>_<dataset>_c<pct>_s<seed>_<stage>_<prefix id>.pt
                                the state at the end of a stage that jobs differing only in later-stage
                                hyperparameters share (Method.shared_stages); delete it to recompute
    claims/<job name>.json      who runs the job now, with a heartbeat (benchmark/claims.py)
    grids/<hash>.json           the jobs each invocation asked for (what `status` counts as pending)
A rerun skips every job whose JSON exists; a run killed at any moment loses at most the jobs in
flight (and those resume from their checkpoints) and never leaves a half-written JSON.
"""
from __future__ import annotations

import json
import os
import tempfile
import time
import uuid
from pathlib import Path
from typing import Any, Callable

from benchmark.errors import BenchError
from benchmark.jobs import Job


def write_json_atomic(path: Path, obj: Any) -> None:
    path.parent.mkdir(parents=True, exist_ok=True)
    fd, tmp = tempfile.mkstemp(dir=path.parent, prefix=f".{path.name}.", suffix=".tmp")
    try:
        with os.fdopen(fd, "w") as f:
            json.dump(obj, f, indent=1, allow_nan=False)
            f.flush()
            os.fsync(f.fileno())
        os.replace(tmp, path)
    except BaseException:
        if os.path.exists(tmp):
            os.unlink(tmp)
        raise


class Store:
    def __init__(self, root: str | Path, create: bool = True):
        self.root = Path(root)
        if create:
            self.check_writable()

    def check_writable(self) -> None:
        try:
            self.root.mkdir(parents=True, exist_ok=True)
            with tempfile.NamedTemporaryFile(dir=self.root, prefix=".write-test"):
                pass
        except OSError as e:
            raise BenchError(f"results directory {self.root} is not writable ({e.strerror}): choose another with --results-dir") from None

    def result_path(self, job: Job) -> Path:
        return self.root / "jobs" / f"{job.name}.json"

    def failure_path(self, job: Job) -> Path:
        return self.root / "failed" / f"{job.name}.json"

    def log_path(self, job: Job) -> Path:
        return self.root / "logs" / f"{job.name}.jsonl"

    def checkpoint_path(self, job: Job) -> Path:
        return self.root / "checkpoints" / f"{job.name}.pt"

    def shared_stage_path(self, job: Job, stage: str, ignored: tuple[str, ...], extra: Any = None) -> Path:
        prefix = job.prefix_id(ignored, extra)
        return self.root / "shared" / f"{job.method}_{job.dataset}_c{job.conflict_pct:g}_s{job.seed}_{stage}_{prefix}.pt"

    def artifact_path(self, job: Job) -> Path:
        return self.root / "artifacts" / f"{job.name}.npz"

    def write_artifacts(self, job: Job, arrays: dict[str, Any]) -> str | None:
        """Save per-sample arrays atomically (before the result JSON that names them); returns the path
        relative to the results directory, or None when there are none."""
        if not arrays:
            return None
        import numpy as np

        path = self.artifact_path(job)
        path.parent.mkdir(parents=True, exist_ok=True)
        tmp = path.with_name(f".{path.name}.{uuid.uuid4().hex}.tmp.npz")  # unique across hosts sharing the store
        np.savez_compressed(tmp, **arrays)
        os.replace(tmp, path)
        return str(path.relative_to(self.root))

    def claim_path(self, job: Job) -> Path:
        return self.root / "claims" / f"{job.name}.json"

    def claims(self) -> list[dict[str, Any]]:
        """Every claim file's content, with the job name it belongs to."""
        from benchmark.claims import read_claim

        out = []
        for path in sorted((self.root / "claims").glob("*.json")):
            claim = read_claim(path)
            if claim is not None:
                out.append({**claim, "name": path.stem})
        return out

    def write_grid(self, jobs: list[Job]) -> None:
        """Record the jobs an invocation asked for, once per distinct grid."""
        import hashlib

        ids = sorted(job.id for job in jobs)
        digest = hashlib.sha256(",".join(ids).encode()).hexdigest()[:16]
        path = self.root / "grids" / f"{digest}.json"
        if not path.exists():
            write_json_atomic(path, [{"name": job.name, **{k: v for k, v in job.describe().items() if k != "hparams"}} for job in jobs])

    def grid_jobs(self) -> dict[str, dict[str, Any]]:
        """Job name -> description, over every recorded grid."""
        out: dict[str, dict[str, Any]] = {}
        for grid in self._read_dir("grids"):
            out.update({j["name"]: j for j in grid})
        return out

    def is_done(self, job: Job) -> bool:
        return self.result_path(job).exists()

    def write_result(self, job: Job, record: dict[str, Any]) -> None:
        write_json_atomic(self.result_path(job), record)
        for stale in (self.failure_path(job), self.checkpoint_path(job)):
            stale.unlink(missing_ok=True)

    def write_failure(self, job: Job, reason: str, detail: str = "") -> None:
        write_json_atomic(self.failure_path(job), {
            "job": job.describe(), "status": "failed", "reason": reason, "detail": detail,
            "failed_at": time.strftime("%Y-%m-%dT%H:%M:%S%z"),
        })

    def logger(self, job: Job) -> Callable[[dict[str, Any]], None]:
        path = self.log_path(job)
        path.parent.mkdir(parents=True, exist_ok=True)

        def log(record: dict[str, Any]) -> None:
            with open(path, "a") as f:
                f.write(json.dumps({"time": round(time.time(), 3), **record}) + "\n")

        return log

    def _read_dir(self, sub: str) -> list[dict[str, Any]]:
        out = []
        for path in sorted((self.root / sub).glob("*.json")):
            try:
                with open(path) as f:
                    out.append(json.load(f))
            except (OSError, json.JSONDecodeError) as e:
                raise BenchError(f"cannot read stored result {path}: {e}; delete it to rerun that job") from None
        return out

    def results(self) -> list[dict[str, Any]]:
        """Every finished job's record."""
        return self._read_dir("jobs")

    def failures(self) -> list[dict[str, Any]]:
        return self._read_dir("failed")
