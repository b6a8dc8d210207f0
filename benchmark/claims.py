"""Claims: which worker is running which job, so that runners and workers sharing one results
directory (several `run_bench.py` invocations, Dask/Ray workers, SLURM array tasks) never run a
job twice at the same time and a job whose worker died is retried.

    claims/<job name>.json   {"owner", "host", "pid", "heartbeat", "started", "attempt", "history"}

A worker claims a job by creating its claim file exclusively (O_CREAT | O_EXCL, atomic on local
and NFSv3+ filesystems) and refreshes `heartbeat` every `ttl / 4` seconds from a background
thread while the job runs; the claim is deleted after the result is stored. A claim whose
heartbeat is older than `ttl` belongs to a dead worker: the next runner that meets it moves it
aside with an atomic rename (only one of several racing runners can), claims the job itself with
`attempt` + 1, notes the lost attempt in `history`, and resumes the job from its checkpoint. After
`max_attempts` lost attempts the job is stored as failed with the history as its reason.
TTL: $DEBIASBENCH_CLAIM_TTL seconds (default 120); attempts: $DEBIASBENCH_MAX_ATTEMPTS (default 3).
"""
from __future__ import annotations

import json
import os
import socket
import threading
import time
import uuid
from dataclasses import dataclass
from pathlib import Path
from typing import Any


def claim_ttl() -> float:
    return float(os.environ.get("DEBIASBENCH_CLAIM_TTL", "120"))


def max_attempts() -> int:
    return int(os.environ.get("DEBIASBENCH_MAX_ATTEMPTS", "3"))


def read_claim(path: Path) -> dict[str, Any] | None:
    """The claim's content, or None when there is none (or it vanished while being read)."""
    try:
        with open(path) as f:
            return json.load(f)
    except (FileNotFoundError, json.JSONDecodeError):
        return None


def is_stale(claim: dict[str, Any], now: float | None = None) -> bool:
    return (now or time.time()) - float(claim.get("heartbeat", 0)) > claim_ttl()


@dataclass
class Claim:
    """A held claim: keeps its heartbeat fresh until released."""

    path: Path
    content: dict[str, Any]

    def __post_init__(self) -> None:
        self._stop = threading.Event()
        self._thread = threading.Thread(target=self._beat, daemon=True, name="debiasbench-heartbeat")
        self._thread.start()

    @property
    def attempt(self) -> int:
        return int(self.content["attempt"])

    def _beat(self) -> None:
        while not self._stop.wait(max(0.05, claim_ttl() / 4)):
            current = read_claim(self.path)
            if current is None or current.get("owner") != self.content["owner"]:
                return  # taken over (we were presumed dead): the new owner's result will win
            self.content["heartbeat"] = time.time()
            tmp = self.path.with_name(f".{self.path.name}.{self.content['owner']}.tmp")
            tmp.write_text(json.dumps(self.content))
            os.replace(tmp, self.path)

    def release(self) -> None:
        """Stop the heartbeat and delete the claim if it is still ours."""
        self._stop.set()
        self._thread.join(timeout=5)
        current = read_claim(self.path)
        if current is not None and current.get("owner") == self.content["owner"]:
            self.path.unlink(missing_ok=True)


def try_claim(path: Path) -> tuple[Claim | None, dict[str, Any] | None]:
    """(our claim, None) when the job is ours to run now; (None, the holder's claim) when a live
    worker holds it. A stale claim is taken over (see the module docstring)."""
    path.parent.mkdir(parents=True, exist_ok=True)
    now = time.time()
    content = {"owner": uuid.uuid4().hex, "host": socket.gethostname(), "pid": os.getpid(), "heartbeat": now,
               "started": now, "attempt": 1, "history": []}
    for _ in range(5):
        try:
            fd = os.open(path, os.O_CREAT | os.O_EXCL | os.O_WRONLY, 0o644)
        except FileExistsError:
            holder = read_claim(path)
            if holder is None:
                continue  # released between our attempt and the read: try again
            if not is_stale(holder, now):
                return None, holder
            aside = path.with_name(f".{path.name}.{content['owner']}.stale")
            try:
                os.rename(path, aside)  # only one of several racing runners gets it
            except FileNotFoundError:
                continue
            lost = read_claim(aside) or holder
            aside.unlink(missing_ok=True)
            content["attempt"] = int(lost.get("attempt", 1)) + 1
            content["history"] = [*lost.get("history", []), {
                "attempt": int(lost.get("attempt", 1)), "host": lost.get("host"), "pid": lost.get("pid"),
                "reason": f"worker stopped: no heartbeat for {now - float(lost.get('heartbeat', 0)):.0f} s "
                          f"(claim ttl {claim_ttl():.0f} s)"}]
            continue
        with os.fdopen(fd, "w") as f:
            json.dump(content, f)
        return Claim(path, content), None
    return None, read_claim(path)
