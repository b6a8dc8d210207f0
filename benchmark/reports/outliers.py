"""Runs that collapsed: a mean over 3-5 seeds hides one run far below the others, and a reader
comparing means cannot tell a method that is uniformly worse from one that sometimes fails. Every
table names those runs in a note, with the device they ran on (the same seed is another run on
another device: batch order comes from the device's own generator).

A run is an outlier when its unbiased accuracy is more than `POINTS` below the median of its row
(one dataset, ratio, method and variant), in rows of at least `MIN_RUNS` runs: with two runs the
median is their mean and "below the median" says nothing about which one failed.
"""
from __future__ import annotations

import math
from collections import Counter
from typing import Any

import pandas as pd

POINTS = 10.0
MIN_RUNS = 3
ROW = ["dataset", "conflict_pct", "method", "variant"]


def device_text(record: dict[str, Any]) -> str:
    """What a stored run trained on, in words: the device's name where the result recorded one."""
    env = record.get("environment") or {}
    return str(env.get("device_name") or env.get("device") or "unknown device")


def runs_frame(records: list[dict[str, Any]], rule: str) -> pd.DataFrame:
    """The columns `note` reads, one row per record (test unbiased accuracy at checkpoint `rule`), for
    tables whose rows are one setting each (a paper table)."""
    from benchmark.selection import require_rule

    rows = []
    for rec in records:
        job, value = rec["job"], require_rule(rec, rule)["test"]["unbiased_acc"]
        rows.append({"dataset": job["dataset"], "conflict_pct": float(job["conflict_pct"]), "method": job["method"],
                     "variant": "", "seed": job["seed"], "device": device_text(rec),
                     "unbiased_acc": math.nan if value is None else 100 * float(value)})
    return pd.DataFrame(rows)


def outlier_runs(df: pd.DataFrame, points: float = POINTS, metric: str = "unbiased_acc") -> pd.DataFrame:
    """The runs of `df` (report.frame's columns plus "variant" and "device") more than `points`
    below their row's median of `metric`, with that median as column "row_median"."""
    if not len(df):
        return df.assign(row_median=[])
    medians = df.groupby(ROW)[metric].transform("median")
    sizes = df.groupby(ROW)[metric].transform("count")
    low = (sizes >= MIN_RUNS) & (df[metric] < medians - points)
    return df[low].assign(row_median=medians[low])


def note(df: pd.DataFrame, points: float = POINTS) -> str:
    """One line: how many runs of rows with 3 or more runs collapsed, per device, and which."""
    counted = df[df.groupby(ROW)["unbiased_acc"].transform("count") >= MIN_RUNS] if len(df) else df
    if not len(counted):
        return ""
    low = outlier_runs(counted, points)
    per_device = Counter(counted["device"])
    low_device = Counter(low["device"])
    rates = ", ".join(f"{low_device[d]} of {n} on {d}" for d, n in sorted(per_device.items()))
    head = (f"outlying runs (unbiased accuracy more than {points:g} points below their row's median, rows of {MIN_RUNS}+ "
            f"runs): {len(low)} of {len(counted)} ({rates})")
    if not len(low):
        return head + "."
    named = [f"{r.method}{f' [{r.variant}]' if r.variant else ''} {r.dataset} {r.conflict_pct:g} % seed {r.seed}: "
             f"{r.unbiased_acc:.2f} (median {r.row_median:.2f}; {r.device})"
             for r in low.sort_values(ROW + ["seed"]).itertuples()]
    return head + ": " + "; ".join(named) + "."
