"""Figures from stored results (seaborn, PNG and PDF), saved under RESULTS_DIR/plots.

    run_bench.py plot ratio|sparsity|groups|curves RESULTS_DIR [--selection RULE] [--dataset D] [--conflict-pct P]

`ratio`: per dataset and comparison protocol, the unbiased and conflicting test accuracy of every
method against the bias-conflicting ratio (log scale): the mean over seeds with a band of ± one std
and the seeds as dots; the published mean (± std) as hollow markers on a dashed line. Only each
method's default setting (the job the current configs define) is drawn unless `--all-variants`.

`groups`: one run's test accuracy per (target, bias) group as a heatmap, bias-aligned groups
outlined (`--job NAME`: a file name under jobs/ or its start; else the first run matching the filters).

`sparsity`: for each (dataset, conflict_pct, protocol), the unbiased and worst-group test accuracy
of every pruning run against its sparsity: one curve per (method, network) through its lambda_sparse
values in order (mean ± std over seeds; seeds as dots; the configs' default lambda starred), and
each method's own unpruned network (its dense stage, e.g. DCWP's ERM pre-training) as a hollow
square at 0 % with a dotted line across. The runs whose other settings are the configs' defaults
only; `--all-variants` adds every other setting (ablations) as its own curve.

`curves` (benchmark/reports/curves.py): accuracy over training steps, seeds as thin lines, the selected
checkpoints marked.

Every figure colours a method the same way (benchmark/reports/palette.py) and names each row's network.
"""
from __future__ import annotations

import json
import math
from pathlib import Path
from typing import Any, Callable

import numpy as np
import pandas as pd

from benchmark.errors import BenchError
from benchmark.grid.jobs import default_job, stored_name
from benchmark.reports.figures import (curve_colors, default_setting, default_setting_but, finish, network_label, protocol_suffix, pyplot, save, std,
                                       supervision_key, supervision_tag)
from benchmark.reports.palette import method_color
from benchmark.protocol import of_job
from benchmark.reports.curves import plot_curves
from benchmark.reports.report import variant_labels
from benchmark.selection import entry_metrics, require_rule
from benchmark.supervision import LINESTYLES, MARKERS, of_record

PANELS = (("unbiased_acc", "unbiased accuracy (%)"), ("worst_group_acc", "worst-group accuracy (%)"))


def _dense_metrics(rec: dict[str, Any]) -> dict[str, Any] | None:
    stage = rec.get("dense_stage")
    entries = [e for e in rec.get("curve", []) if e["stage"] == stage]
    return entry_metrics(entries[-1], rec["group_total"], rec["aligned_groups"])["test"] if entries else None


SWEPT = "lambda_sparse"  # the sparsity-vs-accuracy curve joins a method's runs in the order of this hyperparameter


def sparsity_frame(records: list[dict[str, Any]], rule: str) -> pd.DataFrame:
    """One row per pruning job (pruned) plus one per job with a dense stage (its unpruned reference)."""
    rows = []
    for rec in records:
        if not rec.get("sparsity"):
            continue
        job = rec["job"]
        rest = json.loads(json.dumps(job["hparams"]))
        swept = rest.get("method", {}).pop(SWEPT, math.nan)
        base = {"dataset": job["dataset"], "conflict_pct": float(job["conflict_pct"]), "method": job["method"],
                "supervision": of_record(rec), "protocol": of_job(job).label, "network": network_label(job),
                "seed": job["seed"], "budget": job["budget"], "hparams": json.dumps(rest, sort_keys=True),
                "swept": float(swept), "default_swept": _default_value(job, SWEPT)}
        test = require_rule(rec, rule)["test"]
        rows.append({**base, "kind": "pruned", "sparsity": 100 * rec["sparsity"]["overall"],
                     **{m: 100 * test[m] for m, _ in PANELS}})
        dense = _dense_metrics(rec)
        if dense is not None:
            rows.append({**base, "kind": "dense", "sparsity": 0.0, **{m: 100 * dense[m] for m, _ in PANELS}})
    return pd.DataFrame(rows)


def _default_value(job: dict[str, Any], key: str) -> float:
    default = default_job(job)
    value = default.hparams["method"].get(key) if default is not None else None
    return float(value) if isinstance(value, (int, float)) else math.nan


def plot_sparsity(records: list[dict[str, Any]], out_dir: Path, rule: str = "last", all_variants: bool = False) -> list[Path]:
    """Accuracy against sparsity: one curve per (method, network), its points the lambda_sparse values
    in order (mean ± std over seeds, seeds as small dots), the configs' default lambda starred, and
    each method's own unpruned network as a hollow square at 0 % with a dotted line. Settings other
    than the defaults (ablations) only with `all_variants`, each its own curve."""
    chosen = records if all_variants else default_setting_but(records, SWEPT)
    if not any(r.get("sparsity") for r in chosen) and any(r.get("sparsity") for r in records):
        raise BenchError("no pruning run here has the configs' default settings apart from lambda_sparse: "
                         "draw every setting with --all-variants")
    df = sparsity_frame(chosen, rule)
    if df.empty:
        raise BenchError("no pruning results (no job with a sparsity) in this directory: run dcwp or prusc first")
    pruned_rows = df["kind"] == "pruned"
    df.loc[pruned_rows, "variant"] = variant_labels(df[pruned_rows])
    df["variant"] = df["variant"].fillna("")
    plt, _ = pyplot()
    paths: list[Path] = []
    for (dataset, pct, protocol), group in df.groupby(["dataset", "conflict_pct", "protocol"]):
        pruned = group[group["kind"] == "pruned"].copy()
        pruned["curve"] = (pruned["method"] + pruned["network"].map(lambda n: f" · {n}" if n else "") + pruned["variant"].map(lambda v: f" ({v})" if v else "")
                           + pruned["supervision"].map(supervision_tag))
        # one unpruned network per (method, network, seed): the runs of a lambda_sparse sweep share it
        dense = group[group["kind"] == "dense"].drop_duplicates(["method", "network", "seed"])
        fig, axes = plt.subplots(1, len(PANELS), figsize=(11, 4.4), sharex=True)
        colors = curve_colors(pruned)
        for ax, (metric, label) in zip(axes, PANELS):
            for curve, g in pruned.groupby("curve"):
                color = colors[curve]
                stats = g.groupby("swept", dropna=False).agg(
                    x=("sparsity", "mean"), xerr=("sparsity", std), y=(metric, "mean"), yerr=(metric, std), n=(metric, "size"),
                    default=("default_swept", "first")).reset_index().sort_values("swept")
                ax.scatter(g["sparsity"], g[metric], color=color, s=10, alpha=0.4, zorder=2)
                lams = [f"{v:g}" for v in stats["swept"] if not math.isnan(v)]
                span = f"λ {lams[0]}…{lams[-1]}, {len(lams)} values" if len(lams) > 1 else (f"λ {lams[0]}" if lams else "")
                ax.errorbar(stats["x"], stats["y"], xerr=stats["xerr"], yerr=stats["yerr"], fmt="o-", ms=6, lw=1.6, capsize=3,
                            color=color, zorder=3, label=f"{curve}: {span}, n={int(stats['n'].min())}-{int(stats['n'].max())}"
                            if stats["n"].nunique() > 1 else f"{curve}: {span}, n={int(stats['n'].iloc[0])}")
                is_default = np.isclose(stats["swept"], stats["default"], rtol=1e-6, atol=0.0)
                ax.scatter(stats["x"][is_default], stats["y"][is_default], marker="*", s=220, color=color,
                           edgecolor="black", linewidth=0.8, zorder=4)
            for (method, network), g in dense.groupby(["method", "network"]):
                color = method_color(method)
                mean = g[metric].mean()
                ax.axhline(mean, color=color, ls=":", lw=1.0, zorder=1)
                ax.errorbar(0.0, mean, yerr=std(g[metric]), fmt="s", ms=8, mfc="white", mew=1.6, capsize=3, color=color, zorder=4,
                            label=f"{method}{f' · {network}' if network else ''} unpruned (its dense stage), n={len(g)}")
            right = max(5.0, float(pruned["sparsity"].max()) * 1.08)
            ax.set_xlim(-0.03 * right, right)
            ax.set_xlabel("sparsity (% of gated weights pruned)")
            ax.set_ylabel(f"test {label}")
        star = (plt.Line2D([], [], ls="", marker="*", ms=13, color="white", mec="black"), "the configs' default λ_sparse")
        paths += finish(fig, axes[0], f"{dataset}, {pct:g} % bias-conflicting: accuracy vs sparsity (protocol: {protocol}; "
                         f"checkpoint rule: {rule})", out_dir, f"sparsity_{dataset}_c{pct:g}{protocol_suffix(protocol)}", ncol=2,
                         extra=[star, *supervision_key(plt, set(group["supervision"]))])
    return paths


RATIO_PANELS = (("unbiased_acc", "unbiased accuracy (%)"), ("conflicting_acc", "conflicting accuracy (%)"))


def ratio_frame(records: list[dict[str, Any]], rule: str) -> pd.DataFrame:
    from benchmark.reports.report import frame

    df = frame(records, rule) if records else pd.DataFrame()
    if df.empty:
        raise BenchError("no results to plot here (after the filters): run a grid into this directory first")
    df["variant"] = variant_labels(df)
    df["network"] = [network_label(rec["job"]) for rec in records]
    df["setting"] = (df["method"] + df["network"].map(lambda n: f" · {n}" if n else "") + df["variant"].map(lambda v: f" ({v})" if v else "")
                     + df["supervision"].map(supervision_tag))
    return df


def plot_ratio(records: list[dict[str, Any]], out_dir: Path, rule: str = "last", all_variants: bool = False) -> list[Path]:
    from benchmark.reports.paper import paper_numbers

    df = ratio_frame(records if all_variants else default_setting(records), rule)
    published, _ = paper_numbers()
    plt, _ = pyplot()
    paths: list[Path] = []
    for (dataset, protocol), group in df.groupby(["dataset", "protocol"]):
        palette = curve_colors(group.rename(columns={"setting": "curve"}))
        pcts = sorted(group["conflict_pct"].unique())
        fig, axes = plt.subplots(1, len(RATIO_PANELS), figsize=(11, 4.2), sharex=True)
        for ax, (metric, label) in zip(axes, RATIO_PANELS):
            for setting, g in group.groupby("setting"):
                color = palette[setting]
                level = g["supervision"].iloc[0]
                stats = g.groupby("conflict_pct")[metric].agg(["mean", "std", "count"]).reset_index().fillna(0.0)
                ax.plot(stats["conflict_pct"], stats["mean"], color=color, lw=1.8, ms=5,
                        marker=MARKERS.get(level, "o"), ls=LINESTYLES.get(level, "-"),
                        label=f"{setting} (n={int(stats['count'].min())}-{int(stats['count'].max())} seeds)"
                        if stats["count"].nunique() > 1 else f"{setting} (n={int(stats['count'].iloc[0])} seeds)")
                ax.fill_between(stats["conflict_pct"], stats["mean"] - stats["std"], stats["mean"] + stats["std"],
                                color=color, alpha=0.18, lw=0)
                ax.scatter(g["conflict_pct"], g[metric], color=color, s=9, alpha=0.6, zorder=3)
                method = g["method"].iloc[0]
                paper = [(p, published[(dataset, method, p, metric)]) for p in pcts if (dataset, method, p, metric) in published]
                if paper and g["variant"].iloc[0] == "" and protocol == "published":
                    xs, vals = zip(*paper)
                    ax.errorbar(xs, [v[0] for v in vals], yerr=[v[1] or 0.0 for v in vals], fmt="o--", mfc="white",
                                color=color, lw=1.0, ms=6, capsize=2, alpha=0.9)
            ax.set_xscale("log")
            ax.set_xticks(pcts, [f"{p:g}" for p in pcts])
            ax.minorticks_off()
            ax.set_xlabel("bias-conflicting training samples (%)")
            ax.set_ylabel(f"test {label}")
        keys = [(plt.Line2D([], [], color="grey", ls="--", marker="o", mfc="white"), "published (mean ± std), hollow")]
        keys += supervision_key(plt, set(group["supervision"]))
        paths += finish(fig, axes[0], f"{dataset}: accuracy vs bias-conflicting ratio (protocol: {protocol}; mean ± std over seeds; "
                         f"checkpoint rule: {rule})", out_dir, f"ratio_{dataset}{protocol_suffix(protocol)}", ncol=3, extra=keys)
    return paths


def pick_record(records: list[dict[str, Any]], job: str | None) -> dict[str, Any]:
    """The run named `job` (its file name under jobs/ or its id, or a unique start of either), else the first by name."""
    if not records:
        raise BenchError("no results to plot here (after the filters): run a grid into this directory first")
    chosen = sorted(records, key=lambda r: stored_name(r["job"]))
    if job:
        job = job.removesuffix(".json")
        chosen = [r for r in chosen if stored_name(r["job"]).startswith(job) or r["job"]["id"].startswith(job)]
        if len(chosen) != 1:
            raise BenchError(f"--job {job!r} matches {len(chosen)} stored runs: give more of the name "
                             "(the file names under jobs/, e.g. erm_cmnist_c1_s0_<id>)")
    return chosen[0]


def plot_groups(records: list[dict[str, Any]], out_dir: Path, rule: str = "last", job: str | None = None) -> list[Path]:
    rec = pick_record(records, job)
    test = require_rule(rec, rule)["test"]
    rows, cols = rec["group_shape"]
    acc = np.array([np.nan if a is None else 100 * a for a in test["group_acc"]]).reshape(rows, cols)
    count = np.array(rec["group_total"]["test"]).reshape(rows, cols)
    aligned = np.array(rec["aligned_groups"], dtype=bool).reshape(rows, cols)
    plt, sns = pyplot()
    fig, ax = plt.subplots(figsize=(1.0 + 0.62 * cols, 0.9 + 0.55 * rows))
    annot = np.array([["" if np.isnan(a) else f"{a:.0f}" for a in row] for row in acc])
    sns.heatmap(acc, vmin=0, vmax=100, cmap="viridis", annot=annot, fmt="", annot_kws={"size": 8}, ax=ax,
                cbar_kws={"label": "test accuracy (%)"}, mask=count == 0)
    for r, c in zip(*np.nonzero(aligned)):
        ax.add_patch(plt.Rectangle((c, r), 1, 1, fill=False, edgecolor="white", lw=2.0))
    ax.set_xlabel("bias attribute")
    ax.set_ylabel("target class")
    j = rec["job"]
    protocol = "" if of_job(j).key is None else f", {of_job(j).label}"
    ax.set_title(f"{j['method']}{supervision_tag(of_record(rec))} on {j['dataset']}{protocol}, {float(j['conflict_pct']):g} %, "
                 f"seed {j['seed']} (rule: {rule})\n"
                 f"unbiased {100 * test['unbiased_acc']:.1f}, worst group {100 * test['worst_group_acc']:.1f}; "
                 "outlined: bias-aligned groups", fontsize=9)
    fig.tight_layout()
    paths = save(fig, out_dir, f"groups_{stored_name(j)}")
    plt.close(fig)
    return paths


PLOTS: dict[str, Callable[..., list[Path]]] = {"ratio": plot_ratio, "sparsity": plot_sparsity, "groups": plot_groups, "curves": plot_curves}


def main(argv: list[str]) -> int:
    from benchmark.arguments import ArgumentParser
    from benchmark.selection import RULES
    from benchmark.grid.store import Store

    p = ArgumentParser(prog="run_bench.py plot", description="Figures (PNG and PDF) from stored results.")
    p.add_argument("kind", choices=sorted(PLOTS))
    p.add_argument("results_dir")
    p.add_argument("--selection", choices=RULES, default="last")
    p.add_argument("--dataset", default=None, help="only this dataset")
    p.add_argument("--conflict-pct", type=float, default=None, help="only this ratio")
    p.add_argument("--out", default=None, help="output folder (default: RESULTS_DIR/plots)")
    p.add_argument("--all-variants", action="store_true",
                   help="ratio, curves, sparsity: every hyperparameter setting, not only the configs' defaults (sparsity: and their lambda_sparse sweep)")
    p.add_argument("--job", default=None, help="groups: the run's id (or a unique prefix); default: the first run by id")
    args = p.parse_args(argv)
    root = Path(args.results_dir)
    if not (root / "jobs").is_dir():
        raise BenchError(f"{root} holds no results (no jobs/ folder): pass the --results-dir of a run")
    records = [r for r in Store(root, create=False).results()
               if (args.dataset is None or r["job"]["dataset"] == args.dataset)
               and (args.conflict_pct is None or math.isclose(float(r["job"]["conflict_pct"]), args.conflict_pct))]
    extra = {"ratio": {"all_variants": args.all_variants}, "curves": {"all_variants": args.all_variants},
             "sparsity": {"all_variants": args.all_variants},
             "groups": {"job": args.job}}.get(args.kind, {})
    for path in PLOTS[args.kind](records, Path(args.out) if args.out else root / "plots", args.selection, **extra):
        print(path)
    return 0

