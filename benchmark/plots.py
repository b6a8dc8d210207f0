"""Figures from stored results (seaborn, PNG and PDF), saved under RESULTS_DIR/plots.

    run_bench.py plot sparsity RESULTS_DIR [--selection RULE] [--dataset D] [--conflict-pct P]

`sparsity`: for each (dataset, conflict_pct), the unbiased and worst-group test accuracy of every
pruning run against its sparsity, one small point per job, a large point with mean ± std per
(method, hyperparameter setting), and the unpruned network (the method's own dense stage, e.g.
DCWP's ERM pre-training) at 0 % sparsity as the reference.
"""
from __future__ import annotations

import json
import math
from pathlib import Path
from typing import Any, Callable

import numpy as np
import pandas as pd

from benchmark.errors import BenchError
from benchmark.report import variant_labels
from benchmark.selection import entry_metrics, require_rule

PANELS = (("unbiased_acc", "unbiased accuracy (%)"), ("worst_group_acc", "worst-group accuracy (%)"))


def _pyplot():
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt
    import seaborn as sns

    sns.set_theme(context="paper", style="whitegrid", font_scale=1.2)
    return plt, sns


def _save(fig: Any, out_dir: Path, stem: str) -> list[Path]:
    out_dir.mkdir(parents=True, exist_ok=True)
    paths = [out_dir / f"{stem}.png", out_dir / f"{stem}.pdf"]
    for path in paths:
        tmp = path.with_name(path.stem + ".tmp" + path.suffix)
        fig.savefig(tmp, dpi=200, bbox_inches="tight")
        tmp.replace(path)
    return paths


def _dense_metrics(rec: dict[str, Any]) -> dict[str, Any] | None:
    stage = rec.get("dense_stage")
    entries = [e for e in rec.get("curve", []) if e["stage"] == stage]
    return entry_metrics(entries[-1], rec["group_total"], rec["aligned_groups"])["test"] if entries else None


def sparsity_frame(records: list[dict[str, Any]], rule: str) -> pd.DataFrame:
    """One row per pruning job (pruned) plus one per job with a dense stage (its unpruned reference)."""
    rows = []
    for rec in records:
        if not rec.get("sparsity"):
            continue
        job = rec["job"]
        base = {"dataset": job["dataset"], "conflict_pct": float(job["conflict_pct"]), "method": job["method"],
                "seed": job["seed"], "hparams": json.dumps(job["hparams"], sort_keys=True), "budget": job["budget"]}
        test = require_rule(rec, rule)["test"]
        rows.append({**base, "kind": "pruned", "sparsity": 100 * rec["sparsity"]["overall"],
                     **{m: 100 * test[m] for m, _ in PANELS}})
        dense = _dense_metrics(rec)
        if dense is not None:
            rows.append({**base, "kind": "dense", "sparsity": 0.0, **{m: 100 * dense[m] for m, _ in PANELS}})
    return pd.DataFrame(rows)


def plot_sparsity(records: list[dict[str, Any]], out_dir: Path, rule: str = "last") -> list[Path]:
    df = sparsity_frame(records, rule)
    if df.empty:
        raise BenchError("no pruning results (no job with a sparsity) in this directory: run dcwp or prusc first")
    df["variant"] = variant_labels(df[df["kind"] == "pruned"])
    plt, sns = _pyplot()
    paths: list[Path] = []
    for (dataset, pct), group in df.groupby(["dataset", "conflict_pct"]):
        pruned = group[group["kind"] == "pruned"].copy()
        pruned["setting"] = pruned["method"] + pruned["variant"].fillna("").map(lambda v: f" ({v})" if v else "")
        # one unpruned network per (method, seed): the runs of a lambda_sparse sweep share it (a run of the
        # same seed repeated on other hardware differs only by float rounding and is not counted twice)
        dense = group[group["kind"] == "dense"].drop_duplicates(["method", "seed"])
        fig, axes = plt.subplots(1, len(PANELS), figsize=(11, 4.2), sharex=True)
        palette = dict(zip(sorted(pruned["setting"].unique()), sns.color_palette("colorblind", pruned["setting"].nunique())))
        greys = [f"{v:.2f}" for v in np.linspace(0.0, 0.6, dense["method"].nunique())]  # black to mid grey, one per method
        for ax, (metric, label) in zip(axes, PANELS):
            sns.scatterplot(data=pruned, x="sparsity", y=metric, hue="setting", palette=palette, alpha=0.45, s=30,
                            ax=ax, legend=False)
            for setting, g in pruned.groupby("setting"):
                ax.errorbar(g["sparsity"].mean(), g[metric].mean(), xerr=_std(g["sparsity"]), yerr=_std(g[metric]),
                            fmt="o", ms=8, capsize=3, color=palette[setting], label=f"{setting}, n={len(g)}")
            # each method's own unpruned network (DCWP's CNN and PruSC's MLP are different networks)
            for (method, g), shade in zip(dense.groupby("method"), greys):
                ax.errorbar(0.0, g[metric].mean(), yerr=_std(g[metric]), fmt="s", ms=8, capsize=3, color=shade,
                            label=f"{method} unpruned (its dense stage), n={len(g)}")
            right = max(5.0, float(pruned["sparsity"].max()) * 1.08)
            ax.set_xlim(-0.03 * right, right)
            ax.set_xlabel("sparsity (% of gated weights pruned)")
            ax.set_ylabel(f"test {label}")
        handles, labels = axes[0].get_legend_handles_labels()
        fig.legend(handles, labels, loc="upper center", bbox_to_anchor=(0.5, 0.0), ncol=2, frameon=False)
        fig.suptitle(f"{dataset}, {pct:g} % bias-conflicting: accuracy vs sparsity (checkpoint rule: {rule})")
        fig.tight_layout()
        paths += _save(fig, out_dir, f"sparsity_{dataset}_c{pct:g}")
        plt.close(fig)
    return paths


def _std(values: pd.Series) -> float:
    return float(values.std(ddof=1)) if len(values) > 1 else 0.0


PLOTS: dict[str, Callable[[list[dict[str, Any]], Path, str], list[Path]]] = {"sparsity": plot_sparsity}


def main(argv: list[str]) -> int:
    from benchmark.cli import ArgumentParser
    from benchmark.selection import RULES
    from benchmark.store import Store

    p = ArgumentParser(prog="run_bench.py plot", description="Figures (PNG and PDF) from stored results.")
    p.add_argument("kind", choices=sorted(PLOTS))
    p.add_argument("results_dir")
    p.add_argument("--selection", choices=RULES, default="last")
    p.add_argument("--dataset", default=None, help="only this dataset")
    p.add_argument("--conflict-pct", type=float, default=None, help="only this ratio")
    p.add_argument("--out", default=None, help="output folder (default: RESULTS_DIR/plots)")
    args = p.parse_args(argv)
    root = Path(args.results_dir)
    if not (root / "jobs").is_dir():
        raise BenchError(f"{root} holds no results (no jobs/ folder): pass the --results-dir of a run")
    records = [r for r in Store(root, create=False).results()
               if (args.dataset is None or r["job"]["dataset"] == args.dataset)
               and (args.conflict_pct is None or math.isclose(float(r["job"]["conflict_pct"]), args.conflict_pct))]
    for path in PLOTS[args.kind](records, Path(args.out) if args.out else root / "plots", args.selection):
        print(path)
    return 0

