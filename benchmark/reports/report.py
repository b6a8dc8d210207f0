"""Accuracy tables from stored results: mean ± std over seeds per (dataset, conflict_pct, method).

Every table says which split, which checkpoint-selection rule and which budget produced it, and
puts the published number (configs/paper/*.yaml) beside ours where one exists. Cells that were
expected but have no result say why (failed, missing) instead of staying silently empty.
"""
from __future__ import annotations

import io
import json
import math
from collections import defaultdict
from dataclasses import replace
from pathlib import Path
from typing import Any

import pandas as pd

from benchmark.training.compute import totals as compute_totals
from benchmark.errors import BenchError
from benchmark.grid.jobs import canonical, complete_hparams, is_default_run
from benchmark.metrics import METRIC_LABELS, METRIC_NAMES
from benchmark.protocol import caption as protocol_caption
from benchmark.protocol import network_text, of_job
from benchmark.selection import RULE_CAPTIONS, require_rule
from benchmark.reports.data_options import note as data_options_note
from benchmark.reports.data_options import options_of
from benchmark.reports.labels import flatten, value_text
from benchmark.reports.outliers import device_text
from benchmark.reports.outliers import note as outliers_note
from benchmark.reports.paper import paper_numbers
from benchmark.reports.stats import INTERVAL_NOTE, TEST_NOTE, average_ranks, best_and_ties, fmt_interval, ranks, t_interval
from benchmark.reports.tables import Table, render
from benchmark.supervision import NOTE as SUPERVISION_NOTE
from benchmark.supervision import declared, label, of_record



def hparams_key(job: dict[str, Any]) -> str:
    """A stored job's hyperparameters as one comparable string, options it predates at their neutral defaults."""
    return canonical(complete_hparams(job["method"], job["hparams"]))


def frame(records: list[dict[str, Any]], rule: str, split: str = "test") -> pd.DataFrame:
    """One row per job: its identity, its variant (hyperparameters) and its metrics in percent."""
    rows = []
    for rec in records:
        job = rec["job"]
        metrics = require_rule(rec, rule)
        if split not in metrics:
            raise BenchError(f"results of {job['dataset']} have no {split!r} split")
        m = metrics[split]
        row = {
            "dataset": job["dataset"], "conflict_pct": float(job["conflict_pct"]), "method": job["method"],
            "supervision": of_record(rec), "protocol": of_job(job).label, "network": network_text(job), "seed": job["seed"],
            "budget": job["budget"], "data": canonical(options_of(job)),
            "hparams": hparams_key(job), "is_default": is_default_run(job),
            "draw": job.get("draw"),
            **{name: (100 * m[name] if m[name] is not None else math.nan) for name in METRIC_NAMES},
            "sparsity": 100 * rec["sparsity"]["overall"] if rec.get("sparsity") else math.nan,
            "wall_seconds": rec.get("wall_seconds", math.nan), **compute_totals(rec), "device": device_text(rec),
        }
        rows.append(row)
    return pd.DataFrame(rows)


def variant_labels(df: pd.DataFrame) -> pd.Series:
    """A short label per job's hyperparameter setting: the budget when budgets differ, and the keys
    whose values differ between settings of the same (dataset, conflict_pct, method, protocol, budget), in the
    words of the method's YAML `labels` section where it has them; a value a config sets per ratio
    (DCWP's lambda_upweight) is therefore not a variant. Where a cell holds several settings, the one
    the current configs define is marked "(default)". A cell whose settings are all draws of a
    `--search` labels them by draw ("draw 3", "draw 0 (defaults)"): their values would fill a page."""
    labels = pd.Series("", index=df.index, dtype=object)
    cell = ["dataset", "conflict_pct", "method"] + (["protocol"] if "protocol" in df else [])  # protocols never share a table or figure
    for (_, _, method, *_), group in df.groupby(cell):
        draws = search_draws(group)
        if draws is not None:
            for index, h in group["hparams"].items():
                labels[index] = f"draw {draws[h]}" + (" (defaults)" if draws[h] == 0 else "")
            continue
        budgets = dict(zip(group["hparams"], group["budget"]))
        flat = {h: flatten(_with_data_defaults(json.loads(h), group["dataset"].iloc[0])) for h in budgets}
        keys: set[str] = set()
        for budget in set(budgets.values()):
            same = [flat[h] for h, b in budgets.items() if b == budget]
            keys |= {k for v in same for k in v if len({str(w.get(k)) for w in same}) > 1}
        several = len(budgets) > 1
        defaults = set(group.loc[group["is_default"], "hparams"]) if "is_default" in group else set()
        for index, h in group["hparams"].items():
            parts = [f"budget={budgets[h]}"] if len(set(budgets.values())) > 1 else []
            parts += [value_text(method, k.split(".", 1)[1], flat[h].get(k)) for k in sorted(keys)]
            labels[index] = ", ".join(parts) + (" (default)" if several and h in defaults and parts else "")
    return labels


def _with_data_defaults(hparams: dict[str, Any], dataset: str) -> dict[str, Any]:
    """Hyperparameters with each dataset option they do not set at its loader's default (a run stored
    before `valid_bias` existed reads valid_bias=even, not none)."""
    return {**hparams, "dataset": options_of({"dataset": dataset, "hparams": hparams})}


def search_draws(group: pd.DataFrame) -> dict[str, int] | None:
    """{setting: its search draw} when a cell holds several settings and every one was stored by a
    `--search` (a setting run again without one keeps its draw), else None."""
    if "draw" not in group or group["hparams"].nunique() < 2:
        return None
    draws: dict[str, int] = {}
    for h, draw in zip(group["hparams"], group["draw"]):
        if draw is not None and not pd.isna(draw):
            draws[h] = min(int(draw), draws.get(h, int(draw)))
    return draws if set(draws) == set(group["hparams"]) else None


SPLIT_WORDS = {"test": "Test", "valid": "Validation", "valid_even": "Validation (its evenly biased half, valid_bias both)"}
COMPUTE_COLUMNS = {"steps": "steps", "forward (M samples)": "forward_samples", "train min": "train_seconds"}


def _compute_cell(key: str, value: float) -> str:
    if math.isnan(value):
        return "–"
    if key == "steps":
        return f"{value:,.0f}"
    return f"{value / 1e6:.2f}" if key == "forward_samples" else f"{value / 60:.1f}"


def _compare_rows(rows: list[list[str]], seeds_of: dict[int, dict[str, list[float]]], columns: list[str],
                  numeric: list[dict[str, Any]]) -> tuple[dict[tuple[int, int], set[str]], dict[str, float]]:
    """Within each (dataset, ratio) block: per metric column the best row and the rows not
    distinguishable from it (benchmark/reports/stats.py), each row's rank by unbiased accuracy (written
    into its `rank` cell); and each row's average rank over the blocks."""
    marks: dict[tuple[int, int], set[str]] = defaultdict(set)
    blocks: dict[tuple[str, str], list[int]] = defaultdict(list)
    for i, row in enumerate(rows):
        blocks[(row[0], row[1])].append(i)
    rank_col = columns.index("rank")
    per_block = []
    for members in blocks.values():
        for metric in METRIC_NAMES:
            col = columns.index(METRIC_LABELS[metric])
            best, ties = best_and_ties({i: seeds_of[i][metric] for i in members if seeds_of.get(i, {}).get(metric)})
            if best is not None:
                marks[(best, col)].add("best")
            for i in ties:
                marks[(i, col)].add("tie")
        means = {i: numeric[i]["unbiased_acc_mean"] for i in members}
        order = ranks(means)
        for i, rank in order.items():
            rows[i][rank_col] = f"{rank:g}"
            numeric[i]["rank"] = rank
        per_block.append({_row_name(rows[i], columns): means[i] for i in order})  # the means ranked above
    if len(per_block) < 2:
        return dict(marks), {}  # one block: its rank column says it all
    in_every = set.intersection(*(set(block) for block in per_block))
    averages = {k: v for k, v in average_ranks(per_block).items() if k in in_every}
    return dict(marks), averages if len(averages) > 1 else {}  # one row in every block: nothing to rank


def _row_name(row: list[str], columns: list[str]) -> str:
    variant = row[columns.index("variant")] if "variant" in columns else ""
    return row[2] + (f" ({variant})" if variant else "")


def build_table(records: list[dict[str, Any]], rule: str = "last", split: str = "test",
                expected: list[dict[str, Any]] | None = None, compute: bool = False, tuned: str = "",
                tuning: dict[tuple, Any] | None = None) -> Table:
    """Aggregate records (and the jobs expected but absent, with their status) into a Table.
    All of one protocol: `build_tables` splits a mix into one table per protocol. `tuning`: a
    tuned table's chosen draws and defaults per cell (benchmark/reports/tuned.py), as columns."""
    protocols = {of_job(r["job"]) for r in records} | {_expected_protocol(e) for e in expected or []}
    if len({p.label for p in protocols}) > 1:
        raise BenchError("one table compares one protocol: build_tables gives a table per protocol")
    df = frame(records, rule, split) if records else pd.DataFrame(columns=["dataset", "conflict_pct", "method", "hparams", "budget", "seed"])
    df["variant"] = variant_labels(df) if len(df) else []
    labels = {(r.dataset, float(r.conflict_pct), r.method, r.hparams): r.variant for r in df.itertuples()}
    status: dict[tuple, dict[str, int]] = defaultdict(lambda: defaultdict(int))
    for e in expected or []:
        cell = (e["dataset"], float(e["conflict_pct"]), e["method"])
        status[(*cell, labels.get((*cell, e["hparams"]), ""))][e["status"].split(":")[0]] += 1
    paper, sources = paper_numbers()
    show_sparsity = bool(len(df)) and df["sparsity"].notna().any()
    show_variant = bool(len(df)) and (df["variant"] != "").any()
    show_network = bool(len(df)) and df["network"].nunique() > 1  # rows on different networks: say which, beside each
    metric_cols = [METRIC_LABELS[m] for m in METRIC_NAMES]
    columns = ["dataset", "conflict %", "method", "supervision"] + (["network"] if show_network else [])
    columns += (["variant"] if show_variant else []) + ["n", "rank"] + metric_cols
    columns += (["sparsity"] if show_sparsity else []) + (list(COMPUTE_COLUMNS) if compute else [])
    columns += (["draw", "untuned unbiased (Δ)"] if tuning is not None else []) + ["paper unbiased (Δ)"]
    table_protocol = next(iter(protocols)).label if protocols else "published"
    keys = set(status)
    if len(df):
        keys |= set(df.groupby(["dataset", "conflict_pct", "method", "variant"]).groups)
    rows, numeric = [], []
    seeds_of: dict[int, dict[str, list[float]]] = {}
    if tuning is not None:
        from benchmark.reports.tuned import cells_text, tuned_numbers
    for key in sorted(keys, key=lambda k: (k[0], k[1], k[2], k[3])):
        dataset, pct, method, variant = key
        g = df[(df["dataset"] == dataset) & (df["conflict_pct"] == pct) & (df["method"] == method) & (df["variant"] == variant)] if len(df) else df
        n = len(g)
        stat = {m: (float(g[m].mean()) if n else math.nan, float(g[m].std(ddof=1)) if n > 1 else 0.0) for m in METRIC_NAMES + ("sparsity",)}
        interval = {m: t_interval(g[m]) if n else (math.nan, math.nan) for m in METRIC_NAMES + ("sparsity",)}
        seeds_of[len(rows)] = {m: [float(v) for v in g[m] if not math.isnan(v)] for m in METRIC_NAMES} if n else {}
        level = g["supervision"].iloc[0] if n else declared(method)
        network = " / ".join(sorted(set(g["network"]) - {""})) if n else ""
        row = [dataset, f"{pct:g}", method, label(level)] + ([network] if show_network else []) + ([variant] if show_variant else [])
        counts = status.get(key, {})
        missing = {k: v for k, v in counts.items() if k != "done" and v}
        row.append(f"{n}" + ("" if not missing else " (" + ", ".join(f"{v} {k}" for k, v in sorted(missing.items())) + ")"))
        row.append("")  # rank: filled in once the block is known
        row += [fmt_interval(*interval[m]) for m in METRIC_NAMES]
        if show_sparsity:
            row.append(fmt_interval(*interval["sparsity"]))
        spent = {k: float(g[k].mean()) if n else math.nan for k in COMPUTE_COLUMNS.values()}
        if compute:
            row += [_compute_cell(k, spent[k]) for k in COMPUTE_COLUMNS.values()]
        tuned_cell = tuning.get((dataset, pct, method, table_protocol, g["budget"].iloc[0], g["data"].iloc[0])) if tuning and n else None
        if tuning is not None:
            row += cells_text(tuned_cell, stat["unbiased_acc"][0])
        pub = paper.get((dataset, method, pct, "unbiased_acc"))
        if pub is None or (n and set(g["budget"]) == {"quick"}):  # a smoke run is never set against a paper
            row.append("" if pub is None else "– (quick budget)")
        else:
            pub_txt = f"{pub[0]:.2f}" + (f" ± {pub[1]:.2f}" if pub[1] is not None else "")
            delta = stat["unbiased_acc"][0] - pub[0]
            row.append(pub_txt + ("" if math.isnan(delta) else f" ({delta:+.2f})"))
        rows.append(row)
        numeric.append({"dataset": dataset, "conflict_pct": pct, "method": method, "supervision": level, "network": network,
                        "protocol": table_protocol, "variant": variant, "n": n,
                        **{f"{m}_mean": stat[m][0] for m in METRIC_NAMES}, **{f"{m}_std": stat[m][1] for m in METRIC_NAMES},
                        **{f"{m}_ci95": interval[m][1] for m in METRIC_NAMES},
                        **({"sparsity_mean": stat["sparsity"][0]} if show_sparsity else {}), **spent,
                        "paper_unbiased_acc": pub[0] if pub else math.nan,
                        "paper_unbiased_std": pub[1] if pub and pub[1] is not None else math.nan,
                        **(tuned_numbers(tuned_cell) if tuning is not None else {})})
    marks, averages = _compare_rows(rows, seeds_of, columns, numeric)
    budgets = sorted(set(df["budget"])) if len(df) else []
    caption = (f"{SPLIT_WORDS.get(split, split)} accuracy (%), mean ± 95 % CI over seeds; checkpoint: {RULE_CAPTIONS[rule]}; "
               f"budget: {', '.join(budgets) or 'n/a'}; {protocol_caption(sorted(protocols, key=lambda p: p.label))}"
               + (f"; {tuned}." if tuned else "."))
    notes = [f"paper: {src}" for ds, src in sorted(sources.items()) if any(r[0] == ds for r in rows)]
    notes.append(SUPERVISION_NOTE)
    data_note = data_options_note(records)
    if data_note:
        notes.append(data_note)
    if show_variant and df["variant"].str.startswith("draw ").any():
        notes.append("draw N = the setting of the method's search draw N (0 = the defaults); its values: the hp.* columns of "
                     "api.load(DIR).frame(), or --show-config added to the command that ran the search.")
    if show_network:
        notes.append("network = the network each row predicts with (name and layer widths): rows on different networks compare "
                     "networks as much as methods; --protocol matched trains every method on one backbone.")
    notes.append("unbiased = mean accuracy over (target, bias) groups; worst-group = lowest group; aligned/conflicting = "
                 "mean over bias-aligned/-conflicting groups; overall = all samples.")
    notes += [INTERVAL_NOTE + ".", TEST_NOTE + "; rank = rank by mean unbiased accuracy within the dataset and ratio."]
    collapsed = outliers_note(df) if len(df) else ""
    if collapsed:
        notes.append(collapsed)
    if averages:
        notes.append(f"average rank over the table's {len({(r[0], r[1]) for r in rows})} dataset/ratio blocks (unbiased accuracy; "
                     "rows present in every block): "
                     + ", ".join(f"{k} {v:.2f}" for k, v in sorted(averages.items(), key=lambda kv: (kv[1], kv[0]))))
    if tuning:
        from benchmark.reports.tuned import NOTE as TUNED_NOTE
        from benchmark.reports.tuned import changes_note

        notes += [TUNED_NOTE, changes_note({k: v for k, v in tuning.items() if k[3] == table_protocol})]
    if compute:
        notes.append("compute per run, mean over seeds: optimiser steps over all stages; forward samples through the method's "
                     "networks in millions (benchmark/training/compute.py; – = stored before it was counted); training minutes "
                     "(stages reused from another job count their original time).")
    if "quick" in budgets:
        notes.append("budget quick is a smoke run, not the papers' step counts: do not compare it with the paper column.")
    return Table(caption, columns, rows, notes, pd.DataFrame(numeric), marks)


def _expected_protocol(entry: dict[str, Any]):
    """The protocol of an expected job entry (its "hparams" is the canonical JSON string)."""
    hparams = json.loads(entry["hparams"]) if isinstance(entry.get("hparams"), str) else entry.get("hparams") or {}
    return of_job({"hparams": hparams})


def build_tables(records: list[dict[str, Any]], rule: str = "last", split: str = "test",
                 expected: list[dict[str, Any]] | None = None, compute: bool = False, tuned: str = "",
                 tuning: dict[tuple, Any] | None = None) -> list[Table]:
    """One Table per comparison protocol (published first): a matched row and a published row never
    share a table, since they compare different things."""
    by_label: dict[str, tuple[list, list]] = defaultdict(lambda: ([], []))
    for rec in records:
        by_label[of_job(rec["job"]).label][0].append(rec)
    for entry in expected or []:
        by_label[_expected_protocol(entry).label][1].append(entry)
    order = sorted(by_label, key=lambda label: (label != "published", label))
    return ([build_table(by_label[k][0], rule, split, by_label[k][1], compute, tuned, tuning) for k in order]
            or [build_table([], rule, split, [], compute, tuned, tuning)])


def render_all(tables: list[Table], fmt: str = "table") -> str:
    """Several tables in one output: one after another, or for CSV one frame with a protocol column."""
    if fmt == "csv" and len(tables) > 1:
        buf = io.StringIO()
        pd.concat([t.numeric for t in tables], ignore_index=True).to_csv(buf, index=False, float_format="%.4f")
        return buf.getvalue()
    return "\n\n".join(render(t, fmt) for t in tables)


DIAGNOSTICS_CAPTION = "Per-run diagnostics (training split)"
DIAGNOSTICS_NOTES = (
    "computed by the harness from the bias labels for evaluation only: precision/recall of mined samples "
    "against the true bias-conflicting ones; bias_purity = fraction of samples whose group's most common bias "
    "value is their own (chance_purity: one group holding everything); conflicting_in_aligned_cells = share of "
    "bias-conflicting samples whose (class, group) cell holds more aligned than conflicting samples; "
    "conflicting_sampling_mass = share of a weighted stage's sampling mass on bias-conflicting samples "
    "(conflicting_share: their share of the split, what uniform sampling gives).",
)


def diagnostics_table(records: list[dict[str, Any]]) -> Table:
    """One row per job that stored diagnostics (what DCWP's miner flagged, PruSC's clusters and
    their purity): the scalars of `diagnostics`, flattened without the stage name (lists such as
    cluster sizes are left out; they stay in the JSON)."""
    with_diag = [r for r in records if r.get("diagnostics")]
    flat = [{k.split(".", 1)[-1]: v for k, v in flatten(r["diagnostics"]).items() if isinstance(v, (int, float))} for r in with_diag]
    keys = sorted({k for f in flat for k in f})
    df = frame(with_diag, "last") if with_diag else pd.DataFrame()
    variants = variant_labels(df) if len(df) else pd.Series(dtype=str)
    show_variant = bool(len(variants)) and (variants != "").any()
    show_protocol = bool(len(df)) and df["protocol"].nunique() > 1
    columns = ["dataset", "conflict %", "method"] + (["protocol"] if show_protocol else []) + (["variant"] if show_variant else [])
    columns += ["seed"] + keys
    order = sorted(range(len(with_diag)), key=lambda i: (df["dataset"][i], df["conflict_pct"][i], df["method"][i], df["protocol"][i],
                                                         variants[i], df["seed"][i]))
    rows, numeric = [], []
    for i in order:
        job = with_diag[i]["job"]
        cells = [job["dataset"], f"{float(job['conflict_pct']):g}", job["method"]] + ([df["protocol"][i]] if show_protocol else [])
        cells += [variants[i]] if show_variant else []
        cells.append(str(job["seed"]))
        cells += ["" if k not in flat[i] else (f"{flat[i][k]:.3f}" if isinstance(flat[i][k], float) else str(flat[i][k])) for k in keys]
        rows.append(cells)
        numeric.append({"dataset": job["dataset"], "conflict_pct": float(job["conflict_pct"]), "method": job["method"],
                        "protocol": df["protocol"][i], "variant": variants[i], "seed": job["seed"], **flat[i]})
    return Table(DIAGNOSTICS_CAPTION, columns, rows, list(DIAGNOSTICS_NOTES), pd.DataFrame(numeric))


def diagnostics_tables(records: list[dict[str, Any]]) -> list[Table]:
    """The diagnostics as one table per method, each with only its own columns (one table of
    every method's outgrows a page and is mostly empty cells); the notes once, under the last."""
    by_method: dict[str, list[dict[str, Any]]] = defaultdict(list)
    for rec in records:
        by_method[rec["job"]["method"]].append(rec)
    tables = [replace(table, caption=f"{DIAGNOSTICS_CAPTION}: {method}", notes=[])
              for method in sorted(by_method) if (table := diagnostics_table(by_method[method])).rows]
    if tables:
        tables[-1].notes = list(DIAGNOSTICS_NOTES)
    return tables


def _read_store(results_dir: str | Path):
    from benchmark.grid.store import Store

    root = Path(results_dir)
    if not (root / "jobs").is_dir() and not (root / "failed").is_dir():
        raise BenchError(f"{root} holds no results (no jobs/ folder): pass the --results-dir of a run")
    return Store(root, create=False)


FILTERS = ("methods", "datasets", "conflict_pcts", "protocol", "backbone")


def keeps(job: dict[str, Any], only: dict[str, Any]) -> bool:
    """Whether a stored job passes the `report` filters: `methods`, `datasets`, `conflict_pcts`,
    `protocol` and `backbone` (a missing or empty filter keeps everything)."""
    protocol = of_job(job)
    return ((not only.get("methods") or job["method"] in only["methods"])
            and (not only.get("datasets") or job["dataset"] in only["datasets"])
            and (not only.get("conflict_pcts") or any(math.isclose(float(job["conflict_pct"]), float(p)) for p in only["conflict_pcts"]))
            and (not only.get("protocol") or protocol.name == only["protocol"])
            and (not only.get("backbone") or protocol.backbone == only["backbone"]))


def report_dir(results_dir: str | Path, fmt: str = "table", rule: str = "last", split: str = "test",
               diagnostics: bool = False, compute: bool = False, tuned: str | None = None,
               only: dict[str, Any] | None = None) -> str:
    """The tables of every stored result under a results directory (the `report` subcommand), or of
    those that pass the filters in `only` (see `keeps`); `diagnostics`: the per-run diagnostics table instead."""
    store = _read_store(results_dir)
    only = {k: v for k, v in (only or {}).items() if v}
    records = [r for r in store.results() if keeps(r["job"], only)]
    if only and not records:
        said = "; ".join(f"{k} {' '.join(map(str, v)) if isinstance(v, (list, tuple)) else v}" for k, v in only.items())
        raise BenchError(f"no stored result under {results_dir} matches {said}: `run_bench.py status {results_dir}` lists what it holds")
    if diagnostics:
        tables = diagnostics_tables(records)
        if not tables:
            raise BenchError(f"no result under {results_dir} stored diagnostics (DCWP and PruSC runs do)")
        return render_all(tables, fmt)
    caption = ""
    if tuned:
        from benchmark.grid.tuning import caption as tuning_caption
        from benchmark.grid.tuning import checkpoint_rule, tuned_records

        every = records
        records, chosen = tuned_records(records, tuned)
        if not records:
            raise BenchError(f"no stored run under {results_dir} can be scored by {tuned}: its runs lack the split the rule reads "
                             "(hold one out with --set <dataset>.valid_fraction=0.1)")
        rule, caption = checkpoint_rule(tuned), tuning_caption(tuned, chosen)
        done = [{**r["job"], "hparams": hparams_key(r["job"]), "status": "done"} for r in records]
        from benchmark.reports.tuned import tuned_cells

        return render_all(build_tables(records, rule, split, done, compute, caption, tuned_cells(every, chosen, rule, split)), fmt)
    failed = [{**f["job"], "hparams": hparams_key(f["job"]), "status": "failed"} for f in store.failures() if keeps(f["job"], only)]
    done = [{**r["job"], "hparams": hparams_key(r["job"]), "status": "done"} for r in records]
    return render_all(build_tables(records, rule, split, done + failed, compute), fmt)
