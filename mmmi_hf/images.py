"""8-bit previews and grids of float images. Previews only: 8 bits lose information, so nothing
MI-exact is ever stored this way."""

from __future__ import annotations

import os
from pathlib import Path

import numpy as np
import torch
from PIL import Image

__all__ = ["image_grid", "modality_grid", "save_figure", "to_uint8"]


def to_uint8(x: torch.Tensor | np.ndarray) -> np.ndarray:
    """(..., C, H, W) floats in [-1, 1] -> (..., H, W, C) uint8 (clipped)."""
    array = np.asarray(x.detach().cpu() if isinstance(x, torch.Tensor) else x, dtype=np.float32)
    array = np.clip(np.rint((array + 1.0) * 127.5), 0, 255).astype(np.uint8)
    return np.moveaxis(array, -3, -1)


def image_grid(rows: torch.Tensor | np.ndarray, *, scale: int = 4, pad: int = 1) -> Image.Image:
    """A grid image from (R, K, C, H, W) floats in [-1, 1]: R rows of K images, each pixel
    magnified ``scale`` times, ``pad`` background pixels between images."""
    tiles = to_uint8(rows)  # (R, K, H, W, C)
    r, k, h, w, c = tiles.shape
    tiles = tiles.repeat(scale, axis=2).repeat(scale, axis=3)
    hh, ww = h * scale, w * scale
    canvas = np.full((r * (hh + pad) + pad, k * (ww + pad) + pad, c), 255, dtype=np.uint8)
    for i in range(r):
        for j in range(k):
            top, left = pad + i * (hh + pad), pad + j * (ww + pad)
            canvas[top : top + hh, left : left + ww] = tiles[i, j]
    return Image.fromarray(canvas[..., 0] if c == 1 else canvas, "L" if c == 1 else "RGB")


def modality_grid(modalities: dict[str, torch.Tensor | np.ndarray], theta: torch.Tensor | np.ndarray, path, *, title: str = "") -> None:
    """Save a PNG with one row per modality and one column per sample, theta under each column.

    Args:
        modalities: {"x1": (n, C, H, W), ...} floats in [-1, 1].
        theta: (n,) targets.
        path: where to write the PNG (atomically).
    """
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    names = list(modalities)
    theta = np.asarray(theta.detach().cpu() if isinstance(theta, torch.Tensor) else theta)
    n = len(theta)
    fig, axes = plt.subplots(len(names), n, figsize=(0.9 * n + 0.6, 0.95 * len(names) + 0.5), squeeze=False)
    for r, name in enumerate(names):
        tiles = to_uint8(modalities[name])
        for c in range(n):
            ax = axes[r, c]
            tile = tiles[c]
            ax.imshow(tile[..., 0] if tile.shape[-1] == 1 else tile, cmap="gray", vmin=0, vmax=255)
            ax.set_xticks([])
            ax.set_yticks([])
            if c == 0:
                ax.set_ylabel(name, rotation=0, ha="right", va="center")
            if r == len(names) - 1:
                ax.set_xlabel(f"θ={theta[c]:+.2f}", fontsize=7)
    if title:
        fig.suptitle(title, fontsize=9)
    save_figure(fig, path, dpi=100)


def save_figure(fig, path: str | os.PathLike[str], *, dpi: int = 120) -> Path:
    """Lay out a matplotlib figure, write it to ``path`` as PNG atomically, and close it."""
    import io

    import matplotlib.pyplot as plt

    from mmmi_hf.atomic import atomic_write_bytes

    fig.tight_layout()
    buffer = io.BytesIO()
    fig.savefig(buffer, format="png", dpi=dpi)
    plt.close(fig)
    atomic_write_bytes(path, buffer.getvalue())
    return Path(path)
