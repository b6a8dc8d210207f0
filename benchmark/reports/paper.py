"""Published tables, regenerated: the grid a paper's table needs, and the table in the paper's own
layout with each cell as "ours mean ± std (paper value, delta)".

A table lives in configs/paper/<name>.yaml:

    title, source        what it is and where its numbers were read
    metric               the table's metric (one of benchmark.metrics.METRIC_NAMES)
    selection, budget    how our runs are chosen and trained (--selection overrides the rule)
    seeds                our seeds
    columns              left to right: {dataset, conflict_pct[, metric][, label]}
    rows                 top to bottom: method -> {published: one cell per column[, from: where the
                         paper took the row from, when it is not the paper's own run]}; a cell is null (unknown: never guessed), a
                         mean, [mean, std], or {value: mean or [mean, std], dataset: the dataset
                         it was really measured on, when that differs from the column's}
    notes                lines printed under the table

Everything is checked when the file is loaded; a mistake is one line naming the file and the key.
A delta is flagged when it lies beyond the paper's reported spread (|ours - paper| > the paper's
std); cells without a published std, or whose number was measured on another dataset, are not judged.
"""
from __future__ import annotations

import io
import math
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import pandas as pd

from benchmark.config import BUDGETS, CONFIG_ROOT, dataset_config, load_yaml, supports
from benchmark.errors import BenchError
from benchmark.grid.jobs import Job, canonical, check_conflict_pct, expand_grid
from benchmark.metrics import METRIC_LABELS, METRIC_NAMES
from benchmark.protocol import Protocol, backbones, network_text, resolve
from benchmark.protocol import caption as protocol_caption
from benchmark.reports.stats import INTERVAL_NOTE, TEST_NOTE, average_ranks, best_and_ties, decorate, fmt_interval, t_interval
from benchmark.reports.tables import Table, render
from benchmark.selection import RULE_CAPTIONS, RULES, require_rule
from benchmark.supervision import NOTE as SUPERVISION_NOTE
from benchmark.supervision import declared, label

PAPER_DIR = CONFIG_ROOT / "paper"
FORMATS = ("table", "markdown", "csv", "latex")


@dataclass(frozen=True)
class Column:
    dataset: str
    conflict_pct: float
    metric: str
    label: str


@dataclass(frozen=True)
class Published:
    mean: float
    std: float | None = None
    other_dataset: str | None = None  # the number was measured on this dataset, not the column's


@dataclass
class PaperTable:
    name: str
    title: str
    source: str
    metric: str
    selection: str
    budget: str
    seeds: list[int]
    columns: list[Column]
    rows: dict[str, list[Published | None]]
    row_sources: dict[str, str] = field(default_factory=dict)
    notes: list[str] = field(default_factory=list)
    protocols: list[Protocol] = field(default_factory=lambda: [Protocol()])  # of our runs (the paper's: its own networks)
    tuned: str = ""  # how our settings were selected across a search (benchmark/grid/tuning.py), if they were
    networks: dict[str, dict[str, list[str]]] = field(default_factory=dict)  # of our runs: {dataset: {network: [methods]}}
    unmatched: dict[str, str] = field(default_factory=dict)  # {dataset: why its columns were not run} (a backbone it lacks)


def available() -> list[str]:
    return sorted(p.stem for p in PAPER_DIR.glob("*.yaml"))


def _cell(raw: Any, where: str) -> Published | None:
    if raw is None:
        return None
    other = None
    if isinstance(raw, dict):
        unknown = set(raw) - {"value", "dataset"}
        if unknown or "value" not in raw:
            raise BenchError(f"{where}: a cell dict takes `value` and optionally `dataset`, got {sorted(raw)}")
        other = raw.get("dataset")
        raw = raw["value"]
    if isinstance(raw, (int, float)) and not isinstance(raw, bool):
        return Published(float(raw), None, other)
    if isinstance(raw, list) and len(raw) == 2 and all(isinstance(v, (int, float)) for v in raw):
        return Published(float(raw[0]), float(raw[1]), other)
    raise BenchError(f"{where}: a cell is null, a number, [mean, std] or {{value: ..., dataset: ...}}, got {raw!r}")


def load_paper(name: str) -> PaperTable:
    """Read and check configs/paper/<name>.yaml."""
    from benchmark.imports import project_packages

    path = PAPER_DIR / f"{name}.yaml"
    if name not in available():  # a name, never a path: nothing outside configs/paper/ is read
        raise BenchError(f"unknown paper table {name!r}; available: {', '.join(available())} (run_bench.py --list)")
    cfg = load_yaml(path)
    where = f"configs/paper/{name}.yaml"
    datasets_pkg, methods_pkg = project_packages()

    def need(key: str) -> Any:
        if key not in cfg:
            raise BenchError(f"{where}: missing `{key}`")
        return cfg[key]

    def check_metric(metric: str, at: str) -> str:
        if metric not in METRIC_NAMES:
            raise BenchError(f"{where}: {at} metric {metric!r} is unknown; metrics: {', '.join(METRIC_NAMES)}")
        return metric

    metric = check_metric(need("metric"), "the table's")
    selection, budget = cfg.get("selection", "last"), cfg.get("budget", "paper")
    if selection not in RULES:
        raise BenchError(f"{where}: selection {selection!r} is unknown; rules: {', '.join(RULES)}")
    if budget not in BUDGETS:
        raise BenchError(f"{where}: budget {budget!r} is unknown; budgets: {', '.join(BUDGETS)}")
    raw_columns, raw_rows = need("columns"), need("rows")
    if not isinstance(raw_columns, list) or not isinstance(raw_rows, dict):
        raise BenchError(f"{where}: `columns` is a list of {{dataset, conflict_pct}} and `rows` a mapping method -> {{published: [...]}}")
    columns = []
    for i, col in enumerate(raw_columns):
        dataset = col.get("dataset") if isinstance(col, dict) else None
        if dataset not in datasets_pkg.DATASETS:
            raise BenchError(f"{where}: column {i + 1} names unknown dataset {dataset!r}; datasets: {', '.join(sorted(datasets_pkg.DATASETS))}")
        if "conflict_pct" not in col:
            raise BenchError(f"{where}: column {i + 1} ({dataset}) has no conflict_pct")
        try:
            pct = float(col["conflict_pct"])
            check_conflict_pct(dataset, pct, dataset_config(dataset))
        except (BenchError, TypeError, ValueError) as e:
            raise BenchError(f"{where}: column {i + 1}: {e}") from None
        col_metric = check_metric(col.get("metric", metric), f"column {i + 1}'s")
        label = col.get("label") or f"{dataset} {pct:g}%" + ("" if col_metric == metric else f" ({METRIC_LABELS[col_metric]})")
        columns.append(Column(dataset, pct, col_metric, label))
    rows, sources = {}, {}
    for method, row in raw_rows.items():
        if method not in methods_pkg.METHODS:
            raise BenchError(f"{where}: row {method!r} is not a registered method ({', '.join(sorted(methods_pkg.METHODS))}); "
                             "name other methods in `notes`")
        cells = row.get("published") if isinstance(row, dict) else None
        if not isinstance(cells, list) or len(cells) != len(columns):
            raise BenchError(f"{where}: row {method!r} needs `published` with one cell per column ({len(columns)}; null where unknown)")
        rows[method] = [_cell(c, f"{where}: row {method!r}, column {j + 1}") for j, c in enumerate(cells)]
        if row.get("from"):
            sources[method] = str(row["from"])
    try:
        seeds = [int(s) for s in cfg.get("seeds", [0, 1, 2])]
    except (TypeError, ValueError):
        raise BenchError(f"{where}: `seeds` is a list of integers, got {cfg.get('seeds')!r}") from None
    return PaperTable(name, str(need("title")), str(need("source")), metric, selection, budget, seeds, columns, rows, sources,
                      [str(n) for n in cfg.get("notes") or []])


def paper_jobs(table: PaperTable, seeds: list[int] | None = None, budget: str | None = None,
               sets: list[tuple[str, list[Any]]] | None = None, user: dict[str, Any] | None = None,
               protocol: str = "published", backbone: str | None = None, search: int = 0) -> list[Job]:
    """Every job the table needs: its rows x its columns x seeds, at the table's budget, under `protocol`
    (recorded on the table for its caption)."""
    by_dataset: dict[str, list[float]] = {}
    for col in table.columns:
        by_dataset.setdefault(col.dataset, [])
        if col.conflict_pct not in by_dataset[col.dataset]:
            by_dataset[col.dataset].append(col.conflict_pct)
    table.unmatched = {}
    if protocol != "published" and backbone is not None:  # a backbone some columns' datasets lack: those columns say so
        table.unmatched = {d: f"not run: {d} has no {backbone} backbone" for d in by_dataset if backbone not in backbones(d)}
        if len(table.unmatched) == len(by_dataset):
            resolve(protocol, backbone, next(iter(by_dataset)))  # the one error line, naming the backbones there are
        by_dataset = {d: pcts for d, pcts in by_dataset.items() if d not in table.unmatched}
    jobs = expand_grid(list(table.rows), list(by_dataset), seeds or table.seeds, None, budget or table.budget, sets, user,
                       pcts_by_dataset=by_dataset, only_supported=True, protocol=protocol, backbone=backbone, search=search)
    table.protocols = sorted({job.protocol for job in jobs}, key=lambda p: p.label) or [Protocol()]
    table.networks = {}
    for job in jobs:
        methods = table.networks.setdefault(job.dataset, {}).setdefault(network_text({"hparams": job.hparams}), [])
        if job.method not in methods:
            methods.append(job.method)
    return jobs


@dataclass
class Cell:
    n: int
    mean: float
    std: float
    status: str  # "" when every seed is done, else e.g. "2 missing" / "1 failed"
    published: Published | None
    values: list[float] = field(default_factory=list)  # ours, one per seed

    @property
    def half(self) -> float:
        """Half-width of the 95 % t interval of our mean (NaN below two seeds)."""
        return t_interval(self.values)[1]

    @property
    def delta(self) -> float:
        return self.mean - self.published.mean if self.published and self.n else math.nan

    @property
    def beyond_spread(self) -> bool:
        p = self.published
        return bool(p and p.std is not None and not p.other_dataset and self.n and abs(self.delta) > p.std)


def regenerate(table: PaperTable, jobs: list[Job], records: dict[str, dict[str, Any]], status: dict[str, str],
               rule: str | None = None) -> dict[tuple[str, int], Cell]:
    """(method, column index) -> Cell, from the stored records of `jobs` (by job id)."""
    rule = rule or table.selection
    cells = {}
    for method, published in table.rows.items():
        for j, col in enumerate(table.columns):
            mine = [job for job in jobs if (job.method, job.dataset, job.conflict_pct) == (method, col.dataset, col.conflict_pct)]
            raw = [require_rule(records[job.id], rule)["test"][col.metric] for job in mine if job.id in records]
            values = [100 * v for v in raw if v is not None and not math.isnan(v)]
            counts: dict[str, int] = {}
            if len(values) < len(raw):
                counts["without this metric"] = len(raw) - len(values)
            for job in mine:
                if job.id not in records:
                    kind = status.get(job.id, "missing").split(":")[0]
                    counts[kind] = counts.get(kind, 0) + 1
            n = len(values)
            series = pd.Series(values, dtype=float)
            state = table.unmatched.get(col.dataset) or _status(counts, bool(mine) or supports(method, col.dataset))
            cells[(method, j)] = Cell(n, float(series.mean()) if n else math.nan, float(series.std(ddof=1)) if n > 1 else 0.0,
                                      state, published[j], values)
    return cells


def _status(counts: dict[str, int], declared: bool) -> str:
    if not declared:
        return "not run: no setting declared"  # configs/methods/<method>.yaml has no section for this dataset or its kind
    return ", ".join(f"{v} {k}" for k, v in sorted(counts.items()))


def cell_text(cell: Cell) -> tuple[str, str]:
    """(ours, paper part) of a cell."""
    ours = "–" if not cell.n else fmt_interval(cell.mean, cell.half if cell.values else math.nan)
    if cell.status:
        ours += f" [{cell.status}]"
    p = cell.published
    if p is None:
        return ours, ""
    mark = "†" if p.other_dataset else ""
    paper = f"{p.mean:.2f}{mark}"
    if cell.n:
        paper += f", {cell.delta:+.2f}"
    return ours, paper


def caption_text(table: PaperTable, rule: str) -> str:
    mine = "" if all(p.key is None for p in table.protocols) else " (the paper's numbers: its own networks)"
    return (f"{table.title}. Ours: mean ± 95 % CI over seeds {', '.join(map(str, table.seeds))} at the {table.budget} budget, "
            f"checkpoint: {RULE_CAPTIONS[rule]}, {protocol_caption(table.protocols)}{mine}; "
            + (f"{table.tuned}; " if table.tuned else "") + "in brackets the paper's value and our difference.")


def note_lines(table: PaperTable, cells: dict[tuple[str, int], Cell], flag: str) -> list[str]:
    """The lines under a regenerated table; `flag` names how cells beyond the paper's spread are marked."""
    notes = [f"source: {table.source}", *[f"{m} row: {s}" for m, s in table.row_sources.items()]]
    others = sorted({c.published.other_dataset for c in cells.values() if c.published and c.published.other_dataset})
    if others:
        notes.append(f"† the paper's number was measured on {', '.join(others)}, not on the column's dataset")
    mixed = {d: n for d, n in sorted(table.networks.items()) if len(n) > 1}
    if mixed:
        notes.append("networks our rows are configured to predict with (rows on different networks compare networks as much as "
                     "methods): " + "; ".join(f"{d}: " + ", ".join(f"{net or '?'} ({' '.join(ms)})" for net, ms in sorted(n.items()))
                                              for d, n in mixed.items()))
    notes.append(f"{flag} = our mean lies beyond the paper's ± std (a gap to the paper, not a ranking); " + summary(table, cells))
    notes += [INTERVAL_NOTE, TEST_NOTE.replace("of its block", "of its column") + "; " + rank_note(table, cells)]
    return notes + [SUPERVISION_NOTE] + table.notes


def ranked_columns(table: PaperTable, cells: dict[tuple[str, int], Cell]) -> list[int]:
    """The columns the average rank reads: those where every row with any result has one, so that
    each ranked row is ranked on the same columns (a row missing a column would otherwise be
    averaged over the columns it happens to have)."""
    ran = {m for (m, _), c in cells.items() if c.n}
    if len(ran) < 2:
        return []
    return [j for j in range(len(table.columns)) if all(cells[(m, j)].n for m in ran)]


def rank_note(table: PaperTable, cells: dict[tuple[str, int], Cell]) -> str:
    """The note line that says which columns the average rank read."""
    columns = ranked_columns(table, cells)
    if not columns:
        return "avg rank: none (no column has a result for every row with results)"
    names = "all" if len(columns) == len(table.columns) else ", ".join(table.columns[j].label for j in columns)
    return (f"avg rank = a row's mean rank over the columns where every row with results has one "
            f"({len(columns)} of {len(table.columns)}: {names})")


def column_marks(table: PaperTable, cells: dict[tuple[str, int], Cell]) -> tuple[dict[tuple[str, int], set[str]], dict[str, float]]:
    """Per column the best method and those not distinguishable from it, the beyond-spread cells,
    and each method's average rank over `ranked_columns` (benchmark/reports/stats.py)."""
    marks: dict[tuple[str, int], set[str]] = {key: set() for key in cells}
    means, ranked = [], set(ranked_columns(table, cells))
    for j in range(len(table.columns)):
        column = {m: cells[(m, j)] for m in table.rows}
        best, ties = best_and_ties({m: c.values for m, c in column.items() if c.values})
        if best is not None:
            marks[(best, j)].add("best")
        for m in ties:
            marks[(m, j)].add("tie")
        if j in ranked:
            means.append({m: c.mean for m, c in column.items() if c.n})
    for key, cell in cells.items():
        if cell.beyond_spread:
            marks[key].add("beyond")
    return marks, average_ranks(means)


def summary(table: PaperTable, cells: dict[tuple[str, int], Cell]) -> str:
    judged = [c for c in cells.values() if c.n and c.published and c.published.std is not None and not c.published.other_dataset]
    # a number measured on another dataset is shown for reference, never judged
    within = sum(not c.beyond_spread for c in judged)
    unjudged = sum(1 for c in cells.values() if c.n and c.published and (c.published.std is None or c.published.other_dataset))
    text = f"{within} of {len(judged)} cells with a published ± std on the same dataset are within it"
    return text + (f"; {unjudged} more have a published mean only or another dataset's number (not judged)" if unjudged else "")


def render_paper(table: PaperTable, cells: dict[tuple[str, int], Cell], fmt: str = "table", rule: str | None = None) -> str:
    """The table in the paper's layout, in one of FORMATS."""
    rule = rule or table.selection
    if fmt == "csv":
        rows = []
        for (method, j), c in cells.items():
            col, p = table.columns[j], c.published
            rows.append({"table": table.name, "method": method, "supervision": declared(method),
                         "protocol": ", ".join(sorted({p.label for p in table.protocols})), "dataset": col.dataset, "conflict_pct": col.conflict_pct,
                         "metric": col.metric, "n": c.n, "ours_mean": c.mean, "ours_std": c.std, "status": c.status,
                         "paper_mean": p.mean if p else math.nan, "paper_std": p.std if p and p.std is not None else math.nan,
                         "paper_dataset": (p.other_dataset or col.dataset) if p else "", "delta": c.delta,
                         "beyond_spread": c.beyond_spread})
        buf = io.StringIO()
        pd.DataFrame(rows).to_csv(buf, index=False, float_format="%.4f")
        return buf.getvalue()
    caption = caption_text(table, rule)
    notes = note_lines(table, cells, "‡")
    marks, average = column_marks(table, cells)
    if fmt == "latex":
        return _latex(table, cells, caption, notes, marks, average)
    grid = []
    for method in table.rows:
        line = [method, label(declared(method))]
        for j in range(len(table.columns)):
            ours, paper = cell_text(cells[(method, j)])
            line.append(decorate(ours, marks[(method, j)], fmt) + (f" ({paper})" if paper else ""))
        grid.append(line + [f"{average[method]:.2f}" if method in average else "–"])
    header = ["method", "supervision"] + [c.label for c in table.columns] + ["avg rank"]
    if fmt == "markdown":
        out = [f"**{caption}**", "", "| " + " | ".join(header) + " |", "|" + "|".join(["---", "---"] + ["---:"] * (len(table.columns) + 1)) + "|"]
        out += ["| " + " | ".join(r) + " |" for r in grid]
        return "\n".join(out + [""] + [f"- {n}" for n in notes])
    if fmt != "table":
        raise BenchError(f"unknown format {fmt!r}; formats: {', '.join(FORMATS)}, html (report only)")
    return render(Table(caption, header, grid, notes), "table")


TEX_SPECIAL = {"\\": r"\textbackslash{}", "&": r"\&", "%": r"\%", "_": r"\_", "#": r"\#", "$": r"\$", "{": r"\{",
               "}": r"\}", "^": r"\^{}", "~": r"\~{}", "±": r"$\pm$", "†": r"$^\dagger$", "–": "--", "Δ": r"$\Delta$"}


def _tex(s: str) -> str:
    """Plain text -> LaTeX, every special character escaped in one pass."""
    return "".join(TEX_SPECIAL.get(ch, ch) for ch in s)


def _latex(table: PaperTable, cells: dict[tuple[str, int], Cell], caption: str, notes: list[str],
           marks: dict[tuple[str, int], set[str]], average: dict[str, float]) -> str:
    """booktabs: columns grouped by dataset under a \\cmidrule, one row per method."""
    groups: list[tuple[str, int]] = []
    for col in table.columns:
        key = col.dataset + ("" if col.metric == table.metric else f" ({METRIC_LABELS[col.metric]})")
        if groups and groups[-1][0] == key:
            groups[-1] = (key, groups[-1][1] + 1)
        else:
            groups.append((key, 1))
    out = [r"\begin{table}[t]", r"\centering", r"\scriptsize", rf"\caption{{{_tex(caption)}}}",
           rf"\label{{tab:{table.name}}}", rf"\begin{{tabular}}{{ll{'c' * len(table.columns)}r}}", r"\toprule"]
    out.append(" & & " + " & ".join(rf"\multicolumn{{{n}}}{{c}}{{{_tex(k)}}}" for k, n in groups) + r" & \\")
    start = 3
    rules = []
    for _, n in groups:
        rules.append(rf"\cmidrule(lr){{{start}-{start + n - 1}}}")
        start += n
    out.append(" ".join(rules))
    out.append("method & supervision & " + " & ".join(_tex(f"{c.conflict_pct:g}%") for c in table.columns) + r" & avg rank \\")
    out.append(r"\midrule")
    for method in table.rows:
        parts = []
        for j in range(len(table.columns)):
            c = cells[(method, j)]
            ours, paper = cell_text(c)
            text = decorate(_tex(ours), marks[(method, j)], "latex")
            parts.append(text + (rf" {{\tiny ({_tex(paper)})}}" if paper else ""))
        rank = f"{average[method]:.2f}" if method in average else "--"
        out.append(_tex(method) + " & " + _tex(label(declared(method))) + " & " + " & ".join(parts) + f" & {rank}" + r" \\")
    out += [r"\bottomrule", r"\end{tabular}"]
    out += [rf"\par\smallskip{{\tiny {_tex(n)}}}" for n in notes]
    out.append(r"\end{table}")
    return "\n".join(out)


def paper_table_text(name: str, results_dir: str | Path, fmt: str = "table", rule: str | None = None,
                     seeds: list[int] | None = None, budget: str | None = None,
                     sets: list[tuple[str, list[Any]]] | None = None, user: dict[str, Any] | None = None,
                     protocol: str = "published", backbone: str | None = None, tuned: str | None = None) -> str:
    """Load table `name`, match the stored results of its grid under `results_dir`, render it.
    `tuned`: each cell's setting picked by that tuning rule among every setting stored for it."""
    from benchmark.grid.runner import expected_vs_found
    from benchmark.grid.store import Store

    table = load_paper(name)
    if seeds:
        table.seeds = list(seeds)
    if budget:
        table.budget = budget
    jobs = paper_jobs(table, table.seeds, table.budget, sets, user, protocol, backbone)
    store = Store(results_dir, create=False) if Path(results_dir).exists() else None
    records = {r["job"]["id"]: r for r in store.results()} if store else {}
    status = expected_vs_found(jobs, store) if store else {}
    if tuned:
        from benchmark.grid.tuning import caption, cell_of, checkpoint_rule, tuned_records

        cells = {cell_of(job.describe())[:5] for job in jobs}  # any dataset options: the note names them
        every = [r for r in records.values() if cell_of(r["job"])[:5] in cells]
        kept, chosen = tuned_records(every, tuned)
        _one_search_per_cell(chosen, results_dir)
        jobs = [Job(r["job"]["method"], r["job"]["dataset"], float(r["job"]["conflict_pct"]), int(r["job"]["seed"]),
                    r["job"]["budget"], canonical(r["job"]["hparams"]), r["job"].get("draw")) for r in kept]
        records, status = {job.id: r for job, r in zip(jobs, kept)}, {}
        rule, table.tuned = checkpoint_rule(tuned), caption(tuned, chosen) if chosen else f"tuned: rule {tuned}, nothing stored to score"
        from benchmark.reports.tuned import paper_notes

        table.notes = table.notes + paper_notes(every, kept, chosen, rule)
    add_record_notes(table, [records[j.id] for j in jobs if j.id in records], rule)
    return render_paper(table, regenerate(table, jobs, records, status, rule), fmt, rule)


def _one_search_per_cell(chosen: dict[tuple, Any], results_dir: str | Path) -> None:
    """A paper cell shows one tuned setting: refuse a store whose searches of one cell ran on different data."""
    from benchmark.reports.tuned import cell_names

    by_cell: dict[tuple, list[tuple]] = {}
    for key in chosen:
        by_cell.setdefault(key[:5], []).append(key)
    for keys in by_cell.values():
        if len(keys) > 1:
            raise BenchError(f"{results_dir} holds searches of one paper cell on different data: "
                             + "; ".join(cell_names(keys).values()) + ". Keep each in its own --results-dir")


def add_record_notes(table: PaperTable, records: list[dict[str, Any]], rule: str | None = None) -> None:
    """Append to the table's notes what its runs say beyond the cells: the dataset options all of them
    set away from the configs (benchmark/reports/data_options.py) and the runs that collapsed under
    `rule` (the table's own when None; benchmark/reports/outliers.py)."""
    from benchmark.reports.data_options import note
    from benchmark.reports.outliers import note as outliers_note
    from benchmark.reports.outliers import runs_frame

    lines = [note(records)]
    if records:
        lines.append(outliers_note(runs_frame(records, rule or table.selection)))
    table.notes = table.notes + [line for line in lines if line]


def paper_numbers() -> tuple[dict[tuple[str, str, float, str], tuple[float, float | None]], dict[str, str]]:
    """Published numbers of every configs/paper table: {(dataset, method, pct, metric): (mean, std)}, {dataset: source}.

    A cell measured on another dataset than its column's is left out; where two tables give the
    same cell, the first table by name wins.
    """
    values: dict[tuple[str, str, float, str], tuple[float, float | None]] = {}
    sources: dict[str, str] = {}
    for name in available():
        table = load_paper(name)
        for method, cells in table.rows.items():
            for col, cell in zip(table.columns, cells):
                key = (col.dataset, method, col.conflict_pct, col.metric)
                if cell is None or cell.other_dataset or key in values:
                    continue
                values[key] = (cell.mean, cell.std)
                sources.setdefault(col.dataset, f"{table.source} [{name}]")
    return values, sources
