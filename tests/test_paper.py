"""Published tables: configs checked on load, the paper's layout with deltas, the HTML page."""
from html.parser import HTMLParser

import pytest
import yaml

from benchmark.reports import paper
from benchmark.errors import BenchError
from benchmark.reports.html import html_report
from benchmark.grid.store import Store
from benchmark.reports.stats import INTERVAL_NOTE, TEST_NOTE
from benchmark.supervision import NOTE as SUPERVISION_NOTE
from tests.helpers import cli

TINY = {
    "title": "Tiny table", "source": "A paper, Table 9", "metric": "unbiased_acc", "selection": "last", "budget": "quick",
    "seeds": [0, 1],
    "columns": [{"dataset": "synthetic", "conflict_pct": 1}, {"dataset": "synthetic", "conflict_pct": 1, "metric": "conflicting_acc"}],
    "rows": {"erm": {"published": [[55.0, 1.0], None], "from": "Another paper, Table 1"},
             "lff": {"published": [71.5, {"value": [40.0, 0.5], "dataset": "cmnist"}]}},
}
# (method, seed) -> (unbiased, conflicting) in percent; lff seed 1 is not stored
STORED = {("erm", 0): (50.0, 30.0), ("erm", 1): (54.0, 34.0), ("lff", 0): (70.0, 60.0)}


@pytest.fixture
def paper_dir(tmp_path, monkeypatch):
    folder = tmp_path / "paper"
    folder.mkdir()
    monkeypatch.setattr(paper, "PAPER_DIR", folder)
    return folder


def write(folder, name, cfg):
    (folder / f"{name}.yaml").write_text(yaml.safe_dump(cfg))


def fake_results(table, root, stored=None):
    """Stored records for the table's jobs, complete enough for tables and figures. `stored`:
    (method, seed, conflict %) -> (unbiased, conflicting), instead of STORED at every ratio."""
    store, values = Store(root), STORED if stored is None else stored
    for job in paper.paper_jobs(table):
        key = (job.method, job.seed) if stored is None else (job.method, job.seed, job.conflict_pct)
        if key not in values:
            continue
        unbiased, conflicting = (v / 100 for v in values[key])
        test = {"unbiased_acc": unbiased, "conflicting_acc": conflicting, "worst_group_acc": conflicting, "aligned_acc": 0.9,
                "overall_acc": 0.8, "group_acc": [0.9, conflicting, conflicting, 0.9]}
        store.write_result(job, {"job": job.describe(), "status": "done", "metrics": {"last": {"test": test}},
                                 "group_shape": [2, 2], "group_total": {"test": [10, 10, 10, 10]},
                                 "aligned_groups": [True, False, False, True], "curve": [], "environment": {"device": "cpu"}})
    return store


def test_every_shipped_table_loads_and_names_its_grid():
    assert {"denetdm-table1", "suite-cmnist", "lff-table1", "disent-table1", "dcwp-table1", "prusc-table1"} <= set(paper.available())
    for name in paper.available():
        table = paper.load_paper(name)
        assert table.rows and all(len(cells) == len(table.columns) for cells in table.rows.values())
        assert paper.paper_jobs(table)
    suite = paper.load_paper("suite-cmnist")
    assert list(suite.rows) == ["erm", "lff", "disent", "dcwp", "prusc", "denetdm"]
    assert len(paper.paper_jobs(suite)) == 6 * 4 * 3


@pytest.mark.parametrize("change,message", [
    (lambda c: c["rows"].update({"no such method!": {"published": [1, 2]}}), "row 'no such method!' is not a registered method"),
    (lambda c: c["columns"][0].update(dataset="mnist"), "column 1 names unknown dataset 'mnist'"),
    (lambda c: c.update(metric="accuracy"), "metric 'accuracy' is unknown"),
    (lambda c: c["columns"][1].update(metric="f1"), "column 2's metric 'f1' is unknown"),
    (lambda c: c["rows"]["erm"].update(published=[1.0]), "needs `published` with one cell per column (2"),
    (lambda c: c["rows"]["erm"].update(published=[[1, 2, 3], None]), "a cell is null, a number, [mean, std]"),
    (lambda c: c.update(selection="best"), "selection 'best' is unknown"),
    (lambda c: c.pop("columns"), "missing `columns`"),
])
def test_a_bad_paper_config_is_one_clear_error(paper_dir, change, message):
    cfg = yaml.safe_load(yaml.safe_dump(TINY))
    change(cfg)
    write(paper_dir, "bad", cfg)
    with pytest.raises(BenchError, match="configs/paper/bad.yaml: .*" + message.replace("[", r"\[").replace("(", r"\(")):
        paper.load_paper("bad")
    with pytest.raises(BenchError, match="unknown paper table 'nope'; available: bad"):
        paper.load_paper("nope")


def test_the_average_rank_reads_only_the_columns_every_row_has(paper_dir, tmp_path):
    cfg = {**TINY, "columns": [{"dataset": "synthetic", "conflict_pct": 1}, {"dataset": "synthetic", "conflict_pct": 5}],
           "rows": {"erm": {"published": [55.0, 60.0]}, "lff": {"published": [71.5, 75.0]}}}
    write(paper_dir, "gap", cfg)
    # lff ran at 1 % only: averaged over its own columns erm would get (2 + 1) / 2 = 1.5 from a column lff never ran
    stored = {("erm", s, pct): (50.0 + s + pct, 30.0) for s in (0, 1) for pct in (1, 5)}
    stored |= {("lff", s, 1): (70.0 + s, 60.0) for s in (0, 1)}
    fake_results(paper.load_paper("gap"), tmp_path / "res", stored)
    lines = paper.paper_table_text("gap", tmp_path / "res", "markdown").splitlines()
    assert lines[4].startswith("| erm |") and lines[4].endswith("| 2.00 |")
    assert lines[5].startswith("| lff |") and lines[5].endswith("| 1.00 |")
    assert any("every row with results has one (1 of 2: synthetic 1%)" in line for line in lines)


def test_table_layout_and_deltas_match_the_hand_written_table(paper_dir, tmp_path):
    write(paper_dir, "tiny", TINY)
    fake_results(paper.load_paper("tiny"), tmp_path / "res")
    text = paper.paper_table_text("tiny", tmp_path / "res", "markdown")
    expected = "\n".join([
        "**Tiny table. Ours: mean ± 95 % CI over seeds 0, 1 at the quick budget, checkpoint: final model (rule: last), "
        "protocol: published (each method with its paper's networks and settings); in brackets the paper's value and our difference.**",
        "",
        "| method | supervision | synthetic 1% | synthetic 1% (conflicting) | avg rank |",
        "|---|---|---:|---:|---:|",
        # erm: 50 and 54, mean 52 ± t(0.975, 1) * 2.83 / sqrt(2) = 25.41; beyond the paper's spread (‡), not the best:
        # lff's single seed has the higher mean in both columns (bold), untested (one seed)
        "| erm | none | 52.00 ± 25.41 ‡ (55.00, -3.00) | 32.00 ± 25.41 | 2.00 |",
        "| lff | none | **70.00 [1 missing]** (71.50, -1.50) | **60.00 [1 missing]** (40.00†, +20.00) | 1.00 |",
        "",
        "- source: A paper, Table 9",
        "- erm row: Another paper, Table 1",
        "- † the paper's number was measured on cmnist, not on the column's dataset",
        "- ‡ = our mean lies beyond the paper's ± std (a gap to the paper, not a ranking); 0 of 1 cells with a published ± std "
        "on the same dataset are within it; 2 more have a published mean only or another dataset's number (not judged)",
        f"- {INTERVAL_NOTE}",
        f"- {TEST_NOTE.replace('of its block', 'of its column')}; avg rank = a row's mean rank over the columns where every "
        "row with results has one (2 of 2: all)",
        f"- {SUPERVISION_NOTE}",
    ])
    assert text == expected
    csv = paper.paper_table_text("tiny", tmp_path / "res", "csv").splitlines()
    assert csv[0].startswith("table,method,supervision,protocol,dataset,conflict_pct,metric,n,ours_mean,ours_std,status,paper_mean")
    assert csv[1].endswith(",-3.0000,True")
    latex = paper.paper_table_text("tiny", tmp_path / "res", "latex")
    assert r"\toprule" in latex and r"\multicolumn{1}{c}{synthetic}" in latex and r"52.00 $\pm$ 25.41 $^\ddagger$" in latex
    assert r"\textbf{70.00 [1 missing]}" in latex and r"\textbf{52.00" not in latex  # beyond the spread is never bold


class Tags(HTMLParser):
    def __init__(self):
        super().__init__()
        self.tags, self.images, self.classes = [], [], []

    def handle_starttag(self, tag, attrs):
        attrs = dict(attrs)
        self.tags.append(tag)
        if tag == "img":
            self.images.append(attrs["src"])
        if attrs.get("class"):
            self.classes.append(attrs["class"])


def test_html_report_holds_every_table_and_figure(paper_dir, tmp_path):
    import base64

    write(paper_dir, "tiny", TINY)
    fake_results(paper.load_paper("tiny"), tmp_path / "res")
    page = html_report(tmp_path / "res")
    parsed = Tags()
    parsed.feed(page)
    assert parsed.tags.count("table") == 2  # all runs + the tiny paper table
    assert "52.00 ± 25.41 ‡" in page and "<b>52.00" not in page  # erm's unbiased cell: beyond the spread, not bold
    assert "<b>70.00 [1 missing]</b>" in page  # the best of its column
    assert len(parsed.images) == 2  # accuracy vs ratio, one per-group heatmap
    for src in parsed.images:
        assert src.startswith("data:image/png;base64,")
        assert base64.b64decode(src.split(",", 1)[1])[:4] == b"\x89PNG"
    assert 'id="papers"' in page and 'id="figures"' in page and "Tiny table" in page


def test_paper_flag_runs_the_missing_jobs_and_list_names_the_tables(tmp_path):
    listing = cli("--list")
    assert "suite-cmnist" in listing.stdout and "denetdm-table1" in listing.stdout
    bad = cli("--paper", "nope", "--results-dir", str(tmp_path / "r"))
    assert bad.returncode == 2 and bad.stderr.startswith("error: unknown paper table 'nope'")
    sweep = cli("--paper", "suite-cmnist", "--set", "optimizer.lr=0.1,0.01", "--results-dir", str(tmp_path / "r"))
    assert sweep.returncode == 2 and "--paper regenerates one setting per cell" in sweep.stderr
    abbreviated = cli("--paper", "suite-cmnist", "--seed", "1", "--results-dir", str(tmp_path / "r"))
    assert abbreviated.returncode == 2 and "unrecognized arguments: --seed" in abbreviated.stderr
    report = cli("report", str(tmp_path / "missing"), "--paper", "suite-cmnist")
    assert report.returncode == 0 and "[3 missing]" in report.stdout and "(35.34)" in report.stdout


def test_paper_run_trains_only_the_missing_jobs_then_prints_the_table(paper_dir, tmp_path, capsys):
    from benchmark.cli import main

    write(paper_dir, "tiny", {**TINY, "seeds": [0]})
    args = ["--paper", "tiny", "--results-dir", str(tmp_path / "res"), "--no-progress", "--set", "steps=40", "--format", "markdown"]
    assert main(args) == 0
    first = capsys.readouterr()
    assert "2 jobs, 2 to run" in first.err and "| erm | " in first.out and "(55.00, " in first.out
    assert main(args) == 0
    assert "2 jobs, 0 to run (2 already in the store)" in capsys.readouterr().err


def test_a_matched_backbone_some_columns_lack_leaves_those_columns_not_run():
    from benchmark.reports.paper import load_paper, paper_jobs, regenerate

    table = load_paper("denetdm-table1")
    jobs = paper_jobs(table, [0], protocol="matched", backbone="mlp")  # Colored MNIST has an mlp, Corrupted CIFAR-10 not
    assert {j.dataset for j in jobs} == {"cmnist"} and table.unmatched == {"cifar10c": "not run: cifar10c has no mlp backbone"}
    cells = regenerate(table, jobs, {}, {})
    cifar = [c for (m, j), c in cells.items() if table.columns[j].dataset == "cifar10c"]
    assert cifar and all(c.status == "not run: cifar10c has no mlp backbone" for c in cifar)
    with pytest.raises(BenchError, match="dataset cmnist has no matched backbone 'resnet50': its backbones are mlp, cnn"):
        paper_jobs(load_paper("denetdm-table1"), [0], protocol="matched", backbone="resnet50")
