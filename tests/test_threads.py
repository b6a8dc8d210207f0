"""CPU threads per job: the idle cores by default, --threads / $DEBIASBENCH_THREADS when given,
and a local pool whose workers x threads never exceed the cores."""
import pytest

from benchmark.grid import runner

from benchmark.training import threads
from benchmark.errors import BenchError


@pytest.fixture
def four_cores(monkeypatch):
    monkeypatch.setattr(threads, "available_cores", lambda: 4)
    monkeypatch.setattr(runner, "available_cores", lambda: 4)
    monkeypatch.delenv("DEBIASBENCH_THREADS", raising=False)


@pytest.mark.parametrize("idle,share,expected", [(4, None, 4), (1, None, 1), (3, 2, 2), (0, None, 1)])
def test_a_job_takes_the_idle_cores_up_to_its_share(four_cores, monkeypatch, idle, share, expected):
    monkeypatch.setattr(threads, "idle_cores", lambda cores, sample_seconds=0.2: max(1, idle))
    assert threads.job_threads(None, share) == expected


def test_an_explicit_count_wins_and_a_bad_one_is_an_error(four_cores, monkeypatch):
    monkeypatch.setattr(threads, "idle_cores", lambda cores, sample_seconds=0.2: 1)
    assert threads.job_threads(3) == 3
    monkeypatch.setenv("DEBIASBENCH_THREADS", "2")
    assert threads.job_threads(None) == 2 and threads.job_threads(3) == 3
    monkeypatch.setenv("DEBIASBENCH_THREADS", "two")
    with pytest.raises(BenchError, match="DEBIASBENCH_THREADS must be a whole number"):
        threads.job_threads(None)


def test_idle_cores_sees_a_busy_process():
    import subprocess
    import sys

    cores = threads.available_cores()
    spinner = subprocess.Popen([sys.executable, "-c", "while True: pass"])
    try:
        busy = threads.idle_cores(cores, sample_seconds=0.5)
    finally:
        spinner.kill()
        spinner.wait()
    assert 1 <= busy <= max(1, cores - 1)


@pytest.mark.parametrize("n_jobs,per_job,expected", [(None, None, 2), (8, None, 4), (3, None, 3), (None, 2, 2), (4, 2, 2), (2, 8, 1)])
def test_a_local_pool_never_oversubscribes_the_cores(four_cores, n_jobs, per_job, expected):
    workers, devices = runner._local_workers(n_jobs, "cpu", threads=per_job)
    assert workers == expected and devices == ["cpu"]
    assert workers * (per_job or 1) <= 4 or workers == 1
