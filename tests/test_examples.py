"""The examples under examples/ run as a user runs them."""
import os
import subprocess
import sys
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent


def test_the_api_quickstart_prints_a_frame_a_table_and_a_figure(tmp_path):
    env = {**os.environ, "PYTHONPATH": str(ROOT)}
    run = subprocess.run([sys.executable, str(ROOT / "examples" / "api_quickstart.py"), str(tmp_path / "r")], capture_output=True,
                         text=True, timeout=600, env=env, cwd=tmp_path)
    assert run.returncode == 0, run.stderr
    lines = run.stdout.splitlines()
    assert "ran 4, found 0 stored, 0 failed" in lines
    assert any(line.split()[:4] == ["method", "seed", "hp.optimizer.lr", "unbiased_acc"] for line in lines)
    assert any(line.startswith("| synthetic | 1 | lff |") for line in lines)
    figures = [Path(line.split(": ", 1)[1]) for line in lines if line.startswith("figure: ")]
    assert sorted(p.suffix for p in figures) == [".pdf", ".png"] and all(p.is_file() for p in figures)
    again = subprocess.run([sys.executable, str(ROOT / "examples" / "api_quickstart.py"), str(tmp_path / "r")], capture_output=True,
                           text=True, timeout=600, env=env, cwd=tmp_path)
    assert "ran 0, found 4 stored, 0 failed" in again.stdout  # resumable
