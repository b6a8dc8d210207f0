"""The Python API: what the command line does, with Python values instead of flags.

    from benchmark import api

    jobs = api.grid(methods=["erm", "lff"], datasets=["cmnist"], conflict_pcts=[1], seeds=[0, 1],
                    sets={"lff.gce_q": [0.5, 0.7]})         # a list expands the grid, as v1,v2 does
    print(api.describe(jobs, "results/mine"))                # what --dry-run prints
    print(api.show_config(jobs))                              # every resolved setting as YAML (--show-config)
    api.run(jobs, "results/mine", device="cpu")               # resumable: finished jobs are skipped
    res = api.load("results/mine")
    df = res.frame()                                          # one row per job, every setting its own column
    print(res.table(fmt="markdown"))                          # the run's table
    print(res.paper("denetdm-table1"))                        # a published table, ours beside theirs
    res.plot("ratio")                                         # PNG + PDF under results/mine/plots
    print(res.compare("results/reference", methods=["erm"]))  # a rerun against the reference, cell by cell

The command line is a layer over these functions: `run_bench.py` expands its flags with `grid`.
"""
from __future__ import annotations

import math
from pathlib import Path
from typing import Any, Iterable

import pandas as pd

from benchmark.errors import BenchError
from benchmark.grid.estimate import estimate_line
from benchmark.grid.jobs import Job, expand_grid
from benchmark.metrics import METRIC_NAMES
from benchmark.protocol import of_job
from benchmark.selection import require_rule
from benchmark.supervision import of_record
from benchmark.training.compute import totals


def resolve_names(requested: Iterable[str] | str, registered: dict[str, Any], kind: str) -> list[str]:
    """Validate names; `all` means every registered one except test fixtures."""
    requested = [requested] if isinstance(requested, str) else list(requested)
    if requested == ["all"]:
        return sorted(n for n, entry in registered.items() if not getattr(entry, "fixture", False))
    unknown = [n for n in requested if n not in registered]
    if unknown:
        raise BenchError(f"unknown {kind} {unknown[0]!r}; registered {kind}s: {', '.join(sorted(registered))}")
    return list(dict.fromkeys(requested))


def grid(methods: Iterable[str] | str = ("erm",), datasets: Iterable[str] | str = ("cmnist",), seeds: Iterable[int] = (0, 1, 2),
         conflict_pcts: Iterable[float] | None = None, budget: str = "paper", sets: dict[str, Any] | None = None,
         config: dict[str, Any] | None = None, protocol: str = "published", backbone: str | None = None, search: int = 0,
         notes: list[str] | None = None) -> list[Job]:
    """The jobs of a grid. `methods="all"` takes every registered method and leaves out, with a line
    in `notes`, the pairs a method declares no setting for. `sets` maps a key (`optimizer.lr`,
    `lff.gce_q`, `cmnist.valid_fraction`) to a value or a list of values (one job per value);
    `config` is what a `--config` YAML file holds (`{"methods": {...}, "datasets": {...}}`)."""
    from benchmark.imports import project_packages

    datasets_pkg, methods_pkg = project_packages()
    every = methods == "all" or list(methods) == ["all"]
    method_names = resolve_names(methods, methods_pkg.METHODS, "method")
    dataset_names = resolve_names(datasets, datasets_pkg.DATASETS, "dataset")
    if config:
        from benchmark.validate import check_config_file

        check_config_file(config, "config", methods_pkg.METHODS, datasets_pkg.DATASETS)
    pairs = [(key, list(value) if isinstance(value, (list, tuple)) else [value]) for key, value in (sets or {}).items()]
    return expand_grid(method_names, dataset_names, [int(s) for s in seeds], None if conflict_pcts is None else list(conflict_pcts),
                       budget, pairs, config or {}, only_supported=every, protocol=protocol, backbone=backbone,
                       notes=notes, search=search)


def describe(jobs: list[Job], results_dir: str | Path, device: str | None = None, tuned: str | None = None) -> str:
    """The grid as `--dry-run` prints it: one line per job (its name, draw and whether it is stored), then counts
    and the time estimate (`estimate_line`: from the runs stored under `results_dir` on `device`'s kind,
    cpu or cuda, when given; when those say nothing, from the suite's committed results/reference).
    With `tuned` (a `--tuned` rule), the jobs that rule's run will train: the search on the first seed,
    the defaults' and the chosen settings' other seeds, one line per cell where the choice waits on
    the search (benchmark/grid/tuning.py `plan`)."""
    from benchmark.grid.runner import expected_vs_found, published_twin
    from benchmark.grid.store import Store

    root = Path(results_dir)
    store = Store(root, create=False) if (root / "jobs").is_dir() or (root / "failed").is_dir() else None
    waiting: list[Job] = []
    if tuned:
        from benchmark.grid.tuning import plan

        search, known, waiting = plan(jobs, tuned, store.results() if store else [])
        jobs = search + known
    status = expected_vs_found(jobs, store) if store else {j.id: "missing" for j in jobs}
    lines = []
    for job in jobs:
        state = status[job.id].split(":")[0]
        twin = published_twin(job) if state == "missing" and store else None
        if twin is not None and store.is_done(twin):
            state = "to copy from its stored published twin"
            status[job.id] = "twin"
        lines.append(f"{job.name}  {'to run' if state == 'missing' else state}" + _draw_and_protocol(job))
    cells: dict[tuple, list[Job]] = {}
    for job in waiting:
        cells.setdefault((job.method, job.dataset, job.conflict_pct, job.protocol.label), []).append(job)
    for (method, dataset, pct, _), same in cells.items():
        seeds = " ".join(str(s) for s in sorted({j.seed for j in same}))
        lines.append(f"{method}_{dataset}_c{pct:g}_s{seeds.replace(' ', ',')}  to run after the search: "
                     f"seed{'s' if len(same) > 1 else ''} {seeds} of the setting {tuned} picks" + _draw_and_protocol(same[0], draw=False))
    counts = {s: sum(1 for j in jobs if status[j.id].split(":")[0] == s) for s in ("done", "failed", "missing", "twin")}
    lines.append(f"{len(jobs) + len(waiting)} jobs: {counts['done']} stored, {counts['twin']} to copy from a published twin, "
                 f"{counts['failed']} failed before (run again), {counts['missing'] + len(waiting)} to run"
                 + (f" ({len(waiting)} once the search has picked their setting)" if waiting else "") + f"; results in {root}")
    to_run = [j for j in jobs if status[j.id].split(":")[0] in ("missing", "failed")] + waiting
    if to_run:
        saved = (lambda job, stage, ignored: store.shared_stage_path(job, stage, ignored).is_file()) if store else None
        line = estimate_line(to_run, store.results(), device, saved) if store else None
        if (line is None or line.startswith("time: no estimate")) and REFERENCE.is_dir() and REFERENCE.resolve() != root.resolve():
            reference = estimate_line(to_run, Store(REFERENCE, create=False).results(), device, saved)
            if not reference.startswith("time: no estimate"):
                line = reference.replace("median of stored runs", "median of the committed reference runs (results/reference)", 1)
        if line is not None:
            lines.append(line)
    return "\n".join(lines)


def _draw_and_protocol(job: Job, draw: bool = True) -> str:
    return ("" if job.draw is None or not draw else f"  (draw {job.draw})") + ("" if job.protocol.key is None else f"  [{job.protocol.label}]")


def show_config(jobs: list[Job]) -> str:
    """The resolved settings of a grid as YAML, what `--show-config` prints: one document per setting
    (method, dataset, ratio, budget, protocol and `hparams` as a stored result holds them; the seeds
    that share it collapsed into one list), keys sorted, so that two commands' settings compare with `diff`."""
    import yaml

    class Dumper(yaml.SafeDumper):
        """Mappings one key per line (a changed value is a one-line diff); lists of numbers on one line."""

    def flow_list(dumper: yaml.SafeDumper, items: list) -> yaml.Node:
        flat = all(not isinstance(v, (dict, list)) for v in items)
        return dumper.represent_sequence("tag:yaml.org,2002:seq", items, flow_style=flat)

    Dumper.add_representer(list, flow_list)
    settings: dict[tuple, list[Job]] = {}
    for job in jobs:
        settings.setdefault((job.method, job.dataset, job.conflict_pct, job.budget, job.hparams_json, job.draw), []).append(job)
    docs = []
    for (method, dataset, pct, budget, _, _), same in settings.items():
        first = same[0]
        doc = {"method": method, "dataset": dataset, "conflict_pct": pct, "budget": budget,
               "seeds": sorted(j.seed for j in same), "protocol": first.protocol.label, "hparams": first.hparams}
        if first.draw is not None:
            doc["draw"] = first.draw
        title = f"# {method} on {dataset} at {pct:g} %, {budget} budget, {first.protocol.label} protocol"
        title += ("" if first.draw is None else f", search draw {first.draw}") + f": seeds {' '.join(map(str, doc['seeds']))}"
        docs.append(title + "\n" + yaml.dump(doc, Dumper=Dumper, sort_keys=True, default_flow_style=False, width=120))
    return "---\n".join(docs).rstrip("\n")


REFERENCE = Path(__file__).resolve().parent.parent / "results" / "reference"  # the runs committed with the suite


def run(jobs: list[Job], results_dir: str | Path = "results", device: str = "auto", backend: str = "serial",
        n_jobs: int | None = None, data_root: str | None = None, progress: bool = False, **runtime: Any) -> dict[str, Any]:
    """Run every job not yet stored under `results_dir`; returns counts and failures (as the CLI's last line).
    `runtime` takes RuntimeOptions fields (threads, log_every, checkpoint_seconds, cuda_graphs, ...)."""
    from benchmark.grid.runner import run_grid, runtime_options
    from benchmark.grid.store import Store

    store = Store(results_dir)
    return run_grid(jobs, store, runtime_options(device, **runtime), backend, n_jobs, data_root, progress, announce=False)


def load(results_dir: str | Path) -> "Results":
    """The results stored under `results_dir`, read once; an unusable stored file is one `BenchError` naming it."""
    return Results(results_dir)


def _check_filters(only: dict[str, Any]) -> None:
    """The table filters `Results.table` and `Results.compare` take; another keyword is one error."""
    from benchmark.reports.report import FILTERS

    unknown = sorted(set(only) - set(FILTERS))
    if unknown:
        raise BenchError(f"unknown table filter {', '.join(unknown)}: the filters are {', '.join(FILTERS)}")


class Results:
    """The stored results of a directory, read once."""

    def __init__(self, results_dir: str | Path):
        from benchmark.reports.report import _read_store

        self.root = Path(results_dir)
        self.store = _read_store(self.root)
        self.records = self.store.results()

    def frame(self, selection: str = "last", split: str = "test", groups: bool = False, curves: bool = False) -> pd.DataFrame:
        """One row per job: identity (id, method, dataset, conflict_pct, seed, budget, protocol, backbone,
        supervision, draw), every method hyperparameter as `hp.<key>` and dataset option as
        `data.<option>`, the metrics in percent at `selection` on `split`, sparsity, compute, the device it ran on. `groups`
        adds per-group accuracies (list, row-major over (target, bias)); `curves` the evaluation curve. Runs
        without `split` (no validation split held out) have NaN metrics; none with it is an error."""
        from benchmark.reports.outliers import device_text
        from benchmark.reports.report import flatten

        rows, with_split = [], 0
        for rec in self.records:
            job = rec["job"]
            protocol = of_job(job)
            metrics = require_rule(rec, selection)
            with_split += split in metrics
            m = metrics.get(split) or {name: None for name in METRIC_NAMES}  # a run without that split: NaN metrics
            row = {"id": job["id"], "method": job["method"], "dataset": job["dataset"], "conflict_pct": float(job["conflict_pct"]),
                   "seed": int(job["seed"]), "budget": job["budget"], "protocol": protocol.name, "backbone": protocol.backbone,
                   "supervision": of_record(rec), "draw": job.get("draw"),
                   **{f"hp.{k}": v for k, v in flatten(job["hparams"].get("method", {})).items()},
                   **{f"data.{k}": v for k, v in flatten(job["hparams"].get("dataset", {})).items()},
                   **{name: (100 * m[name] if m[name] is not None else math.nan) for name in METRIC_NAMES},
                   "sparsity": 100 * rec["sparsity"]["overall"] if rec.get("sparsity") else math.nan,
                   "wall_seconds": rec.get("wall_seconds", math.nan), **totals(rec), "device": device_text(rec)}
            if groups:
                row["group_acc"] = [None if a is None else 100 * a for a in m.get("group_acc", [])]
            if curves:
                row["curve"] = rec.get("curve", [])
            rows.append(row)
        if self.records and not with_split:
            raise BenchError(f"no stored run has a {split!r} split (hold one out with --set <dataset>.valid_fraction=0.1)")
        return pd.DataFrame(rows)

    def table(self, selection: str = "last", split: str = "test", fmt: str = "table", compute: bool = False,
              tuned: str | None = None, **only: Any) -> str:
        """The table the command line prints (`fmt`: table, markdown, csv, latex); `compute` adds steps and
        minutes, `tuned` a selection rule across search draws (`val-accuracy`, ...) instead of the defaults.
        `only`: the report's filters, `methods=[...]`, `datasets=[...]`, `conflict_pcts=[...]`,
        `protocol="matched"`, `backbone="mlp"`."""
        from benchmark.reports.report import report_dir

        _check_filters(only)
        return report_dir(self.root, fmt, selection, split, compute=compute, tuned=tuned, only=only)

    def paper(self, name: str, fmt: str = "table", selection: str | None = None, protocol: str = "published",
              backbone: str | None = None, tuned: str | None = None) -> str:
        """The published table `name` (configs/paper/<name>.yaml) from the stored runs, ours beside the paper's."""
        from benchmark.reports.paper import paper_table_text

        return paper_table_text(name, self.root, fmt, selection, protocol=protocol, backbone=backbone, tuned=tuned)

    def compare(self, other_dir: str | Path, selection: str = "last", metric: str = "unbiased_acc", fmt: str = "table",
                **only: Any) -> str:
        """This directory against `other_dir` cell by cell (`report DIR --against OTHER`): each side's mean
        and 95 % interval, the difference and Welch's p; `only` takes the table filters."""
        from benchmark.reports.compare import compare_table
        from benchmark.reports.tables import render

        _check_filters(only)
        return render(compare_table(self.root, other_dir, selection, metric, only), fmt)

    def plot(self, kind: str, out_dir: str | Path | None = None, selection: str = "last", **options: Any) -> list[Path]:
        """Draw figure `kind` (ratio, sparsity, groups, curves) as PNG and PDF; returns the paths written.
        `options`: `all_variants=True` (ratio, curves: every setting, not only the defaults), `job=NAME` (groups)."""
        from benchmark.reports.plots import PLOTS

        if kind not in PLOTS:
            raise BenchError(f"unknown plot {kind!r}; plots: {', '.join(sorted(PLOTS))}")
        return PLOTS[kind](self.records, Path(out_dir) if out_dir else self.root / "plots", selection, **options)
