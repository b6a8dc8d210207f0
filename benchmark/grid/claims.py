"""Claims: which worker is running which job, so that runners and workers sharing one results
directory (several `run_bench.py` invocations, Dask/Ray workers, SLURM array tasks) never run a
job twice at the same time and a job whose worker died is retried.

    claims/<job name>.json   {"owner", "host", "pid", "heartbeat", "started", "attempt", "history", "progress"}

A worker claims a job by creating its claim file complete and exclusively (written to a temp
file, then hard-linked into place: atomic on local and NFS filesystems) and refreshes `heartbeat`
every `ttl / 4` seconds from a background thread while the job runs; the claim is deleted after
the result is stored. A claim whose heartbeat is older than its `ttl` belongs to a dead worker:
of the runners that meet it, the one that creates the takeover marker for that owner (O_EXCL)
checks it is still that stale claim, replaces it with its own (`attempt` + 1, the lost attempt in
`history`) and resumes the job from its checkpoint. A presumed-dead worker that wakes up finds
the claim is no longer its own and does not store its result. After `max_attempts` lost attempts
the job is stored as failed with the history as its reason.
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

from benchmark.failpoints import failpoint


def claim_ttl() -> float:
    return float(os.environ.get("DEBIASBENCH_CLAIM_TTL", "120"))


def max_attempts() -> int:
    return int(os.environ.get("DEBIASBENCH_MAX_ATTEMPTS", "3"))


def read_claim(path: Path) -> dict[str, Any] | None:
    """The claim's content, or None when there is none (or it vanished while being read).

    Claims are written whole (hard link or rename), so one that cannot be read or lacks a
    heartbeat was damaged (a zero-byte file, a full disk): it stands for an owner that beat last
    when the file last changed, with this process's ttl, so it goes stale like any dead worker's
    claim and is taken over instead of being waited for forever."""
    try:
        with open(path) as f:
            claim = json.load(f)
        if isinstance(claim, dict) and isinstance(claim.get("heartbeat"), (int, float)) and claim.get("owner"):
            return claim
    except (FileNotFoundError, NotADirectoryError):
        return None
    except (OSError, ValueError):
        pass
    try:
        changed = path.stat().st_mtime_ns
    except OSError:  # gone, or its folder is
        return None
    return {"owner": f"unreadable-{changed}", "host": "?", "pid": None, "heartbeat": changed / 1e9, "ttl": claim_ttl(),
            "attempt": 1, "history": [], "unreadable": True}


def is_stale(claim: dict[str, Any], now: float | None = None) -> bool:
    """No heartbeat for longer than the ttl its holder wrote into it (else this process's ttl)."""
    return (now or time.time()) - float(claim.get("heartbeat", 0)) > float(claim.get("ttl", claim_ttl()))


def _older_than(path: Path, seconds: float) -> bool:
    try:
        return time.time() - path.stat().st_mtime > seconds
    except FileNotFoundError:
        return False


def _write_new(path: Path, content: dict[str, Any]) -> bool:
    """Create `path` holding `content`, atomically and only if it does not exist (temp file + hard link)."""
    tmp = path.with_name(f".{path.name}.{content['owner']}.new")
    tmp.write_text(json.dumps(content))
    failpoint("claim_write")
    try:
        os.link(tmp, path)
        return True
    except FileExistsError:
        return False
    finally:
        tmp.unlink(missing_ok=True)


def _replace(path: Path, content: dict[str, Any]) -> None:
    """Overwrite `path` with `content` atomically (a temp file named by the owner, then a rename)."""
    tmp = path.with_name(f".{path.name}.{content['owner']}.tmp")
    tmp.write_text(json.dumps(content))
    os.replace(tmp, path)


@dataclass
class Claim:
    """A held claim: keeps its heartbeat fresh until released; `lost` is set if another worker took it over."""

    path: Path
    content: dict[str, Any]

    def __post_init__(self) -> None:
        self._stop = threading.Event()
        self.lost = threading.Event()
        self._thread = threading.Thread(target=self._beat, daemon=True, name="debiasbench-heartbeat")
        self._thread.start()

    @property
    def attempt(self) -> int:
        return int(self.content["attempt"])

    def report_progress(self, progress: dict[str, Any]) -> None:
        """Where the job is (`status` shows it): written with the next heartbeat. The key exists from
        the claim's creation and its value is replaced whole, so the heartbeat thread can serialise
        the content at any moment."""
        self.content["progress"] = dict(progress)

    def still_ours(self) -> bool:
        current = read_claim(self.path)
        ours = current is not None and current.get("owner") == self.content["owner"]
        if not ours:
            self.lost.set()
        return ours

    def _beat(self) -> None:
        while not self._stop.wait(max(0.05, float(self.content["ttl"]) / 4)):
            try:
                if not self.still_ours():
                    return  # taken over (we were presumed dead): run_job will not store our result
                self.content["heartbeat"] = time.time()
                _replace(self.path, self.content)
            except OSError:
                continue  # a passing filesystem error: try again at the next beat

    def release(self) -> None:
        """Stop the heartbeat and delete the claim if it is still ours. Never raises: a claim that
        cannot be deleted (the directory stopped taking writes) goes stale and the next run
        clears it."""
        self._stop.set()
        self._thread.join(timeout=5)
        try:
            if self.still_ours():
                self.path.unlink(missing_ok=True)
        except OSError:
            pass


def try_claim(path: Path) -> tuple[Claim | None, dict[str, Any] | None]:
    """(our claim, None) when the job is ours to run now; (None, the holder's claim) when a live
    worker holds it. A stale claim is taken over (see the module docstring)."""
    path.parent.mkdir(parents=True, exist_ok=True)
    now = time.time()
    content = {"owner": uuid.uuid4().hex, "host": socket.gethostname(), "pid": os.getpid(), "heartbeat": now,
               "started": now, "ttl": claim_ttl(), "attempt": 1, "history": [], "progress": None}
    for _ in range(5):
        if _write_new(path, content):
            return Claim(path, content), None
        holder = read_claim(path)
        if holder is None:
            continue  # released between our attempt and the read: try again
        if not is_stale(holder, now):
            return None, holder
        # One runner per stale owner wins the right to take over: the one that creates this marker.
        marker = path.with_name(f".{path.name}.takeover.{holder.get('owner')}")
        try:
            os.close(os.open(marker, os.O_CREAT | os.O_EXCL | os.O_WRONLY, 0o644))
        except FileExistsError:
            if _older_than(marker, claim_ttl()):  # its runner died mid-takeover: clear the way and try again
                marker.unlink(missing_ok=True)
                continue
            return None, holder
        try:
            current = read_claim(path)
            if current is None or current.get("owner") != holder.get("owner") or not is_stale(current):
                if current is None:
                    continue
                return None, current  # its holder woke up, or another runner took it over first
            content["attempt"] = int(holder.get("attempt", 1)) + 1
            idle, ttl = now - float(holder["heartbeat"]), float(holder.get("ttl", claim_ttl()))
            reason = (f"claim file unreadable, unchanged for {idle:.0f} s (ttl {ttl:.0f} s)" if holder.get("unreadable")
                      else f"worker stopped: no heartbeat for {idle:.0f} s (claim ttl {ttl:.0f} s)")
            content["history"] = [*holder.get("history", []), {
                "attempt": int(holder.get("attempt", 1)), "host": holder.get("host"), "pid": holder.get("pid"), "reason": reason}]
            _replace(path, content)
            return Claim(path, content), None
        finally:
            marker.unlink(missing_ok=True)
    return None, read_claim(path)
