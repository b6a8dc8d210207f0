"""Compute accounting (steps, forward passes) and the evaluation-only diagnostics of groupings and
weighted sampling, each against a hand computation."""
import math

import pytest
import torch

from benchmark.training.compute import totals
from benchmark.reports.report import build_table
from benchmark.training.diagnostics import group_summary, hidden_conflicting, mask_summary, sampling_mass
from tests.helpers import harness, train


def test_forward_samples_count_every_network_each_step_runs(synthetic):
    _, erm = train("erm", synthetic, steps=40)
    _, lff = train("lff", synthetic, steps=40)
    batch = 256
    assert erm.timings["train"]["forward_samples"] == 40 * batch and erm.timings["train"]["forward_passes"] == 40
    assert lff.timings["train"]["forward_samples"] == 2 * 40 * batch  # the biased and the debiased network
    record = {"timings": lff.timings}
    assert totals(record)["steps"] == 40 and totals(record)["forward_samples"] == 2 * 40 * batch
    assert math.isnan(totals({"timings": {"train": {"steps": 3, "seconds": 1.0}}})["forward_samples"])  # stored before counting


def test_a_once_only_stage_counts_its_pass_over_the_training_split(synthetic):
    _, dfr = train("dfr", synthetic, steps=20)
    train_size = len(synthetic.splits["train"].y)
    assert dfr.timings["feature_stats"]["steps"] == 0
    assert dfr.timings["feature_stats"]["forward_samples"] >= train_size


def test_report_compute_columns(synthetic):
    from tests.test_imports_report import _record

    rec = _record(0, 0.5)
    rec["timings"] = {"a": {"steps": 100, "seconds": 120.0, "forward_samples": 2_000_000}, "b": {"steps": 50, "seconds": 60.0,
                                                                                                 "forward_samples": 500_000}}
    table = build_table([rec], compute=True)
    row = dict(zip(table.columns, table.rows[0]))
    assert row["steps"] == "150" and row["forward (M samples)"] == "2.50" and row["train min"] == "3.0"
    assert "steps" not in build_table([rec]).columns


def test_hidden_conflicting_share_of_a_grouping(synthetic):
    y, bias = synthetic.splits["train"].y, synthetic.splits["train"].bias
    conflicting = y != bias
    assert hidden_conflicting(bias.clone(), y, conflicting) == 0.0  # clusters = colours: conflicting samples have cells of their own
    assert hidden_conflicting(y.clone(), y, conflicting) == 1.0  # clusters = classes: every conflicting sample sits with its class's aligned
    assert group_summary(y.clone(), y, bias, conflicting, 5)["conflicting_in_aligned_cells"] == 1.0


def test_group_summary_and_mask_summary_by_hand():
    y = torch.tensor([0, 0, 0, 0, 1, 1])
    bias = torch.tensor([0, 0, 1, 1, 1, 0])
    conflicting = y != bias  # samples 2, 3 and 5
    groups = torch.tensor([7, 7, 7, 9, 9, 9])  # cell (0, 7): 2 aligned, 1 conflicting; (0, 9): 1 conflicting; (1, 9): 1 and 1
    summary = group_summary(groups, y, bias, conflicting, 2)
    assert summary["count"] == 2 and summary["sizes"] == [3, 3]
    assert summary["bias_purity"] == pytest.approx((2 + 2) / 6) and summary["chance_purity"] == pytest.approx(3 / 6)
    assert summary["conflicting_in_aligned_cells"] == pytest.approx(1 / 3)
    mined = torch.tensor([False, True, True, True, False, False])
    assert mask_summary(mined, conflicting) == {"count": 3, "precision": 2 / 3, "recall": 2 / 3}
    assert mask_summary(torch.zeros(6, dtype=torch.bool), conflicting)["precision"] == 0.0


def test_sampling_mass_on_conflicting_samples(synthetic):
    y, bias = synthetic.splits["train"].y, synthetic.splits["train"].bias
    conflicting = y != bias
    share = float(conflicting.float().mean())
    assert abs(sampling_mass(torch.ones(len(y)), conflicting)["conflicting_sampling_mass"] - share) < 1e-6
    up = sampling_mass(torch.where(conflicting, 3.0, 1.0), conflicting)
    assert abs(up["conflicting_sampling_mass"] - 3 * share / (3 * share + (1 - share))) < 1e-6
    assert up["conflicting_share"] == share


def test_a_weighted_stage_records_its_sampling_mass(synthetic):
    h = harness("jtt", synthetic, steps=20)
    result = h.run()
    masses = [d["conflicting_sampling_mass"] for d in result.diagnostics.values() if "conflicting_sampling_mass" in d]
    assert len(masses) == 1 and 0.0 < masses[0] <= 1.0
