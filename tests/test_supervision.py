"""Supervision levels reach every output: stored results, tables, plots, --list; a method runs only
on the datasets it declares settings for."""
import json

from benchmark.reports.plots import plot_ratio, ratio_frame
from benchmark.reports.report import build_table, render
from benchmark.supervision import NOTE, declared, of_record
from tests.helpers import cli
from tests.test_imports_report import _record


def _as(method, record, stored=True):
    record["job"]["method"] = method
    if stored:
        record["supervision"] = declared(method)
    return record


def test_every_method_declares_a_known_level_and_the_new_ones_their_own():
    assert {m: declared(m) for m in ("erm", "lff", "jtt", "lc", "groupdro", "dfr")} == {
        "erm": "none", "lff": "none", "jtt": "none", "lc": "none", "groupdro": "train-groups", "dfr": "valid-groups"}


def test_tables_mark_each_row_and_explain_the_levels():
    records = [_as("erm", _record(0, 0.3)), _as("groupdro", _record(1, 0.6)), _as("dfr", _record(2, 0.5))]
    table = build_table(records)
    level = {r[2]: r[3] for r in table.rows}
    assert table.columns[3] == "supervision"
    assert level == {"erm": "none", "groupdro": "train groups", "dfr": "valid groups"}
    assert NOTE in table.notes
    for fmt in ("markdown", "latex", "csv"):
        assert "train-groups" in render(table, fmt) or "train groups" in render(table, fmt)


def test_a_result_stored_before_levels_existed_takes_its_methods_declared_level():
    old = _as("groupdro", _record(0, 0.6), stored=False)
    assert "supervision" not in old and of_record(old) == "train-groups"


def test_ratio_plot_labels_and_marks_supervised_rows(tmp_path):
    records = [_as(m, _record(s, 0.4 + s / 10, pct=p)) for m in ("erm", "groupdro") for s in (0, 1) for p in (0.5, 1.0)]
    df = ratio_frame(records, "last")
    assert set(df["setting"]) == {"erm", "groupdro [train groups]"}
    paths = plot_ratio(records, tmp_path, all_variants=True)
    assert {p.suffix for p in paths} == {".png", ".pdf"}


def test_list_shows_levels_and_supported_datasets_and_an_unsupported_pair_is_one_line(tmp_path):
    listing = cli("--list")
    assert listing.returncode == 0
    lines = listing.stdout.splitlines()
    jtt = lines[[i for i, line in enumerate(lines) if line.split()[:1] == ["jtt"]][0] + 1]
    assert "supervision: none" in jtt and "cmnist" in jtt and "cifar10c " not in jtt + " "
    refused = cli("--methods", "jtt", "--datasets", "cifar10c", "--budget", "quick", "--results-dir", str(tmp_path / "r"))
    assert refused.returncode == 2 and refused.stderr.count("\n") == 1 and "Traceback" not in refused.stderr
    assert "jtt does not support dataset cifar10c" in refused.stderr and "declares settings for" in refused.stderr


def test_a_run_stores_the_level_and_the_table_shows_it(tmp_path):
    results = tmp_path / "r"
    run = cli("--methods", "groupdro", "--datasets", "synthetic", "--seeds", "0", "--budget", "quick",
              "--results-dir", str(results), "--set", "steps=30", "--no-progress")
    assert run.returncode == 0, run.stderr
    stored = [json.loads(p.read_text()) for p in (results / "jobs").glob("*.json")]
    assert [r["supervision"] for r in stored] == ["train-groups"]
    assert "train groups" in run.stdout


def test_validation_groups_without_a_validation_split_is_refused_before_anything_runs(tmp_path):
    refused = cli("--methods", "dfr", "--datasets", "cmnist", "--budget", "quick", "--results-dir", str(tmp_path / "r"))
    assert refused.returncode == 2 and refused.stderr.count("\n") == 1
    assert "--set cmnist.valid_fraction=0.1" in refused.stderr
    assert not (tmp_path / "r" / "jobs").exists() or not any((tmp_path / "r" / "jobs").iterdir())


def test_methods_all_says_which_methods_sit_out_a_dataset(capsys):
    from benchmark.cli import _note_unsupported

    _note_unsupported(["erm", "jtt", "lc"], ["cifar10c", "cmnist"])
    err = capsys.readouterr().err
    assert err.count("\n") == 1 and "leaves out jtt on cifar10c" in err


def test_an_unknown_level_is_refused_when_the_method_is_registered(tmp_path, monkeypatch):
    import pytest

    import methods.registry as registry
    from methods.erm import ERM

    (tmp_path / "oracle_erm.yaml").write_text("defaults: {}\n")
    with pytest.raises(RuntimeError, match="declares supervision 'test-groups': use one of none, valid-groups, train-groups"):
        registry.register_method("oracle_erm", config=tmp_path / "oracle_erm.yaml")(type("OracleERM", (ERM,), {"__doc__": "A test stand-in.", "supervision": "test-groups"}))
    assert "oracle_erm" not in registry.METHODS
