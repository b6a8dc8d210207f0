"""Model selection across runs: which stored setting (search draw) of a cell a tuning rule picks.

A cell is (dataset, conflict_pct, method, protocol, budget, dataset options): settings compete
only on the same data (a held-out split changes the training images, `valid_bias` the validation
images the score reads). Its settings are the distinct method hyperparameter sets stored for it
(the draws of a `--search`, the defaults among them). A rule scores each setting by a validation
(or test) metric at the checkpoint the same rule picks within each run, averaged over the seeds
every setting of the cell has (the search trials; where no seed is common to all, the cell's
first seed, the one `--tuned` searches on), so that re-running the chosen setting with more seeds
cannot change the choice; the highest score wins
(ties: the defaults, then the first setting by its hyperparameters). The table then reports the
chosen setting's test metrics over all its stored seeds.

| rule | checkpoint and score | group labels it reads |
| --- | --- | --- |
| `val-accuracy` | overall accuracy on the validation split | none (use a validation split biased like training: `valid_bias: train`) |
| `val-worst-group` | worst-group accuracy on the validation split | the validation split's |
| `val-unbiased` | unbiased accuracy on the validation split | the validation split's |
| `oracle-test` | unbiased accuracy on the TEST split | the test split's: optimistic, for like-for-like comparison only |
"""
from __future__ import annotations

from collections import defaultdict
from dataclasses import dataclass
from typing import Any, Callable

from benchmark.errors import BenchError
from benchmark.grid.jobs import canonical, complete_hparams
from benchmark.protocol import of_job
from benchmark.reports.data_options import options_of
from benchmark.selection import CRITERIA, criterion, require_rule

TUNING_RULES: dict[str, str] = {  # rule: the checkpoint rule whose (split, metric) it also scores settings by
    "val-accuracy": "best-valid-accuracy",
    "val-worst-group": "best-valid-worst-group",
    "val-unbiased": "best-valid-unbiased",
    "oracle-test": "oracle-test",
}
LABELS_READ = {
    "val-accuracy": "no group labels",
    "val-worst-group": "validation group labels",
    "val-unbiased": "validation group labels",
    "oracle-test": "TEST group labels (optimistic)",
}


def check_tuning_rule(rule: str) -> None:
    if rule not in TUNING_RULES:
        raise BenchError(f"unknown tuning rule {rule!r}; rules: {', '.join(TUNING_RULES)}")


def checkpoint_rule(rule: str) -> str:
    check_tuning_rule(rule)
    return TUNING_RULES[rule]


def cell_of(job: dict[str, Any]) -> tuple[str, float, str, str, str, str]:
    """(dataset, conflict_pct, method, protocol label, budget, dataset options as canonical JSON)."""
    return (job["dataset"], float(job["conflict_pct"]), job["method"], of_job(job).label, job["budget"],
            canonical(options_of(job)))


def setting_of(job: dict[str, Any]) -> str:
    return canonical(complete_hparams(job["method"], job["hparams"]))


@dataclass
class Choice:
    """What a rule picked for one cell."""

    setting: str              # the chosen hyperparameters (canonical JSON)
    draw: int | None          # its search draw, when it was stored by a --search
    score: float              # mean of the rule's metric over `seeds`, in [0, 1]
    seeds: tuple[int, ...]    # the seeds every setting of the cell has (the search trials)
    settings: int             # how many settings were compared
    split: str = "valid"      # the split the score was read on (valid_even: the evenly biased half of valid_bias both)


def score(record: dict[str, Any], rule: str) -> tuple[float | None, str]:
    """A run's value of `rule`'s metric at the rule's checkpoint (None when it lacks the split), and its split."""
    checkpoint = TUNING_RULES[rule]
    split, metric = CRITERIA[checkpoint]
    try:
        metrics = require_rule(record, checkpoint)
        split, metric = criterion(checkpoint, metrics)
        value = metrics[split][metric]
    except BenchError:
        return None, split
    return (None if value is None else float(value)), split


def choose(records: list[dict[str, Any]], rule: str) -> dict[tuple, Choice]:
    """Per cell, the setting `rule` picks (cells whose runs lack the rule's split are left out)."""
    check_tuning_rule(rule)
    cells: dict[tuple, dict[str, list[dict[str, Any]]]] = defaultdict(lambda: defaultdict(list))
    for rec in records:
        cells[cell_of(rec["job"])][setting_of(rec["job"])].append(rec)
    chosen: dict[tuple, Choice] = {}
    for cell, settings in cells.items():
        common = set.intersection(*({int(r["job"]["seed"]) for r in recs} for recs in settings.values()))
        if not common:  # e.g. the defaults' search run failed: score every setting on the search seed alone
            common = {min(int(r["job"]["seed"]) for recs in settings.values() for r in recs)}
        ranked = []
        for setting, recs in settings.items():
            used = [r for r in recs if int(r["job"]["seed"]) in common]
            scored = [score(r, rule) for r in used]
            values = [v for v, _ in scored]
            if not values or any(v is None for v in values):
                continue
            split = scored[0][1]
            draws = {r["job"].get("draw") for r in recs}
            draw = min(d for d in draws if d is not None) if draws - {None} else None
            ranked.append((sum(values) / len(values), draw in (0, None), setting, draw, tuple(sorted(int(r["job"]["seed"]) for r in used)),
                           split))
        if ranked:
            best = max(ranked, key=lambda t: (t[0], t[1], [-ord(c) for c in t[2]]))
            chosen[cell] = Choice(best[2], best[3], best[0], best[4], len(settings), best[5])
    return chosen


def tuned_records(records: list[dict[str, Any]], rule: str) -> tuple[list[dict[str, Any]], dict[tuple, Choice]]:
    """The records of each cell's chosen setting (all their seeds), and the choices."""
    chosen = choose(records, rule)
    kept = [r for r in records if (c := chosen.get(cell_of(r["job"]))) is not None and setting_of(r["job"]) == c.setting]
    return kept, chosen


def caption(rule: str, chosen: dict[tuple, Choice]) -> str:
    counts = sorted({c.settings for c in chosen.values()})
    span = f"{counts[0]}" if len(counts) == 1 else f"{counts[0]}-{counts[-1]}"
    metric = CRITERIA[TUNING_RULES[rule]][1]
    split = " or ".join(sorted({c.split for c in chosen.values()})) or CRITERIA[TUNING_RULES[rule]][0]
    return (f"tuned: per cell the setting of {span} stored ones with the best mean {split} "
            f"{metric.replace('_acc', '').replace('_', '-')} accuracy over the search seeds "
            f"(rule: {rule}; reads {LABELS_READ[rule]})")


def search_jobs(jobs: list[Any]) -> list[Any]:
    """The search of a `--tuned` grid: every setting on the grid's first seed."""
    first = jobs[0].seed if jobs else 0
    return [j for j in jobs if j.seed == first]


def defaults_jobs(jobs: list[Any]) -> list[Any]:
    """The defaults (search draw 0) on every seed after the first: what a tuned table sets its choice beside."""
    first = jobs[0].seed if jobs else 0
    return [j for j in jobs if j.draw == 0 and j.seed != first]


def plan(jobs: list[Any], rule: str, records: list[dict[str, Any]]) -> tuple[list[Any], list[Any], list[Any]]:
    """What `--tuned` will run, as far as the stored `records` tell (for `--dry-run`): the search; the
    defaults' other seeds and, for cells whose search is all stored, the chosen setting's; and, for
    the cells whose choice waits on the search, the other seeds of their last setting, standing in for
    the one to be chosen (same kind and count; none runs if the search picks the defaults)."""
    search = search_jobs(jobs)
    stored = {r["job"]["id"]: r for r in records}
    cells: dict[tuple, list[Any]] = defaultdict(list)
    for job in search:
        cells[cell_of(job.describe())].append(job)
    complete = {cell for cell, some in cells.items() if all(j.id in stored for j in some)}
    chosen = choose([stored[j.id] for cell in complete for j in cells[cell]], rule)
    known, waiting = defaults_jobs(jobs), []
    lasts = {cell: setting_of(some[-1].describe()) for cell, some in cells.items()}
    for job in jobs:
        if job.seed == search[0].seed or job in known:
            continue
        cell, setting = cell_of(job.describe()), setting_of(job.describe())
        if cell in chosen:
            if setting == chosen[cell].setting:
                known.append(job)
        elif cell not in complete and setting == lasts.get(cell):  # a complete cell nothing can score runs no more
            waiting.append(job)
    return search, known, waiting


def run_tuned(jobs: list[Any], rule: str, run: Callable[[list[Any]], dict[str, Any]], store: Any) -> tuple[dict[str, Any], list[Any], dict]:
    """`--tuned`: every setting of `jobs` on their first seed, then each cell's chosen setting and its
    defaults (draw 0, to set the choice beside) on every seed; `run(jobs)` runs some jobs into `store`
    and returns their summary. Returns the summary of all, the chosen settings' jobs and the choices."""
    search = search_jobs(jobs)
    searched = run(search)
    ids = {j.id for j in search}
    chosen = choose([r for r in store.results() if r["job"]["id"] in ids], rule)
    final = [j for j in jobs if (c := chosen.get(cell_of(j.describe()))) is not None and setting_of(j.describe()) == c.setting]
    extra = [j for j in defaults_jobs(jobs) if j.id not in {f.id for f in final}]
    ran = run(final + extra)
    final += [j for j in search if cell_of(j.describe()) not in chosen]  # cells nothing could score: their gaps show, not rerun
    total = len({j.id for j in search} | {j.id for j in final + extra})
    summary = {"total": total, "done": searched["done"] + ran["done"], "elsewhere": searched["elsewhere"] + ran["elsewhere"],
               "failed": searched["failed"] + [f for f in ran["failed"] if f[0].id not in ids]}
    summary["skipped"] = total - summary["done"] - summary["elsewhere"] - len(summary["failed"])
    return summary, final, chosen
