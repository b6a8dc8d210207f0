"""How many intra-op threads a job's process gives PyTorch on the CPU.

PyTorch splits every CPU kernel over its threads, which meet at a barrier after each one. With a
thread per core and another busy process on the machine, each barrier waits for a descheduled
thread, and small models slow down several times over (`run_bench.py perf --threads`: LfF's MLP
on 2 cores ran 245 steps/s alone and 49-60 beside one busy process with 2 threads; 156 and 148-151
with 1). So by default a job takes the cores that are idle when it starts (read from /proc/stat,
at least 1, at most its share of a local pool), and `--threads N` fixes the count. The count is
recorded in each result (`environment.torch_threads`): a convolution's sums can round differently
with another count (MLP results are identical with 1 and 2 threads; a CNN's differ in the last
bits), so bit-identical reruns need the same count: pass `--threads N` for those.
"""
from __future__ import annotations

import os
import time

import torch

from benchmark.errors import BenchError


def available_cores() -> int:
    """The cores this process may run on (its affinity mask: a SLURM or taskset limit counts)."""
    try:
        return len(os.sched_getaffinity(0))
    except AttributeError:  # not Linux
        return os.cpu_count() or 1


def _cpu_times() -> tuple[int, int]:
    """(all, idle) jiffies of the machine since boot, from /proc/stat's first line."""
    with open("/proc/stat") as f:
        values = [int(v) for v in f.readline().split()[1:9]]  # user nice system idle iowait irq softirq steal
    return sum(values), values[3] + values[4]


def idle_cores(cores: int, sample_seconds: float = 0.2) -> int:
    """Cores that other processes leave idle, measured over `sample_seconds` (all of them when
    /proc/stat cannot be read)."""
    try:
        total0, idle0 = _cpu_times()
        time.sleep(sample_seconds)
        total1, idle1 = _cpu_times()
    except (OSError, ValueError, IndexError):
        return cores
    total = total1 - total0
    if total <= 0:
        return cores
    busy = (total - (idle1 - idle0)) / total * (os.cpu_count() or cores)
    return max(1, min(cores, cores - round(busy)))


def requested_threads(flag: int | None) -> int | None:
    """--threads N, else $DEBIASBENCH_THREADS, else None (choose per job)."""
    if flag is not None:
        return flag
    env = os.environ.get("DEBIASBENCH_THREADS", "").strip()
    if not env:
        return None
    if not env.isdigit() or int(env) < 1:
        raise BenchError(f"$DEBIASBENCH_THREADS must be a whole number >= 1, got {env!r}")
    return int(env)


def job_threads(requested: int | None, share: int | None = None) -> int:
    """`requested` (--threads N or $DEBIASBENCH_THREADS) when given, else the idle cores now,
    capped at `share` (a local pool's cores per worker; None: all of this machine's)."""
    requested = requested_threads(requested)
    if requested:
        return requested
    cores = available_cores()
    return max(1, min(share or cores, idle_cores(cores)))


def use_threads(requested: int | None, share: int | None = None) -> int:
    """Set PyTorch's intra-op threads for the jobs this process runs next; returns the count."""
    threads = job_threads(requested, share)
    if threads != torch.get_num_threads():
        torch.set_num_threads(threads)
    return threads
