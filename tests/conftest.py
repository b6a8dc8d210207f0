"""Test setup: built datasets are cached in a per-session temporary folder, never in ~/.cache."""
import os
import sys
import tempfile
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parent.parent
if str(ROOT) not in sys.path:
    sys.path.insert(0, str(ROOT))

_CACHE = tempfile.mkdtemp(prefix="debiasbench-test-cache-")
os.environ["DEBIASBENCH_CACHE"] = _CACHE
os.environ.pop("DEBIASBENCH_DATA", None)
# One thread count for every job the tests run (in process and in subprocesses): results that
# tests compare bit for bit must not depend on how busy the machine was when each job started.
# pytest-xdist workers share the cores: each takes its share, so that two workers on two cores
# do not oversubscribe them (that is tens of times slower than either alone).
_WORKERS = int(os.environ.get("PYTEST_XDIST_WORKER_COUNT", "1"))
_THREADS = str(max(1, (os.cpu_count() or 1) // _WORKERS))
os.environ.setdefault("DEBIASBENCH_THREADS", _THREADS)
os.environ.setdefault("OMP_NUM_THREADS", _THREADS)


@pytest.fixture(scope="session")
def synthetic():
    import datasets

    return datasets.load("synthetic", 5.0)


@pytest.fixture(scope="session")
def cmnist_1pct():
    import datasets

    return datasets.load("cmnist", 1.0)
