"""A running job's progress: the harness reports it at every log flush, its claim carries it, and
`status` prints stage, steps, steps/s and the time left."""
from __future__ import annotations

import time

from benchmark.grid.claims import try_claim
from benchmark.grid.jobs import expand_grid
from benchmark.grid.status import progress_line, status_text
from benchmark.grid.store import Store
from benchmark.training.harness import RuntimeOptions
from tests.helpers import harness


def test_progress_line_by_hand():
    now = 1_000_000.0
    claim = {"name": "lc_cmnist_c1_s0_abc", "host": "h", "pid": 7,
             "progress": {"stage": "train", "step": 35100, "stage_steps": 70200, "done": 35100, "total": 70200,
                          "steps_per_s": 39.0, "time": now - 20}}
    assert progress_line(claim, now) == ("running: lc_cmnist_c1_s0_abc (h:7): stage train step 35,100/70,200, "
                                         "35,100/70,200 steps overall (50 %), 39 steps/s, about 15 min left")
    claim["progress"].update(steps_per_s=None, time=now - 600)
    assert progress_line(claim, now).endswith("(50 %) (reported 10 min ago)")
    assert progress_line({"name": "x", "progress": None}, now) == "running: x (?:?): no progress reported yet"


def test_the_harness_reports_progress_at_every_log_flush(synthetic):
    reports = []
    h = harness("erm", synthetic, steps=300, runtime=RuntimeOptions(log_every=50, report_progress=reports.append))
    h.run()
    assert [r["done"] for r in reports] == list(range(50, 301, 50))
    assert all(r["total"] == 300 and r["stage"] == "train" and r["stage_steps"] == 300 for r in reports)


def test_status_shows_a_running_jobs_progress_from_its_claim(tmp_path, monkeypatch):
    monkeypatch.setenv("DEBIASBENCH_CLAIM_TTL", "0.4")  # a heartbeat every 0.1 s
    job = expand_grid(["erm"], ["synthetic"], [0], [5], "quick")[0]
    store = Store(tmp_path)
    claim, _ = try_claim(store.claim_path(job))
    try:
        claim.report_progress({"stage": "train", "step": 150, "stage_steps": 300, "done": 150, "total": 300,
                               "steps_per_s": 5.0, "time": time.time()})
        time.sleep(0.5)
        text = status_text(tmp_path)
        assert f"running: {job.name} (" in text and "150/300 steps overall (50 %), 5 steps/s, about 1 min left" in text
    finally:
        claim.release()


def test_status_estimates_the_jobs_left_from_the_stored_runs(tmp_path):
    import json

    from benchmark.grid.runner import run_grid, runtime_options

    jobs = expand_grid(["erm"], ["synthetic"], [0, 1, 2], [5], "quick")
    store = Store(tmp_path)
    run_grid(jobs[:1], store, runtime_options("cpu", max_stage_steps=20), "serial", None, None, False, announce=False)
    store.write_grid(jobs)
    grid = next((tmp_path / "grids").glob("*.json"))
    entries = json.loads(grid.read_text())
    assert {e["protocol"] for e in entries} == {"published"}
    del entries[2]["protocol"]  # a grid recorded before protocols were: estimated from every protocol's runs
    grid.write_text(json.dumps(entries))
    last = status_text(tmp_path).splitlines()[-1]
    assert last.startswith("left: 2 pending or stalled jobs (on cpu, as the latest stored run): about ")
    assert "erm/synthetic 1 x " in last and "erm/synthetic [protocol not recorded] 1 x " in last and "no stored run" not in last
