"""`run_bench.py status RESULTS_DIR`: what a (possibly shared, possibly still running) results
directory holds, per method and dataset: done, running (a live claim), stalled (a claim whose
worker stopped heartbeating: the next runner takes it over), failed, and pending (asked for by a
recorded grid and none of the above). Each running job's progress (stage, steps, steps/s and
time left, as its worker last wrote into its claim) and each failure's reason follow.
"""
from __future__ import annotations

import time
from collections import Counter
from pathlib import Path
from typing import Any

from benchmark.grid.claims import is_stale
from benchmark.errors import BenchError
from benchmark.grid.jobs import stored_name
from benchmark.grid.store import Store

STATES = ("done", "running", "stalled", "failed", "pending")


def status_text(results_dir: str | Path, repair: bool = False) -> str:
    """The status table; unusable stored files are listed (or, with `repair`, moved to quarantine/)."""
    root = Path(results_dir)
    if not root.is_dir():
        raise BenchError(f"{root} does not exist: pass the --results-dir of a run")
    store = Store(root, create=False)
    scans = {sub: store.scan(sub) for sub in ("jobs", "failed")}  # each file read once
    unusable = [(path, problem) for scan in scans.values() for path, _, problem in scan if problem]
    notes = [f"unusable: {path}: {problem} (--repair moves it to {root / 'quarantine'} and its job runs again)"
             for path, problem in unusable]
    if repair:
        notes = [f"repair: moved an unusable stored file to {moved}" for moved in store.quarantine([p for p, _ in unusable])]
    usable = {sub: [rec for _, rec, _ in scan if rec is not None] for sub, scan in scans.items()}
    state: dict[str, str] = {}
    about: dict[str, tuple[str, str]] = {}
    grid = store.grid_jobs()  # every recorded grid, read once
    for name, job in grid.items():
        state[name], about[name] = "pending", (job["method"], job["dataset"])
    failures = {}
    for rec in usable["failed"]:
        name = stored_name(rec["job"])
        state[name], about[name] = "failed", (rec["job"]["method"], rec["job"]["dataset"])
        failures[name] = rec["reason"]
    claims = store.claims()
    for claim in claims:
        name = claim["name"]
        state[name] = "stalled" if is_stale(claim) else "running"
        about.setdefault(name, tuple(name.split("_")[:2]))  # type: ignore[arg-type]
    for rec in usable["jobs"]:
        name = stored_name(rec["job"])
        state[name], about[name] = "done", (rec["job"]["method"], rec["job"]["dataset"])
    if not state:
        return "\n".join([f"{root}: no jobs recorded yet", *notes])
    counts: dict[tuple[str, str], Counter] = {}
    for name, s in state.items():
        counts.setdefault(about[name], Counter())[s] += 1
    header = ["method", "dataset", *STATES]
    rows = [[m, d, *(str(c[s]) for s in STATES)] for (m, d), c in sorted(counts.items())]
    total = Counter(state.values())
    rows.append(["all", "", *(str(total[s]) for s in STATES)])
    widths = [max(len(r[i]) for r in [header, *rows]) for i in range(len(header))]
    lines = ["  ".join(c.ljust(w) if i < 2 else c.rjust(w) for i, (c, w) in enumerate(zip(r, widths))) for r in [header, *rows]]
    lines.insert(1, "  ".join("-" * w for w in widths))
    lines += [progress_line(claim) for claim in sorted(claims, key=lambda c: c["name"]) if state[claim["name"]] == "running"]
    left = [grid[name] for name, s in state.items() if s in ("pending", "stalled") and name in grid]
    if left:
        lines.append(left_line(left, usable["jobs"]))
    for name in sorted(n for n, s in state.items() if s == "failed"):
        lines.append(f"failed: {name}: {failures[name]}")
    return "\n".join(lines + notes)


def left_line(left: list[dict[str, Any]], records: list[dict[str, Any]]) -> str:
    """How long the pending and stalled jobs of the recorded grids will train, one after another, on
    the kind of device (cpu or cuda) that stored the latest result here (`estimate.estimate_kinds`)."""
    from benchmark.grid.estimate import estimate_kinds

    latest = max(records, key=lambda r: str(r.get("finished_at", "")), default=None)
    device = str(((latest or {}).get("environment") or {}).get("device", "")).split(":")[0] or None
    kinds = [(j["method"], j["dataset"], j["budget"], j.get("protocol", "?")) for j in left]  # grids stored before 2026-12: "?"
    estimate = estimate_kinds(kinds, records, device).removeprefix("time: ")
    return f"left: {len(left)} pending or stalled jobs" + (f" (on {device}, as the latest stored run)" if device else "") + f": {estimate}"


def _minutes(seconds: float) -> str:
    return f"{max(1, round(seconds / 60))} min" if seconds < 5400 else f"{seconds / 3600:.1f} h"


def progress_line(claim: dict[str, Any], now: float | None = None) -> str:
    """One running job: where it is (from its claim's last report) and, at its recent rate, how long it has left."""
    where = f"{claim['name']} ({claim.get('host', '?')}:{claim.get('pid', '?')})"
    p = claim.get("progress")
    if not isinstance(p, dict) or not p.get("total"):
        return f"running: {where}: no progress reported yet"
    try:
        done, total, rate = int(p["done"]), int(p["total"]), p.get("steps_per_s")
        line = (f"running: {where}: stage {p['stage']} step {int(p['step']):,}/{int(p['stage_steps']):,}, "
                f"{done:,}/{total:,} steps overall ({100 * done / total:.0f} %)")
        if isinstance(rate, (int, float)) and rate > 0:
            line += f", {rate:.0f} steps/s, about {_minutes((total - done) / rate)} left"
        age = (now or time.time()) - float(p["time"])
        return line + (f" (reported {_minutes(age)} ago)" if age >= 60 else "")
    except (KeyError, TypeError, ValueError):
        return f"running: {where}: its progress report is unreadable"
