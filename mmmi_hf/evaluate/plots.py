"""The paper's figures from benchmark results (matplotlib, Agg; written atomically as PNG)."""

from __future__ import annotations

import os
from collections.abc import Sequence
from pathlib import Path

import numpy as np

from mmmi_hf.images import save_figure

__all__ = ["plot_decay", "plot_errors", "plot_estimates", "plot_regression"]


def _figure(rows: int = 1, cols: int = 1, size: tuple[float, float] = (5.0, 4.0)):
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    fig, axes = plt.subplots(rows, cols, figsize=(size[0] * cols, size[1] * rows), squeeze=False)
    return fig, axes


def plot_estimates(rows: list[dict], summary: dict[str, dict], path: str | os.PathLike[str]) -> Path:
    """Fig. 3: each estimator's estimate against the exact I(x1;x2), one panel per estimator,
    with the identity line; the panel title gives correlation and RMSE (nats)."""
    estimators = list(summary)
    cols = min(4, len(estimators))
    grid = (len(estimators) + cols - 1) // cols
    fig, axes = _figure(grid, cols, (3.2, 3.0))
    top = max(max(r["truth"], r["estimate"]) for r in rows) * 1.08
    for ax, name in zip(axes.flat, estimators):
        mine = [r for r in rows if r["estimator"] == name]
        ax.plot([0, top], [0, top], color="0.6", lw=1, ls="--", label="exact")
        ax.plot([r["truth"] for r in mine], [r["estimate"] for r in mine], "o", ms=4)
        ax.set_title(f"{name}: r={summary[name]['correlation']:.3f}, RMSE={summary[name]['rmse']:.3f}", fontsize=9)
        ax.set_xlim(0, top)
        ax.set_ylim(min(0, min(r["estimate"] for r in rows) * 1.1), top)
        ax.set_xlabel("exact I(x1;x2) [nats]", fontsize=8)
        ax.set_ylabel("estimate [nats]", fontsize=8)
    for ax in list(axes.flat)[len(estimators):]:
        ax.axis("off")
    return save_figure(fig, path)


def plot_regression(rows: list[dict], path: str | os.PathLike[str]) -> Path:
    """Fig. 4: the CNN's best test RMSE against I(theta;x1), beside the exact floor
    sd(theta) exp(-I) that no predictor can beat."""
    rows = sorted(rows, key=lambda r: r["mi_theta_x1"])
    fig, axes = _figure()
    ax = axes[0, 0]
    mi = np.array([r["mi_theta_x1"] for r in rows])
    ax.plot(mi, [r["test_rmse"] for r in rows], "o-", label="shallow CNN (best epoch)")
    ax.plot(mi, [r["bayes_rmse"] for r in rows], "k--", lw=1, label="exact floor sd(θ)·exp(−I)")
    ax.set_xlabel("exact I(θ;x1) [nats]")
    ax.set_ylabel("test RMSE of θ")
    ax.legend()
    return save_figure(fig, path)


def plot_errors(errors: dict[str, np.ndarray], floors: dict[str, float], path: str | os.PathLike[str]) -> Path:
    """Fig. 7: histograms of theta - theta_hat for a few datasets, each with the Gaussian of the
    exact floor's width."""
    fig, axes = _figure()
    ax = axes[0, 0]
    span = max(float(np.abs(e).max()) for e in errors.values())
    bins = np.linspace(-span, span, 41)
    grid = np.linspace(-span, span, 200)
    for (label, e), color in zip(errors.items(), ("C0", "C1", "C2", "C3")):
        ax.hist(e, bins=bins, density=True, alpha=0.45, color=color, label=f"{label} (RMSE {np.sqrt(np.mean(e ** 2)):.3f})")
        s = floors[label]
        ax.plot(grid, np.exp(-0.5 * (grid / s) ** 2) / (s * np.sqrt(2 * np.pi)), color=color, lw=1)
    ax.set_xlabel("θ − θ̂ (test split); lines: N(0, floor²)")
    ax.set_ylabel("density")
    ax.legend(fontsize=8)
    return save_figure(fig, path)


def plot_decay(table: dict[str, dict[str, Sequence[float]]], path: str | os.PathLike[str]) -> Path:
    """Fig. 6: I(x1;xi) and I(theta;xi) against i, one line per decay configuration.

    Args:
        table: {config: {"x1": [I(x1;x2), ..., I(x1;xN)], "theta": [I(theta;x1), ..., I(theta;xN)]}}.
    """
    fig, axes = _figure(1, 2)
    for name, series in table.items():
        axes[0, 0].plot(range(2, len(series["x1"]) + 2), series["x1"], "o-", ms=3, label=name)
        axes[0, 1].plot(range(1, len(series["theta"]) + 1), series["theta"], "o-", ms=3, label=name)
    axes[0, 0].set_ylabel("exact I(x1; xi) [nats]")
    axes[0, 1].set_ylabel("exact I(θ; xi) [nats]")
    for ax in axes.flat:
        ax.set_xlabel("modality i")
        ax.set_yscale("log")
    axes[0, 1].legend(fontsize=7)
    return save_figure(fig, path)
