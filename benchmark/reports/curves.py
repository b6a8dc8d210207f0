"""`run_bench.py plot curves RESULTS_DIR`: accuracy over training steps, from the curves every run stores.

One figure per (dataset, conflict ratio, protocol): test unbiased and worst-group accuracy (and the
validation split's unbiased accuracy where runs have one: its evenly biased half where they hold two, the
split the group-label rules read) against the global optimiser step, one
colour per method (benchmark/reports/palette.py), one thin line per seed, and a marker where the checkpoint
rule (`--selection`) picked each run's model. Each method's default setting only, unless
`--all-variants`.
"""
from __future__ import annotations

from pathlib import Path
from typing import Any

import pandas as pd

from benchmark.errors import BenchError
from benchmark.reports.figures import curve_colors, default_setting, finish, network_label, protocol_suffix, pyplot, supervision_tag
from benchmark.protocol import of_job
from benchmark.selection import entry_metrics, read_split, require_rule

PANELS = (("test", "unbiased_acc", "test unbiased accuracy (%)"), ("test", "worst_group_acc", "test worst-group accuracy (%)"),
          ("valid", "unbiased_acc", "validation unbiased accuracy (%)"))


def _series(rec: dict[str, Any]) -> dict[tuple[str, str], tuple[list[int], list[float]]]:
    """Every panel's (global steps, values in %) of one run, from one pass over its curve."""
    out: dict[tuple[str, str], tuple[list[int], list[float]]] = {(split, metric): ([], []) for split, metric, _ in PANELS}
    for entry in rec.get("curve", []):
        metrics = entry_metrics(entry, rec["group_total"], rec["aligned_groups"])
        for (split, metric), (xs, ys) in out.items():
            value = metrics.get(read_split(split, metric, metrics), {}).get(metric)  # valid_bias both: the even half
            if value is not None:
                xs.append(int(entry.get("global_step", entry["step"])))
                ys.append(100 * value)
    return out


def plot_curves(records: list[dict[str, Any]], out_dir: Path, rule: str = "last", all_variants: bool = False) -> list[Path]:
    from benchmark.reports.report import frame, variant_labels

    chosen = records if all_variants else default_setting(records)
    chosen = [r for r in chosen if r.get("curve")]
    if not chosen:
        raise BenchError("no stored run has an evaluation curve here (after the filters): run a grid into this directory first")
    df = frame(chosen, "last")
    df["variant"] = variant_labels(df)
    plt, _ = pyplot()
    paths: list[Path] = []
    groups: dict[tuple, list[tuple[dict[str, Any], str]]] = {}
    for rec, variant in zip(chosen, df["variant"]):
        job = rec["job"]
        groups.setdefault((job["dataset"], float(job["conflict_pct"]), of_job(job).label), []).append((rec, variant))
    for (dataset, pct, protocol), members in sorted(groups.items()):
        series = {id(rec): _series(rec) for rec, _ in members}
        panels = [p for p in PANELS if any(series[id(rec)][p[:2]][0] for rec, _ in members)]
        fig, axes = plt.subplots(1, len(panels), figsize=(5.6 * len(panels), 4.2), squeeze=False)
        settings: dict[str, list[dict[str, Any]]] = {}
        for rec, variant in members:
            job = rec["job"]
            name = network_label(job)
            label = job["method"] + (f" · {name}" if name else "") + (f" ({variant})" if variant else "") + supervision_tag(rec.get("supervision", "none"))
            settings.setdefault(label, []).append(rec)
        colors = curve_colors(pd.DataFrame([{"method": recs[0]["job"]["method"], "curve": label} for label, recs in settings.items()]))
        for ax, (split, metric, title) in zip(axes[0], panels):
            for label, recs in sorted(settings.items()):
                color = colors[label]
                for i, rec in enumerate(sorted(recs, key=lambda r: r["job"]["seed"])):
                    xs, ys = series[id(rec)][(split, metric)]
                    ax.plot(xs, ys, color=color, lw=0.9, alpha=0.75, label=f"{label} (n={len(recs)} seeds)" if i == 0 else None)
                    try:
                        picked = require_rule(rec, rule)
                    except BenchError:
                        continue
                    at = next((int(e.get("global_step", e["step"])) for e in rec["curve"]
                               if e["stage"] == picked["stage"] and e["step"] == picked["step"]), None)
                    value = picked.get(split, {}).get(metric)
                    if at is not None and value is not None:
                        ax.scatter([at], [100 * value], color=color, marker="D", s=28, edgecolor="black", linewidth=0.6, zorder=4)
            ax.set_xlabel("optimiser step (all stages)")
            ax.set_ylabel(title)
        marker = (plt.Line2D([], [], ls="", marker="D", color="white", mec="black"), f"checkpoint picked by rule {rule}")
        paths += finish(fig, axes[0][0], f"{dataset}, {pct:g} % bias-conflicting: accuracy during training (protocol: {protocol})",
                         out_dir, f"curves_{dataset}_c{pct:g}{protocol_suffix(protocol)}", ncol=3, extra=[marker])
    return paths
