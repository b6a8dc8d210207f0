"""Launchers: where the runner's job function runs. The job function (`runner.run_job`) and the
results store are the same for all of them; only how the calls are spread changes.

- `serial`: one after another in this process (progress bar per job).
- `local`: a joblib process pool on this machine (GPUs packed by `runner.jobs_per_gpu`).
- `dask`: joblib's Dask backend on a `distributed` cluster: `--scheduler tcp://host:8786`, or with
  no address a LocalCluster on this machine (`--jobs` workers, one thread each). Extra: `[dask]`.
- `ray`: Ray tasks (one CPU each, a GPU share by the runner's packing where the cluster has GPUs)
  on the cluster at $RAY_ADDRESS, else on a local one started for the run. Extra: `[ray]`.
- `slurm`: a submitit job array, one task per job; partition, time limit, GPUs per job and array
  parallelism from flags or `--slurm-config FILE` (YAML with the same keys). Extra: `[slurm]`.
Every worker must see the results directory on a shared filesystem and have DebiasBench installed.
"""
from __future__ import annotations

import os
from collections.abc import Iterator
from pathlib import Path
from typing import Any, Callable

from benchmark.errors import BenchError

BACKENDS = ("serial", "local", "dask", "ray", "slurm")
SLURM_KEYS = ("partition", "time_min", "gpus_per_job", "cpus_per_job", "mem_gb", "array_parallelism", "cluster")


def _need(module: str, extra: str, backend: str) -> Any:
    import importlib

    try:
        return importlib.import_module(module)
    except ImportError:
        raise BenchError(f"--backend {backend} needs {module.split('.')[0]}: pip install -e '.[{extra}]'") from None


def joblib_calls(fn: Callable[..., Any], calls: list[tuple], backend: str, workers: int,
                 scheduler: str | None = None) -> Iterator[Any]:
    """Results of fn(*call) for every call, as they finish, through joblib on `backend`."""
    from joblib import Parallel, delayed, parallel_backend

    tasks = [delayed(fn)(*call) for call in calls]
    if backend == "local":
        yield from Parallel(n_jobs=workers, backend="loky", return_as="generator_unordered")(tasks)
        return
    if backend == "dask":
        distributed = _need("dask.distributed", "dask", "dask")
        if scheduler:
            try:
                client = distributed.Client(scheduler, timeout="20s")
            except (OSError, TimeoutError) as e:
                raise BenchError(f"cannot reach the Dask scheduler at {scheduler} ({e}): start one with `dask scheduler` "
                                 "or leave --scheduler out for a LocalCluster") from None
        else:
            cluster = distributed.LocalCluster(n_workers=workers, threads_per_worker=1, processes=True, dashboard_address=None)
            client = distributed.Client(cluster)
        try:
            with parallel_backend("dask", wait_for_workers_timeout=60):
                yield from Parallel(n_jobs=-1, return_as="generator_unordered")(tasks)
        finally:
            client.close()
            if not scheduler:
                cluster.close()
        return
    raise BenchError(f"unknown backend {backend!r}; backends: {', '.join(BACKENDS)}")


def ray_calls(fn: Callable[..., list[dict[str, Any]]], calls: list[tuple], gpu_fraction: float) -> Iterator[list[dict[str, Any]]]:
    """fn(*call) for every call as Ray tasks (one CPU each, and `gpu_fraction` of a GPU where the
    cluster has GPUs), yielded as they finish. A task whose worker died yields its jobs as `lost`:
    their claims expire and the runner retries them."""
    ray = _need("ray", "ray", "ray")
    if not ray.is_initialized():
        ray.init(address=os.environ.get("RAY_ADDRESS") or None, include_dashboard=False, logging_level="ERROR", log_to_driver=False)
    gpus = ray.cluster_resources().get("GPU", 0) > 0
    task = ray.remote(num_cpus=1, num_gpus=gpu_fraction if gpus else 0, max_retries=0)(fn)
    jobs_of = {}
    for call in calls:
        jobs_of[task.remote(*call)] = [job.id for job in call[0]]
    pending = list(jobs_of)
    while pending:
        (done,), pending = ray.wait(pending, num_returns=1)
        try:
            yield ray.get(done)
        except Exception as e:  # the worker or its node died: retried through the claims
            reason = f"{type(e).__name__}: {str(e).splitlines()[0] if str(e) else ''}"
            yield [{"id": job_id, "status": "lost", "reason": reason} for job_id in jobs_of[done]]


def slurm_options(flags: dict[str, Any], config: str | None) -> dict[str, Any]:
    """SLURM settings: the YAML file's, then the flags given (flags win)."""
    from benchmark.config import load_yaml

    opts: dict[str, Any] = {}
    if config:
        loaded = load_yaml(Path(config)) or {}
        unknown = sorted(set(loaded) - set(SLURM_KEYS))
        if unknown:
            raise BenchError(f"{config}: unknown SLURM setting(s) {', '.join(unknown)}; known: {', '.join(SLURM_KEYS)}")
        opts.update(loaded)
    opts.update({k: v for k, v in flags.items() if v is not None})
    return opts


def slurm_calls(fn: Callable[..., list[dict[str, Any]]], calls: list[tuple], folder: Path,
                opts: dict[str, Any]) -> Iterator[list[dict[str, Any]]]:
    """Submit fn(*call) as one submitit job array (a call's first argument: its jobs); yield results as tasks finish."""
    submitit = _need("submitit", "slurm", "slurm")
    cluster = opts.get("cluster") or None  # None: SLURM when available; "local" runs the tasks as local processes
    executor = submitit.AutoExecutor(folder=str(folder / "%j"), cluster=cluster)
    params: dict[str, Any] = {"timeout_min": int(opts.get("time_min", 240)), "gpus_per_node": int(opts.get("gpus_per_job", 0)),
                              "cpus_per_task": int(opts.get("cpus_per_job", 2)), "name": "debiasbench"}
    if opts.get("mem_gb"):
        params["mem_gb"] = float(opts["mem_gb"])
    if opts.get("partition"):
        params["slurm_partition"] = opts["partition"]
    if opts.get("array_parallelism"):
        params["slurm_array_parallelism"] = int(opts["array_parallelism"])
    executor.update_parameters(**params)
    columns = list(zip(*calls))
    submitted = executor.map_array(fn, *columns)
    print(f"submitted {len(submitted)} tasks as job array {submitted[0].job_id.split('_')[0] if submitted else '-'}; "
          f"logs in {folder}", flush=True)
    jobs_of = {task.job_id: [job.id for job in call[0]] for task, call in zip(submitted, calls)}
    for task in submitit.helpers.as_completed(submitted):
        try:
            yield task.result()
        except Exception as e:  # the task died (time limit, node failure): its claims expire and its jobs are retried
            reason = f"{type(e).__name__}: {str(e).splitlines()[0] if str(e) else ''}"
            yield [{"id": job_id, "status": "lost", "reason": reason} for job_id in jobs_of[task.job_id]]
