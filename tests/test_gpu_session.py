"""benchmark/perf/gpu_session.sh, checked on the CPU: the grid part writes its summary, table and
job files, and a grid past its time limit is stopped with every worker of its process group."""
import os
import re
import subprocess
import sys
import tarfile
import uuid
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
SCRIPT = ROOT / "benchmark" / "perf" / "gpu_session.sh"


def _run(tmp_path: Path, part: str, **env: str) -> subprocess.CompletedProcess:
    full = {**os.environ, "OUT": str(tmp_path / "out"), "DEVICE": "cpu", "PYTHON": sys.executable, **env}
    return subprocess.run(["bash", str(SCRIPT), part], cwd=ROOT, env=full, capture_output=True, text=True, timeout=240)


def _processes_with(marker: str) -> list[str]:
    """Live processes whose environment holds `marker` (every descendant of the script inherits it)."""
    found = []
    for environ in Path("/proc").glob("[0-9]*/environ"):
        try:
            if marker.encode() in environ.read_bytes():
                found.append(environ.parent.name)
        except OSError:
            pass  # ended meanwhile, or not ours to read
    return found


def test_the_grid_part_times_the_grid_and_keeps_its_table_and_jobs(tmp_path):
    run = _run(tmp_path, "grid", BUDGET="quick", METHODS="erm", SEEDS="0", GRID_ARGS="--threads 1 --conflict-pcts 1")
    assert run.returncode == 0, run.stderr
    out = tmp_path / "out"
    summary = (out / "summary-grid.txt").read_text()
    assert "torch " in summary and "grid: exit 0 after" in summary and "part grid done" in summary
    assert "cmnist   1           erm" in (out / "grid-table.txt").read_text()
    with tarfile.open(out / "grid-results.tgz") as tar:
        assert [Path(n).name.split("_")[:4] for n in tar.getnames() if n.endswith(".json")] == [["erm", "cmnist", "c1", "s0"]]


def test_a_grid_past_its_limit_is_stopped_with_its_workers(tmp_path):
    marker = f"GPU_SESSION_TEST={uuid.uuid4().hex}"
    run = _run(tmp_path, "grid", BUDGET="paper", METHODS="lc", SEEDS="0", GRID_LIMIT_S="30", GPU_SESSION_TEST=marker.split("=")[1],
               GRID_ARGS="--threads 1 --backend local --jobs 2 --conflict-pcts 1 2")
    summary = (tmp_path / "out" / "summary-grid.txt").read_text()
    assert run.returncode == 1 and "did not end as expected: grid: nothing stored" in summary  # stopped before any job ended
    assert "grid: exit 124 after" in summary
    running = int(re.search(r"^lc +cmnist +\d+ +(\d+)", summary, re.M).group(1))
    assert running > 0, f"no worker had started within the limit, so nothing was tested:\n{summary}"
    left = _processes_with(marker)
    assert not left, f"processes of the stopped grid still run: {left}"


def test_a_failing_step_fails_the_part_and_is_named(tmp_path):
    run = _run(tmp_path, "grid", BUDGET="quick", METHODS="no-such-method", SEEDS="0")
    assert run.returncode == 1
    summary = (tmp_path / "out" / "summary-grid.txt").read_text()
    assert "grid: exit 2 after" in summary and "did not end as expected: grid,grid: nothing stored" in summary


def test_an_unknown_part_is_a_usage_line(tmp_path):
    run = _run(tmp_path, "everything")
    assert run.returncode == 2 and run.stderr.startswith("usage: benchmark/perf/gpu_session.sh grid|perf")
    assert not (tmp_path / "out").exists()
