"""The dataset options a table's runs share but the configs do not set, as a note: a table of runs
with 10 % of the training images held out for validation (`--set cmnist.valid_fraction=0.1`) must
say so, or it reads as comparable with runs on the whole training split."""
from __future__ import annotations

import inspect
from functools import lru_cache
from typing import Any


@lru_cache(maxsize=None)
def _loader_defaults(dataset: str) -> dict[str, Any]:
    from benchmark.imports import project_packages

    entry = project_packages()[0].DATASETS.get(dataset)
    if entry is None:
        return {}
    params = inspect.signature(entry.loader).parameters
    return {k: p.default for k, p in params.items() if p.default is not inspect.Parameter.empty}


def options_of(job: dict[str, Any]) -> dict[str, Any]:
    """A stored job's dataset options, each one it does not set at its loader's default (so a run
    stored before an option existed compares equal with one that sets it to the default)."""
    return {**_loader_defaults(job["dataset"]), **(job["hparams"].get("dataset") or {})}


def changed_options(job: dict[str, Any]) -> dict[str, Any]:
    """A stored job's dataset options that differ from what the current configs give its cell."""
    from benchmark.grid.jobs import default_job

    default = default_job(job)
    base = {**_loader_defaults(job["dataset"]), **((default.hparams.get("dataset") or {}) if default is not None else {})}
    return {k: v for k, v in sorted((job["hparams"].get("dataset") or {}).items()) if base.get(k) != v}


def note(records: list[dict[str, Any]]) -> str | None:
    """One line naming, per dataset, the options every run of it set away from the configs (with the
    defaults they replace); None when there are none. Options that differ between runs are variants."""
    by_dataset: dict[str, list[dict[str, Any]]] = {}
    for rec in records:
        by_dataset.setdefault(rec["job"]["dataset"], []).append(changed_options(rec["job"]))
    parts, held_out = [], False
    for dataset, changes in sorted(by_dataset.items()):
        shared = {k: v for k, v in changes[0].items() if all(c.get(k) == v for c in changes[1:])}
        held_out = held_out or bool(shared.get("valid_fraction"))
        if shared:
            defaults = _loader_defaults(dataset)
            parts.append(f"{dataset}: " + ", ".join(f"{k}={v}" for k, v in shared.items())
                         + " (defaults: " + ", ".join(f"{k}={defaults.get(k)}" for k in shared) + ")")
    if not parts:
        return None
    both = any("valid_bias=both" in part for part in parts)
    return ("data options every run of the table set away from the configs' defaults: " + "; ".join(parts)
            + (". valid_fraction holds that share of the training images out for validation: these rows trained on fewer "
               "images than runs with the defaults" if held_out else "")
            + ("; valid_bias=both: half of it biased like training (valid, read by the rules without group labels), half "
               "evenly (valid_even, read by the group-label rules)" if both else "") + ".")
