"""Crash test of the runner and the store: kill -9 at random moments and inside every write, then
several runners on one directory; every job must end up stored exactly once, equal to an
uninterrupted run, with nothing left behind.

    python -m benchmark.grid.chaos [--random-kills 16] [--point-kills 2] [--runners 2 3] [--seed 0] [--keep DIR]

1. Reference: the grid below, run once without interruption.
2. Kills: into a directory the same command is started again and again and killed with SIGKILL,
   `--random-kills` times at a random moment (uniform over the reference's wall time: start-up,
   data loading, training, checkpointing, storing, the report), and `--point-kills` times at each
   kill point of benchmark/failpoints.py (inside a checkpoint, result, failure, grid or claim
   write, between its temp file and its rename; after the data is loaded; before the report), at
   its 1st, 2nd, ... hit, in a shuffled order. When the killed runs have completed the grid, the
   directory is run to the end and checked, and the next kills go to a fresh one (a round).
3. For each N of `--runners`: N runners started together on a fresh directory, run to the end.
Checked in every directory: one result per job and no refused second store (`store_refused` in
the logs), metrics and evaluation curves equal to the reference's, no temp files, claims or
checkpoints left. Prints one line per kill and a verdict per directory; exit 1 on any failure.
The grid uses one thread per job, so that results compare bit for bit (benchmark/training/threads.py).
"""
from __future__ import annotations

import argparse
import json
import os
import random
import shutil
import signal
import subprocess
import sys
import tempfile
import time
from pathlib import Path

from benchmark.failpoints import POINTS
from benchmark.grid.store import is_temp

ROOT = Path(__file__).resolve().parents[2]  # the repository (benchmark/grid/chaos.py)
GRID = ["--methods", "erm", "lff", "--datasets", "synthetic", "--budget", "quick", "--seeds", "0", "1", "2",
        "--set", "steps=150", "--no-progress", "--log-every", "25", "--checkpoint-minutes", "0"]
# One thread per job; a killed runner's claims expire in 2 s; a job killed again and again is not
# given up on (by default a job is stored as failed after 3 lost attempts, which this test provokes).
ENV = {"DEBIASBENCH_THREADS": "1", "DEBIASBENCH_CLAIM_TTL": "2", "DEBIASBENCH_MAX_ATTEMPTS": "1000"}


def _start(results: Path, env: dict[str, str] | None = None, grid: list[str] = GRID) -> subprocess.Popen:
    return subprocess.Popen([sys.executable, str(ROOT / "run_bench.py"), *grid, "--results-dir", str(results)], cwd=ROOT,
                            env={**os.environ, **ENV, **(env or {})}, stdout=subprocess.DEVNULL, stderr=subprocess.PIPE,
                            text=True, start_new_session=True)


def _finish(proc: subprocess.Popen, timeout: float = 600) -> tuple[int, str]:
    _, err = proc.communicate(timeout=timeout)
    return proc.returncode, err


def _kill(proc: subprocess.Popen) -> None:
    try:
        os.killpg(proc.pid, signal.SIGKILL)
    except ProcessLookupError:
        pass
    proc.communicate()


def stored(results: Path) -> dict[str, tuple]:
    """Job file name -> (metrics, curve) of every stored result."""
    out = {}
    for path in sorted((results / "jobs").glob("*.json")):
        record = json.loads(path.read_text())
        out[path.name] = (record["metrics"], record["curve"])
    return out


def _events(results: Path, event: str) -> int:
    return sum(line.count(f'"event": "{event}"') for log in (results / "logs").glob("*.jsonl") for line in log.read_text().splitlines())


def snapshot(results: Path) -> str:
    """What a directory holds right now: results, checkpoints, claims, temp files."""
    def count(sub: str, pattern: str = "*") -> int:
        return len([p for p in (results / sub).glob(pattern) if not is_temp(p.name)]) if (results / sub).is_dir() else 0

    temps = [p for p in results.rglob(".*") if p.is_file() and is_temp(p.name)] if results.is_dir() else []
    return (f"{count('jobs', '*.json')} stored, {count('checkpoints')} checkpoints, {count('claims', '*.json')} claims, "
            f"{len(temps)} temp files")


def verify(results: Path, reference: dict[str, tuple], runs_once: bool = False) -> list[str]:
    """Every problem of a finished directory against the reference (none: an empty list)."""
    problems = []
    got = stored(results)
    if sorted(got) != sorted(reference):
        problems.append(f"stored {sorted(got)} instead of {sorted(reference)}")
    problems += [f"{name} differs from the uninterrupted run" for name in reference if name in got and got[name] != reference[name]]
    refused = _events(results, "store_refused")
    if refused:
        problems.append(f"{refused} second attempts to store a stored job")
    if runs_once and _events(results, "data") != len(reference):
        problems.append(f"{_events(results, 'data')} job starts for {len(reference)} jobs (some ran twice)")
    leftovers = [p for p in results.rglob("*") if p.is_file() and (is_temp(p.name) or p.parent.name in ("claims", "checkpoints"))]
    if leftovers:
        problems.append(f"left behind: {', '.join(str(p.relative_to(results)) for p in leftovers[:5])}")
    return problems


def _close_round(results: Path, reference: dict[str, tuple], number: int) -> int:
    """Run a killed directory to the end and check it; prints its verdict, returns 1 on failure."""
    time.sleep(float(ENV["DEBIASBENCH_CLAIM_TTL"]) + 0.5)  # the last kill's temp files reach the age at which runs clean them
    code, err = _finish(_start(results))
    problems = [f"the final run failed (exit {code}): {err.strip().splitlines()[-1:]}"] if code else []
    problems += verify(results, reference)
    print(f"round {number} run to the end: " + ("; ".join(problems) if problems else
          f"OK: {len(reference)} jobs stored once each, equal to the reference, nothing left behind"), flush=True)
    return 1 if problems else 0


def main(argv: list[str] | None = None) -> int:
    p = argparse.ArgumentParser(prog="python -m benchmark.grid.chaos", description=__doc__.split("\n\n")[0])
    p.add_argument("--random-kills", type=int, default=16)
    p.add_argument("--point-kills", type=int, default=2, help="kills at each kill point (its 1st, 2nd, ... hit)")
    p.add_argument("--runners", type=int, nargs="*", default=[2, 3], help="concurrent runners to try (each N on a fresh directory)")
    p.add_argument("--seed", type=int, default=0)
    p.add_argument("--keep", default=None, metavar="DIR", help="keep the directories here (default: a temporary folder, removed)")
    args = p.parse_args(argv)
    rng = random.Random(args.seed)
    work = Path(args.keep) if args.keep else Path(tempfile.mkdtemp(prefix="debiasbench-chaos-"))
    failures = 0
    try:
        started = time.perf_counter()
        code, err = _finish(_start(work / "reference"))
        wall = time.perf_counter() - started
        if code != 0:
            print(f"the uninterrupted run failed (exit {code}): {err.strip().splitlines()[-1:]}")
            return 1
        reference = stored(work / "reference")
        print(f"grid: {' '.join(GRID)}\nreference: {len(reference)} jobs in {wall:.1f} s (uninterrupted)")

        # the report is reached once per run: each of its kills takes the 1st hit
        plan = [("random", None)] * args.random_kills + [(point, 1 if point == "report" else n) for point in POINTS
                                                          for n in range(1, args.point_kills + 1)]
        rng.shuffle(plan)
        rounds: list[Path] = []
        problems_seen: list[str] = []  # failures reported by runs that ended before their kill
        for i, (where, nth) in enumerate(plan, 1):
            if not rounds or (where != "report" and len(stored(rounds[-1])) == len(reference)):
                if rounds:  # the grid is complete: check this directory, then kill runs of a fresh one
                    failures += _close_round(rounds[-1], reference, len(rounds))
                rounds.append(work / f"killed{len(rounds) + 1}")
            killed = rounds[-1]
            if where == "random":
                proc, moment = _start(killed), rng.uniform(0.3, wall)
                try:
                    proc.wait(timeout=moment)
                    failed = [ln.strip() for ln in proc.communicate()[1].splitlines() if ln.strip().startswith("failed:")]
                    what = f"random at {moment:.1f} s: the run had already ended (exit {proc.returncode})"
                    if failed:
                        problems_seen.append(f"kill {i}: {failed[0]}")
                except subprocess.TimeoutExpired:
                    _kill(proc)
                    what = f"random at {moment:.1f} s"
            else:
                proc = _start(killed, {"DEBIASBENCH_KILL_AT": f"{where}:{nth}"})
                code, err = _finish(proc)
                what = f"at {where} (hit {nth}): " + ("killed" if code == -signal.SIGKILL else f"not reached (exit {code})")
                problems_seen += [f"kill {i}: {ln.strip()}" for ln in err.splitlines() if ln.strip().startswith("failed:")][:1]
            print(f"kill {i:2d} (round {len(rounds)}): {what:<52} then {snapshot(killed)}", flush=True)
        failures += _close_round(rounds[-1], reference, len(rounds))
        for problem in problems_seen:
            print(f"a run before its kill reported a failed job: {problem}")
        failures += bool(problems_seen)

        for n in args.runners:
            shared = work / f"runners{n}"
            procs = [_start(shared) for _ in range(n)]
            codes = [_finish(proc)[0] for proc in procs]
            problems = [f"exit codes {codes}"] if any(codes) else []
            problems += verify(shared, reference, runs_once=True)
            failures += bool(problems)
            print(f"{n} concurrent runners: " + ("; ".join(problems) if problems else
                  f"OK: each of {len(reference)} jobs ran and was stored once, equal to the reference, nothing left behind"))
    finally:
        if not args.keep:
            shutil.rmtree(work, ignore_errors=True)
    return 1 if failures else 0


if __name__ == "__main__":
    sys.exit(main())
