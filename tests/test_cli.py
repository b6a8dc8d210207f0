"""The CLI end to end on the synthetic fixture, and one clear error line for every bad input."""
import gzip
import io
import shutil

import pandas as pd
import pytest

from datasets.storage import SHIPPED
from tests.helpers import cli

QUICK = ["--methods", "erm", "--datasets", "synthetic", "--budget", "quick", "--no-progress"]


def assert_one_line_error(proc, *fragments):
    assert proc.returncode == 2, proc.stderr
    lines = [ln for ln in proc.stderr.strip().splitlines() if ln.strip()]
    assert len(lines) == 1, proc.stderr
    assert lines[0].startswith("error: ") and "Traceback" not in proc.stderr
    for f in fragments:
        assert f in lines[0], lines[0]


def test_run_then_rerun_then_report_in_every_format(tmp_path):
    out = tmp_path / "res"
    first = cli(*QUICK, "--seeds", "0", "1", "--results-dir", str(out))
    assert first.returncode == 0, first.stderr
    row = next(ln for ln in first.stdout.splitlines() if ln.startswith("synthetic"))
    assert row.split()[3:5] == ["none", "2"]  # supervision, n seeds
    assert "checkpoint: final model (rule: last)" in first.stdout
    assert "2 run now, 0 already in the store" in first.stderr
    assert len(list((out / "jobs").glob("*.json"))) == 2

    again = cli(*QUICK, "--seeds", "0", "1", "--results-dir", str(out))
    assert "0 run now, 2 already in the store" in again.stderr

    table = cli("report", str(out))
    assert table.returncode == 0 and "synthetic" in table.stdout
    md = cli("report", str(out), "--format", "markdown").stdout
    assert md.count("|") > 10 and "| synthetic | 1 | erm | none |" in md
    latex = cli("report", str(out), "--format", "latex").stdout
    assert r"\toprule" in latex and r"\bottomrule" in latex and r"$\pm$" in latex
    csv = pd.read_csv(io.StringIO(cli("report", str(out), "--format", "csv").stdout))
    assert csv.loc[0, "n"] == 2 and 0 <= csv.loc[0, "unbiased_acc_mean"] <= 100
    best = cli("report", str(out), "--selection", "best-valid-worst-group")
    assert best.returncode == 0 and "rule: best-valid-worst-group" in best.stdout


def test_list_names_methods_datasets_and_paper_tables():
    proc = cli("--list")
    assert proc.returncode == 0
    for name in ("erm", "cmnist", "cmnist-disent", "synthetic", "denetdm-table1"):
        assert name in proc.stdout


def test_an_unregistered_method_names_the_registered_ones(tmp_path):
    import methods

    proc = cli("--methods", "erm", "nosuchmethod", "--datasets", "cmnist", "--results-dir", str(tmp_path))
    assert_one_line_error(proc, "unknown method 'nosuchmethod'", "registered methods: " + ", ".join(sorted(methods.METHODS)))


@pytest.mark.parametrize("args,fragments", [
    (["--datasets", "nope"], ["unknown dataset 'nope'", "registered datasets:"]),
    (["--conflict-pcts", "150"], ["conflict_pct must be a percentage in (0, 100)"]),
    (["--set", "optimizer.lr"], ["malformed --set", "key=value"]),
    (["--set", "learning_rate=3"], ["no selected method has a hyperparameter 'learning_rate'"]),
    (["--budget", "huge"], ["invalid choice: 'huge'"]),
    (["--seeds", "x"], ["invalid int value"]),
])
def test_bad_input_is_one_clear_line(args, fragments, tmp_path):
    proc = cli("--methods", "erm", "--datasets", "synthetic", "--results-dir", str(tmp_path), *args)
    assert_one_line_error(proc, *fragments)


def test_unreadable_yaml_and_unwritable_results_dir(tmp_path):
    bad = tmp_path / "bad.yaml"
    bad.write_text("methods: [1, 2\n")
    assert_one_line_error(cli(*QUICK, "--config", str(bad), "--results-dir", str(tmp_path / "r")), "not valid YAML", str(bad))
    assert_one_line_error(cli(*QUICK, "--config", str(tmp_path / "absent.yaml")), "does not exist")
    blocker = tmp_path / "file"
    blocker.write_text("")
    assert_one_line_error(cli(*QUICK, "--results-dir", str(blocker / "sub")), "is not writable", "--results-dir")


def test_missing_and_corrupt_data(tmp_path):
    proc = cli("--methods", "erm", "--datasets", "cmnist-disent", "--data-root", str(tmp_path), "--results-dir", str(tmp_path / "r"))
    assert_one_line_error(proc, "DisEnt authors' download", "--data-root")
    raw = tmp_path / "MNIST" / "raw"
    raw.mkdir(parents=True)
    shutil.copy(SHIPPED / "MNIST" / "raw" / "train-labels-idx1-ubyte.gz", raw)
    with gzip.open(raw / "train-images-idx3-ubyte.gz", "wb") as f:
        f.write(b"\0" * 100)
    fresh_cache = {"DEBIASBENCH_CACHE": str(tmp_path / "cache")}  # a Colored MNIST built earlier would not read MNIST
    proc = cli("--methods", "erm", "--datasets", "cmnist", "--data-root", str(tmp_path), "--results-dir", str(tmp_path / "r"),
               env=fresh_cache)
    assert_one_line_error(proc, "train-images-idx3-ubyte.gz is corrupt", "md5")


def test_nan_loss_fails_that_job_only_and_is_stored(tmp_path):
    out = tmp_path / "res"
    proc = cli(*QUICK, "--seeds", "0", "--set", "optimizer.name=sgd", "--set", "optimizer.lr=0.01,1e30", "--results-dir", str(out))
    assert proc.returncode == 1
    assert "1 run now, 0 already in the store, 0 finished by other runners, 1 failed" in proc.stderr
    assert "non-finite loss" in proc.stderr and "Traceback" not in proc.stderr
    assert len(list((out / "jobs").glob("*.json"))) == 1
    failures = list((out / "failed").glob("*.json"))
    assert len(failures) == 1 and "non-finite loss" in failures[0].read_text()
    assert "1 failed" in proc.stdout  # the table explains the empty cell


def test_report_of_an_empty_directory_is_a_clear_error(tmp_path):
    assert_one_line_error(cli("report", str(tmp_path)), "holds no results")


def test_local_backend_runs_the_same_jobs_as_serial(tmp_path):
    import json

    runs = {}
    for backend in ("serial", "local"):
        out = tmp_path / backend
        proc = cli(*QUICK, "--seeds", "0", "1", "--backend", backend, "--jobs", "2", "--results-dir", str(out))
        assert proc.returncode == 0, proc.stderr
        runs[backend] = {p.name: json.loads(p.read_text()) for p in (out / "jobs").glob("*.json")}
    assert sorted(runs["serial"]) == sorted(runs["local"]) and len(runs["serial"]) == 2
    for name, rec in runs["serial"].items():
        other = runs["local"][name]["metrics"]["last"]["test"]["unbiased_acc"]
        assert abs(rec["metrics"]["last"]["test"]["unbiased_acc"] - other) < 0.05


def test_a_run_without_a_terminal_prints_a_line_per_job_and_heartbeats(tmp_path):
    import re

    run = cli("--methods", "erm", "--datasets", "synthetic", "--seeds", "0", "1", "--budget", "quick", "--results-dir",
              str(tmp_path / "r"), "--no-progress", "--heartbeat-minutes", "0.0001", "--log-every", "50")
    assert run.returncode == 0, run.stderr
    done = [line for line in run.stderr.splitlines() if "] done: " in line]
    assert len(done) == 2 and done[0].startswith("[1/2] done: erm_synthetic_c1_s")
    assert re.search(r"in \d+\.\d min \(\d+ steps/s\); test unbiased \d+\.\d\d, worst-group \d+\.\d\d$", done[1])
    beats = [line for line in run.stderr.splitlines() if line.startswith("  ... erm on synthetic, seed ")]
    assert beats and re.search(r"stage train step [\d,]+/[\d,]+ \([\d,]+/[\d,]+ overall\), \d+ steps/s, loss \d", beats[0])
    quiet = cli("--methods", "erm", "--datasets", "synthetic", "--seeds", "2", "--budget", "quick", "--results-dir",
                str(tmp_path / "r"), "--no-progress", "--heartbeat-minutes", "0")
    assert "  ... " not in quiet.stderr and "[1/1] done: " in quiet.stderr
    bad = cli("--methods", "erm", "--heartbeat-minutes", "-1", "--results-dir", str(tmp_path / "r"))
    assert bad.returncode == 2 and "--heartbeat-minutes must be a finite number >= 0" in bad.stderr


def test_tensorboard_export_holds_the_training_losses_and_the_evaluation_curve(tmp_path):
    import pytest

    pytest.importorskip("tensorboard")
    from tensorboard.backend.event_processing.event_accumulator import EventAccumulator

    run = cli("--methods", "erm", "--datasets", "synthetic", "--seeds", "0", "--budget", "quick", "--results-dir", str(tmp_path / "r"),
              "--no-progress", "--tensorboard", str(tmp_path / "tb"))
    assert run.returncode == 0, run.stderr
    assert "TensorBoard: 1 runs under" in run.stderr
    (folder,) = list((tmp_path / "tb").iterdir())
    events = EventAccumulator(str(folder))
    events.Reload()
    tags = set(events.Tags()["scalars"])
    assert {"train/train/loss", "test/unbiased_acc", "valid/worst_group_acc"} <= tags
    assert events.Scalars("train/train/loss")[-1].step == 300 and 0 <= events.Scalars("test/unbiased_acc")[-1].value <= 100


def test_show_config_prints_each_setting_once_as_yaml_that_diffs(tmp_path):
    import yaml

    base = cli("--methods", "lc", "erm", "--conflict-pcts", "1", "--seeds", "0", "1", "--show-config", "--results-dir", str(tmp_path))
    assert base.returncode == 0, base.stderr
    docs = list(yaml.safe_load_all(base.stdout))
    assert [(d["method"], d["seeds"]) for d in docs] == [("lc", [0, 1]), ("erm", [0, 1])]   # seeds collapsed, one per setting
    assert docs[0]["hparams"]["method"]["optimizer"]["lr"] == 1e-3 and docs[0]["hparams"]["dataset"]["valid_fraction"] == 0.0
    changed = cli("--methods", "lc", "erm", "--conflict-pcts", "1", "--seeds", "0", "1", "--show-config", "--set", "lc.optimizer.lr=0.01")
    differ = [(a, b) for a, b in zip(base.stdout.splitlines(), changed.stdout.splitlines()) if a != b]
    assert differ == [("      lr: 0.001", "      lr: 0.01")]                                # the one changed value, nothing else
    assert not (tmp_path / "jobs").exists()                                              # nothing ran
