"""`run_bench.py plot ...` and `report --format html`: a lambda_sparse sweep from the CLI to PNGs, PDFs and one page."""
import numpy as np

from benchmark.reports.plots import sparsity_frame
from benchmark.grid.store import Store
from tests.helpers import cli


def test_sparsity_sweep_and_plot_from_the_cli(tmp_path):
    out = tmp_path / "res"
    run = cli("--methods", "erm", "dcwp", "--datasets", "synthetic", "--seeds", "0", "--budget", "quick",
              "--set", "dcwp.lambda_sparse=1e-10,3e-4", "--set", "dcwp.mask.init=0.5",
              "--results-dir", str(out), "--no-progress")
    assert run.returncode == 0, run.stderr
    assert "sparsity" in run.stdout and "lambda_sparse=1e-10" in run.stdout and "lambda_sparse=0.0003" in run.stdout
    records = Store(out, create=False).results()
    for rec in records:
        if rec["job"]["method"] == "dcwp":
            with np.load(out / rec["artifacts"]) as arrays:
                assert arrays["mine.mined"].dtype == bool and int(arrays["mine.mined"].sum()) == rec["diagnostics"]["mine"]["mined"]["count"]
        else:
            assert rec["artifacts"] is None
    df = sparsity_frame(records, "last")
    pruned = df[df["kind"] == "pruned"].sort_values("sparsity")
    assert len(pruned) == 2 and len(df[df["kind"] == "dense"]) == 2
    assert pruned["sparsity"].iloc[0] < pruned["sparsity"].iloc[1]  # the stronger penalty prunes more
    plot = cli("plot", "sparsity", str(out))  # every run set mask.init: none is the defaults' sweep
    assert plot.returncode == 2 and "draw every setting with --all-variants" in plot.stderr and plot.stderr.count("\n") == 1
    plot = cli("plot", "sparsity", str(out), "--all-variants")
    assert plot.returncode == 0, plot.stderr
    paths = plot.stdout.split()
    assert [p.rsplit(".", 1)[1] for p in paths] == ["png", "pdf"]
    for kind, stem in (("ratio", "ratio_synthetic"), ("groups", "groups_dcwp_synthetic_c1_s0_"), ("curves", "curves_synthetic_c1")):
        made = cli("plot", kind, str(out))
        assert made.returncode == 0, made.stderr
        paths += made.stdout.split()
        assert [p.rsplit("/", 1)[1].startswith(stem) for p in made.stdout.split()] == [True, True]
    for p in paths:
        with open(p, "rb") as f:
            assert f.read(4) in (b"\x89PNG", b"%PDF")
    page = cli("report", str(out), "--format", "html")
    assert page.returncode == 0, page.stderr
    text = (out / "report.html").read_text()
    assert page.stdout.strip() == str(out / "report.html")
    assert text.count("<table>") == 2 and text.count('src="data:image/png;base64,') == 3  # runs + diagnostics; ratio, sparsity, groups


def test_plot_without_pruning_results_is_a_clear_error(tmp_path):
    out = tmp_path / "res"
    assert cli("--methods", "erm", "--datasets", "synthetic", "--seeds", "0", "--budget", "quick",
               "--results-dir", str(out), "--no-progress").returncode == 0
    plot = cli("plot", "sparsity", str(out))
    assert plot.returncode == 2 and plot.stderr.startswith("error: no pruning results")
    assert cli("plot", "sparsity", str(tmp_path / "nothing")).stderr.startswith("error:")


def test_the_sparsity_figure_draws_the_default_settings_lambda_sweep_not_the_ablations():
    from benchmark.grid.jobs import expand_grid
    from benchmark.reports.figures import default_setting_but

    sweep = expand_grid(["dcwp"], ["synthetic"], [0], None, "quick", [("dcwp.lambda_sparse", [1e-9, 1e-6])])
    ablation = expand_grid(["dcwp"], ["synthetic"], [0], None, "quick", [("dcwp.eta", [0.5])])
    records = [{"job": job.describe()} for job in sweep + ablation]
    kept = default_setting_but(records, "lambda_sparse")
    assert [r["job"]["id"] for r in kept] == [job.id for job in sweep]


def test_the_validation_curve_reads_the_even_half_where_two_are_held_out():
    from benchmark.reports.curves import _series

    total = {"valid": [99, 1], "valid_even": [50, 50], "test": [50, 50]}
    record = {"group_total": total, "aligned_groups": [True, False],
              "curve": [{"stage": "s", "step": 1, "valid": [99, 0], "valid_even": [50, 10], "test": [50, 10]}]}
    steps, values = _series(record)[("valid", "unbiased_acc")]
    assert steps == [1] and values == [60.0]  # valid_even's (100 + 20) / 2; valid's would be 50
