"""Checkpoint selection rules, applied to the evaluation curve a job recorded.

- `last` (default): the final model, as the papers' code saves it.
- `best-valid-unbiased`: the evaluation with the best unbiased accuracy on the validation split.
- `best-valid-worst-group`: the evaluation with the best worst-group accuracy on the validation split.
- `best-valid-accuracy`: the evaluation with the best overall accuracy on the validation split
  (no group label read: the checkpoint rule of tuning rule `val-accuracy`).
- `oracle-test`: the evaluation with the best unbiased accuracy on the *test* split: what
  DisEnt's and DeNetDM's code report. Optimistic; only for regenerating those tables like for like.
Only evaluations of the method's final evaluated stage are candidates; ties go to the earliest.
"""
from __future__ import annotations

from typing import Any

from benchmark.errors import BenchError
from benchmark.metrics import group_metrics

RULES = ("last", "best-valid-unbiased", "best-valid-worst-group", "best-valid-accuracy", "oracle-test")
CRITERIA = {
    "best-valid-accuracy": ("valid", "overall_acc"),
    "best-valid-unbiased": ("valid", "unbiased_acc"),
    "best-valid-worst-group": ("valid", "worst_group_acc"),
    "oracle-test": ("test", "unbiased_acc"),
}
RULE_CAPTIONS = {  # after "checkpoint: " in every caption
    "last": "final model (rule: last)",
    "best-valid-unbiased": "best validation unbiased accuracy (rule: best-valid-unbiased)",
    "best-valid-worst-group": "best validation worst-group accuracy (rule: best-valid-worst-group)",
    "best-valid-accuracy": "best validation overall accuracy (rule: best-valid-accuracy)",
    "oracle-test": "best TEST unbiased accuracy (rule: oracle-test; optimistic, as DisEnt's/DeNetDM's code)",
}


GROUP_SPLIT = "valid_even"  # held out beside a training-biased `valid` (valid_bias: both): the group-label rules read it
EVAL_SPLITS = ("valid", GROUP_SPLIT, "test")  # the splits every evaluation scores, where the dataset has them


def criterion(rule: str, splits: Any) -> tuple[str, str]:
    """(split, metric) that `rule` maximises, given the splits a run evaluated: the rules that read
    validation group labels take the evenly biased validation half where a run holds one out beside
    a training-biased one (a worst group of a 1 %-conflicting split is empty or one image)."""
    split, metric = CRITERIA[rule]
    return read_split(split, metric, splits), metric


def read_split(split: str, metric: str, splits: Any) -> str:
    """The split a validation score of `metric` reads: a metric over groups (all but overall
    accuracy) reads the evenly biased half where the run holds one out beside `valid`."""
    return GROUP_SPLIT if split == "valid" and metric != "overall_acc" and GROUP_SPLIT in splits else split


def check_rule(rule: str) -> None:
    if rule not in RULES:
        raise BenchError(f"unknown selection rule {rule!r}; rules: {', '.join(RULES)}")


def entry_metrics(entry: dict[str, Any], group_total: dict[str, list[int]], aligned: list[bool]) -> dict[str, Any]:
    return {split: group_metrics(entry[split], group_total[split], aligned) for split in EVAL_SPLITS if split in entry}


def select_all(curve: list[dict[str, Any]], group_total: dict[str, list[int]], aligned: list[bool],
               final_stage: str) -> dict[str, dict[str, Any]]:
    """{rule: {"stage", "step", "test": metrics, "valid": metrics}} for every rule the data allows."""
    candidates = [(e, entry_metrics(e, group_total, aligned)) for e in curve if e["stage"] == final_stage]
    if not candidates:
        raise BenchError(f"no evaluation of the final stage {final_stage!r} was recorded")
    chosen = {"last": candidates[-1]}
    for rule in CRITERIA:
        split, metric = criterion(rule, group_total)
        if split not in group_total:
            continue
        best = None
        for entry, metrics in candidates:
            value = metrics[split][metric]
            if value is not None and (best is None or value > best[2]):
                best = (entry, metrics, value)
        if best is not None:
            chosen[rule] = best[:2]
    return {rule: {"stage": e["stage"], "step": e["step"], **m} for rule, (e, m) in chosen.items()}


def require_rule(record: dict[str, Any], rule: str) -> dict[str, Any]:
    """The metrics a stored record holds under `rule`, or a clear error why it has none."""
    check_rule(rule)
    if rule not in record["metrics"] and record.get("curve") and record.get("final_stage"):
        # a rule added after the record was stored: select from its stored curve
        computed = select_all(record["curve"], record["group_total"], record["aligned_groups"], record["final_stage"])
        if rule in computed:
            return computed[rule]
    if rule not in record["metrics"]:
        raise BenchError(
            f"selection rule {rule} needs a validation split, and {record['job']['dataset']} has none in these results: "
            f"rerun with a held-out split (e.g. --set cmnist.valid_fraction=0.1) or use --selection last or oracle-test"
        )
    return record["metrics"][rule]
