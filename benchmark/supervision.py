"""Which group labels a method trains with, as every table, report and plot shows it.

Levels (declared by each method class as `supervision`, see methods/base.py):
`none` sees no group label; `valid-groups` sees the (y, bias) groups of the validation split
only (to tune or retrain on them); `train-groups` sees the groups of the training split (an
oracle next to the label-free methods). A result stores the level its method declared.
"""
from __future__ import annotations

from typing import Any

LABELS = {"none": "none", "valid-groups": "valid groups", "train-groups": "train groups"}
MARKERS = {"none": "o", "valid-groups": "s", "train-groups": "^"}  # plots: one marker per level
LINESTYLES = {"none": "-", "valid-groups": "--", "train-groups": ":"}
NOTE = ("supervision = the group (y, bias) labels a method trains with: none; valid groups = those of the "
        "validation split only; train groups = those of the training split (an oracle: not comparable with a "
        "label-free row as an equal).")


def declared(method: str) -> str:
    """The registered method's level; `unknown` for a method this installation does not register."""
    from benchmark.imports import project_packages

    cls = project_packages()[1].METHODS.get(method)
    return cls.supervision if cls is not None else "unknown"


def of_record(record: dict[str, Any]) -> str:
    """The level a stored result was trained with (results stored before levels existed: the
    method's declared one; every method then was label-free)."""
    return record.get("supervision") or declared(record["job"]["method"])


def label(level: str) -> str:
    return LABELS.get(level, level)


def no_validation_split(method: str, dataset: str) -> str:
    """The one error line for a `valid-groups` method on a dataset without a validation split."""
    return (f"{method} uses the group labels of the validation split, and {dataset} has none: hold one out "
            f"with --set {dataset}.valid_fraction=0.1")
