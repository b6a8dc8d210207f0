"""A table as every report prints it, in plain text, markdown or LaTeX (CSV comes from its numbers),
with its cells' marks (best, not distinguishable from the best, beyond the published spread)."""
from __future__ import annotations

import io
from dataclasses import dataclass, field

import pandas as pd

from benchmark.errors import BenchError
from benchmark.reports.stats import decorate

FORMATS = ("table", "markdown", "csv", "latex")


@dataclass
class Table:
    caption: str
    columns: list[str]
    rows: list[list[str]]
    notes: list[str] = field(default_factory=list)
    numeric: pd.DataFrame = field(default_factory=pd.DataFrame)
    marks: dict[tuple[int, int], set[str]] = field(default_factory=dict)  # (row, column) -> {"best", "tie", "beyond"}


def _decorated(table: Table, fmt: str) -> list[list[str]]:
    return [[decorate(c, table.marks.get((i, j), set()), fmt) for j, c in enumerate(r)] for i, r in enumerate(table.rows)]


def _text(table: Table, sep: str = "  ") -> str:
    shown = _decorated(table, "table")
    widths = [max(len(c), *(len(r[i]) for r in shown)) if shown else len(c) for i, c in enumerate(table.columns)]
    line = lambda cells: sep.join(c.ljust(w) for c, w in zip(cells, widths)).rstrip()  # noqa: E731
    out = [table.caption, line(table.columns), line(["-" * w for w in widths])]
    out += [line(r) for r in _decorated(table, "table")]
    return "\n".join(out + [f"  {n}" for n in table.notes])


def _markdown(table: Table) -> str:
    out = [f"**{table.caption}**", "", "| " + " | ".join(table.columns) + " |", "|" + "|".join("---" for _ in table.columns) + "|"]
    out += ["| " + " | ".join(r) + " |" for r in _decorated(table, "markdown")]
    return "\n".join(out + [""] + [f"- {n}" for n in table.notes])


def _latex_escape(s: str) -> str:
    for a, b in (("\\", r"\textbackslash{}"), ("&", r"\&"), ("%", r"\%"), ("_", r"\_"), ("#", r"\#"), ("±", r"$\pm$"), ("Δ", r"$\Delta$")):
        s = s.replace(a, b)
    return s


def _latex(table: Table) -> str:
    text_cols = sum(1 for c in table.columns if c in ("dataset", "conflict %", "method", "supervision", "network", "protocol", "variant"))
    cols = "l" * text_cols + "r" * (len(table.columns) - text_cols)
    out = [r"\begin{table}[t]", r"\centering", r"\small", rf"\caption{{{_latex_escape(table.caption)}}}",
           rf"\begin{{tabular}}{{{cols}}}", r"\toprule", " & ".join(_latex_escape(c) for c in table.columns) + r" \\", r"\midrule"]
    out += [" & ".join(decorate(_latex_escape(c), table.marks.get((i, j), set()), "latex") for j, c in enumerate(r)) + r" \\"
            for i, r in enumerate(table.rows)]
    out += [r"\bottomrule", r"\end{tabular}", r"\end{table}"]
    return "\n".join(out)


def render(table: Table, fmt: str = "table") -> str:
    if fmt == "table":
        return _text(table)
    if fmt == "markdown":
        return _markdown(table)
    if fmt == "latex":
        return _latex(table)
    if fmt == "csv":
        buf = io.StringIO()
        table.numeric.to_csv(buf, index=False, float_format="%.4f")
        return buf.getvalue()
    raise BenchError(f"unknown format {fmt!r}; formats: {', '.join(FORMATS)}")
