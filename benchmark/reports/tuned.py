"""What a tuned table adds to a table: per cell, the search draw the rule chose and the defaults
beside it, so that a reader sees how far tuning moved each method (and with which values).

The defaults are the setting of the cell's search draw 0 (for a cell stored without a search: the
setting whose method hyperparameters are the configs' defaults), in the same cell, so on the same
data (tuning.cell_of), read at the same checkpoint rule on the same split, over every seed stored
for that setting (`--tuned` runs them on every trial). A cell with neither shows no untuned value,
and the note says its defaults are not stored. Cells are keyed by tuning.cell_of throughout.
"""
from __future__ import annotations

import json
import math
from dataclasses import dataclass
from typing import Any

from benchmark.grid.jobs import canonical, complete_hparams, default_job
from benchmark.errors import BenchError
from benchmark.grid.tuning import Choice, cell_of, setting_of
from benchmark.reports.labels import flatten, value_text
from benchmark.reports.stats import fmt_interval, t_interval
from benchmark.selection import require_rule

NOTE = ("draw = the search draw the tuning rule chose (0 = the defaults); untuned = the defaults (draw 0) on the same "
        "data, split and checkpoint rule, mean ± 95 % CI over their n stored seeds, in brackets tuned minus untuned "
        "(unbiased accuracy).")


@dataclass
class TunedCell:
    """One cell of a tuned table: its chosen draw, its defaults' unbiased accuracy and what tuning changed."""

    draw: int | None
    untuned: list[float]     # the defaults' unbiased accuracy per stored seed, in percent
    changes: str | None      # the chosen setting's values that differ from the defaults ("": it is them; None: not stored)


def has_default_method_settings(job: dict[str, Any]) -> bool:
    """Whether a stored job's method hyperparameters are those the current configs give its cell
    (whatever dataset options it set: those are part of its tuning cell)."""
    default = default_job(job)
    if default is None:
        return False
    method = job["method"]
    return (canonical(complete_hparams(method, job["hparams"])["method"])
            == canonical(complete_hparams(method, default.hparams)["method"]))


def _scored(rec: dict[str, Any], rule: str, split: str) -> float | None:
    """A record's unbiased accuracy (%) on `split` at checkpoint `rule`; None when it cannot be read there."""
    try:
        value = require_rule(rec, rule).get(split, {}).get("unbiased_acc")
    except BenchError:
        return None
    return None if value is None else 100 * float(value)


def tuned_cells(records: list[dict[str, Any]], chosen: dict[tuple, Choice], rule: str, split: str = "test") -> dict[tuple, TunedCell]:
    """Per chosen cell (keyed as tuning.cell_of): a TunedCell from every stored record of the cell
    (all settings, all seeds), read at checkpoint `rule` on `split`."""
    by_cell: dict[tuple, list[tuple[str, dict[str, Any]]]] = {}
    for rec in records:  # each record's cell and setting, computed once
        by_cell.setdefault(cell_of(rec["job"]), []).append((setting_of(rec["job"]), rec))
    out: dict[tuple, TunedCell] = {}
    for cell, choice in chosen.items():
        stored = by_cell.get(cell, [])
        default = next((h for h, rec in stored if rec["job"].get("draw") == 0), None)
        if default is None:  # stored without a search (or before draws were stored): the configs' method settings
            default = next((h for h, rec in stored if has_default_method_settings(rec["job"])), None)
        values = [_scored(rec, rule, split) for setting, rec in stored if setting == default]
        values = [math.nan if v is None else v for v in values]
        changes = None if default is None else ""
        if default is not None and choice.setting != default:
            new, old = flatten(json.loads(choice.setting)), flatten(json.loads(default))
            method = cell[2]
            changes = ", ".join(value_text(method, k.split(".", 1)[1], new.get(k)) for k in sorted(set(new) | set(old))
                                if new.get(k) != old.get(k))
        out[cell] = TunedCell(choice.draw, values, changes)
    return out


def cells_text(cell: TunedCell | None, tuned_mean: float) -> list[str]:
    """The draw and `untuned unbiased (Δ)` cells of one row."""
    if cell is None:
        return ["", ""]
    mean, half = t_interval(cell.untuned)
    untuned = "–" if math.isnan(mean) else f"{fmt_interval(mean, half)}, n {len(cell.untuned)} ({tuned_mean - mean:+.2f})"
    return ["–" if cell.draw is None else str(cell.draw), untuned]


def tuned_numbers(cell: TunedCell | None) -> dict[str, float]:
    """The CSV columns of one row: chosen draw, the defaults' mean, 95 % half-width and seeds."""
    if cell is None:
        return {"draw": math.nan, "untuned_unbiased_acc_mean": math.nan, "untuned_unbiased_acc_ci95": math.nan, "untuned_n": 0}
    mean, half = t_interval(cell.untuned)
    return {"draw": math.nan if cell.draw is None else cell.draw, "untuned_unbiased_acc_mean": mean,
            "untuned_unbiased_acc_ci95": half, "untuned_n": len(cell.untuned)}


def changes_note(cells: dict[tuple, TunedCell]) -> str:
    """One note line: the cells whose chosen setting is not the defaults, with their draw and the values
    tuning changed; how many chose the defaults; the cells whose defaults are not stored."""
    order = sorted(cells.items(), key=lambda kv: (kv[0][0], kv[0][2], kv[0][1], kv[0][3:]))
    name = cell_names([key for key, _ in order])
    moved = [f"{name[key]}: draw {'–' if cell.draw is None else cell.draw}, {cell.changes}" for key, cell in order if cell.changes]
    same = sum(1 for _, cell in order if cell.changes == "")
    unknown = [name[key] for key, cell in order if cell.changes is None]
    parts = [f"the defaults in {same} of {len(order)} cells"] + moved
    if unknown:
        parts.append("defaults not stored for " + ", ".join(unknown))
    return "chosen settings: " + "; ".join(parts) + "."


def cell_names(keys: list[tuple]) -> dict[tuple, str]:
    """Each tuning cell in words, "lff (cmnist 1 %)", with the budget or dataset options that tell it
    apart from another cell of the same method and ratio ("lff (cmnist 1 %, valid_bias=train)")."""
    groups: dict[tuple, list[tuple]] = {}
    for key in keys:
        groups.setdefault(key[:4], []).append(key)
    names = {}
    for same in groups.values():
        options = {key: {"budget": key[4], **json.loads(key[5])} for key in same}
        differ = sorted({k for o in options.values() for k in o if len({str(p.get(k)) for p in options.values()}) > 1})
        for key in same:
            extra = "".join(f", {k}={options[key].get(k)}" for k in differ)
            names[key] = f"{key[2]} ({key[0]} {key[1]:g} %{extra})"
    return names


def paper_notes(records: list[dict[str, Any]], kept: list[dict[str, Any]], chosen: dict[tuple, Choice], rule: str,
                split: str = "test") -> list[str]:
    """A regenerated paper table's tuned notes (its columns are the paper's): per cell, tuned minus
    untuned unbiased accuracy, and the chosen settings. `records`: every stored record of its cells;
    `kept`: those of the chosen settings."""
    cells = tuned_cells(records, chosen, rule, split)
    if not cells:
        return []
    tuned: dict[tuple, list[float]] = {}
    for rec in kept:
        value = _scored(rec, rule, split)
        if value is not None:
            tuned.setdefault(cell_of(rec["job"]), []).append(value)
    parts = []
    order = sorted(cells.items(), key=lambda kv: (kv[0][0], kv[0][2], kv[0][1], kv[0][3:]))
    name = cell_names([key for key, _ in order])
    for key, cell in order:
        untuned, ours = t_interval(cell.untuned)[0], t_interval(tuned.get(key, []))[0]
        if cell.changes and not (math.isnan(untuned) or math.isnan(ours)):
            parts.append(f"{name[key]} {ours - untuned:+.2f} (tuned {ours:.2f}, n {len(tuned[key])}; "
                         f"defaults {untuned:.2f}, n {len(cell.untuned)})")
    lines = ["tuned minus untuned unbiased accuracy where the rule chose other settings than the defaults (draw 0, on the "
             "same data, split and checkpoint rule): " + "; ".join(parts) + "."] if parts else []
    return lines + [changes_note(cells)]
