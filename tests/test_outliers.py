"""Collapsed runs are named under every table, with the device they ran on."""
from benchmark.reports.report import build_table


def _record(method: str, seed: int, unbiased: float, device: str, pct: float = 1.0) -> dict:
    test = {"overall_acc": 0.5, "worst_group_acc": 0.1, "unbiased_acc": unbiased, "aligned_acc": 0.9, "conflicting_acc": 0.3}
    job = {"id": f"{method}-{pct}-{seed}", "method": method, "dataset": "cmnist", "conflict_pct": pct, "seed": seed,
           "budget": "paper", "hparams": {"method": {}, "dataset": {}}}
    return {"job": job, "metrics": {"last": {"test": test}},
            "environment": {"device": "cuda" if "NVIDIA" in device else "cpu", "device_name": device}}


def _outlier_line(table) -> str:
    return next((n for n in table.notes if n.startswith("outlying runs")), "")


def test_a_run_far_below_its_rows_median_is_named_with_its_device():
    records = [_record("lff", 0, 0.50, "NVIDIA H100"), _record("lff", 1, 0.91, "AMD EPYC"), _record("lff", 2, 0.92, "AMD EPYC"),
               _record("erm", 0, 0.60, "AMD EPYC"), _record("erm", 1, 0.55, "AMD EPYC"), _record("erm", 2, 0.65, "AMD EPYC")]
    line = _outlier_line(build_table(records, "last"))
    # lff seed 0 is 41 points below its median (91); erm's seed 1 is 5 points below its median (60): not an outlier
    assert line.startswith("outlying runs (unbiased accuracy more than 10 points below their row's median, rows of 3+ runs): "
                           "1 of 6 (0 of 5 on AMD EPYC, 1 of 1 on NVIDIA H100): ")
    assert line.endswith("lff cmnist 1 % seed 0: 50.00 (median 91.00; NVIDIA H100).")


def test_rows_of_fewer_than_three_runs_are_not_judged():
    records = [_record("lff", 0, 0.20, "AMD EPYC"), _record("lff", 1, 0.90, "AMD EPYC"),
               _record("erm", 0, 0.60, "AMD EPYC"), _record("erm", 1, 0.61, "AMD EPYC"), _record("erm", 2, 0.62, "AMD EPYC")]
    line = _outlier_line(build_table(records, "last"))
    assert line.endswith("0 of 3 (0 of 3 on AMD EPYC).")  # lff's two runs are 70 points apart, but which one failed?
    assert _outlier_line(build_table(records[:2], "last")) == ""  # nothing to judge: no line


def test_a_paper_tables_runs_give_the_same_line():
    from benchmark.reports.outliers import note, runs_frame

    records = [_record("lff", 0, 0.50, "NVIDIA H100"), _record("lff", 1, 0.91, "AMD EPYC"), _record("lff", 2, 0.92, "AMD EPYC")]
    assert note(runs_frame(records, "last")) == _outlier_line(build_table(records, "last"))
    assert "lff cmnist 1 % seed 0: 50.00 (median 91.00; NVIDIA H100)" in note(runs_frame(records, "last"))
