"""The shared pruning pieces: weight masks, hard Gumbel-sigmoid gates, sparsity, contrastive loss."""
import math

import pytest
import torch
from torch import nn

from methods.contrastive import contrastive_loss
from methods.masks import (
    add_weight_masks,
    hard_gumbel_sigmoid,
    mask_logit_sum,
    mask_parameters,
    mask_sparsity,
    masked_layers,
    set_mask_mode,
    weight_parameters,
)
from methods.models import SmallCNN


def _net(seed=0):
    torch.manual_seed(seed)
    return SmallCNN(3, [4, 8], 3)


def test_masks_gate_every_conv_and_linear_weight_only():
    net = add_weight_masks(_net())
    names = [name for name, _ in masked_layers(net)]
    assert names == ["features.0", "features.3", "classifier"]
    masks = {id(p) for p in mask_parameters(net)}
    shapes = [p.shape for p in mask_parameters(net)]
    assert shapes == [(4, 3, 4, 4), (8, 4, 4, 4), (3, 8)]
    assert all(id(p) not in masks for p in weight_parameters(net))
    assert len(mask_parameters(net)) + len(weight_parameters(net)) == len(list(net.parameters()))


@pytest.mark.parametrize("mode", ["dense", "learn", "fixed"])
def test_non_negative_logits_leave_outputs_unchanged(mode):
    x = torch.rand(6, 3, 12, 12)
    plain = _net().eval()
    gated = add_weight_masks(_net(), init=0.0).eval()
    with torch.no_grad():
        gated.features[0].parametrizations.weight[0].mask_logits.uniform_(0, 3)
    set_mask_mode(gated, mode)
    assert torch.equal(plain(x), gated(x))


def test_negative_logits_zero_their_weights_in_fixed_mode():
    net = add_weight_masks(_net()).eval()
    layer = net.classifier
    with torch.no_grad():
        layer.parametrizations.weight[0].mask_logits[1].fill_(-0.1)
    set_mask_mode(net, "fixed")
    assert torch.all(layer.weight[1] == 0) and torch.all(layer.weight[0] != 0)
    set_mask_mode(net, "dense")
    assert torch.all(layer.weight[1] != 0)


def test_sparsity_matches_a_hand_count():
    net = add_weight_masks(_net())
    masks = dict(masked_layers(net))
    with torch.no_grad():
        masks["features.0"].mask_logits.view(-1)[:10] = -1.0    # 10 of 192
        masks["classifier"].mask_logits.view(-1)[:24] = -0.5    # all 24
        masks["features.3"].mask_logits.view(-1)[5] = 0.0       # logit 0 is kept (threshold >= 0)
    s = mask_sparsity(net)
    assert s["features.0"] == 10 / 192 and s["classifier"] == 1.0 and s["features.3"] == 0.0
    assert s["overall"] == (10 + 24) / (192 + 512 + 24)


def test_sparsity_penalty_lowers_the_kept_fraction():
    net = add_weight_masks(_net(), init=0.0)
    with torch.no_grad():
        for p in mask_parameters(net):
            p.uniform_(0.0, 0.05)
    opt = torch.optim.Adam(mask_parameters(net), lr=1e-2)
    before = mask_sparsity(net)["overall"]
    for _ in range(12):  # Adam moves each logit by about lr * lambda / (lambda + eps) = 5e-3 per step (spec A.4.5)
        opt.zero_grad()
        (1e-8 * mask_logit_sum(net)).backward()
        opt.step()
    after = mask_sparsity(net)["overall"]
    assert before == 0.0 and after > 0.95


@pytest.mark.parametrize("extra_sigmoid", [True, False])
def test_gate_keep_probability_and_straight_through_gradient(extra_sigmoid):
    torch.manual_seed(0)
    logits = torch.tensor([-3.0, 0.0, 1.5, 4.0]).repeat(50_000, 1).requires_grad_()
    gates = hard_gumbel_sigmoid(logits, 1.0, extra_sigmoid)
    assert set(gates.unique().tolist()) <= {0.0, 1.0}
    base = torch.sigmoid(logits[0].detach()) if extra_sigmoid else logits[0].detach()
    assert torch.allclose(gates.mean(0), torch.sigmoid(base), atol=0.01)
    gates.sum().backward()
    assert torch.all(logits.grad > 0)


def test_learn_mode_samples_in_training_and_is_binary_in_eval():
    net = add_weight_masks(_net())
    set_mask_mode(net, "learn")
    x = torch.rand(4, 3, 12, 12)
    net.eval()
    with torch.no_grad():
        assert torch.equal(net(x), net(x))
    net.train()
    assert not torch.equal(net.classifier.weight, net.classifier.weight)


def _reference_loss(z, positives, denominator, t):
    z = torch.nn.functional.normalize(z, dim=1)
    losses = []
    for i in range(len(z)):
        pos = [j for j in range(len(z)) if j != i and positives[i, j]]
        den = [j for j in range(len(z)) if j != i and (denominator[i, j] or positives[i, j])]
        if not pos or not den:
            continue
        log_den = math.log(sum(math.exp(float(z[i] @ z[j]) / t) for j in den))
        losses.append(-sum(float(z[i] @ z[p]) / t - log_den for p in pos) / len(pos))
    return sum(losses) / len(losses), sum(losses)


def test_contrastive_loss_matches_a_loop_over_anchors():
    torch.manual_seed(1)
    z = torch.randn(9, 5)
    y = torch.tensor([0, 0, 1, 1, 1, 2, 0, 2, 1])
    flagged = torch.tensor([1, 0, 0, 1, 1, 0, 0, 0, 1], dtype=torch.bool)
    positives = (y[:, None] == y[None, :]) & flagged[None, :]
    everyone = torch.ones(9, 9, dtype=torch.bool)
    mean, total = _reference_loss(z, positives, everyone, 0.07)
    assert contrastive_loss(z, positives, temperature=0.07).item() == pytest.approx(mean, rel=1e-5)
    cluster = torch.tensor([0, 1, 0, 1, 2, 2, 0, 1, 0])
    prusc_pos = (y[:, None] == y[None, :]) & (cluster[:, None] != cluster[None, :])
    prusc_neg = cluster[:, None] == cluster[None, :]
    mean, total = _reference_loss(z, prusc_pos, prusc_neg, 0.5)
    assert contrastive_loss(z, prusc_pos, prusc_neg, 0.5, reduction="sum").item() == pytest.approx(total, rel=1e-5)


def test_contrastive_loss_without_anchors_is_zero_with_finite_gradients():
    z = torch.randn(4, 3, requires_grad=True)
    loss = contrastive_loss(z, torch.zeros(4, 4, dtype=torch.bool))
    loss.backward()
    assert loss.item() == 0.0 and torch.all(torch.isfinite(z.grad))
    z.grad = None
    only_one = torch.zeros(4, 4, dtype=torch.bool)
    only_one[0, 1] = True
    denominator = torch.zeros(4, 4, dtype=torch.bool)
    denominator[0, 2] = True  # rows 1-3 have no positive and an empty denominator
    contrastive_loss(z, only_one, denominator).backward()
    assert torch.all(torch.isfinite(z.grad)) and z.grad.abs().sum() > 0


def test_masked_network_state_dict_round_trips():
    a = add_weight_masks(_net(0))
    b = add_weight_masks(_net(1))
    with torch.no_grad():
        mask_parameters(a)[0].fill_(-1.0)
    b.load_state_dict(a.state_dict())
    set_mask_mode(a, "fixed")
    set_mask_mode(b, "fixed")
    x = torch.rand(2, 3, 12, 12)
    a.eval()
    b.eval()
    assert torch.equal(a(x), b(x)) and mask_sparsity(b) == mask_sparsity(a)
    assert isinstance(a.classifier, nn.Linear)
