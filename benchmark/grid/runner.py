"""The runner: skip jobs already in the store, run the rest on a backend, one job function.

Backends: `serial` (in this process, with a progress bar per job) and `local` (a joblib process
pool: one worker per visible GPU, or --jobs CPU workers). Every backend calls `run_job`, which
loads the data, builds the method, runs the harness and writes the result or the failure.
"""
from __future__ import annotations

import json
import sys
import time
import traceback
from dataclasses import asdict, replace
from functools import lru_cache
from typing import Any, Callable, Iterable

import torch

from benchmark import RESULT_FORMAT_VERSION
from benchmark.grid.backends import BACKENDS, joblib_calls, ray_calls, slurm_calls
from benchmark.grid.claims import Claim, claim_ttl, is_stale, max_attempts, read_claim, try_claim
from benchmark.config import dataset_config
from benchmark.training.environment import environment
from benchmark.errors import BenchError
from benchmark.failpoints import failpoint
from benchmark.training import stopping
from benchmark.training.harness import Harness, RuntimeOptions, resolve_device, run_together, seed_everything
from benchmark.training.stopping import stop_at_step_boundary
from benchmark.imports import project_packages
from benchmark.grid.jobs import Job, canonical
from benchmark.selection import select_all
from benchmark.grid.store import Store, StoreUnwritable
from benchmark.training.threads import available_cores, use_threads



@lru_cache(maxsize=1)
def _load_data(dataset: str, conflict_pct: float, root: str | None, options_json: str):
    datasets_pkg, _ = project_packages()
    return datasets_pkg.load(dataset, conflict_pct, root=root, **json.loads(options_json))


def _record(job: Job, result: Any, data: Any, device: torch.device, wall: float, dense_stage: str | None = None,
            supervision: str = "none") -> dict[str, Any]:
    timings = {
        stage: {**t, "steps_per_sec": (t["steps"] / t["seconds"]) if t["steps"] and t["seconds"] > 0 else None}
        for stage, t in result.timings.items()
    }
    return {
        "format": RESULT_FORMAT_VERSION,
        "job": job.describe(),
        "status": "done",
        "supervision": supervision,
        "metrics": select_all(result.curve, result.group_total, result.aligned, result.final_stage),
        "sparsity": result.sparsity,
        "dense_stage": dense_stage,
        "diagnostics": result.diagnostics,
        "final_stage": result.final_stage,
        "curve": result.curve,
        "group_total": result.group_total,
        "aligned_groups": result.aligned,
        "group_shape": [data.info.num_classes, data.info.num_bias],
        "timings": timings,
        "wall_seconds": wall,
        "resumed_from_step": result.resumed_from_step,
        "reused_stages": result.reused_stages,
        "dataset_fingerprint": data.fingerprint,
        "environment": environment(device),
        "finished_at": time.strftime("%Y-%m-%dT%H:%M:%S%z"),
    }


def run_job(job: Job, results_dir: str, runtime: dict[str, Any], data_root: str | None = None) -> dict[str, Any]:
    """Run one job to completion (resuming from its checkpoint) and store its result or failure.

    The job is claimed first (benchmark/grid/claims.py): when a live worker holds it, nothing runs and
    the status is `elsewhere`; a dead worker's claim is taken over and the job resumes.
    """
    return run_jobs([job], results_dir, runtime, data_root)[0]


def run_jobs(jobs: list[Job], results_dir: str, runtime: dict[str, Any], data_root: str | None = None) -> list[dict[str, Any]]:
    """Run jobs that differ only in their seed together in this process (`run_together`, which
    runs a lone job as it would run alone) and store each one's result or failure; one status
    per job, in order."""
    store = Store(results_dir, create=False)
    use_threads(runtime.get("threads"), runtime.get("thread_share"))
    outs: dict[str, dict[str, Any]] = {}
    claims: list[tuple[Job, Claim]] = []
    try:
        for job in jobs:
            out, claim = _claim(job, store)
            if claim is not None:
                claims.append((job, claim))
            else:
                outs[job.id] = out
        prepared = []  # (job, claim, when it started, harness, data)
        for job, claim in claims:
            started = time.perf_counter()
            try:
                harness, data = _prepare(job, store, runtime, data_root)
            except Exception as e:
                outs[job.id] = _failed(job, store, e)
                continue
            harness.rt.report_progress = claim.report_progress  # `status` reads it from the claim
            prepared.append((job, claim, started, harness, data))
        results = run_together([harness for _, _, _, harness, _ in prepared])
        for (job, claim, started, harness, data), result in zip(prepared, results):
            if isinstance(result, Exception):
                outs[job.id] = _failed(job, store, result)
            else:
                outs[job.id] = _store(job, store, claim, harness, data, time.perf_counter() - started, len(prepared))
        stopping.raise_if_requested()  # asked after the last step: the results are stored, the grid stops here
    finally:
        for _, claim in claims:
            claim.release()
    return [outs[job.id] for job in jobs]


def _claim(job: Job, store: Store) -> tuple[dict[str, Any] | None, Claim | None]:
    """(status, None) when this worker does not run the job, else (None, its claim)."""
    if store.is_done(job):
        return {"id": job.id, "status": "skipped"}, None
    try:
        claim, holder = try_claim(store.claim_path(job))
    except OSError as e:
        store.stop_if_unwritable(e)
        return {"id": job.id, "status": "failed", "reason": f"cannot write its claim in {store.root / 'claims'}: {e.strerror}"}, None
    if claim is None:
        return {"id": job.id, "status": "elsewhere", "holder": holder}, None
    try:
        return _check_claimed(job, store, claim)
    except BaseException:
        claim.release()
        raise


def _check_claimed(job: Job, store: Store, claim: Claim) -> tuple[dict[str, Any] | None, Claim | None]:
    """A fresh claim: released again when the job finished meanwhile or has used up its attempts."""
    if store.is_done(job):  # finished by another worker between our check and our claim
        claim.release()
        return {"id": job.id, "status": "skipped"}, None
    lost = claim.content["history"]
    if claim.attempt > max_attempts():
        reason = f"gave up after {len(lost)} lost attempts: " + "; ".join(f"{h['host']}:{h['pid']} {h['reason']}" for h in lost)
        store.write_failure(job, reason)
        claim.release()
        return {"id": job.id, "status": "failed", "reason": reason}, None
    return None, claim


def _prepare(job: Job, store: Store, runtime: dict[str, Any], data_root: str | None) -> tuple[Harness, Any]:
    """The job's harness and data, ready to run (its method built after seeding)."""
    _, methods_pkg = project_packages()
    device = resolve_device(runtime.get("device", "auto"))
    if device.type == "cuda" and device.index is not None:
        torch.cuda.set_device(device)  # streams and graphs that ask for the current device get this one
    hp = job.hparams
    data = _load_data(job.dataset, job.conflict_pct, data_root, canonical(hp["dataset"]))
    failpoint("data_loaded")
    seed_everything(job.seed)
    method = methods_pkg.build(job.method, data.info, hp["method"], device)
    options = RuntimeOptions(**{k: v for k, v in runtime.items() if k in RuntimeOptions.__dataclass_fields__})
    options.checkpoint_path = store.checkpoint_path(job)
    options.log = store.logger(job)
    options.shared_stage_path = lambda stage: store.shared_stage_path(
        job, stage, method.shared_stages[stage], extra=options.max_stage_steps)
    harness = Harness(method, data, job.seed, eval_every=hp["method"].get("eval_every", 0),
                      amp=hp["method"].get("amp", "off"), channels_last=hp["method"].get("channels_last", False), runtime=options)
    return harness, data


def _store(job: Job, store: Store, claim: Claim, harness: Harness, data: Any, wall: float, together: int = 1) -> dict[str, Any]:
    """Write the result of a finished harness, unless its claim was taken over (the new owner stores it).
    `together`: how many seeds shared its process (its wall time is theirs together)."""
    result = harness.result
    try:
        record = _record(job, result, data, harness.device, wall, harness.method.dense_stage, harness.method.supervision)
        record["lost_attempts"] = claim.content["history"]
        record["seeds_together"] = together
        if not claim.still_ours():  # presumed dead and taken over: the new owner stores this job
            return {"id": job.id, "status": "elsewhere", "holder": None}
        record["artifacts"] = store.write_artifacts(job, result.artifacts)
        if not store.write_result(job, record):  # another worker stored it first: its result stands
            store.logger(job)({"event": "store_refused", "owner": claim.content["owner"]})
            return {"id": job.id, "status": "skipped"}
        store.logger(job)({"event": "stored", "owner": claim.content["owner"]})
    except Exception as e:
        return _failed(job, store, e)
    test = record["metrics"]["last"]["test"]
    steps = sum(int(t.get("steps") or 0) for name, t in result.timings.items() if name not in result.reused_stages)
    return {"id": job.id, "status": "done", "unbiased": test["unbiased_acc"], "worst_group": test["worst_group_acc"],
            "seconds": record["wall_seconds"], "steps": steps}


def _failed(job: Job, store: Store, error: Exception) -> dict[str, Any]:
    """Store a job's failure: a BenchError's own line, else the exception's first line and traceback
    (any crash fails this job only; the grid goes on). When the failure cannot be stored either,
    the job still counts as failed, unless the results directory itself stopped taking writes:
    then the run stops (StoreUnwritable) and a rerun resumes."""
    if isinstance(error, StoreUnwritable):
        raise error
    store.stop_if_unwritable(error)
    if isinstance(error, BenchError):
        reason, detail = str(error), ""
    else:
        reason = (f"{type(error).__name__}: {error}".splitlines() or [type(error).__name__])[0]
        detail = "".join(traceback.format_exception(error))
    try:
        store.write_failure(job, reason, detail)
    except (OSError, ValueError, TypeError) as e:
        store.stop_if_unwritable(e)
        reason += f" (and its failure could not be stored: {e})"
    return {"id": job.id, "status": "failed", "reason": reason}


# Jobs that share one GPU by the input kind of their dataset: the small models of 28 px data leave
# a GPU mostly idle waiting on kernel launches, so several run side by side (12 DeNetDM jobs on one
# H100 kept it 93-99 % busy at ~400 steps/s each, with CUDA MPS on); ResNets on images get 2 or 1.
JOBS_PER_GPU = {"small": 8, "cifar": 2, "large": 1}


def jobs_per_gpu(jobs: list[Job]) -> int:
    """How many of these jobs to pack onto one GPU: the smallest share among their datasets' kinds."""
    kinds = {dataset_config(job.dataset).get("input_kind", "small") for job in jobs}
    return min((JOBS_PER_GPU.get(kind, 1) for kind in kinds), default=1)


def _local_workers(n_jobs: int | None, device: str, per_gpu: int = 1, threads: int | None = None) -> tuple[int, list[str]]:
    """How many workers, and the device each job slot uses (round-robin over visible GPUs): by
    default `per_gpu` workers per visible GPU; on the CPU half the cores, and never more workers
    than cores (or than cores / --threads), so that workers x threads never oversubscribe them."""
    if device in ("auto", "cuda") and torch.cuda.is_available():
        gpus = [f"cuda:{i}" for i in range(torch.cuda.device_count())]
        return (n_jobs or per_gpu * len(gpus)), gpus
    cpu = resolve_device(device) if device != "auto" else torch.device("cpu")
    cores = available_cores()
    most = max(1, cores // (threads or 1))
    return min(n_jobs or max(1, cores // max(2, threads or 1)), most), [str(cpu)]


def _run_in_worker(jobs: list[Job], results_dir: str, runtime: dict[str, Any], data_root: str | None) -> list[dict[str, Any]]:
    """A worker's entry point: one job, or seeds of one job run together."""
    return run_jobs(jobs, results_dir, runtime, data_root)


def seed_groups(jobs: list[Job], size: int) -> list[list[Job]]:
    """The jobs in groups of up to `size` that differ only in their seed (run together in one process)."""
    size = max(1, size)
    by_setting: dict[Job, list[Job]] = {}
    for job in jobs:
        by_setting.setdefault(replace(job, seed=0), []).append(job)
    return [group[i:i + size] for group in by_setting.values() for i in range(0, len(group), size)]


def preflight(jobs: list[Job], data_root: str | None) -> None:
    """Load the data of the first pending job of each dataset, so that missing or corrupt data is
    one clear error before anything runs rather than a failure of every job."""
    seen = set()
    for job in jobs:
        if job.dataset not in seen:
            seen.add(job.dataset)
            try:
                _load_data(job.dataset, job.conflict_pct, data_root, canonical(job.hparams["dataset"]))
            except BenchError:
                raise
            except Exception as e:  # a loader's own crash on odd input: still one line, before anything trains
                raise BenchError(f"cannot load {job.dataset} ({type(e).__name__}: {str(e).splitlines()[0] if str(e) else ''}); "
                                 f"check its options in configs/datasets/{job.dataset}.yaml and your --set/--config values") from None


def done_line(job: Job, out: dict[str, Any], finished: int, total: int) -> str:
    """The one line a non-interactive run prints per finished job."""
    seconds = float(out.get("seconds") or 0.0)
    rate = f"{out['steps'] / seconds:.0f} steps/s" if out.get("steps") and seconds > 0 else "no steps run here"
    worst = out.get("worst_group")
    return (f"[{finished}/{total}] done: {job.name} in {seconds / 60:.1f} min ({rate}); test unbiased {100 * out['unbiased']:.2f}, "
            f"worst-group {'–' if worst is None else f'{100 * worst:.2f}'}")


def published_twin(job: Job) -> Job | None:
    """The published-protocol job that runs exactly what a matched `job` runs (the same method and
    dataset settings: the backbone is the method's published network), or None."""
    hp = job.hparams
    if "protocol" not in hp:
        return None
    hp.pop("protocol")
    return replace(job, hparams_json=canonical(hp))


def _adopt_twins(pending: list[Job], store: Store) -> set[str]:
    """Store, for each pending matched job whose published twin is stored, the twin's result under
    the matched job's id: the same computation, so no reason to train it again. Returns their ids."""
    adopted = set()
    for job in pending:
        twin = published_twin(job)
        if twin is None or not store.is_done(twin):
            continue
        record = store.result(twin)
        if record is None:
            continue
        if store.write_result(job, {**record, "job": job.describe(), "twin_of": twin.id}):
            adopted.add(job.id)
    return adopted


def run_grid(jobs: list[Job], store: Store, runtime: dict[str, Any], backend: str = "serial", n_jobs: int | None = None,
             data_root: str | None = None, progress: bool = True, announce: bool = True, scheduler: str | None = None,
             slurm: dict[str, Any] | None = None, seeds_together: int = 1) -> dict[str, Any]:
    """Run every job not yet in the store on `backend` (benchmark/grid/backends.py); return counts and failures.

    `seeds_together` > 1 runs up to that many seeds of one setting in one worker process
    (`harness.run_together`), which keeps a GPU busy with small models.

    Jobs that another runner holds are left to it; at the end this runner waits for them and
    takes over any whose worker stopped (claims, benchmark/grid/claims.py), so the grid completes.
    """
    if backend not in BACKENDS:
        raise BenchError(f"unknown backend {backend!r}; backends: {', '.join(BACKENDS)}")
    pending = [j for j in jobs if not store.is_done(j)]
    twins = _adopt_twins(pending, store)
    pending = [j for j in pending if j.id not in twins]
    preflight(pending, data_root)
    try:
        store.write_grid(jobs)
        store.clean(older_than=claim_ttl())  # what killed runs left: temp files, claims of finished jobs
    except OSError as e:
        store.stop_if_unwritable(e)
        raise BenchError(f"cannot write to {store.root} ({e.strerror}: {e.filename})") from None
    if announce:
        print(f"{len(jobs)} jobs, {len(pending)} to run ({len(jobs) - len(pending)} already in the store); results in {store.root}",
              file=sys.stderr)
        if twins:
            print(f"{len(twins)} of them: a matched job whose settings equal a stored published run's, reused from it "
                  "(`twin_of` in its result)", file=sys.stderr)
    summary: dict[str, Any] = {"total": len(jobs), "skipped": len(jobs) - len(pending), "done": 0, "elsewhere": 0, "failed": []}
    deferred: dict[str, tuple[Job, float]] = {}  # job id -> (job, when it was left to another runner)
    bar = None
    if progress and pending:
        from tqdm import tqdm

        bar = tqdm(total=len(pending), desc="grid", unit="job", dynamic_ncols=True)

    def account(job: Job, out: dict[str, Any]) -> None:
        if out["status"] in ("elsewhere", "lost"):
            deferred.setdefault(job.id, (job, time.time()))
            return
        deferred.pop(job.id, None)
        if out["status"] == "done":
            summary["done"] += 1
            if bar is not None:
                bar.set_postfix_str(f"{job.method}/{job.dataset} c={job.conflict_pct:g} s={job.seed}: unbiased {100 * out['unbiased']:.1f}%")
            elif announce:
                print(done_line(job, out, summary["done"] + len(summary["failed"]), len(pending)), file=sys.stderr, flush=True)
        elif out["status"] == "failed":
            summary["failed"].append((job, out["reason"]))
            if bar is not None:
                bar.write(f"failed: {job.label}: {out['reason']}")
            elif announce:
                print(f"[{summary['done'] + len(summary['failed'])}/{len(pending)}] failed: {job.name}: {out['reason']}",
                      file=sys.stderr, flush=True)
        elif out["status"] == "skipped":
            summary["elsewhere"] += 1
        if bar is not None:
            bar.update(1)

    groups = seed_groups(pending, seeds_together)
    if backend != "serial":
        remote = backend in ("ray", "slurm") or (backend == "dask" and scheduler)
        workers, devices = _local_workers(n_jobs, "auto" if remote else runtime.get("device", "auto"), jobs_per_gpu(pending),
                                          runtime.get("threads"))
        if n_jobs and workers < n_jobs and announce and not remote:
            print(f"--jobs {n_jobs}: running {workers} at a time, as this machine has {available_cores()} CPU cores "
                  "(more would slow every job down)", file=sys.stderr)
        # each worker's share of the cores for its threads: a Ray task holds one CPU; other remote
        # workers take what is idle on their machine; a local pool splits this machine's
        if backend == "ray":
            share = 1
        elif remote:
            share = None
        else:
            share = max(1, available_cores() // workers) if devices[0] == "cpu" else 1
        calls = [(group, str(store.root), {**runtime, "device": runtime.get("device", "auto") if remote else devices[i % len(devices)],
                                           "progress": False, "thread_share": share}, data_root)
                 for i, group in enumerate(groups)]
        by_id = {j.id: j for j in pending}
        if backend == "slurm":
            outputs = slurm_calls(_run_in_worker, calls, store.root / "slurm", slurm or {})
        elif backend == "ray":
            outputs = ray_calls(_run_in_worker, calls, 1 / jobs_per_gpu(pending))
        else:
            outputs = joblib_calls(_run_in_worker, calls, backend, workers, scheduler)
        for outs in outputs:
            for out in outs:
                account(by_id[out["id"]], out)
    with stop_at_step_boundary():  # in this process's training only: workers keep the default signal handling
        if backend == "serial":
            for group in groups:
                for job, out in zip(group, run_jobs(group, str(store.root), {**runtime, "progress": progress and len(group) == 1},
                                                    data_root)):
                    account(job, out)
        _finish_deferred(deferred, store, runtime, data_root, account, announce)
    if bar is not None:
        bar.close()
    return summary


def _finish_deferred(deferred: dict[str, tuple[Job, float]], store: Store, runtime: dict[str, Any], data_root: str | None,
                     account: Callable[[Job, dict[str, Any]], None], announce: bool) -> None:
    """Wait for the jobs other runners hold; run (resume) any whose claim went stale or vanished.
    A failure counts only if it was stored after the job was left to the other runner."""
    if deferred and announce:
        print(f"{len(deferred)} job(s) held by other runners: waiting for them (and taking over any whose worker stops)",
              file=sys.stderr)
    while deferred:
        time.sleep(min(5.0, claim_ttl() / 4))
        stopping.raise_if_requested()
        for job, since in list(deferred.values()):
            claim = read_claim(store.claim_path(job))
            failure = _failure_since(store, job, since)
            if store.is_done(job):
                account(job, {"id": job.id, "status": "skipped"})
            elif claim is None and failure is not None:
                account(job, {"id": job.id, "status": "failed", "reason": failure})
            elif claim is None or is_stale(claim):
                account(job, run_job(job, str(store.root), {**runtime, "progress": False}, data_root))


def _failure_since(store: Store, job: Job, since: float) -> str | None:
    """The reason of a failure stored at or after `since`, else None."""
    try:
        path = store.failure_path(job)
        if path.stat().st_mtime < since - 1:
            return None
        with open(path) as f:
            return json.load(f)["reason"]
    except (OSError, ValueError, KeyError):
        return None


def runtime_options(device: str, **overrides: Any) -> dict[str, Any]:
    """Plain-dict RuntimeOptions (picklable for workers)."""
    opts = asdict(RuntimeOptions(device=device))
    opts.pop("checkpoint_path")
    opts.pop("log")
    opts.update(overrides)
    return opts


def expected_vs_found(jobs: Iterable[Job], store: Store) -> dict[str, str]:
    """Job id -> 'done' | 'failed: reason' | 'missing', for reports that must explain empty cells."""
    failures = {f["job"]["id"]: f["reason"] for f in store.failures()}
    out = {}
    for job in jobs:
        if store.is_done(job):
            out[job.id] = "done"
        elif job.id in failures:
            out[job.id] = f"failed: {failures[job.id]}"
        else:
            out[job.id] = "missing"
    return out
