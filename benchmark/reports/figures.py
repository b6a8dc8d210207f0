"""What every figure shares: matplotlib set-up, saving PNG and PDF, the legend under the panels,
each row's network and supervision in its label, method colours, a figure per protocol."""
from __future__ import annotations

import uuid
from pathlib import Path
from typing import Any

import pandas as pd

from benchmark.grid.jobs import canonical, complete_hparams, default_job, file_stem, is_default_run
from benchmark.protocol import network_text, of_job
from benchmark.reports.palette import method_color, shade
from benchmark.supervision import LINESTYLES, MARKERS
from benchmark.supervision import label as supervision_label


def pyplot():
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt
    import seaborn as sns

    sns.set_theme(context="paper", style="whitegrid", font_scale=1.2)
    return plt, sns


def save(fig: Any, out_dir: Path, stem: str) -> list[Path]:
    out_dir.mkdir(parents=True, exist_ok=True)
    stem = file_stem(stem)  # built from stored dataset and method names: never a path
    paths = [out_dir / f"{stem}.png", out_dir / f"{stem}.pdf"]
    for path in paths:
        tmp = path.with_name(f".{path.stem}.{uuid.uuid4().hex}.tmp{path.suffix}")
        fig.savefig(tmp, dpi=200, bbox_inches="tight")
        tmp.replace(path)
    return paths


def finish(fig: Any, legend_from: Any, title: str, out_dir: Path, stem: str, ncol: int,
            extra: list[tuple[Any, str]] = ()) -> list[Path]:
    """The shared legend under the panels (plus `extra` (handle, label) entries), the title, then
    PNG and PDF; closes the figure."""
    handles, labels = legend_from.get_legend_handles_labels()
    handles, labels = [*handles, *(h for h, _ in extra)], [*labels, *(t for _, t in extra)]
    fig.legend(handles, labels, loc="upper center", bbox_to_anchor=(0.5, 0.0), ncol=ncol, frameon=False)
    fig.suptitle(title)
    fig.tight_layout()
    paths = save(fig, out_dir, stem)
    plt, _ = pyplot()
    plt.close(fig)
    return paths


def network_label(job: dict[str, Any]) -> str:
    """The network a job predicts with, for legends: the matched backbone, else the published model
    as the tables name it (`mlp 100-100-16`; "" when the job names none)."""
    protocol = of_job(job)
    if protocol.key is not None:
        return f"{protocol.backbone} (matched)"
    return network_text(job)


def curve_colors(frame: pd.DataFrame) -> dict[str, str]:
    """Each curve in its method's colour; a method's further curves (other settings) in lighter shades."""
    colors: dict[str, str] = {}
    for method, g in frame.groupby("method"):
        for index, curve in enumerate(sorted(g["curve"].unique())):
            colors[curve] = shade(method_color(method), index)
    return colors


def protocol_suffix(label: str) -> str:
    """File-name suffix of a figure's protocol: none for published, `_matched-cnn` for `matched (cnn)`."""
    return "" if label == "published" else "_" + label.replace(" (", "-").rstrip(")")


def std(values: pd.Series) -> float:
    return float(values.std(ddof=1)) if len(values) > 1 else 0.0


def default_setting(records: list[dict[str, Any]]) -> list[dict[str, Any]]:
    """The records whose job is the one the current configs define for its (method, dataset, ratio, seed, budget, protocol)."""
    return [rec for rec in records if is_default_run(rec["job"])]


def default_setting_but(records: list[dict[str, Any]], swept: str) -> list[dict[str, Any]]:
    """The records whose settings are the current configs' defaults but for the method hyperparameter
    `swept` (a sparsity sweep's lambda_sparse): one curve per method, not one per ablation."""
    def without(job: dict[str, Any], hparams: dict[str, Any]) -> str:
        full = complete_hparams(job["method"], hparams)
        return canonical({**full, "method": {k: v for k, v in full["method"].items() if k != swept}})

    kept = []
    for rec in records:
        default = default_job(rec["job"])
        if default is not None and without(rec["job"], rec["job"]["hparams"]) == without(rec["job"], default.hparams):
            kept.append(rec)
    return kept


def supervision_tag(level: str) -> str:
    """Legend suffix: nothing for a label-free method, else the group labels it trained with."""
    return "" if level == "none" else f" [{supervision_label(level)}]"


def supervision_key(plt: Any, levels: set[str]) -> list[tuple[Any, str]]:
    """Legend entries saying which marker and line style stands for which supervision level."""
    return [(plt.Line2D([], [], color="black", ls=LINESTYLES.get(lv, "-"), marker=MARKERS.get(lv, "o")), f"supervision: {supervision_label(lv)}")
            for lv in sorted(levels, key=lambda lv: list(MARKERS).index(lv) if lv in MARKERS else len(MARKERS))]
