"""Statistics printed in every table: confidence intervals over seeds, which rows cannot be told
apart from the best, and average ranks.

- Interval: the two-sided 95 % Student-t interval of the mean over seeds,
  mean ± t(0.975, n-1) · s / sqrt(n) (s the sample standard deviation). Seeds are few (3-5), so
  the t quantile, not the normal one; a single seed has no interval.
- "Not distinguishable from the best": per column of a block of rows that compare on equal terms
  (one dataset and ratio), the row with the highest mean is the best; another row is marked when
  Welch's unequal-variance t-test of its seeds against the best row's gives p >= 0.05 (two-sided).
  Seeds of different methods are independent runs, so the test is unpaired. A row with fewer than
  two seeds is not tested.
- Average rank: per column, rows ranked by mean (1 = best, ties share the average rank); a row's
  average over the columns where it has a value.
"""
from __future__ import annotations

import math
from typing import Hashable, Iterable

from scipy.special import stdtr, stdtrit  # Student-t CDF and quantile: scipy.stats costs 0.4 s more to import per run

LEVEL = 0.95
ALPHA = 0.05
INTERVAL_NOTE = ("± = half-width of the 95 % Student-t confidence interval of the mean over the n seeds "
                 "(t(0.975, n-1) · s / sqrt(n))")
TEST_NOTE = ("best per column in bold; ≈ = not distinguishable from the best of its block (Welch's t-test over seeds, "
             "two-sided, p >= 0.05; a row with fewer than 2 seeds only when its mean equals the best)")


def t_interval(values: Iterable[float], level: float = LEVEL) -> tuple[float, float]:
    """(mean, half-width) of the t interval; half-width NaN for fewer than two values."""
    xs = [float(v) for v in values if not math.isnan(float(v))]
    n = len(xs)
    if n == 0:
        return math.nan, math.nan
    mean = sum(xs) / n
    if n < 2:
        return mean, math.nan
    sd = math.sqrt(sum((x - mean) ** 2 for x in xs) / (n - 1))
    return mean, float(stdtrit(n - 1, 0.5 + level / 2)) * sd / math.sqrt(n)


def welch_p(a: list[float], b: list[float]) -> float:
    """Two-sided p-value of Welch's t-test; NaN when either side has fewer than two values."""
    if len(a) < 2 or len(b) < 2:
        return math.nan
    if max(a) == min(a) and max(b) == min(b):  # no spread on either side: equal or certainly different
        return 1.0 if a[0] == b[0] else 0.0
    def mean_var(xs: list[float]) -> tuple[float, float]:
        m = sum(xs) / len(xs)
        return m, sum((x - m) ** 2 for x in xs) / (len(xs) - 1) / len(xs)  # the variance of the mean

    (ma, va), (mb, vb) = mean_var(a), mean_var(b)
    t = (ma - mb) / math.sqrt(va + vb)
    df = (va + vb) ** 2 / (va ** 2 / (len(a) - 1) + vb ** 2 / (len(b) - 1))  # Welch-Satterthwaite
    return float(2 * stdtr(df, -abs(t)))


def best_and_ties(rows: dict[Hashable, list[float]]) -> tuple[Hashable | None, set[Hashable]]:
    """The row with the highest mean, and the other rows not distinguishable from it; none when fewer
    than two rows have results (a lone row is not "best" of anything)."""
    means = {k: sum(v) / len(v) for k, v in rows.items() if v}
    if len(means) < 2:
        return None, set()
    best = max(means, key=lambda k: means[k])
    ties = {k for k, v in rows.items() if k != best and v and (means[k] == means[best] or welch_p(v, rows[best]) >= ALPHA)}
    return best, ties


def ranks(means: dict[Hashable, float]) -> dict[Hashable, float]:
    """1 = highest mean; tied means share the average of their ranks; NaN means are left out."""
    present = sorted(((m, k) for k, m in means.items() if not math.isnan(m)), key=lambda t: -t[0])
    out: dict[Hashable, float] = {}
    i = 0
    while i < len(present):
        j = i
        while j + 1 < len(present) and present[j + 1][0] == present[i][0]:
            j += 1
        for _, key in present[i:j + 1]:
            out[key] = (i + j) / 2 + 1
        i = j + 1
    return out


def average_ranks(columns: list[dict[Hashable, float]]) -> dict[Hashable, float]:
    """Each row's mean rank over the columns (each {row: mean}) where it has a value."""
    collected: dict[Hashable, list[float]] = {}
    for column in columns:
        for key, rank in ranks(column).items():
            collected.setdefault(key, []).append(rank)
    return {k: sum(v) / len(v) for k, v in collected.items()}


def fmt_interval(mean: float, half: float) -> str:
    """`mean ± half-width` of the 95 % interval, or the mean alone (one seed)."""
    if math.isnan(mean):
        return "–"
    return f"{mean:.2f}" if math.isnan(half) else f"{mean:.2f} ± {half:.2f}"


def decorate(text: str, marks: set[str], fmt: str) -> str:
    """A cell's text with its marks: the best in bold (text: a trailing *), ≈ for not distinguishable
    from the best, ‡ for beyond the published spread (never bold: it is not a ranking), ! for a cell
    that differs between two results directories (benchmark/reports/compare.py)."""
    if not text or not marks:
        return text
    if "best" in marks:
        text = {"markdown": f"**{text}**", "latex": rf"\textbf{{{text}}}", "html": f"<b>{text}</b>"}.get(fmt, f"{text} *")
    if "tie" in marks:
        text += r" $\approx$" if fmt == "latex" else " ≈"
    if "beyond" in marks:
        text += r" $^\ddagger$" if fmt == "latex" else " ‡"
    if "differs" in marks:
        text += " !"
    return text
