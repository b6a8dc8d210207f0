"""L1-penalised logistic regression, one-vs-rest, solved by FISTA in float64 on the device.

The problem scikit-learn's `LogisticRegression(penalty="l1", solver="liblinear")` solves, which
DFR's official code calls: per class c, minimise sum_i C * log(1 + exp(-s_ic (w_c . x_i + b_c)))
+ |w_c|_1 + |b_c|, with s_ic = +1 when y_i = c and -1 otherwise, and the intercept penalised
like any weight (liblinear appends a constant feature 1). Multi-class data fits one problem per
class (liblinear's one-vs-rest); prediction is the argmax of the scores. liblinear stops early
at a loose tolerance; FISTA runs to `tol` instead, so the optimum is the same and the iterate
closer to it.
"""
from __future__ import annotations

import torch
from torch import Tensor


def fit_l1_logistic(x: Tensor, y: Tensor, num_classes: int, c: float, max_iter: int = 3000, tol: float = 1e-6) -> tuple[Tensor, Tensor]:
    """(weight (num_classes, d), bias (num_classes,)) for standardised features `x` (n, d) and labels `y`."""
    x = x.double()
    design = torch.cat([x, torch.ones(len(x), 1, dtype=x.dtype, device=x.device)], 1)  # liblinear's intercept column
    signs = torch.where(y[:, None] == torch.arange(num_classes, device=y.device)[None, :], 1.0, -1.0).double()
    step = 4.0 / (c * float(torch.linalg.matrix_norm(design, ord=2)) ** 2)  # 1 / Lipschitz constant of the loss gradient
    theta = torch.zeros(design.shape[1], num_classes, dtype=x.dtype, device=x.device)
    momentum_point, t = theta.clone(), 1.0
    for _ in range(max_iter):
        margins = signs * (design @ momentum_point)
        grad = design.T @ (-c * signs * torch.sigmoid(-margins))
        moved = momentum_point - step * grad
        new = torch.sign(moved) * (moved.abs() - step).clamp_min(0.0)  # soft threshold: the L1 prox
        t_next = (1 + (1 + 4 * t * t) ** 0.5) / 2
        momentum_point = new + ((t - 1) / t_next) * (new - theta)
        change = float((new - theta).abs().max())
        theta, t = new, t_next
        if change <= tol * max(1.0, float(theta.abs().max())):
            break
    return theta[:-1].T.contiguous(), theta[-1].clone()


def predict_scores(x: Tensor, weight: Tensor, bias: Tensor) -> Tensor:
    return x.double() @ weight.T + bias
