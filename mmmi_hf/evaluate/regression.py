"""Regressing theta from one modality with a shallow CNN (paper Sec. 4.1, Fig. 4 and 7).

theta and z_1 are jointly Gaussian and x_1 = f_1(z_1) is a bijection, so the best any model can
do is E[theta | x_1], whose mean squared error is exactly Var(theta | z_1):

    RMSE_min = sd(theta) * exp(-I(theta; x1))        (I in nats)

``bayes_rmse`` gives that floor; the benchmark plots the CNN's RMSE beside it.
"""

from __future__ import annotations

import math
import time
from collections.abc import Callable
from dataclasses import dataclass, field

import numpy as np
import torch
from torch import nn

__all__ = ["RegressionResult", "ShallowCNN", "bayes_rmse", "train_regressor"]


def bayes_rmse(theta_variance: float, mi_theta_x: float) -> float:
    """The smallest RMSE of any predictor of theta from x: sd(theta) exp(-I(theta;x)), I in nats."""
    return math.sqrt(theta_variance) * math.exp(-mi_theta_x)


class ShallowCNN(nn.Module):
    """Two 3x3 conv layers (ReLU, one 2x2 max-pool), global average pool, linear head -> theta."""

    def __init__(self, channels: int, width: int = 32) -> None:
        super().__init__()
        self.features = nn.Sequential(
            nn.Conv2d(channels, width, 3, padding=1), nn.ReLU(), nn.MaxPool2d(2),
            nn.Conv2d(width, 2 * width, 3, padding=1), nn.ReLU(), nn.AdaptiveAvgPool2d(1), nn.Flatten(),
        )
        self.head = nn.Linear(2 * width, 1)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        """x (B, C, H, W) -> theta_hat (B,)."""
        return self.head(self.features(x)).squeeze(-1)


@dataclass
class RegressionResult:
    """``test_rmse`` of the epoch with the best validation RMSE; ``errors`` are theta - theta_hat
    on the test split at that epoch; curves per epoch."""

    best_epoch: int
    test_rmse: float
    val_rmse: float
    errors: np.ndarray
    val_curve: list[float] = field(default_factory=list)
    train_curve: list[float] = field(default_factory=list)
    seconds: float = 0.0


def _rmse(model: nn.Module, x: torch.Tensor, theta: torch.Tensor) -> tuple[float, torch.Tensor]:
    with torch.no_grad():
        errors = theta - torch.cat([model(x[s : s + 1024]) for s in range(0, x.shape[0], 1024)])
    return float(errors.square().mean().sqrt()), errors


def train_regressor(
    x: np.ndarray,
    theta: np.ndarray,
    x_test: np.ndarray,
    theta_test: np.ndarray,
    *,
    epochs: int = 500,
    batch_size: int = 128,
    learning_rate: float = 1e-3,
    weight_decay: float = 1e-4,
    val_fraction: float = 0.2,
    width: int = 32,
    seed: int = 0,
    callback: Callable[[int], None] | None = None,
) -> RegressionResult:
    """Train a ShallowCNN on (x, theta) minus a validation part; keep the epoch with the best
    validation RMSE and report its RMSE on the test split.

    Args:
        x: (n, C, H, W) images; theta: (n,) targets. x_test, theta_test likewise.
        callback: called with the epoch number after each epoch (progress bars).
    """
    x_all, t_all = torch.as_tensor(np.asarray(x, dtype=np.float32)), torch.as_tensor(np.asarray(theta, dtype=np.float32))
    xt, tt = torch.as_tensor(np.asarray(x_test, dtype=np.float32)), torch.as_tensor(np.asarray(theta_test, dtype=np.float32))
    if x_all.ndim != 4 or xt.ndim != 4 or x_all.shape[0] != t_all.shape[0] or xt.shape[0] != tt.shape[0]:
        raise ValueError(f"x, theta: expected images (n, C, H, W) with n targets, got {tuple(x_all.shape)} with {tuple(t_all.shape)} "
                         f"and {tuple(xt.shape)} with {tuple(tt.shape)}")
    n_val = max(1, int(round(val_fraction * x_all.shape[0])))
    if x_all.shape[0] - n_val < 2:
        raise ValueError(f"x: expected at least {n_val + 2} training images, got {x_all.shape[0]}")
    g = torch.Generator().manual_seed(seed)
    perm = torch.randperm(x_all.shape[0], generator=g)
    xv, tv = x_all[perm[:n_val]], t_all[perm[:n_val]]
    xr, tr = x_all[perm[n_val:]], t_all[perm[n_val:]]
    mean, std = xr.mean(), xr.std()
    xr, xv, xt = (xr - mean) / std, (xv - mean) / std, (xt - mean) / std
    with torch.random.fork_rng(devices=[]):
        torch.manual_seed(seed)
        model = ShallowCNN(x_all.shape[1], width)
    optimizer = torch.optim.AdamW(model.parameters(), lr=learning_rate, weight_decay=weight_decay)
    start = time.perf_counter()
    best: tuple[float, int, dict] = (math.inf, 0, {})
    val_curve, train_curve = [], []
    for epoch in range(1, epochs + 1):
        model.train()
        order, total = torch.randperm(xr.shape[0], generator=g), 0.0
        for s in range(0, xr.shape[0], batch_size):
            rows = order[s : s + batch_size]
            loss = (model(xr[rows]) - tr[rows]).square().mean()
            optimizer.zero_grad(set_to_none=True)
            loss.backward()
            optimizer.step()
            total += float(loss.detach()) * rows.numel()
        model.eval()
        train_curve.append(math.sqrt(total / xr.shape[0]))
        val_curve.append(_rmse(model, xv, tv)[0])
        if val_curve[-1] < best[0]:
            best = (val_curve[-1], epoch, {k: v.clone() for k, v in model.state_dict().items()})
        if callback is not None:
            callback(epoch)
    model.load_state_dict(best[2])
    test_rmse, errors = _rmse(model, xt, tt)
    return RegressionResult(best[1], test_rmse, best[0], errors.numpy(), val_curve, train_curve, time.perf_counter() - start)
