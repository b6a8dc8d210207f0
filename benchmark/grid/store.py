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
    claims/<job name>.json      who runs the job now, with a heartbeat (benchmark/grid/claims.py)
    grids/<hash>.json           the jobs each invocation asked for (what `status` counts as pending)
A rerun skips every job whose JSON exists; a run killed at any moment loses at most the jobs in
flight (and those resume from their checkpoints) and never leaves a half-written JSON.
"""
from __future__ import annotations

import json
import math
import os
import re
import shutil
import time
import uuid
from pathlib import Path
from typing import Any, Callable

from benchmark.errors import BenchError
from benchmark.failpoints import failpoint
from benchmark.grid.jobs import Job, stored_name

# What every stored result and failure must hold (what reports, plots and status read): a file
# without it is unusable, named in one error line, and moved aside by --repair.
RESULT_FIELDS: dict[str, type] = {"job": dict, "metrics": dict, "curve": list, "group_total": dict,
                                  "aligned_groups": list, "group_shape": list}
FAILURE_FIELDS: dict[str, type] = {"job": dict, "reason": str}
JOB_FIELDS: dict[str, type | tuple[type, ...]] = {"id": str, "method": str, "dataset": str, "conflict_pct": (int, float),
                                                  "seed": int, "budget": str, "hparams": dict}
NAME = re.compile(r"[A-Za-z0-9][A-Za-z0-9_.-]*")
KINDS = {"jobs": "result", "failed": "failure", "grids": "grid"}
STORE_DIRS = ("jobs", "failed", "logs", "checkpoints", "artifacts", "shared", "claims", "grids", "plots")


def is_temp(name: str) -> bool:
    """Our temp files: dot-named, with .tmp, .new or .takeover. in the name (see their writers)."""
    return name.startswith(".") and (".tmp" in name or name.endswith(".new") or ".takeover." in name)


class StoreUnwritable(BenchError):
    """The results directory itself cannot be written any more: the run stops (a rerun resumes)."""


def json_safe(obj: Any) -> Any:
    """`obj` with every non-finite float written as a string ("nan", "inf"), so a failure record
    of a job whose settings or losses hold one can always be stored."""
    if isinstance(obj, float) and not math.isfinite(obj):
        return str(obj)
    if isinstance(obj, dict):
        return {k: json_safe(v) for k, v in obj.items()}
    if isinstance(obj, (list, tuple)):
        return [json_safe(v) for v in obj]
    return obj


def write_json_atomic(path: Path, obj: Any, exclusive: bool = False) -> bool:
    """Write JSON to a temp file beside `path` and move it into place: a reader sees the old file
    or the new one, never half of one. Created like any file of the process (0666 less the umask,
    as logs are), so other users' workers can read a shared store. `exclusive`: never replace an
    existing file (hard link, atomic on local filesystems and NFS); returns False when one exists."""
    path.parent.mkdir(parents=True, exist_ok=True)
    tmp = path.with_name(f".{path.name}.{uuid.uuid4().hex}.tmp")  # unique across hosts sharing the store
    try:
        fd = os.open(tmp, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o666)
        with os.fdopen(fd, "w") as f:
            json.dump(obj, f, indent=1, allow_nan=False)
            f.flush()
            os.fsync(f.fileno())
        failpoint("json_write")
        if not exclusive:
            os.replace(tmp, path)
            return True
        try:
            os.link(tmp, path)
        except FileExistsError:
            return False
        finally:
            tmp.unlink(missing_ok=True)
        return True
    except BaseException:
        tmp.unlink(missing_ok=True)
        raise


def record_problem(record: Any, kind: str, path: Path) -> str | None:
    """Why a stored result (`kind` "jobs"), failure ("failed") or grid ("grids") cannot be used, or None."""
    if kind == "grids":
        ok = isinstance(record, list) and all(isinstance(j, dict) and all(isinstance(j.get(k), str) for k in ("name", "method", "dataset"))
                                               for j in record)
        return None if ok else "it is not a list of jobs (name, method, dataset)"
    fields = RESULT_FIELDS if kind == "jobs" else FAILURE_FIELDS
    if not isinstance(record, dict):
        return "it is not a JSON object"
    for key, kinds in fields.items():
        if not isinstance(record.get(key), kinds):
            return f"it has no `{key}`" if key not in record else f"its `{key}` is not a {kinds.__name__}"
    job = record["job"]
    for key, kinds in JOB_FIELDS.items():
        if not isinstance(job.get(key), kinds) or isinstance(job.get(key), bool):
            return f"its job has no valid `{key}`"
    for key in ("method", "dataset", "id"):
        if not NAME.fullmatch(job[key]):
            return f"its job's {key} {job[key][:40]!r} is not a name"
    if kind == "jobs" and not isinstance((record["metrics"].get("last") or {}).get("test"), dict):
        return "it has no test metrics of the final model (`metrics.last.test`)"
    if path.stem != stored_name(job):
        return f"its file name does not match its job (expected {stored_name(job)}.json)"
    return None


class Store:
    def __init__(self, root: str | Path, create: bool = True):
        self.root = Path(root)
        if create:
            self.check_writable()

    def check_writable(self) -> None:
        """One clear error when the results directory cannot be created or written."""
        try:
            self.root.mkdir(parents=True, exist_ok=True)
            probe = self.root / f".write-test.{uuid.uuid4().hex}.tmp"
            os.close(os.open(probe, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o666))
            probe.unlink()
        except OSError as e:
            raise BenchError(f"results directory {self.root} is not writable ({e.strerror}): choose another with --results-dir") from None

    def stop_if_unwritable(self, error: BaseException) -> None:
        """Raise StoreUnwritable (the run stops) when `error` is an OSError and the results directory
        itself no longer takes writes; otherwise return: a passing problem of one file."""
        if not isinstance(error, OSError):
            return
        try:
            self.check_writable()
        except BenchError:
            raise StoreUnwritable(f"results directory {self.root} stopped taking writes ({error.strerror or error}): "
                                  "free space or fix its permissions, then rerun the same command to resume") from None

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
        from benchmark.grid.claims import read_claim

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
            write_json_atomic(path, [{"name": job.name, "protocol": job.protocol.label,
                                      **{k: v for k, v in job.describe().items() if k != "hparams"}} for job in jobs])

    def grid_jobs(self) -> dict[str, dict[str, Any]]:
        """Job name -> description, over every recorded grid."""
        out: dict[str, dict[str, Any]] = {}
        for grid in self._read_dir("grids", skip_unusable=True):
            out.update({j["name"]: j for j in grid})
        return out

    def is_done(self, job: Job) -> bool:
        """Whether the job's result file exists (`unusable` and --repair deal with broken ones)."""
        return self.result_path(job).exists()

    def result(self, job: Job) -> dict[str, Any] | None:
        """The stored record of `job`, or None when it has none or it cannot be read."""
        record, _ = self._read(self.result_path(job), "jobs")
        return record

    def write_result(self, job: Job, record: dict[str, Any]) -> bool:
        """Store a finished job's record, unless one is stored already: a result is never
        overwritten, so each job is stored exactly once whatever its workers did. Returns whether
        this call stored it."""
        if not write_json_atomic(self.result_path(job), record, exclusive=True):
            return False
        for stale in (self.failure_path(job), self.checkpoint_path(job)):
            stale.unlink(missing_ok=True)
        return True

    def write_failure(self, job: Job, reason: str, detail: str = "") -> None:
        write_json_atomic(self.failure_path(job), json_safe({
            "job": job.describe(), "status": "failed", "reason": reason, "detail": detail,
            "failed_at": time.strftime("%Y-%m-%dT%H:%M:%S%z"),
        }))

    def logger(self, job: Job) -> Callable[[dict[str, Any]], None]:
        path = self.log_path(job)
        path.parent.mkdir(parents=True, exist_ok=True)

        def log(record: dict[str, Any]) -> None:
            with open(path, "a") as f:
                f.write(json.dumps({"time": round(time.time(), 3), **record}) + "\n")

        return log

    def _read(self, path: Path, kind: str) -> tuple[dict[str, Any] | None, str | None]:
        """(record, None) for a usable stored file, else (None, why not)."""
        try:
            with open(path) as f:
                record = json.load(f)
        except OSError as e:
            return None, f"it cannot be read ({e.strerror})"
        except ValueError as e:
            return None, f"it is not valid JSON ({e})"
        problem = record_problem(record, kind, path)
        return (None, problem) if problem else (record, None)

    def scan(self, sub: str) -> list[tuple[Path, dict[str, Any] | None, str | None]]:
        """Every stored file of `sub` (jobs, failed, grids), read once: (path, record, None) when it
        is usable, else (path, None, why not)."""
        return [(path, *self._read(path, sub)) for path in sorted((self.root / sub).glob("*.json"))]

    def _read_dir(self, sub: str, skip_unusable: bool = False) -> list[dict[str, Any]]:
        out = []
        for path, record, problem in self.scan(sub):
            if problem and not skip_unusable:
                raise BenchError(f"stored {KINDS[sub]} {path} is unusable: {problem}; "
                                 f"`run_bench.py status {self.root} --repair` moves it to {self.root / 'quarantine'} "
                                 "(its job then runs again)")
            if record is not None:
                out.append(record)
        return out

    def results(self) -> list[dict[str, Any]]:
        """Every finished job's record (an unusable file is one clear error)."""
        return self._read_dir("jobs")

    def failures(self) -> list[dict[str, Any]]:
        return self._read_dir("failed")

    def unusable(self) -> list[tuple[Path, str]]:
        """Every stored result or failure that cannot be used, with why."""
        return [(path, problem) for sub in KINDS for path, _, problem in self.scan(sub) if problem]

    def require_usable(self, repair: bool) -> list[Path]:
        """Before a run: one clear error naming an unusable stored file, or with `repair` every such
        file moved to quarantine/ (their jobs then run again); returns where they went."""
        bad = self.unusable()
        if bad and not repair:
            path, problem = bad[0]
            more = f" ({len(bad) - 1} more like it)" if len(bad) > 1 else ""
            raise BenchError(f"stored file {path} is unusable: {problem}{more}; add --repair to move such files to "
                             f"{self.root / 'quarantine'} and run their jobs again")
        return self.quarantine([path for path, _ in bad])

    def quarantine(self, paths: list[Path]) -> list[Path]:
        """Move files aside into quarantine/<their folder>/ (never deleted: look, then delete them)."""
        moved = []
        for path in paths:
            target = self.root / "quarantine" / path.parent.name / path.name
            target.parent.mkdir(parents=True, exist_ok=True)
            while target.exists():
                target = target.with_name(f"{target.stem}.{uuid.uuid4().hex[:6]}{target.suffix}")
            shutil.move(str(path), target)
            moved.append(target)
        return moved

    def clean(self, older_than: float) -> list[Path]:
        """Remove what killed writes and finished jobs leave behind: our temp files (dot-named)
        untouched for `older_than` seconds (younger ones may be a live writer's), and the claims
        of jobs whose result is stored. Returns what was removed."""
        now = time.time()
        removed = []
        for folder in (self.root, *(self.root / sub for sub in STORE_DIRS)):
            if not folder.is_dir():
                continue
            for path in folder.iterdir():
                try:
                    stale = is_temp(path.name) and path.is_file() and now - path.stat().st_mtime > older_than
                    done_claim = folder.name == "claims" and path.suffix == ".json" and (self.root / "jobs" / path.name).exists()
                    if stale or done_claim:
                        path.unlink()
                        removed.append(path)
                except FileNotFoundError:
                    continue  # removed meanwhile by its owner
        return removed
