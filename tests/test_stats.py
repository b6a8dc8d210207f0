"""Confidence intervals, the test against the best, ranks and cell marks, against hand computations."""
import math

from benchmark.reports.stats import average_ranks, best_and_ties, decorate, fmt_interval, ranks, t_interval, welch_p


def test_t_interval_matches_the_textbook_formula():
    mean, half = t_interval([1.0, 2.0, 3.0])
    assert mean == 2.0 and abs(half - 4.302653 / math.sqrt(3)) < 1e-5  # t(0.975, 2) = 4.302653, s = 1
    mean, half = t_interval([30.0, 40.0])
    assert abs(half - 12.706205 * math.sqrt(50) / math.sqrt(2)) < 1e-4
    assert math.isnan(t_interval([5.0])[1]) and fmt_interval(*t_interval([5.0])) == "5.00"
    assert fmt_interval(2.0, 2.48414) == "2.00 ± 2.48"


def test_welch_test_and_the_rows_tied_with_the_best():
    assert abs(welch_p([1, 2, 3], [4, 5, 6]) - 0.021311) < 1e-5  # t = -3.674, 4 degrees of freedom
    assert math.isnan(welch_p([1], [2, 3])) and welch_p([2, 2], [2, 2]) == 1.0 and welch_p([1, 1], [2, 2]) == 0.0
    best, ties = best_and_ties({"a": [90, 91, 92], "b": [89.5, 91, 92.5], "c": [80, 81, 82], "d": [95]})
    assert best == "d" and ties == set()  # a single seed has the highest mean: best, and nothing can be tested against it
    best, ties = best_and_ties({"a": [90, 91, 92], "b": [89.5, 91, 92.5], "c": [80, 81, 82]})
    assert best == "a" and ties == {"b"}
    assert best_and_ties({"a": [90, 91, 92], "b": []}) == (None, set())  # a lone row with results is best of nothing


def test_ranks_share_ties_and_average_over_the_columns_a_row_has():
    assert ranks({"a": 3.0, "b": 3.0, "c": 1.0, "d": math.nan}) == {"a": 1.5, "b": 1.5, "c": 3.0}
    assert average_ranks([{"a": 2.0, "b": 1.0}, {"a": 5.0, "b": 9.0}, {"a": 1.0}]) == {"a": (2 + 1 + 1) / 3, "b": 1.5}


def test_beyond_the_published_spread_is_never_bold():
    assert decorate("1.00", {"beyond"}, "markdown") == "1.00 ‡"
    assert decorate("1.00", {"best", "beyond"}, "markdown") == "**1.00** ‡"
    assert decorate("1.00", {"best"}, "latex") == r"\textbf{1.00}" and decorate("1.00", {"tie"}, "latex") == r"1.00 $\approx$"
    assert decorate("1.00", {"best"}, "table") == "1.00 *" and decorate("1.00", {"tie"}, "html") == "1.00 ≈"


def test_the_t_quantile_and_welch_p_match_scipy_stats():
    """stats.py computes both from scipy.special (lighter to import); they must equal scipy.stats' results."""
    import random

    from scipy import stats

    rng = random.Random(0)
    for _ in range(300):
        a = [rng.gauss(0, rng.uniform(0.01, 3)) for _ in range(rng.randint(2, 6))]
        b = [rng.gauss(rng.uniform(-2, 2), rng.uniform(0.01, 3)) for _ in range(rng.randint(2, 6))]
        assert abs(welch_p(a, b) - stats.ttest_ind(a, b, equal_var=False).pvalue) < 1e-9
        mean, half = t_interval(a)
        assert abs(half - stats.t.ppf(0.975, len(a) - 1) * stats.sem(a)) < 1e-9
