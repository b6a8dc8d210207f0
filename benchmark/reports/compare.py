"""Two results directories cell by cell: does a rerun (another machine, a GPU, a new torch) give the
reference's numbers?

Same seeds on different hardware do not give the same floats, so a rerun is judged in
distribution: per cell (dataset, ratio, method, protocol, setting) each side's mean with its 95 %
interval, the difference, and Welch's t-test of the two sides' seeds (unpaired: the runs share
nothing but their seeds' numbers). The notes say how many cells differ at p < 0.05 against the
number expected by chance alone, so one low p among forty cells is not read as a regression.

    run_bench.py report results/mine --against results/reference [--selection RULE] [--metric worst_group_acc]
"""
from __future__ import annotations

import math
from pathlib import Path
from typing import Any

import pandas as pd

from benchmark.errors import BenchError
from benchmark.metrics import METRIC_LABELS, METRIC_NAMES
from benchmark.reports.report import _read_store, frame, keeps, variant_labels
from benchmark.reports.stats import ALPHA, fmt_interval, t_interval, welch_p
from benchmark.reports.tables import Table
from benchmark.selection import RULE_CAPTIONS

CELL = ["dataset", "conflict_pct", "method", "protocol", "budget", "hparams"]


def _records(results_dir: str | Path, only: dict[str, Any]) -> list[dict[str, Any]]:
    return [r for r in _read_store(results_dir).results() if keeps(r["job"], only)]


def compare_table(ours_dir: str | Path, theirs_dir: str | Path, rule: str = "last", metric: str = "unbiased_acc",
                  only: dict[str, Any] | None = None) -> Table:
    """One row per cell stored on both sides; cells on one side only are counted in the notes."""
    if metric not in METRIC_NAMES:
        raise BenchError(f"unknown metric {metric!r}; metrics: {', '.join(METRIC_NAMES)}")
    only = {k: v for k, v in (only or {}).items() if v}
    ours, theirs = _records(ours_dir, only), _records(theirs_dir, only)
    if not ours or not theirs:
        empty = ours_dir if not ours else theirs_dir
        raise BenchError(f"{empty} holds no stored result to compare" + (" that passes the filters" if only else ""))
    df = frame(ours + theirs, rule)
    df["side"] = ["ours"] * len(ours) + ["theirs"] * len(theirs)
    df["variant"] = variant_labels(df)  # settings told apart within a protocol, as in the reports
    label = METRIC_LABELS[metric]
    columns = ["dataset", "conflict %", "method", "protocol", "variant", "n ours", f"ours {label}", "n theirs",
               f"theirs {label}", "Δ", "Welch p"]
    rows, numeric, marks, one_sided, no_value = [], [], {}, {"ours": 0, "theirs": 0}, 0
    for key, cell in sorted(df.groupby(CELL + ["variant"]), key=lambda kv: (kv[0][0], kv[0][1], kv[0][2], kv[0][3], kv[0][6])):
        stored = {side: bool((cell["side"] == side).any()) for side in ("ours", "theirs")}
        if not all(stored.values()):
            one_sided["ours" if stored["ours"] else "theirs"] += 1
            continue
        values = {side: [float(v) for v in cell.loc[cell["side"] == side, metric] if not math.isnan(v)] for side in ("ours", "theirs")}
        if not values["ours"] or not values["theirs"]:
            no_value += 1  # stored on both sides, but a side has no value for this metric (a run older than it)
            continue
        (mean_a, half_a), (mean_b, half_b) = t_interval(values["ours"]), t_interval(values["theirs"])
        p = welch_p(values["ours"], values["theirs"])
        dataset, pct, method, protocol, _, _, variant = key
        if p < ALPHA:
            marks[(len(rows), len(columns) - 1)] = {"differs"}
        rows.append([dataset, f"{pct:g}", method, protocol, variant, str(len(values["ours"])), fmt_interval(mean_a, half_a),
                     str(len(values["theirs"])), fmt_interval(mean_b, half_b), f"{mean_a - mean_b:+.2f}",
                     "–" if math.isnan(p) else f"{p:.3f}"])
        numeric.append({"dataset": dataset, "conflict_pct": pct, "method": method, "protocol": protocol, "variant": variant,
                        "metric": metric, "selection": rule,
                        "n_ours": len(values["ours"]), "ours_mean": mean_a, "ours_ci95": half_a,
                        "n_theirs": len(values["theirs"]), "theirs_mean": mean_b, "theirs_ci95": half_b,
                        "diff": mean_a - mean_b, "welch_p": p})
    if not rows:
        raise BenchError(f"{ours_dir} and {theirs_dir} share no cell (same dataset, ratio, method, protocol and settings): "
                         "compare runs of the same grid")
    table = pd.DataFrame(numeric)
    tested = table["welch_p"].notna()
    differing = int((table["welch_p"] < ALPHA).sum())
    caption = (f"{label} (%), {ours_dir} (ours) against {theirs_dir} (theirs): mean ± 95 % CI over seeds; "
               f"checkpoint: {RULE_CAPTIONS[rule]}")
    notes = [f"Δ = ours − theirs; Welch p = Welch's unequal-variance t-test of the two sides' seeds, two-sided "
             f"(– = fewer than 2 seeds on a side); ! = p < {ALPHA:g}.",
             f"{len(rows)} {'cell' if len(rows) == 1 else 'cells'} on both sides, {int(tested.sum())} tested: {differing} differ at p < {ALPHA:g} "
             f"(about {ALPHA * tested.sum():.1f} expected by chance alone if nothing changed); mean Δ {table['diff'].mean():+.2f}, "
             f"mean |Δ| {table['diff'].abs().mean():.2f}, largest |Δ| {table['diff'].abs().max():.2f}."]
    if one_sided["ours"] or one_sided["theirs"] or no_value:
        left = [f"{n} {'cell' if n == 1 else 'cells'} {where}" for n, where in
                ((one_sided["ours"], "only in ours"), (one_sided["theirs"], "only in theirs"), (no_value, f"without {label} on a side")) if n]
        notes.append(f"left out: {', '.join(left)}.")
    return Table(caption, columns, rows, notes, table, marks)
