"""A foreign `datasets` package is refused with one clear line; reports explain empty cells."""
import subprocess
import sys

import pytest

from benchmark.errors import BenchError
from benchmark.grid.jobs import stored_name
from benchmark.reports.report import build_table, diagnostics_table, diagnostics_tables, render
from tests.helpers import ROOT


def test_a_shadowing_datasets_package_is_a_clear_error(tmp_path):
    fake = tmp_path / "datasets"
    fake.mkdir()
    (fake / "__init__.py").write_text("'''stand-in for Hugging Face datasets'''\n")
    code = ("import sys; sys.path.insert(0, sys.argv[1]); sys.path.insert(1, sys.argv[2]); "
            "from benchmark.cli import main; sys.exit(main(['--list']))")
    proc = subprocess.run([sys.executable, "-c", code, str(tmp_path), str(ROOT)], capture_output=True, text=True, cwd=tmp_path)
    assert proc.returncode == 2
    assert proc.stderr.count("\n") == 1 and "Traceback" not in proc.stderr
    assert "shadows ours" in proc.stderr and "pip uninstall datasets" in proc.stderr


def _record(seed, unbiased, dataset="cmnist", pct=0.5):
    m = {k: unbiased for k in ("unbiased_acc", "worst_group_acc", "aligned_acc", "conflicting_acc", "overall_acc")}
    job = {"id": f"id{seed}", "method": "erm", "dataset": dataset, "conflict_pct": pct, "seed": seed, "budget": "paper",
           "hparams": {"method": {"lr": 1}, "dataset": {}}}
    return {"job": job, "metrics": {"last": {"test": m}}, "sparsity": None, "curve": [], "group_total": {"test": [1, 1, 1, 1]},
            "aligned_groups": [True, False, False, True], "group_shape": [2, 2]}


def test_table_means_stds_paper_column_and_missing_cells():
    records = [_record(0, 0.30), _record(1, 0.40)]
    expected = [{**r["job"], "hparams": '{"dataset":{},"method":{"lr":1}}', "status": "done"} for r in records]
    expected.append({**records[0]["job"], "seed": 2, "hparams": expected[0]["hparams"], "status": "failed: boom"})
    expected.append({**records[0]["job"], "conflict_pct": 1.0, "hparams": expected[0]["hparams"], "status": "missing"})
    table = build_table(records, "last", "test", expected)
    text = render(table)
    row = next(r for r in table.rows if r[1] == "0.5")
    assert row[3] == "none"                          # supervision: ERM sees no group label
    assert row[4] == "2 (1 failed)"
    assert row[5] == "1"                             # rank within its dataset and ratio: alone
    assert row[6] == "35.00 ± 63.53"                 # mean of 30 and 40 ± t(0.975, 1) 12.706 * s 7.071 / sqrt(2)
    assert row[-1] == "35.34 ± 0.13 (-0.34)"         # DeNetDM Table 1's ERM cell and the delta
    empty = next(r for r in table.rows if r[1] == "1")
    assert empty[4] == "0 (1 missing)" and empty[5] == "" and empty[6] == "–"
    assert "rule: last" in text and "denetdm-table1" in text


def test_variants_are_settings_that_differ_within_a_ratio():
    def rec(seed, pct, lr, upweight):
        r = _record(seed, 0.5, pct=pct)
        r["job"]["hparams"]["method"] = {"lr": lr, "upweight": upweight}  # upweight: set per ratio by a config
        return r

    records = [rec(0, 0.5, 1, 80), rec(1, 0.5, 2, 80), rec(2, 5.0, 1, 10)]
    table = build_table(records)
    variants = {(r[1], r[4]) for r in table.rows}
    assert variants == {("0.5", "lr=1"), ("0.5", "lr=2"), ("5", "")}


def test_diagnostics_table_has_one_row_per_run_with_its_scalars():
    mined = _record(0, 0.5)
    mined["job"]["method"] = "dcwp"
    mined["diagnostics"] = {"mine": {"mined": {"count": 566, "precision": 1.0, "recall": 0.9464}}}
    clustered = _record(1, 0.5)
    clustered["job"]["method"] = "prusc"
    clustered["diagnostics"] = {"cluster": {"clusters": {"count": 16, "sizes": [3, 5], "bias_purity": 0.8422, "chance_purity": 0.1124}}}
    table = diagnostics_table([clustered, _record(2, 0.5), mined])
    assert table.columns == ["dataset", "conflict %", "method", "seed", "clusters.bias_purity", "clusters.chance_purity",
                             "clusters.count", "mined.count", "mined.precision", "mined.recall"]
    assert table.rows == [["cmnist", "0.5", "dcwp", "0", "", "", "", "566", "1.000", "0.946"],
                          ["cmnist", "0.5", "prusc", "1", "0.842", "0.112", "16", "", "", ""]]
    per_method = diagnostics_tables([clustered, _record(2, 0.5), mined])  # the record without diagnostics: no table
    assert [t.caption for t in per_method] == ["Per-run diagnostics (training split): dcwp", "Per-run diagnostics (training split): prusc"]
    assert [t.columns[4:] for t in per_method] == [["mined.count", "mined.precision", "mined.recall"],
                                                   ["clusters.bias_purity", "clusters.chance_purity", "clusters.count"]]
    assert [t.rows for t in per_method] == [[["cmnist", "0.5", "dcwp", "0", "566", "1.000", "0.946"]],
                                            [["cmnist", "0.5", "prusc", "1", "0.842", "0.112", "16"]]]
    assert per_method[0].notes == [] and per_method[1].notes == table.notes


def test_a_job_stored_before_an_option_existed_counts_as_its_neutral_default(tmp_path):
    """DeNetDM's poe_selection came after its first stored runs: those rank with `last`, and a
    report mixing them with an oracle-test run shows two variants, nothing unlabelled."""
    import json

    from benchmark.reports.report import report_dir

    def rec(seed, selection=None):
        r = _record(seed, 0.6 + seed / 100)
        r["job"]["method"] = "denetdm"
        if selection:
            r["job"]["hparams"]["method"]["poe_selection"] = selection
        return r

    (tmp_path / "jobs").mkdir()
    for i, r in enumerate([rec(0), rec(1), rec(0, "oracle-test")]):
        r["job"]["id"] = f"id{i}"
        (tmp_path / "jobs" / f"{stored_name(r['job'])}.json").write_text(json.dumps(r))
    table = build_table([rec(0), rec(1), rec(0, "oracle-test")])
    last, oracle = "stage 2 from the last stage-1 model", "stage 2 from the stage-1 epoch best on TEST (the code's)"
    assert sorted((r[4], r[5]) for r in table.rows) == [(last, "2"), (oracle, "1")]  # denetdm.yaml `labels`
    text = report_dir(tmp_path)
    assert last in text and oracle in text and " 0 " not in text


def test_variant_labels_are_readable_and_the_default_is_marked():
    from benchmark.grid.jobs import expand_grid
    from benchmark.reports.report import value_text

    assert value_text("prusc", "cluster_at_step", None) == "clusters of the final ERM network"
    assert value_text("prusc", "cluster_at_step", 235) == "clusters at ERM step 235"
    assert value_text("dcwp", "lambda_sparse", 1e-08) == "lambda_sparse=1e-08" and value_text("erm", "flag", True) == "flag=on"
    jobs = expand_grid(["erm"], ["synthetic"], [0], [1], "quick", [("erm.optimizer.lr", [0.001, 0.01])])
    records = []
    for job in jobs:
        rec = _record(0, 0.5, dataset="synthetic", pct=1.0)
        rec["job"] = job.describe()
        records.append(rec)
    variants = sorted(r[4] for r in build_table(records).rows)
    assert variants == ["optimizer.lr=0.001 (default)", "optimizer.lr=0.01"]


def test_a_quick_budget_row_is_never_set_against_the_paper():
    rec = _record(0, 0.5)
    rec["job"]["budget"] = "quick"
    row = build_table([rec]).rows[0]
    assert row[-1] == "– (quick budget)"


def test_the_html_report_writes_nothing_but_its_file(tmp_path):
    from benchmark.reports.html import write_html_report
    from tests.helpers import cli

    out = tmp_path / "res"
    assert cli("--methods", "erm", "--datasets", "synthetic", "--seeds", "0", "--budget", "quick", "--results-dir", str(out),
               "--no-progress").returncode == 0
    before = sorted(p.relative_to(out) for p in out.rglob("*"))
    page = write_html_report(out, tmp_path / "elsewhere" / "page.html")
    assert sorted(p.relative_to(out) for p in out.rglob("*")) == before  # no plots/ folder, nothing else
    assert sorted(p.name for p in (tmp_path / "elsewhere").iterdir()) == ["page.html"] and page.read_text().count("<img") >= 2


def test_report_filters_by_method_ratio_and_protocol(tmp_path):
    import json

    from benchmark.reports.report import report_dir

    def rec(i, method, pct, backbone=None):
        r = _record(i, 0.5, pct=pct)
        r["job"].update(method=method, id=f"id{i}")
        if backbone:
            r["job"]["hparams"]["protocol"] = {"name": "matched", "backbone": backbone}
        return r

    (tmp_path / "jobs").mkdir()
    for r in [rec(0, "erm", 1.0), rec(1, "lff", 1.0), rec(2, "erm", 0.5), rec(3, "erm", 1.0, "cnn")]:
        (tmp_path / "jobs" / f"{stored_name(r['job'])}.json").write_text(json.dumps(r))

    def rows(**only) -> list[tuple[str, str]]:
        text = report_dir(tmp_path, "csv", only=only)
        return sorted((f"{float(line.split(',')[1]):g}", line.split(",")[2]) for line in text.splitlines() if line.startswith("cmnist,"))

    assert rows() == [("0.5", "erm"), ("1", "erm"), ("1", "erm"), ("1", "lff")]
    assert rows(methods=["erm"], conflict_pcts=[1]) == [("1", "erm"), ("1", "erm")]
    assert rows(protocol="matched") == [("1", "erm")] and rows(protocol="published", methods=["lff"]) == [("1", "lff")]
    assert rows(backbone="cnn") == [("1", "erm")]
    with pytest.raises(BenchError, match="no stored result under .* matches methods dcwp"):
        report_dir(tmp_path, only={"methods": ["dcwp"]})


def _record_on(seed, method, model):
    """A record of `method` predicting with network spec `model`."""
    r = _record(seed, 0.5)
    r["job"].update(method=method, id=f"{method}{seed}")
    r["job"]["hparams"]["method"]["model"] = model
    return r


def test_rows_on_different_networks_say_which_beside_each():
    mlp, cnn = {"name": "mlp", "hidden": [100, 100, 100]}, {"name": "cnn", "channels": [64, 128, 256]}
    mixed = build_table([_record_on(0, "erm", mlp), _record_on(1, "erm", mlp), _record_on(0, "lff", cnn)])
    col = mixed.columns.index("network")
    assert {r[2]: r[col] for r in mixed.rows} == {"erm": "mlp 100-100-100", "lff": "cnn 64-128-256"}
    assert any(n.startswith("network = ") for n in mixed.notes) and set(mixed.numeric["network"]) == {"mlp 100-100-100", "cnn 64-128-256"}
    same = build_table([_record_on(0, "erm", mlp), _record_on(0, "lff", mlp)])
    assert "network" not in same.columns and not any(n.startswith("network = ") for n in same.notes)


def test_a_paper_table_names_the_networks_of_its_rows():
    from benchmark.reports.paper import load_paper, note_lines, paper_jobs

    table = load_paper("denetdm-table1")
    paper_jobs(table, [0], "quick")
    line = next(n for n in note_lines(table, {}, "‡") if n.startswith("networks our rows"))
    assert "cnn 64-128-256 (jtt)" in line and "mlp 100-100-100 (groupdro erm lff)" in line and "mlp 100-100-16 (disent lc)" in line


def test_the_html_page_shows_the_network_under_the_method_name():
    from benchmark.reports.html import _table_html

    table = build_table([_record_on(0, "erm", {"name": "mlp", "hidden": [100, 100, 100]}),
                         _record_on(0, "lff", {"name": "cnn", "channels": [64, 128, 256]})])
    page = _table_html(table)
    assert "<th>network</th>" not in page and "<td>lff<br><span class=\"paper net\">cnn 64-128-256</span></td>" in page
    assert page.count("<th>") == len(table.columns) - 1


def test_a_published_and_a_matched_run_are_not_each_others_variants():
    from benchmark.reports.report import frame, variant_labels

    published, matched = _record(0, 0.5), _record(1, 0.5)
    matched["job"]["hparams"]["protocol"] = {"name": "matched", "backbone": "mlp"}
    matched["job"]["id"] = "id-matched"
    df = frame([published, matched], "last")
    assert list(variant_labels(df)) == ["", ""]  # each alone in its protocol: no "backbone=..." label in a legend
