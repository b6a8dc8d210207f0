"""Command line: run a grid, rebuild tables from a results directory, measure the harness.

    run_bench.py --methods erm --datasets cmnist [--seeds 0 1 2] [--conflict-pcts 0.5 1 2 5] ...
    run_bench.py report RESULTS_DIR [--format table|markdown|csv|latex] [--selection RULE]
    run_bench.py perf [--device cpu|cuda] [--quick] [--repeats N]
    run_bench.py plot ratio|sparsity|groups RESULTS_DIR
    run_bench.py status RESULTS_DIR

Every bad input ends in one line `error: ...` that says what is wrong and how to fix it.
"""
from __future__ import annotations

import argparse
import math
import os
import sys
from pathlib import Path
from typing import Any

from benchmark.arguments import ArgumentParser
from benchmark.errors import BenchError
from benchmark.failpoints import failpoint
from benchmark.training.stopping import StopRequested
from benchmark.imports import check_project_package

SUBCOMMANDS = ("report", "perf", "plot", "status")


def run_parser() -> ArgumentParser:
    from benchmark.config import BUDGETS, defaults
    from benchmark.grid.backends import BACKENDS
    from benchmark.selection import RULES
    from benchmark.grid.tuning import TUNING_RULES

    d = defaults().get("run", {})
    p = ArgumentParser(prog="run_bench.py", description="Train and compare debiasing methods over a grid of jobs.", allow_abbrev=False,
                       epilog="Subcommands: report RESULTS_DIR, plot KIND RESULTS_DIR, perf. Run `run_bench.py report --help` for theirs.")
    p.add_argument("--methods", nargs="+", default=d.get("methods", ["erm"]), help="method names or 'all' (default: %(default)s)")
    p.add_argument("--datasets", nargs="+", default=d.get("datasets", ["cmnist"]), help="dataset names (default: %(default)s)")
    p.add_argument("--seeds", nargs="+", type=int, default=d.get("seeds", [0, 1, 2]), help="job seeds (default: %(default)s)")
    p.add_argument("--conflict-pcts", nargs="+", type=float, default=None,
                   help="percent of bias-conflicting training samples (default: each dataset's standard ratios)")
    p.add_argument("--budget", choices=BUDGETS, default=d.get("budget", "paper"),
                   help="quick: a few hundred steps (smoke run); paper: the official step counts (default: %(default)s)")
    p.add_argument("--protocol", choices=("published", "matched"), default="published",
                   help="published: each method with its paper's networks; matched: every method predicts with one "
                        "backbone of the dataset (--backbone), its other settings as published (default: %(default)s)")
    p.add_argument("--backbone", default=None, metavar="NAME",
                   help="--protocol matched: the dataset's backbone (cmnist: mlp or cnn; default: the first its YAML lists)")
    p.add_argument("--device", default=d.get("device", "auto"), help="auto, cpu, cuda or cuda:N (default: %(default)s)")
    p.add_argument("--data-placement", choices=("auto", "device", "host"), default=d.get("data_placement", "auto"),
                   help="images on the GPU, or streamed from host memory; auto streams when they would fill over half of "
                        "the GPU's free memory (default: %(default)s)")
    p.add_argument("--cuda-graphs", choices=("auto", "off"), default=d.get("cuda_graphs", "auto"),
                   help="auto: on a GPU, replay each training step as one CUDA graph where the method allows it (default: %(default)s)")
    p.add_argument("--seeds-together", type=int, default=d.get("seeds_together", 1), metavar="N",
                   help="train up to N seeds of one setting in one process, step by step in turn (on a GPU, each on its own "
                        "stream: small models keep it busy); results as separate runs (default: %(default)s)")
    p.add_argument("--backend", choices=BACKENDS, default=d.get("backend", "serial"), help="default: %(default)s")
    p.add_argument("--scheduler", default=None, metavar="ADDRESS",
                   help="dask: the scheduler's address (tcp://host:8786); default: a LocalCluster on this machine")
    p.add_argument("--slurm-config", default=None, metavar="FILE",
                   help="slurm: YAML with partition, time_min, gpus_per_job, cpus_per_job, mem_gb, array_parallelism")
    p.add_argument("--slurm-partition", default=None)
    p.add_argument("--slurm-time-min", type=int, default=None, help="slurm: time limit per job in minutes (default 240)")
    p.add_argument("--slurm-gpus-per-job", type=int, default=None, help="slurm: GPUs per job (default 0)")
    p.add_argument("--slurm-array-parallelism", type=int, default=None, help="slurm: at most this many array tasks at once")
    p.add_argument("--slurm-cluster", default=None, choices=("slurm", "local", "debug"),
                   help="submitit's executor: slurm (default when sbatch exists), local (tasks as local processes: a dry run)")
    p.add_argument("--jobs", type=int, default=None, help="local backend workers (default: on GPUs, 8 jobs per GPU for 28 px datasets, 2 for 32 px, 1 for larger "
                        "images; on CPU half the cores)")
    p.add_argument("--data-root", default=None, help="data root in torchvision's layout (default: $DEBIASBENCH_DATA, then the shipped MNIST)")
    p.add_argument("--weights", default=None, metavar="DIR",
                   help="folder holding torchvision's ImageNet weight files (resnet18-f37072fd.pth, resnet50-0676ba61.pth); "
                        "default: $DEBIASBENCH_WEIGHTS, then torch's hub cache, then a download")
    p.add_argument("--results-dir", default=d.get("results_dir", "results"), help="default: %(default)s")
    p.add_argument("--config", default=None, help="YAML with `methods: {name: {...}}` and `datasets: {name: {...}}` overrides")
    p.add_argument("--set", dest="sets", action="append", default=[], metavar="KEY=VALUE",
                   help="override a hyperparameter (optimizer.lr=0.01) or dataset option (cmnist.valid_fraction=0.1); "
                        "v1,v2 expands the grid")
    p.add_argument("--selection", choices=RULES, default=d.get("selection", "last"), help="checkpoint rule of the final table (default: %(default)s)")
    p.add_argument("--format", choices=("table", "markdown", "csv", "latex"), default="table", help="final table format")
    p.add_argument("--paper", default=None, metavar="NAME",
                   help="run the missing jobs of a published table (configs/paper/NAME.yaml) and print it in the paper's "
                        "layout; its methods, datasets, ratios, seeds and budget replace those flags (--seeds and --budget "
                        "given explicitly still win)")
    p.add_argument("--search", type=int, default=None, metavar="N",
                   help="add N random draws of each method's search space (the `search` section of its YAML) beside its "
                        "defaults (draw 0); each draw is a job like any other")
    p.add_argument("--trials", type=int, default=None, metavar="K", help="run every draw with seeds 0..K-1 (instead of --seeds)")
    p.add_argument("--tuned", choices=tuple(TUNING_RULES), default=None, metavar="RULE",
                   help="tuning rule (val-accuracy, val-worst-group, val-unbiased, oracle-test): run every draw on the "
                        "first seed, pick each cell's setting by RULE, run it on every seed, print the tuned table")
    p.add_argument("--list", action="store_true", help="list methods, datasets and paper tables, then exit")
    p.add_argument("--tensorboard", default=None, metavar="DIR",
                   help="after the run, write TensorBoard event files of every job of the grid under DIR (needs the "
                        "tensorboard extra: pip install -e \".[tensorboard]\")")
    p.add_argument("--dry-run", action="store_true",
                   help="print the grid (each job's name and id, its search draw, whether it is stored) and run nothing")
    p.add_argument("--show-config", action="store_true",
                   help="print every resolved setting of the grid as YAML (one document per setting, seeds collapsed, "
                        "keys sorted: diff two commands' output) and run nothing")
    p.add_argument("--no-progress", action="store_true", help="no progress bars")
    p.add_argument("--log-every", type=int, default=100, help="read training logs every N steps (default: %(default)s)")
    p.add_argument("--checkpoint-minutes", type=float, default=5.0, help="periodic checkpoint interval (default: %(default)s)")
    p.add_argument("--heartbeat-minutes", type=float, default=3.0,
                   help="without progress bars (a log file, --no-progress): a line per running job this often, besides one "
                        "line per finished job; 0 = only the latter (default: %(default)s)")
    p.add_argument("--threads", type=int, default=None, metavar="N",
                   help="PyTorch CPU threads per job (default: $DEBIASBENCH_THREADS, else the cores idle when each job starts, "
                        "at most its share of a local pool; fix it for bit-identical reruns)")
    p.add_argument("--repair", action="store_true",
                   help="move unusable stored results and failures (unreadable, or missing fields) to RESULTS/quarantine/ "
                        "and run their jobs again")
    return p


def list_registry() -> str:
    from benchmark.config import CONFIG_ROOT, dataset_config, load_yaml, supported_datasets
    from benchmark.imports import project_packages
    from benchmark.plugins import origin
    from benchmark.supervision import label

    datasets_pkg, methods_pkg = project_packages()
    lines = ["methods (supervision: which group labels it trains with; datasets: those it declares settings for):"]
    for name, cls in sorted(methods_pkg.METHODS.items()):
        where = "" if origin("methods", name) == "built-in" else f" [{origin('methods', name)}]"
        lines.append(f"  {name:<14} {(cls.__doc__ or '').strip().splitlines()[0]}{where}")
        usable = supported_datasets(name, sorted(datasets_pkg.DATASETS))
        lines.append(f"  {'':<14} supervision: {label(cls.supervision)}; datasets: {' '.join(usable) or 'none'}")
    lines.append("datasets:")
    for name, entry in sorted(datasets_pkg.DATASETS.items()):
        pcts = " ".join(f"{p:g}" for p in dataset_config(name).get("conflict_pcts", []))
        where = "" if origin("datasets", name) == "built-in" else f" [{origin('datasets', name)}]"
        lines.append(f"  {name:<14} {entry.description} [conflict %: {pcts}]{where}")
    lines.append("paper tables:")
    for path in sorted((CONFIG_ROOT / "paper").glob("*.yaml")):
        lines.append(f"  {path.stem:<14} {load_yaml(path).get('title', '')}")
    return "\n".join(lines)


def _note_unsupported(methods: list[str], datasets: list[str]) -> None:
    """`--methods all`: say which methods sit out which datasets (they declare no setting for them)."""
    from benchmark.config import supported_datasets

    usable = {m: supported_datasets(m, datasets) for m in methods}
    for dataset in datasets:
        out = [m for m in methods if dataset not in usable[m]]
        if out:
            print(f"note: --methods all leaves out {', '.join(out)} on {dataset}: no setting declared for it "
                  "(run_bench.py --list shows what each method supports)", file=sys.stderr)


def _given(argv: list[str], flag: str) -> bool:
    """Whether `flag` was on the command line (as `--flag value` or `--flag=value`), not left at its default."""
    return any(a == flag or a.startswith(flag + "=") for a in argv)


def check_run_flags(args: argparse.Namespace) -> None:
    """The run's numeric flags, before anything is built: one error line for a value out of range."""
    from benchmark.validate import check_count, check_seeds

    for flag, value, low in (("--jobs", args.jobs, 1), ("--log-every", args.log_every, 1), ("--seeds-together", args.seeds_together, 1),
                             ("--threads", args.threads, 1),
                             ("--slurm-time-min", args.slurm_time_min, 1), ("--slurm-gpus-per-job", args.slurm_gpus_per_job, 0),
                             ("--slurm-array-parallelism", args.slurm_array_parallelism, 1)):
        check_count(flag, value, low)
    for flag, value in (("--checkpoint-minutes", args.checkpoint_minutes), ("--heartbeat-minutes", args.heartbeat_minutes)):
        if not (math.isfinite(value) and value >= 0):
            raise BenchError(f"{flag} must be a finite number >= 0, got {value}")
    check_seeds(args.seeds)
    if args.search is not None and args.search < 1:
        raise BenchError(f"--search N adds N >= 1 random draws, got {args.search} (leave --search out to run the defaults alone)")
    check_count("--trials", args.trials, 1)


def _trial_seeds(args: argparse.Namespace, argv: list[str]) -> list[int]:
    """--trials K: seeds 0..K-1; it replaces --seeds, so giving both is an error."""
    if args.trials is None:
        return args.seeds
    if _given(argv, "--seeds"):
        raise BenchError("--trials K runs seeds 0..K-1: give either --trials or --seeds")
    return list(range(args.trials))


def cmd_run(argv: list[str]) -> int:
    from benchmark.config import load_yaml, parse_sets
    from benchmark.imports import project_packages
    from benchmark import api
    from benchmark.grid.jobs import canonical
    from benchmark.reports.report import build_tables, render_all
    from benchmark.grid.runner import expected_vs_found, run_grid, runtime_options
    from benchmark.grid.store import Store
    from benchmark.training.threads import requested_threads
    from benchmark.validate import check_config_file

    args = run_parser().parse_args(argv)
    check_run_flags(args)
    if args.weights:
        os.environ["DEBIASBENCH_WEIGHTS"] = str(Path(args.weights).resolve())  # read by methods.models; workers inherit it
    if args.list:
        print(list_registry())
        return 0
    user = load_yaml(Path(args.config)) if args.config else {}
    if user:
        datasets_pkg, methods_pkg = project_packages()
        check_config_file(user, args.config, methods_pkg.METHODS, datasets_pkg.DATASETS)
    if args.paper:
        from benchmark.reports.paper import load_paper, paper_jobs

        table = load_paper(args.paper)
        multi = [key for key, values in parse_sets(args.sets) if len(values) > 1]
        if multi:
            raise BenchError(f"--paper regenerates one setting per cell: give --set {multi[0]} one value "
                             "(run a sweep without --paper and compare it with `report`)")
        seeds = args.seeds if _given(argv, "--seeds") else table.seeds
        budget = args.budget if _given(argv, "--budget") else table.budget
        rule = args.selection if _given(argv, "--selection") else table.selection
        if _given(argv, "--trials"):
            seeds = _trial_seeds(args, argv)
        jobs = paper_jobs(table, seeds, budget, parse_sets(args.sets), user, args.protocol, args.backbone, args.search or 0)
    else:
        datasets_pkg, methods_pkg = project_packages()
        methods = api.resolve_names(args.methods, methods_pkg.METHODS, "method")
        dataset_names = api.resolve_names(args.datasets, datasets_pkg.DATASETS, "dataset")
        every_method = args.methods == ["all"]
        if every_method:
            _note_unsupported(methods, dataset_names)
        left_out: list[str] = []
        jobs = api.grid(["all"] if every_method else methods, dataset_names, _trial_seeds(args, argv), args.conflict_pcts,
                        args.budget, dict(parse_sets(args.sets)), user, args.protocol, args.backbone, args.search or 0, left_out)
        for line in dict.fromkeys(left_out):
            print(f"note: --methods all {line}", file=sys.stderr)
    if args.show_config:
        if args.dry_run:
            raise BenchError("--show-config prints the settings, --dry-run the jobs and their state: give one of them")
        print(api.show_config(jobs))
        return 0
    from benchmark.training.harness import resolve_device

    device = resolve_device(args.device)
    if args.dry_run:
        print(api.describe(jobs, args.results_dir, device.type, args.tuned))
        return 0
    store = Store(args.results_dir)
    for moved in store.require_usable(args.repair):
        print(f"repair: moved an unusable stored file to {moved}", file=sys.stderr)
    progress = not args.no_progress and sys.stderr.isatty() or os.environ.get("DEBIASBENCH_PROGRESS") == "1"
    runtime = runtime_options(args.device, log_every=args.log_every, checkpoint_seconds=60 * args.checkpoint_minutes,
                              data_placement=args.data_placement, cuda_graphs=args.cuda_graphs,
                              threads=requested_threads(args.threads), heartbeat_seconds=0.0 if progress else 60 * args.heartbeat_minutes)
    slurm = None
    if args.backend == "slurm":
        from benchmark.grid.backends import slurm_options

        slurm = slurm_options({"partition": args.slurm_partition, "time_min": args.slurm_time_min,
                               "gpus_per_job": args.slurm_gpus_per_job, "array_parallelism": args.slurm_array_parallelism,
                               "cluster": args.slurm_cluster}, args.slurm_config)
    def run(some: list[Any]) -> dict[str, Any]:
        return run_grid(some, store, runtime, args.backend, args.jobs, args.data_root, progress, scheduler=args.scheduler,
                        slurm=slurm, seeds_together=args.seeds_together)

    tuned, tuning, every = "", None, None
    if args.tuned:
        from benchmark.grid.tuning import caption as tuning_caption
        from benchmark.grid.tuning import checkpoint_rule, run_tuned
        from benchmark.reports.tuned import tuned_cells

        grid_ids = {j.id for j in jobs}
        summary, jobs, chosen = run_tuned(jobs, args.tuned, run, store)
        every = [r for r in store.results() if r["job"]["id"] in grid_ids]
        tuning = tuned_cells(every, chosen, checkpoint_rule(args.tuned))
        tuned = tuning_caption(args.tuned, chosen) if chosen else f"tuned: rule {args.tuned}, no cell could be scored"
        args.selection = rule = checkpoint_rule(args.tuned)
    else:
        summary = run(jobs)
    failpoint("report")
    ids = {j.id for j in jobs}
    records = [r for r in (every if every is not None else store.results()) if r["job"]["id"] in ids]  # a tuned run's: read once
    status = expected_vs_found(jobs, store)
    if args.paper:
        from benchmark.reports.paper import add_record_notes, regenerate, render_paper

        table.seeds, table.budget, table.tuned = seeds, budget, tuned
        add_record_notes(table, records, rule)
        if args.tuned:
            from benchmark.reports.tuned import paper_notes

            table.notes = table.notes + paper_notes(every, records, chosen, rule)
        print(render_paper(table, regenerate(table, jobs, {r["job"]["id"]: r for r in records}, status, rule), args.format, rule))
    else:
        expected = [{**j.describe(), "hparams": canonical(j.hparams), "status": status[j.id]} for j in jobs]
        print(render_all(build_tables(records, args.selection, "test", expected, tuned=tuned, tuning=tuning), args.format))
    if args.tensorboard:
        from benchmark.reports.tensorboard import export

        folders = export(records, store.root, args.tensorboard)
        print(f"TensorBoard: {len(folders)} runs under {args.tensorboard} (tensorboard --logdir {args.tensorboard})", file=sys.stderr)
    failed = summary["failed"]
    print(f"{summary['total']} jobs: {summary['done']} run now, {summary['skipped']} already in the store, "
          f"{summary['elsewhere']} finished by other runners, {len(failed)} failed"
          + (f" (reasons in {store.root / 'failed'})" if failed else ""), file=sys.stderr)
    for job, reason in failed:
        print(f"  failed: {job.label}: {reason}", file=sys.stderr)
    return 1 if failed else 0


def cmd_report(argv: list[str]) -> int:
    from benchmark.metrics import METRIC_NAMES
    from benchmark.reports.report import report_dir
    from benchmark.reports.tables import FORMATS, render
    from benchmark.selection import RULES
    from benchmark.grid.tuning import TUNING_RULES

    p = ArgumentParser(prog="run_bench.py report", description="Tables from stored results only (nothing is run).", allow_abbrev=False)
    p.add_argument("results_dir")
    p.add_argument("--format", choices=(*FORMATS, "html"), default="table",
                   help="html: one self-contained page with every table and figure (written to --output)")
    p.add_argument("--output", default=None, help="html: where to write the page (default: RESULTS_DIR/report.html)")
    p.add_argument("--selection", choices=RULES, default="last")
    p.add_argument("--split", choices=("test", "valid", "valid_even"), default="test")
    p.add_argument("--diagnostics", action="store_true",
                   help="per-run diagnostics instead (DCWP's mining precision/recall, PruSC's cluster purity)")
    p.add_argument("--compute", action="store_true",
                   help="add each row's training compute: optimiser steps, forward samples, training minutes")
    p.add_argument("--paper", default=None, metavar="NAME",
                   help="one published table (configs/paper/NAME.yaml) in the paper's layout, from the stored results")
    p.add_argument("--protocol", choices=("published", "matched"), default=None,
                   help="only the runs of this protocol; --paper: the protocol of our runs to show beside the paper's (default: published)")
    p.add_argument("--backbone", default=None, metavar="NAME", help="with --protocol matched: only the runs on this backbone")
    p.add_argument("--methods", nargs="+", default=None, metavar="M", help="only these methods' runs")
    p.add_argument("--datasets", nargs="+", default=None, metavar="D", help="only these datasets' runs")
    p.add_argument("--conflict-pcts", nargs="+", type=float, default=None, metavar="P", help="only these conflict ratios")
    p.add_argument("--tuned", choices=tuple(TUNING_RULES), default=None, metavar="RULE",
                   help="per cell, the stored setting that tuning rule RULE picks (val-accuracy, val-worst-group, val-unbiased, "
                        "oracle-test), at its checkpoint rule; replaces --selection")
    p.add_argument("--against", default=None, metavar="DIR",
                   help="compare with another results directory cell by cell (a rerun against results/reference): "
                        "means, difference, Welch's test")
    p.add_argument("--metric", choices=METRIC_NAMES, default="unbiased_acc", help="with --against: the metric compared")
    args = p.parse_args(argv)
    only = {"methods": args.methods, "datasets": args.datasets, "conflict_pcts": args.conflict_pcts, "protocol": args.protocol,
            "backbone": args.backbone}
    if args.against:
        from benchmark.reports.compare import compare_table

        clash = [flag for flag, on in (("--paper", args.paper), ("--tuned", args.tuned), ("--diagnostics", args.diagnostics),
                                        ("--compute", args.compute), ("--format html", args.format == "html"),
                                        ("--split valid", args.split != "test")) if on]
        if clash:
            raise BenchError(f"--against compares the test tables of two directories; drop {', '.join(clash)}")
        print(render(compare_table(args.results_dir, args.against, args.selection, args.metric, only), args.format))
        return 0
    if _given(argv, "--metric"):
        raise BenchError("--metric chooses what --against compares; the other tables show every metric")
    if args.paper:
        from benchmark.reports.paper import paper_table_text

        if args.format == "html":
            raise BenchError("--paper prints table, markdown, csv or latex; the html report holds every paper table")
        rule = args.selection if _given(argv, "--selection") else None
        if args.methods or args.datasets or args.conflict_pcts:
            raise BenchError("--paper prints the paper's rows and columns: --methods, --datasets and --conflict-pcts do not apply")
        print(paper_table_text(args.paper, args.results_dir, args.format, rule, protocol=args.protocol or "published",
                               backbone=args.backbone, tuned=args.tuned))
        return 0
    if args.format == "html" and any(only.values()):
        raise BenchError("--format html writes every table of the directory: drop the --methods/--datasets/--conflict-pcts/"
                         "--protocol/--backbone filters, or use another format")
    if args.format == "html":
        from benchmark.reports.html import write_html_report

        ignored = [flag for flag, on in (("--tuned", args.tuned), ("--compute", args.compute), ("--split", args.split != "test"))
                   if on]
        if ignored:
            raise BenchError(f"--format html writes the directory's test tables, figures and diagnostics as they are; "
                             f"{', '.join(ignored)} would be ignored there: use --format table, markdown, csv or latex for that table")

        explicit = args.selection if _given(argv, "--selection") else None
        print(write_html_report(args.results_dir, args.output, explicit))
        return 0
    print(report_dir(args.results_dir, args.format, args.selection, args.split, args.diagnostics, args.compute, args.tuned, only))
    return 0


def cmd_status(argv: list[str]) -> int:
    from benchmark.grid.status import status_text

    p = ArgumentParser(prog="run_bench.py status", description="Done / running / failed / pending jobs of a results directory.",
                       allow_abbrev=False)
    p.add_argument("results_dir")
    p.add_argument("--repair", action="store_true",
                   help="move unusable stored results and failures to RESULTS/quarantine/ (their jobs then run again)")
    args = p.parse_args(argv)
    print(status_text(args.results_dir, args.repair))
    return 0


def cmd_perf(argv: list[str]) -> int:
    from benchmark.perf import main as perf_main

    return perf_main(argv)


def cmd_plot(argv: list[str]) -> int:
    from benchmark.reports.plots import main as plot_main

    return plot_main(argv)


def main(argv: list[str] | None = None) -> int:
    argv = list(sys.argv[1:] if argv is None else argv)
    try:
        check_project_package("datasets")
        check_project_package("methods")
        if argv and argv[0] in SUBCOMMANDS:
            return {"report": cmd_report, "perf": cmd_perf, "plot": cmd_plot, "status": cmd_status}[argv[0]](argv[1:])
        return cmd_run(argv)
    except BenchError as e:
        print(f"error: {e}", file=sys.stderr)
        return 2
    except BrokenPipeError:  # output piped into `head` and the like
        os.dup2(os.open(os.devnull, os.O_WRONLY), sys.stdout.fileno())
        return 0
    except OSError as e:  # a file we had to read or write, past every more specific check
        print(f"error: {e.strerror or e}{f': {e.filename}' if e.filename else ''} (check that path and rerun; finished jobs are stored)",
              file=sys.stderr)
        return 2
    except StopRequested as stop:
        print("stopped: finished jobs are stored, the running ones checkpointed at the step they reached; "
              "rerun the same command to resume", file=sys.stderr)
        return 128 + stop.signum
    except KeyboardInterrupt:
        print("interrupted: finished jobs are stored; rerun the same command to resume the rest", file=sys.stderr)
        return 130
