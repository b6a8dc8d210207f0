"""Compute accounting (steps, forward passes) and the evaluation-only diagnostics of groupings and
weighted sampling, each against a hand computation."""
import math

import torch

from benchmark.training.compute import totals
from benchmark.reports.report import build_table
from methods.base import Stage
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
    h = harness("erm", synthetic)
    y, bias = synthetic.splits["train"].y, synthetic.splits["train"].bias
    assert h._hidden_conflicting(bias.clone()) == 0.0  # clusters = colours: conflicting samples have cells of their own
    assert h._hidden_conflicting(y.clone()) == 1.0  # clusters = classes: every conflicting sample sits with its class's aligned
    summary = h._group_summary(y.clone(), bias)
    assert summary["conflicting_in_aligned_cells"] == 1.0


def test_sampling_mass_on_conflicting_samples(synthetic):
    h = harness("erm", synthetic)
    y, bias = synthetic.splits["train"].y, synthetic.splits["train"].bias
    conflicting = y != bias
    share = float(conflicting.float().mean())
    h._sampling_mass(Stage("uniform", steps=1, loss=lambda b: {}), torch.ones(len(y)))
    assert abs(h.result.diagnostics["uniform"]["conflicting_sampling_mass"] - share) < 1e-6
    weights = torch.where(conflicting, 3.0, 1.0)
    h._sampling_mass(Stage("up", steps=1, loss=lambda b: {}), weights)
    expected = 3 * share / (3 * share + (1 - share))
    assert abs(h.result.diagnostics["up"]["conflicting_sampling_mass"] - expected) < 1e-6
    assert h.result.diagnostics["up"]["conflicting_share"] == share
