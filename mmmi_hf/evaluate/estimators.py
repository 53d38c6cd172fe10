"""Variational MI estimators (lower bounds on I(X;Y), in nats) and their critics, in torch.

A critic ``f`` scores every pair of a batch: ``scores[i, j] = f(x_i, y_j)`` (B, B). The diagonal
holds samples of the joint p(x, y); the off-diagonal pairs stand in for the product of the
marginals p(x)p(y). With r = p(x,y) / (p(x)p(y)):

    DV        I >= E_p[f] - log E_q[e^f]                        (Donsker & Varadhan 1983)
    MINE      DV's value; gradient of E_q[e^f] divided by its moving average (Belghazi et al. 2018)
    NWJ       I >= E_p[f] - e^-1 E_q[e^f]          optimum f = 1 + log r (Nguyen et al. 2010)
    InfoNCE   I >= E_i[f_ii - log sum_j e^f_ij] + log B   (at most log B) (Oord et al. 2018)
    JS        critic trained on the Jensen-Shannon f-GAN objective (optimum f = log r), MI read
              out with NWJ at f + 1 (Nowozin et al. 2016; Poole et al. 2019)
    SMILE-tau critic trained as JS, MI read out with DV where E_q[e^f] is taken of f clipped to
              [-tau, tau]; tau = inf is DV on a JS-trained critic (Song & Ermon 2020)

Training maximises each bound's training objective; the estimate is the bound's value on
held-out pairs. Note on JS: the widely copied reference code reads JS out as NWJ at f itself,
which at the JS optimum (f = log r) gives I - 1/e, a constant 0.37-nat underestimate; here the
read-out is NWJ at f + 1, which is exact at the optimum.
"""

from __future__ import annotations

import math
import time
from collections.abc import Callable
from dataclasses import dataclass, field

import numpy as np
import torch
import torch.nn.functional as F
from torch import nn

__all__ = [
    "CRITICS",
    "ESTIMATORS",
    "EstimateResult",
    "JointCritic",
    "SeparableCritic",
    "bound",
    "dv_bound",
    "estimate_mi",
    "infonce_bound",
    "js_fgan_objective",
    "logmeanexp_offdiag",
    "make_critic",
    "nwj_bound",
    "smile_bound",
]

ESTIMATORS = ("dv", "js", "infonce", "mine", "nwj", "smile-1", "smile-5", "smile-inf")
CRITICS = ("separable", "separable-conv", "joint")
MINE_MOMENTUM = 0.9


# -- bounds on a (B, B) score matrix --------------------------------------------------------------
def logmeanexp_offdiag(scores: torch.Tensor) -> torch.Tensor:
    """log of the mean of exp(scores[i, j]) over the B(B-1) pairs i != j."""
    b = scores.shape[0]
    off = scores.masked_fill(torch.eye(b, dtype=torch.bool, device=scores.device), -math.inf)
    return torch.logsumexp(off.flatten(), 0) - math.log(b * (b - 1))


def dv_bound(scores: torch.Tensor) -> torch.Tensor:
    """Donsker-Varadhan: E_p[f] - log E_q[e^f]."""
    return scores.diag().mean() - logmeanexp_offdiag(scores)


def nwj_bound(scores: torch.Tensor) -> torch.Tensor:
    """NWJ: E_p[f] - e^-1 E_q[e^f] (tight at f = 1 + log r)."""
    return scores.diag().mean() - torch.exp(logmeanexp_offdiag(scores) - 1.0)


def infonce_bound(scores: torch.Tensor) -> torch.Tensor:
    """InfoNCE: mean_i (f_ii - log sum_j e^f_ij) + log B; never above log B."""
    return (scores.diag() - torch.logsumexp(scores, dim=1)).mean() + math.log(scores.shape[0])


def js_fgan_objective(scores: torch.Tensor) -> torch.Tensor:
    """The Jensen-Shannon f-GAN objective E_p[-softplus(-f)] - E_q[softplus(f)] (not an MI bound)."""
    b = scores.shape[0]
    off = ~torch.eye(b, dtype=torch.bool, device=scores.device)
    return -F.softplus(-scores.diag()).mean() - F.softplus(scores[off]).mean()


def smile_bound(scores: torch.Tensor, tau: float) -> torch.Tensor:
    """SMILE: DV with the partition term E_q[e^f] taken of f clipped to [-tau, tau]."""
    clipped = scores if math.isinf(tau) else scores.clamp(-tau, tau)
    return scores.diag().mean() - logmeanexp_offdiag(clipped)


def bound(estimator: str, scores: torch.Tensor) -> torch.Tensor:
    """The MI estimate (nats) of ``estimator`` from a score matrix: the value it reports."""
    if estimator in ("dv", "mine"):
        return dv_bound(scores)
    if estimator == "nwj":
        return nwj_bound(scores)
    if estimator == "infonce":
        return infonce_bound(scores)
    if estimator == "js":
        return nwj_bound(scores + 1.0)
    if estimator.startswith("smile-"):
        return smile_bound(scores, _tau(estimator))
    raise ValueError(f"estimator: expected one of {', '.join(ESTIMATORS)}, got {estimator!r}")


def _tau(estimator: str) -> float:
    return math.inf if estimator == "smile-inf" else float(estimator.removeprefix("smile-"))


class _Objective:
    """What training maximises for one estimator (stateful only for MINE's moving average)."""

    def __init__(self, estimator: str) -> None:
        bound(estimator, torch.zeros(2, 2))  # validates the name
        self.estimator = estimator
        self.moving_partition: torch.Tensor | None = None

    def __call__(self, scores: torch.Tensor) -> torch.Tensor:
        if self.estimator == "js" or self.estimator.startswith("smile-"):
            return js_fgan_objective(scores)
        if self.estimator != "mine":
            return bound(self.estimator, scores)
        # MINE: gradient E_p[grad f] - E_q[e^f grad f] / EMA(E_q[e^f]) (bias-corrected DV)
        partition = torch.exp(logmeanexp_offdiag(scores))
        with torch.no_grad():
            previous = partition.detach() if self.moving_partition is None else self.moving_partition
            self.moving_partition = (MINE_MOMENTUM * previous + (1 - MINE_MOMENTUM) * partition.detach()).clamp_min(1e-4)
        return scores.diag().mean() - partition / self.moving_partition


# -- critics --------------------------------------------------------------------------------------
def _mlp(inputs: int, hidden: int, layers: int, outputs: int) -> nn.Sequential:
    sizes = [inputs] + [hidden] * layers
    blocks: list[nn.Module] = []
    for a, b in zip(sizes[:-1], sizes[1:]):
        blocks += [nn.Linear(a, b), nn.ReLU()]
    return nn.Sequential(*blocks, nn.Linear(sizes[-1], outputs))


def _conv(shape: tuple[int, ...], width: int, layers: int, outputs: int) -> nn.Sequential:
    """3x3 conv layers on (C, H, W) images, global average pool, two linear layers."""
    channels = [shape[0]] + [width] * layers
    blocks: list[nn.Module] = [nn.Unflatten(1, tuple(shape))]
    for a, b in zip(channels[:-1], channels[1:]):
        blocks += [nn.Conv2d(a, b, 3, padding=1), nn.ReLU()]
    return nn.Sequential(*blocks, nn.AdaptiveAvgPool2d(1), nn.Flatten(), nn.Linear(width, width), nn.ReLU(), nn.Linear(width, outputs))


class SeparableCritic(nn.Module):
    """f(x, y) = g(x)^T h(y) with encoders g, h (MLPs, or CNNs for images); all B^2 scores from
    2B encodings."""

    def __init__(self, g: nn.Module, h: nn.Module) -> None:
        super().__init__()
        self.g, self.h = g, h

    def forward(self, x: torch.Tensor, y: torch.Tensor) -> torch.Tensor:
        """x (B, x_dim), y (B, y_dim) -> scores (B, B)."""
        return self.g(x) @ self.h(y).T


class JointCritic(nn.Module):
    """f(x, y) = MLP([x, y]) on the concatenation, evaluated on all B^2 pairs."""

    def __init__(self, x_dim: int, y_dim: int, *, hidden: int = 256, layers: int = 2) -> None:
        super().__init__()
        self.net = _mlp(x_dim + y_dim, hidden, layers, 1)

    def forward(self, x: torch.Tensor, y: torch.Tensor) -> torch.Tensor:
        """x (B, x_dim), y (B, y_dim) -> scores (B, B)."""
        b = x.shape[0]
        pairs = torch.cat([x[:, None, :].expand(b, b, -1), y[None, :, :].expand(b, b, -1)], dim=-1)
        return self.net(pairs).squeeze(-1)


def make_critic(kind: str, x_shape: tuple[int, ...], y_shape: tuple[int, ...], *, hidden: int = 256, layers: int = 2, embed: int = 32) -> nn.Module:
    """A critic for samples of shapes x_shape, y_shape (fed flattened):

    - ``separable``: MLP encoders (``layers`` hidden layers of ``hidden`` units) to ``embed`` dims;
    - ``separable-conv``: CNN encoders (``layers`` 3x3 conv layers of ``hidden`` channels, global
      average pool) for (C, H, W) images; far fewer weights, so it memorizes less;
    - ``joint``: an MLP on the concatenation [x, y].
    """
    x_dim, y_dim = math.prod(x_shape), math.prod(y_shape)
    if kind == "separable":
        return SeparableCritic(_mlp(x_dim, hidden, layers, embed), _mlp(y_dim, hidden, layers, embed))
    if kind == "separable-conv":
        if len(x_shape) != 3 or len(y_shape) != 3:
            raise ValueError(f"critic: separable-conv needs (C, H, W) images, got samples of shape {tuple(x_shape)} and {tuple(y_shape)}")
        return SeparableCritic(_conv(x_shape, hidden, layers, embed), _conv(y_shape, hidden, layers, embed))
    if kind == "joint":
        return JointCritic(x_dim, y_dim, hidden=hidden, layers=layers)
    raise ValueError(f"critic: expected one of {', '.join(CRITICS)}, got {kind!r}")


# -- training -------------------------------------------------------------------------------------
@dataclass
class EstimateResult:
    """One estimator's run: ``estimate`` (nats) is the bound on the test pairs with the critic of
    ``best_step`` (the last step, or with validation pairs the step where their bound was best).

    ``train_curve`` holds the training bound at every step (nats, on training batches);
    ``eval_curve`` the test bound and ``val_curve`` the validation bound at ``eval_steps``.
    """

    estimator: str
    critic: str
    estimate: float
    best_step: int = 0
    train_curve: list[float] = field(default_factory=list)
    eval_steps: list[int] = field(default_factory=list)
    eval_curve: list[float] = field(default_factory=list)
    val_curve: list[float] = field(default_factory=list)
    seconds: float = 0.0


def _flat(a: np.ndarray | torch.Tensor, what: str) -> tuple[torch.Tensor, tuple[int, ...]]:
    t = torch.as_tensor(np.asarray(a, dtype=np.float32))
    if t.ndim < 2 or t.shape[0] < 2:
        raise ValueError(f"{what}: expected an array of shape (samples >= 2, features...), got {tuple(t.shape)}")
    return t.reshape(t.shape[0], -1), tuple(t.shape[1:])


def _standardize(train: torch.Tensor, *others: torch.Tensor) -> list[torch.Tensor]:
    mean, std = train.mean(0), train.std(0).clamp_min(1e-6)
    return [(t - mean) / std for t in (train, *others)]


def held_out_estimate(critic: nn.Module, estimator: str, x: torch.Tensor, y: torch.Tensor, block: int = 512) -> float:
    """The bound on held-out pairs (x, y), averaged over blocks of ``block`` pairs (nats)."""
    values, weights = [], []
    with torch.no_grad():
        for s in range(0, x.shape[0], block):
            xb, yb = x[s : s + block], y[s : s + block]
            if xb.shape[0] < 2:
                continue
            values.append(float(bound(estimator, critic(xb, yb))))
            weights.append(xb.shape[0])
    return float(np.average(values, weights=weights))


def estimate_mi(
    x: np.ndarray | torch.Tensor,
    y: np.ndarray | torch.Tensor,
    x_test: np.ndarray | torch.Tensor,
    y_test: np.ndarray | torch.Tensor,
    *,
    estimator: str = "smile-5",
    critic: str = "separable",
    steps: int = 2000,
    batch_size: int = 128,
    learning_rate: float = 5e-4,
    hidden: int = 256,
    layers: int = 2,
    embed: int = 32,
    eval_every: int = 100,
    val_fraction: float = 0.0,
    seed: int = 0,
    callback: Callable[[int], None] | None = None,
) -> EstimateResult:
    """Train a critic on pairs (x, y) and estimate I(X;Y) in nats on the held-out (x_test, y_test).

    Args:
        x, y: (n, ...) paired training samples (standardized per feature with the training mean
            and std; images (n, C, H, W) keep their shape for ``separable-conv``).
        x_test, y_test: (m, ...) held-out pairs; the estimate is the bound on them (blocks of 512).
        val_fraction: if > 0, this share of the training pairs is held back for early stopping:
            every ``eval_every`` steps the bound on them is measured and the critic of the best
            one is kept (finite data makes critics memorize pairs, and then their bound on new
            pairs falls); otherwise the critic after the last step is used.
        callback: called with the step number after each step (progress bars).
    """
    if estimator not in ESTIMATORS:
        raise ValueError(f"estimator: expected one of {', '.join(ESTIMATORS)}, got {estimator!r}")
    if not isinstance(steps, int) or isinstance(steps, bool) or steps < 1:
        raise ValueError(f"steps: expected a positive integer, got {steps!r}")
    (xt, x_shape), (yt, y_shape) = _flat(x, "x"), _flat(y, "y")
    (xv, _), (yv, _) = _flat(x_test, "x_test"), _flat(y_test, "y_test")
    if xt.shape[0] != yt.shape[0] or xv.shape[0] != yv.shape[0]:
        raise ValueError(f"x, y: expected paired samples, got {xt.shape[0]} x with {yt.shape[0]} y "
                         f"and {xv.shape[0]} x_test with {yv.shape[0]} y_test")
    if batch_size < 2 or batch_size > xt.shape[0]:
        raise ValueError(f"batch_size: expected 2..{xt.shape[0]} (the training pairs), got {batch_size}")
    xt, xv = _standardize(xt, xv)
    yt, yv = _standardize(yt, yv)
    g = torch.Generator().manual_seed(seed)
    n_val = int(round(val_fraction * xt.shape[0]))
    if n_val:
        if n_val < 2 or xt.shape[0] - n_val < batch_size:
            raise ValueError(f"val_fraction: {val_fraction} of {xt.shape[0]} pairs leaves {n_val} for validation and "
                             f"{xt.shape[0] - n_val} for training; expected >= 2 and >= batch_size ({batch_size})")
        perm = torch.randperm(xt.shape[0], generator=g)
        xs, ys = xt[perm[:n_val]], yt[perm[:n_val]]
        xt, yt = xt[perm[n_val:]], yt[perm[n_val:]]
    with torch.random.fork_rng(devices=[]):
        torch.manual_seed(seed)
        model = make_critic(critic, x_shape, y_shape, hidden=hidden, layers=layers, embed=embed)
    optimizer = torch.optim.Adam(model.parameters(), lr=learning_rate)
    objective = _Objective(estimator)
    result = EstimateResult(estimator, critic, math.nan)
    start = time.perf_counter()
    order, cursor = torch.randperm(xt.shape[0], generator=g), 0
    for step in range(1, steps + 1):
        if cursor + batch_size > xt.shape[0]:
            order, cursor = torch.randperm(xt.shape[0], generator=g), 0
        rows = order[cursor : cursor + batch_size]
        cursor += batch_size
        scores = model(xt[rows], yt[rows])
        loss = -objective(scores)
        optimizer.zero_grad(set_to_none=True)
        loss.backward()
        optimizer.step()
        result.train_curve.append(float(bound(estimator, scores.detach())))
        if step % eval_every == 0 or step == steps:
            result.eval_steps.append(step)
            result.eval_curve.append(held_out_estimate(model, estimator, xv, yv))
            if n_val:
                result.val_curve.append(held_out_estimate(model, estimator, xs, ys))
            if not n_val or result.val_curve[-1] >= max(result.val_curve):
                result.best_step, result.estimate = step, result.eval_curve[-1]
        if callback is not None:
            callback(step)
    result.seconds = time.perf_counter() - start
    return result
