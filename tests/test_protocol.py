"""Comparison protocols: `matched` puts every method on one backbone, is part of the job id and of
every caption, and never shares a table with `published`."""
import pytest
import torch

from benchmark.config import supported_datasets
from benchmark.errors import BenchError
from benchmark.grid.jobs import expand_grid
from benchmark.reports.paper import caption_text, load_paper, paper_jobs
from benchmark.reports.report import build_table, build_tables, render_all
from methods import build
from methods.masks import mask_parameters
from methods.models import build_model
from methods.registry import METHODS
from tests.helpers import cli
from tests.test_imports_report import _record


def _grid(**kw):
    return expand_grid(["erm", "dcwp"], ["synthetic"], [0], [1], "quick", **kw)


def test_protocol_and_backbone_change_the_id_and_published_ids_stay_as_before():
    published = _grid()
    assert [j.protocol.label for j in published] == ["published", "published"]
    assert all("protocol" not in j.hparams for j in published)  # ids of stored published results are unchanged
    mlp, cnn = _grid(protocol="matched", backbone="mlp"), _grid(protocol="matched", backbone="cnn")
    ids = [{j.method: j.id for j in grid} for grid in (published, mlp, cnn)]
    for method in ("erm", "dcwp"):
        assert len({grid[method] for grid in ids}) == 3
    # ERM's fixture network is the mlp backbone: same hyperparameters, still its own job
    assert mlp[0].hparams["method"] == published[0].hparams["method"] and mlp[0].id != published[0].id
    assert _grid(protocol="matched")[0].id == mlp[0].id  # the first listed backbone is the default
    assert "matched (cnn)" in cnn[0].label


@pytest.mark.parametrize("backbone", ["mlp", "cnn"])
def test_a_matched_grid_predicts_with_the_same_network_in_every_method(synthetic, backbone):
    methods = [m for m in sorted(METHODS) if supported_datasets(m, ["synthetic"])]
    assert len(methods) >= 10
    jobs = expand_grid(methods, ["synthetic"], [0], [1], "quick", protocol="matched", backbone=backbone)
    spec = {"mlp": {"name": "mlp", "hidden": [100, 100, 100]}, "cnn": {"name": "cnn", "channels": [16, 32, 64]}}[backbone]
    net = build_model(spec, synthetic.info)
    total = sum(p.numel() for p in net.parameters())
    head = sum(p.numel() for p in net.classifier.parameters())
    x = synthetic.splits["test"].x[:8].float() / 255
    counts = {}
    for job in jobs:
        method = build(job.method, synthetic.info, job.hparams["method"], torch.device("cpu"))
        method.distilling = True  # DeNetDM predicts with its stage-2 target once trained
        masks = {id(p) for p in mask_parameters(method.models)}
        method.models.eval()
        method.predict(x).sum().backward()
        counts[job.method] = sum(p.numel() for p in method.models.parameters() if p.grad is not None and id(p) not in masks)
    # DisEnt predicts from two encoders' concatenated features (its published design): two backbones, one wider head
    expected = {m: total for m in methods} | {"disent": 2 * (total - head) + 2 * head - synthetic.info.num_classes}
    assert {m: (counts[m], expected[m]) for m in methods if counts[m] != expected[m]} == {}


def test_every_caption_names_the_protocol_and_a_mixed_table_is_split(tmp_path):
    published = _record(0, 0.5)
    matched = _record(1, 0.6)
    matched["job"]["hparams"]["protocol"] = {"name": "matched", "backbone": "cnn"}
    matched["job"]["id"] = "matched0001"
    with pytest.raises(BenchError, match="one protocol"):
        build_table([published, matched])
    tables = build_tables([matched, published])
    assert [t.caption.split("protocol: ")[1].split(" ")[0] for t in tables] == ["published", "matched,"]
    assert "backbone cnn" in tables[1].caption and "backbone" not in tables[0].caption
    text = render_all(tables, "markdown")
    assert text.count("protocol:") == 2
    csv = render_all(tables, "csv").splitlines()
    assert "protocol" in csv[0].split(",") and any("matched (cnn)" in line for line in csv[1:])
    table = load_paper("denetdm-table1")
    paper_jobs(table, [0], "quick")
    assert "protocol: published" in caption_text(table, "last")


def test_matched_paper_table_caption_and_errors():
    table = load_paper("lff-table1")
    datasets = {c.dataset for c in table.columns}
    without_cnn = datasets - {"cmnist", "cmnist-disent", "synthetic"}
    if without_cnn:  # their columns say why they were not run; the rest are regenerated
        cnn = paper_jobs(table, [0], "quick", protocol="matched", backbone="cnn")
        assert set(table.unmatched) == without_cnn and not {j.dataset for j in cnn} & without_cnn
    jobs = paper_jobs(table, [0], "quick", protocol="matched")
    assert all(j.protocol.key is not None for j in jobs) and table.unmatched == {}  # each dataset's default backbone
    text = caption_text(table, "last")
    assert "protocol: matched" in text and "the paper's numbers: its own networks" in text


def test_bad_protocol_flags_are_one_line(tmp_path):
    for args, expect in ((("--backbone", "cnn"), "--backbone chooses the network of --protocol matched"),
                         (("--protocol", "matched", "--backbone", "vgg"), "has no matched backbone 'vgg': its backbones are mlp, cnn")):
        run = cli("--methods", "erm", "--datasets", "synthetic", "--budget", "quick", "--results-dir", str(tmp_path / "r"), *args)
        assert run.returncode == 2 and run.stderr.count("\n") == 1 and expect in run.stderr, run.stderr


def _pruning_record(method, seed, lam, sparsity, acc, backbone=None):
    rec = _record(seed, acc, pct=1.0)
    rec["job"].update(method=method, id=f"{method}{seed}{lam}{backbone}")
    rec["job"]["hparams"] = {"method": {"lambda_sparse": lam, "model": {"name": "mlp"}}, "dataset": {}}
    if backbone:
        rec["job"]["hparams"]["protocol"] = {"name": "matched", "backbone": backbone}
    rec["sparsity"] = {"overall": sparsity}
    rec["dense_stage"] = "pretrain"
    rec["curve"] = [{"stage": "pretrain", "step": 1, "test": [1, 0, 0, 1]}]
    return rec


def _drawn(monkeypatch, plot, records, tmp_path):
    """The figures a plot function draws: {title: {legend label: colour}}."""
    import matplotlib.colors as mcolors

    from benchmark.reports import figures

    seen = {}

    def keep(fig, out_dir, stem):
        colours = {}
        for ax in fig.axes:
            for artist in [*ax.lines, *ax.containers, *ax.collections]:
                label = artist.get_label()
                if label.startswith("_"):
                    continue
                line = artist.lines[0] if hasattr(artist, "lines") and not hasattr(artist, "get_color") else artist
                colours[label] = mcolors.to_hex(line.get_color())
        seen[stem] = colours
        return []
    monkeypatch.setattr(figures, "save", keep)
    plot(records, tmp_path)
    return seen


def test_a_method_has_one_colour_in_every_figure(monkeypatch, tmp_path):
    from benchmark.reports.palette import METHOD_COLORS, method_color
    from benchmark.reports.plots import plot_ratio, plot_sparsity

    assert len(set(METHOD_COLORS.values())) == len(METHOD_COLORS)  # no two registered methods share a colour
    assert method_color("someone-elses-method") == method_color("someone-elses-method")
    records = [_pruning_record(m, s, lam, sp, acc) for m in ("dcwp", "prusc") for s in (0, 1)
               for lam, sp, acc in ((1e-9, 0.3, 0.6), (1e-8, 0.6, 0.7), (1e-7, 0.9, 0.5))]
    records += [_pruning_record("dcwp", 0, 1e-8, 0.5, 0.8, backbone="cnn")]
    sparsity = _drawn(monkeypatch, lambda r, d: plot_sparsity(r, d, all_variants=True), records, tmp_path)
    assert set(sparsity) == {"sparsity_cmnist_c1", "sparsity_cmnist_c1_matched-cnn"}  # protocols never share a figure
    ratio_records = [{**_record(s, 0.5, pct=p), "job": {**_record(s, 0.5, pct=p)["job"], "method": m, "id": f"{m}{s}{p}"}}
                     for m in ("erm", "prusc", "dcwp") for s in (0, 1) for p in (0.5, 1.0)]
    ratio = _drawn(monkeypatch, lambda r, d: plot_ratio(r, d, all_variants=True), ratio_records, tmp_path)
    for figure in [*sparsity.values(), *ratio.values()]:
        for label, colour in figure.items():
            method = label.split()[0]
            if method in METHOD_COLORS and "unpruned" not in label:
                assert colour == method_color(method), (label, colour)
    assert any(label.startswith("prusc") for label in ratio["ratio_cmnist"])


def test_methods_all_leaves_out_a_validation_split_method_with_a_note():
    notes = []
    jobs = expand_grid(["dfr", "erm"], ["cmnist"], [0], [1], "quick", only_supported=True, notes=notes)
    assert {j.method for j in jobs} == {"erm"}
    assert notes and "dfr" in notes[0] and "cmnist.valid_fraction" in notes[0]
    held_out = expand_grid(["dfr", "erm"], ["cmnist"], [0], [1], "quick", [("cmnist.valid_fraction", [0.1])], only_supported=True)
    assert {j.method for j in held_out} == {"dfr", "erm"}
    with pytest.raises(BenchError, match="valid_fraction"):
        expand_grid(["dfr"], ["cmnist"], [0], [1], "quick")


def test_a_matched_job_identical_to_a_stored_published_run_reuses_it(tmp_path):
    from benchmark.grid.runner import published_twin, run_grid, runtime_options
    from benchmark.grid.store import Store

    store = Store(tmp_path / "r")
    runtime = runtime_options("cpu", max_stage_steps=10)
    published = expand_grid(["erm"], ["synthetic"], [0], [1], "quick")
    assert run_grid(published, store, runtime, progress=False, announce=False)["done"] == 1
    matched = expand_grid(["erm", "lff"], ["synthetic"], [0], [1], "quick", protocol="matched", backbone="mlp")
    cnn = expand_grid(["erm"], ["synthetic"], [0], [1], "quick", protocol="matched", backbone="cnn")
    assert published_twin(matched[0]).id == published[0].id and published_twin(published[0]) is None
    summary = run_grid(matched + cnn, store, runtime, progress=False, announce=False)
    assert summary["done"] == 2 and summary["skipped"] == 1  # lff and erm on cnn train; erm on mlp is its published run
    records = {r["job"]["id"]: r for r in store.results()}
    twin = records[matched[0].id]
    assert twin["twin_of"] == published[0].id and twin["job"]["hparams"]["protocol"]["backbone"] == "mlp"
    assert twin["metrics"] == records[published[0].id]["metrics"]
    assert "twin_of" not in records[cnn[0].id]
