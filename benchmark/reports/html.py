"""One self-contained HTML page of a results directory: every table and figure, images inlined,
openable from disk without a server.

    run_bench.py report RESULTS_DIR --format html [--output FILE] [--selection RULE]

Sections: what is stored (runs, failures, devices); the accuracy table of every run; each
published table (configs/paper) that has at least one of its runs stored, in the paper's layout;
the figures (accuracy vs ratio per dataset, sparsity vs accuracy where runs were pruned, one
per-group heatmap per dataset), drawn in a temporary folder and inlined, so the page is the only
file written (`run_bench.py plot` saves PNG and PDF files); the per-run diagnostics; the failures
with their reasons.
"""
from __future__ import annotations

import base64
import html
import tempfile
import time
from dataclasses import replace
from pathlib import Path
from typing import Any

from benchmark.errors import BenchError
from benchmark.grid.jobs import stored_name
from benchmark.reports.paper import (Cell, PaperTable, available, caption_text, cell_text, column_marks, load_paper, note_lines, paper_jobs,
                             regenerate)
from benchmark.protocol import of_job
from benchmark.reports.report import Table, build_tables, diagnostics_tables, hparams_key
from benchmark.reports.stats import decorate
from benchmark.supervision import declared, label

STYLE = """
body{font-family:system-ui,-apple-system,"Segoe UI",Roboto,sans-serif;margin:2rem auto;max-width:min(96vw,1800px);padding:0 1rem;color:#1f2328;line-height:1.45}
h1{font-size:1.6rem;margin-bottom:.2rem} h2{font-size:1.25rem;margin-top:2.2rem;border-bottom:1px solid #d0d7de;padding-bottom:.3rem}
h3{font-size:1.05rem;margin:1.4rem 0 .4rem} p.meta{color:#59636e;margin-top:0}
.scroll{overflow-x:auto} table{border-collapse:collapse;font-size:.78rem;margin:.4rem 0 .3rem;font-variant-numeric:tabular-nums}
th,td{padding:.25rem .3rem;border-bottom:1px solid #e4e7eb;text-align:right;white-space:nowrap}
td.wrap{white-space:normal;overflow-wrap:anywhere;min-width:8rem;max-width:11rem;text-align:left} td.cell{white-space:normal;overflow-wrap:anywhere;min-width:7rem;max-width:10rem} td.count{white-space:normal;min-width:2.5rem}
th{white-space:normal;background:#f6f8fa;position:sticky;top:0} td:first-child,th:first-child{text-align:left}
tr:nth-child(even) td{background:#fafbfc}
td .paper{color:#59636e;font-size:.92em} td .net{white-space:normal} caption{caption-side:top;text-align:left;font-weight:600;padding:.3rem 0}
ul.notes{color:#59636e;font-size:.82rem;margin-top:.2rem} figure{margin:1rem 0} figure img{max-width:100%;border:1px solid #e4e7eb}
figcaption{color:#59636e;font-size:.85rem} nav a{margin-right:1rem}
"""


def _table_html(table: Table) -> str:
    table = _network_under_method(table)
    head = "".join(f"<th>{html.escape(c).replace('_', '_<wbr>').replace('.', '.<wbr>')}</th>" for c in table.columns)  # long keys may break
    wrap = {j for j, name in enumerate(table.columns) if name in ("variant", "paper unbiased (Δ)")}  # long text: wrapped
    counts = {j for j, name in enumerate(table.columns) if name == "n"}  # "2 (1 failed)" may take two lines
    cell_open = {j: '<td class="wrap">' if j in wrap else '<td class="count">' if j in counts else "<td>" for j in range(len(table.columns))}
    body = "".join("<tr>" + "".join(cell_open[j] + decorate(_cell_html(c), table.marks.get((i, j), set()), "html") + "</td>"
                                    for j, c in enumerate(row)) + "</tr>" for i, row in enumerate(table.rows))
    notes = "".join(f"<li>{html.escape(n)}</li>" for n in table.notes)
    return (f'<div class="scroll"><table><caption>{html.escape(table.caption)}</caption><thead><tr>{head}</tr></thead>'
            f'<tbody>{body}</tbody></table></div><ul class="notes">{notes}</ul>')


SECOND_LINE = "\n"  # a cell's second line (the network under the method's name), grey and smaller on the page


def _cell_html(text: str) -> str:
    first, _, second = text.partition(SECOND_LINE)
    return html.escape(first) + (f'<br><span class="paper net">{html.escape(second)}</span>' if second else "")


def _network_under_method(table: Table) -> Table:
    """The page shows a row's network under its method's name rather than in a column of its own
    (the tables must fit a 1400 px window); the text formats keep the column."""
    if "network" not in table.columns:
        return table
    net, method = table.columns.index("network"), table.columns.index("method")
    rows = [[c + (SECOND_LINE + row[net] if j == method and row[net] else "") for j, c in enumerate(row) if j != net] for row in table.rows]
    marks = {(i, j - (j > net)): m for (i, j), m in table.marks.items() if j != net}
    return replace(table, columns=[c for j, c in enumerate(table.columns) if j != net], rows=rows, marks=marks)


def _paper_html(table: PaperTable, cells: dict[tuple[str, int], Cell], rule: str) -> str:
    head = ("<th>method</th><th>supervision</th>" + "".join(f"<th>{html.escape(c.label)}</th>" for c in table.columns)
            + "<th>avg rank</th>")
    marks, average = column_marks(table, cells)
    body = []
    for method in table.rows:
        tds = [f"<td>{html.escape(method)}</td><td>{html.escape(label(declared(method)))}</td>"]
        for j in range(len(table.columns)):
            ours, paper = cell_text(cells[(method, j)])
            extra = f'<br><span class="paper">({html.escape(paper)})</span>' if paper else ""  # two lines: narrower columns
            tds.append(f'<td class="cell">{decorate(html.escape(ours), marks[(method, j)], "html")}{extra}</td>')
        tds.append(f"<td>{average[method]:.2f}</td>" if method in average else "<td>–</td>")
        body.append("<tr>" + "".join(tds) + "</tr>")
    notes = note_lines(table, cells, "‡")
    caption = caption_text(table, rule)
    return (f'<div class="scroll"><table><caption>{html.escape(caption)}</caption><thead><tr>{head}</tr></thead>'
            f'<tbody>{"".join(body)}</tbody></table></div><ul class="notes">'
            + "".join(f"<li>{html.escape(n)}</li>" for n in notes) + "</ul>")


def _figure(path: Path, caption: str) -> str:
    data = base64.b64encode(path.read_bytes()).decode("ascii")
    return (f'<figure><img alt="{html.escape(caption)}" src="data:image/png;base64,{data}">'
            f"<figcaption>{html.escape(caption)}</figcaption></figure>")


def _figures(records: list[dict[str, Any]], out_dir: Path, rule: str) -> list[str]:
    from benchmark.reports.plots import SWEPT, default_setting, default_setting_but, plot_groups, plot_ratio, plot_sparsity

    parts = []
    defaults = default_setting(records)
    if defaults:
        for path in plot_ratio(defaults, out_dir, rule, all_variants=True):  # already each method's default setting
            if path.suffix == ".png":
                parts.append(_figure(path, f"Accuracy vs bias-conflicting ratio, {path.stem.removeprefix('ratio_')} "
                                           "(each method's default setting; hollow: published)"))
    if any(r.get("sparsity") for r in records):
        swept = any(r.get("sparsity") for r in default_setting_but(records, SWEPT))  # else every setting: what there is
        for path in plot_sparsity(records, out_dir, rule, all_variants=not swept):
            if path.suffix == ".png":
                which = "the default settings' lambda_sparse sweep" if swept else "every setting"
                parts.append(_figure(path, f"Accuracy vs sparsity, {path.stem.removeprefix('sparsity_')} ({which})"))
    for dataset in sorted({r["job"]["dataset"] for r in records}):
        mine = sorted((r for r in records if r["job"]["dataset"] == dataset), key=lambda r: stored_name(r["job"]))
        pick = next((r for r in mine if r["job"]["method"] != "erm"), mine[0])
        for path in plot_groups([pick], out_dir, rule):
            if path.suffix == ".png":
                parts.append(_figure(path, f"Test accuracy per (target, bias) group of one run: {stored_name(pick['job'])}"))
    return parts


def html_report(results_dir: str | Path, rule: str | None = None) -> str:
    """The page's HTML (see the module docstring); nothing is written.
    `rule`: the checkpoint rule of every table; None: `last`, and each paper table its own rule."""
    from benchmark.reports.report import _read_store
    from benchmark.grid.runner import expected_vs_found

    store = _read_store(results_dir)
    records, failures = store.results(), store.failures()
    if not records and not failures:
        raise BenchError(f"{results_dir} holds no finished or failed runs yet")
    root = Path(results_dir)
    failed = [{**f["job"], "hparams": hparams_key(f["job"]), "status": "failed"} for f in failures]
    done = [{**r["job"], "hparams": hparams_key(r["job"]), "status": "done"} for r in records]
    main_rule = rule or "last"
    tables = build_tables(records, main_rule, "test", done + failed)
    sections = [("results", "All runs", "".join(_table_html(t) for t in tables))]
    by_id = {r["job"]["id"]: r for r in records}
    protocols = sorted({of_job(r["job"]) for r in records}, key=lambda p: (p.key is not None, p.label))
    papers = []
    for name in available():
        for protocol in protocols:
            table = load_paper(name)
            try:
                jobs = paper_jobs(table, protocol=protocol.name, backbone=protocol.backbone)
            except BenchError:  # the table's datasets have no such backbone
                continue
            if any(job.id in by_id for job in jobs):
                table_rule = rule or table.selection
                title = name if protocol.key is None else f"{name}, {protocol.label}"
                papers.append(f"<h3>{html.escape(title)}</h3>"
                              + _paper_html(table, regenerate(table, jobs, by_id, expected_vs_found(jobs, store), table_rule), table_rule))
    if papers:
        sections.append(("papers", "Published tables, regenerated", "".join(papers)))
    with tempfile.TemporaryDirectory(prefix="debiasbench-figures-") as scratch:  # inlined: the page writes nothing else
        figures = _figures(records, Path(scratch), main_rule) if records else []
    if figures:
        sections.append(("figures", "Figures", "".join(figures)))
    parts = [_table_html(d) for d in diagnostics_tables(records)]
    if parts:
        sections.append(("diagnostics", "Per-run diagnostics", "".join(parts)))
    if failures:
        items = "".join(f"<li><code>{html.escape(f['job']['method'])} {html.escape(f['job']['dataset'])} "
                        f"{float(f['job']['conflict_pct']):g}% seed {f['job']['seed']}</code>: {html.escape(f['reason'])}</li>"
                        for f in failures)
        sections.append(("failures", f"Failures ({len(failures)})", f"<ul>{items}</ul>"))
    devices = sorted({"{device} ({device_name})".format(**{"device": "?", "device_name": "?", **(r.get("environment") or {})})
                      for r in records})
    meta = (f"{len(records)} finished runs, {len(failures)} failed; devices: {', '.join(devices) or 'n/a'}; "
            f"checkpoint rule: {main_rule}; generated {time.strftime('%Y-%m-%d %H:%M:%S %Z')}")
    nav = "".join(f'<a href="#{key}">{html.escape(title)}</a>' for key, title, _ in sections)
    body = "".join(f'<h2 id="{key}">{html.escape(title)}</h2>{content}' for key, title, content in sections)
    return (f'<!DOCTYPE html><html lang="en"><head><meta charset="utf-8"><meta name="viewport" content="width=device-width">'
            f"<title>DebiasBench: {html.escape(str(root))}</title><style>{STYLE}</style></head><body>"
            f"<h1>DebiasBench results: {html.escape(str(root))}</h1><p class=\"meta\">{html.escape(meta)}</p>"
            f"<nav>{nav}</nav>{body}</body></html>\n")


def write_html_report(results_dir: str | Path, output: str | Path | None = None, rule: str | None = None) -> Path:
    """Write the page (default RESULTS_DIR/report.html) atomically; returns its path."""
    path = Path(output) if output else Path(results_dir) / "report.html"
    try:
        text = html_report(results_dir, rule)
        path.parent.mkdir(parents=True, exist_ok=True)
        tmp = path.with_name(f".{path.name}.tmp")
        tmp.write_text(text, encoding="utf-8")
        tmp.replace(path)
    except OSError as e:
        raise BenchError(f"cannot write the report ({e.strerror}: {e.filename}): pass a writable --output") from None
    return path
