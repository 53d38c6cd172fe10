"""Templates T[i][k]: where in modality i the common cause k shows up (paper Sec. 3.4).

A template is a d-vector (``d = C*H*W``), flattened C-major like a CHW tensor. Forms:

- ``ones``: the all-ones vector (the paper's default);
- ``onehot:IDX``: 1 at flat index IDX, 0 elsewhere;
- ``gaussian:CY,CX,SIGMA``: ``exp(-((y-CY)^2 + (x-CX)^2) / (2 SIGMA^2))`` over the H x W grid
  (pixel units, peak 1), repeated over channels;
- a ``.npy`` file holding an array of the modality's shape, or a flat d-vector;
- an image file, converted to the modality's channels (``L`` for 1, ``RGB`` for 3), values /255 in
  [0, 1]; no resizing and no other normalisation.

Paths resolve relative to the spec's YAML file.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from pathlib import Path
from typing import Any

import numpy as np

from mmmi_hf.causal.spec import CausalSpec

__all__ = ["build_templates", "make_template"]

_FORMS = "ones, onehot:IDX, gaussian:CY,CX,SIGMA, a .npy file or an image file"
_IMAGE_SUFFIXES = (".png", ".jpg", ".jpeg", ".bmp", ".gif", ".tif", ".tiff", ".webp")


def _floats(key: str, text: str, count: int) -> list[float]:
    parts = text.split(",")
    try:
        values = [float(p) for p in parts]
    except ValueError:
        values = []
    if len(values) != count:
        raise ValueError(f"{key}: expected {count} comma-separated numbers after ':', got {text!r}")
    return values


def _from_file(key: str, path: Path, shape: tuple[int, int, int]) -> np.ndarray:
    c, h, w = shape
    if not path.is_file():
        raise ValueError(f"{key}: file not found: {path}")
    if path.suffix.lower() == ".npy":
        try:
            array = np.load(path, allow_pickle=False)
        except (OSError, ValueError) as err:
            raise ValueError(f"{key}: cannot read {path} as .npy ({err})") from None
        if array.shape not in (tuple(shape), (c * h * w,)):
            raise ValueError(
                f"{key}: {path.name} has shape {list(array.shape)}, expected {list(shape)} or [{c * h * w}]"
            )
        if not np.issubdtype(array.dtype, np.number) or not np.all(np.isfinite(array)):
            raise ValueError(f"{key}: {path.name} must hold finite numbers, got dtype {array.dtype}")
        return array.astype(np.float64).reshape(-1)
    from PIL import Image, UnidentifiedImageError

    modes = {1: "L", 3: "RGB"}
    if c not in modes:
        raise ValueError(f"{key}: image templates need 1 or 3 channels, the shape {list(shape)} has {c}")
    try:
        with Image.open(path) as image:
            array = np.asarray(image.convert(modes[c]), dtype=np.float64) / 255.0
    except (OSError, UnidentifiedImageError) as err:
        raise ValueError(f"{key}: cannot read {path} as an image ({err})") from None
    if array.shape[:2] != (h, w):
        raise ValueError(
            f"{key}: {path.name} is {array.shape[1]}x{array.shape[0]} (WxH), expected {w}x{h} for shape {list(shape)}"
        )
    return array.reshape(h, w, c).transpose(2, 0, 1).reshape(-1)


def make_template(text: str, shape: tuple[int, int, int], *, base_dir: Path | None = None, key: str = "templates") -> np.ndarray:
    """One template from its text form.

    Args:
        text: ``ones``, ``onehot:IDX``, ``gaussian:CY,CX,SIGMA``, or a file path.
        shape: the modality's (C, H, W).
        base_dir: folder that relative paths resolve against (default: the working directory).
        key: the spec key named in errors.

    Returns:
        (d,) float64, ``d = C*H*W``.
    """
    c, h, w = shape
    d = c * h * w
    if not isinstance(text, str):
        raise ValueError(f"{key}: expected {_FORMS}, got {text!r}")
    if text == "ones":
        return np.ones(d)
    if text.startswith("onehot:"):
        (idx,) = _floats(key, text.split(":", 1)[1], 1)
        if idx != int(idx) or not 0 <= idx < d:
            raise ValueError(f"{key}: onehot index must be an integer in [0, {d}), got {text!r}")
        out = np.zeros(d)
        out[int(idx)] = 1.0
        return out
    if text.startswith("gaussian:"):
        cy, cx, sigma = _floats(key, text.split(":", 1)[1], 3)
        if sigma <= 0:
            raise ValueError(f"{key}: gaussian SIGMA must be positive, got {text!r}")
        y, x = np.mgrid[0:h, 0:w]
        blob = np.exp(-((y - cy) ** 2 + (x - cx) ** 2) / (2.0 * sigma**2))
        return np.broadcast_to(blob, (c, h, w)).reshape(-1).copy()
    if text.lower().endswith((".npy",) + _IMAGE_SUFFIXES):
        path = Path(text)
        if not path.is_absolute() and base_dir is not None:
            path = base_dir / path
        return _from_file(key, path, shape)
    raise ValueError(f"{key}: expected {_FORMS}, got {text!r}")


def build_templates(spec: CausalSpec) -> np.ndarray:
    """All templates of a spec.

    Returns:
        (N, K, d) float64: ``T[i, k]`` is the template of common cause k in modality i.
    """
    n, k = spec.modalities, spec.common_causes
    given: Any = spec.templates
    if isinstance(given, str):
        one = make_template(given, spec.shape, base_dir=spec.base_dir)
        return np.broadcast_to(one, (n, k, one.size)).copy()
    if not isinstance(given, Mapping):
        raise ValueError(f"templates: expected one template or a mapping {{x1: [...], ...}}, got {given!r}")
    unknown = sorted(set(given) - set(spec.names))
    if unknown:
        raise ValueError(f"templates: unknown modality {unknown[0]!r} (expected {', '.join(spec.names)})")
    out = np.empty((n, k, spec.d))
    for i, name in enumerate(spec.names):
        if name not in given:
            raise ValueError(f"templates: missing {name} (expected an entry for every modality)")
        row = given[name]
        if isinstance(row, str):
            row = [row] * k
        if not isinstance(row, Sequence) or len(row) != k:
            raise ValueError(f"templates.{name}: expected {k} templates (one per common cause), got {row!r}")
        for j, text in enumerate(row):
            out[i, j] = make_template(text, spec.shape, base_dir=spec.base_dir, key=f"templates.{name}[{j}]")
    return out
