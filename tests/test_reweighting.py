"""GCE, the per-sample EMA with class-max normalisation, and W against hand-computed values."""
import math

import torch
import torch.nn.functional as F

from methods.reweighting import PerSampleEMA, gce_loss, relative_difficulty


def test_gce_value_and_gradient_match_the_official_form():
    logits = torch.tensor([[2.0, 0.0], [0.0, 1.0]], requires_grad=True)
    y = torch.tensor([0, 0])
    p = torch.softmax(logits.detach(), 1)[:, 0]
    ce = -torch.log(p)
    q = 0.7
    loss = gce_loss(logits, y, q)
    assert torch.allclose(loss, q * p**q * ce)
    # sample 0: p = e^2 / (e^2 + 1)
    p0 = math.exp(2) / (math.exp(2) + 1)
    assert math.isclose(loss[0].item(), q * p0**q * -math.log(p0), rel_tol=1e-6)
    loss.sum().backward()
    ce_grad = torch.autograd.grad(F.cross_entropy(logits, y, reduction="none").sum(), logits)[0]
    assert torch.allclose(logits.grad, (q * p**q)[:, None] * ce_grad)
    textbook = gce_loss(logits.detach(), y, q, official_scaling=False)
    assert torch.allclose(textbook, p**q * ce)


def test_ema_matches_a_reference_loop():
    ema = PerSampleEMA(num_samples=5, num_classes=2, alpha=0.7)
    reference = [0.0] * 5
    seen = [False] * 5
    labels = [0, 1, 0, 1, 0]
    steps = [([0, 1], [1.0, 2.0]), ([1, 2], [4.0, 3.0]), ([0, 1, 4], [0.5, 1.0, 6.0])]
    for index, losses in steps:
        ema.update(torch.tensor(index), torch.tensor(losses), torch.tensor([labels[i] for i in index]))
        for i, v in zip(index, losses):
            reference[i] = 0.7 * reference[i] + 0.3 * v if seen[i] else v
            seen[i] = True
    assert torch.allclose(ema.loss, torch.tensor(reference))
    assert math.isclose(ema.loss[1].item(), 0.7 * (0.7 * 2.0 + 0.3 * 4.0) + 0.3 * 1.0, rel_tol=1e-6)
    # class max over every visited sample of the class: class 0 -> max(0.85, 3.0, 6.0), class 1 -> 2.12
    norm = ema.normalized(torch.tensor([0, 1, 2]), torch.tensor([0, 1, 0]))
    assert torch.allclose(norm, torch.tensor([reference[0] / 6.0, 1.0, 3.0 / 6.0]))


def test_relative_difficulty():
    w = relative_difficulty(torch.tensor([1.0, 0.2, 0.0, 0.5]), torch.tensor([0.0, 0.8, 0.0, 0.5]))
    assert torch.allclose(w, torch.tensor([1.0, 0.2, 0.0, 0.5]), atol=1e-6)
