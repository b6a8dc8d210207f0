"""`report DIR --against OTHER`: two results directories cell by cell, judged with hand-computed
means, differences and Welch's test."""
import json

import pytest

from benchmark.errors import BenchError
from benchmark.grid.jobs import stored_name
from benchmark.reports.compare import compare_table
from tests.helpers import cli
from tests.test_imports_report import _record


def _store(root, cells: dict[tuple[str, float], list[float]], lr: float = 1) -> None:
    """A results directory holding one ERM run per value: {(method, ratio): [unbiased accuracy per seed]}."""
    (root / "jobs").mkdir(parents=True)
    for (method, pct), values in cells.items():
        for seed, value in enumerate(values):
            r = _record(seed, value, pct=pct)
            r["job"].update(method=method, id=f"{method}{pct}{seed}{lr}")
            r["job"]["hparams"]["method"]["lr"] = lr
            (root / "jobs" / f"{stored_name(r['job'])}.json").write_text(json.dumps(r))


def test_cells_on_both_sides_get_means_difference_and_welch_p(tmp_path):
    _store(tmp_path / "a", {("erm", 1.0): [0.50, 0.52, 0.54], ("lff", 1.0): [0.70, 0.71, 0.72], ("erm", 5.0): [0.8]})
    _store(tmp_path / "b", {("erm", 1.0): [0.50, 0.52, 0.54], ("lff", 1.0): [0.60, 0.61, 0.62], ("erm", 2.0): [0.6, 0.6]})
    table = compare_table(tmp_path / "a", tmp_path / "b")
    rows = {(r[2], r[1]): r for r in table.rows}
    assert sorted(rows) == [("erm", "1"), ("lff", "1")]                  # 5 % and 2 % are on one side only
    erm, lff = rows[("erm", "1")], rows[("lff", "1")]
    assert erm[6] == erm[8] == "52.00 ± 4.97"                            # t(0.975, 2) 4.303 * s 2 / sqrt(3)
    assert erm[9] == "+0.00" and erm[10] == "1.000"
    assert lff[9] == "+10.00" and float(lff[10]) < 1e-4                  # 10 points apart, spread 1: t = 12.2, df 4
    assert table.marks == {(list(rows).index(("lff", "1")), 10): {"differs"}}
    notes = " ".join(table.notes)
    assert "2 cells on both sides, 2 tested: 1 differ" in notes and "1 cell only in ours, 1 cell only in theirs" in notes


def test_a_cell_without_the_metric_on_a_side_is_counted_apart(tmp_path):
    _store(tmp_path / "a", {("erm", 1.0): [0.5, 0.6], ("lff", 1.0): [0.7, 0.8]})
    _store(tmp_path / "b", {("erm", 1.0): [0.5, 0.6], ("lff", 1.0): [0.7, 0.8]})
    for path in (tmp_path / "b" / "jobs").glob("lff*.json"):  # stored before worst-group existed
        record = json.loads(path.read_text())
        record["metrics"]["last"]["test"]["worst_group_acc"] = None
        path.write_text(json.dumps(record))
    table = compare_table(tmp_path / "a", tmp_path / "b", metric="worst_group_acc")
    assert [r[2] for r in table.rows] == ["erm"] and "left out: 1 cell without worst-group on a side." in table.notes


def test_settings_are_compared_only_with_the_same_settings(tmp_path):
    _store(tmp_path / "a", {("erm", 1.0): [0.5, 0.6]}, lr=1)
    _store(tmp_path / "b", {("erm", 1.0): [0.5, 0.6]}, lr=2)
    with pytest.raises(BenchError, match="share no cell"):
        compare_table(tmp_path / "a", tmp_path / "b")


def test_the_command_line_compares_and_refuses_what_does_not_apply(tmp_path):
    _store(tmp_path / "a", {("erm", 1.0): [0.50, 0.52]})
    _store(tmp_path / "b", {("erm", 1.0): [0.40, 0.44]})
    ok = cli("report", str(tmp_path / "a"), "--against", str(tmp_path / "b"), "--metric", "worst_group_acc", "--format", "csv")
    assert ok.returncode == 0, ok.stderr
    header, line = ok.stdout.splitlines()[:2]
    assert header.startswith("dataset,conflict_pct,method") and ",worst_group_acc,last,2,51.0000," in line and ",9.0000," in line
    for extra in (["--paper", "denetdm-table1"], ["--format", "html"], ["--tuned", "val-accuracy"]):
        bad = cli("report", str(tmp_path / "a"), "--against", str(tmp_path / "b"), *extra)
        assert bad.returncode == 2 and bad.stderr.startswith("error: --against") and bad.stderr.count("\n") == 1
    both = cli("--methods", "erm", "--show-config", "--dry-run")
    assert both.returncode == 2 and both.stderr.startswith("error: --show-config") and both.stderr.count("\n") == 1
    missing = cli("report", str(tmp_path / "a"), "--against", str(tmp_path / "nowhere"))
    assert missing.returncode == 2 and "holds no results" in missing.stderr


def test_the_api_compares_with_filters(tmp_path):
    from benchmark import api

    _store(tmp_path / "a", {("erm", 1.0): [0.50, 0.52], ("lff", 1.0): [0.6, 0.7]})
    _store(tmp_path / "b", {("erm", 1.0): [0.40, 0.44], ("lff", 1.0): [0.6, 0.7]})
    text = api.load(tmp_path / "a").compare(tmp_path / "b", methods=["lff"], fmt="markdown")
    assert "| lff |" in text and "| erm |" not in text and "+0.00" in text
    with pytest.raises(BenchError, match="unknown table filter"):
        api.load(tmp_path / "a").compare(tmp_path / "b", method="lff")
