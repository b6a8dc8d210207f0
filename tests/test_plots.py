"""`run_bench.py plot sparsity`: a lambda_sparse sweep from the CLI to a PNG and a PDF."""
import numpy as np

from benchmark.plots import sparsity_frame
from benchmark.store import Store
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
    plot = cli("plot", "sparsity", str(out))
    assert plot.returncode == 0, plot.stderr
    paths = plot.stdout.split()
    assert [p.rsplit(".", 1)[1] for p in paths] == ["png", "pdf"]
    for p in paths:
        with open(p, "rb") as f:
            assert f.read(4) in (b"\x89PNG", b"%PDF")


def test_plot_without_pruning_results_is_a_clear_error(tmp_path):
    out = tmp_path / "res"
    assert cli("--methods", "erm", "--datasets", "synthetic", "--seeds", "0", "--budget", "quick",
               "--results-dir", str(out), "--no-progress").returncode == 0
    plot = cli("plot", "sparsity", str(out))
    assert plot.returncode == 2 and plot.stderr.startswith("error: no pruning results")
    assert cli("plot", "sparsity", str(tmp_path / "nothing")).stderr.startswith("error:")
