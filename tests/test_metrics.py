import math

import torch

from benchmark.metrics import group_counts, group_metrics


def test_metrics_against_hand_computed_table():
    # 2 classes x 2 bias values; groups (y, b): (0,0) aligned, (0,1) conflicting, (1,0) conflicting, (1,1) aligned.
    y = torch.tensor([0, 0, 0, 0, 0, 1, 1, 1, 1, 1, 1])
    b = torch.tensor([0, 0, 0, 0, 1, 0, 0, 1, 1, 1, 1])
    pred = torch.tensor([0, 0, 0, 1, 0, 0, 1, 1, 1, 1, 0])
    # group (0,0): 3/4 correct; (0,1): 1/1; (1,0): 1/2; (1,1): 3/4
    correct, total = group_counts(pred, y, b, 2, 2)
    assert correct.tolist() == [3, 1, 1, 3]
    assert total.tolist() == [4, 1, 2, 4]
    m = group_metrics(correct, total, [True, False, False, True])
    assert math.isclose(m["overall_acc"], 8 / 11)
    assert math.isclose(m["unbiased_acc"], (0.75 + 1.0 + 0.5 + 0.75) / 4)
    assert math.isclose(m["worst_group_acc"], 0.5)
    assert math.isclose(m["aligned_acc"], 0.75)
    assert math.isclose(m["conflicting_acc"], (1.0 + 0.5) / 2)
    assert m["group_acc"] == [0.75, 1.0, 0.5, 0.75]


def test_empty_groups_are_skipped_not_nan():
    m = group_metrics([2, 0, 0, 1], [2, 0, 3, 1], [True, False, False, True])
    assert m["group_acc"][1] is None
    assert math.isclose(m["unbiased_acc"], (1.0 + 0.0 + 1.0) / 3)
    assert m["worst_group_acc"] == 0.0
    assert m["conflicting_acc"] == 0.0
    assert m["aligned_acc"] == 1.0
