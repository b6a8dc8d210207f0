"""Kill points for crash tests: `DEBIASBENCH_KILL_AT=NAME[:N]` makes this process SIGKILL itself
the N-th time (default 1) it reaches the point NAME, so that `benchmark/grid/chaos.py` and the tests
can land a kill -9 inside windows too short to hit at random (between a temp file's write and
its rename). Without the variable every point is a no-op.

Points: `data_loaded` (a job's data is in memory, nothing trained yet), `checkpoint_write` (a
checkpoint's temp file written, not yet renamed), `json_write` (a result, failure or grid file:
temp written and synced, not yet renamed), `claim_write` (a new claim's temp file written, not
yet linked), `report` (every job done, the final table not yet printed).
"""
from __future__ import annotations

import os
import signal
from collections import Counter

POINTS = ("data_loaded", "checkpoint_write", "json_write", "claim_write", "report")
_SPEC = os.environ.get("DEBIASBENCH_KILL_AT", "")
_TARGET, _, _NTH = _SPEC.partition(":")
_hits: Counter = Counter()


def failpoint(name: str) -> None:
    """SIGKILL this process if $DEBIASBENCH_KILL_AT asks for it here (see the module docstring)."""
    if not _TARGET or name != _TARGET:
        return
    _hits[name] += 1
    if _hits[name] >= int(_NTH or 1):
        os.kill(os.getpid(), signal.SIGKILL)
