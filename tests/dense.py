"""Independent dense references: the paper's matrix A, dense log-dets, random small specs."""

from __future__ import annotations

import itertools

import numpy as np
from mmmi_hf.causal.spec import CausalSpec


def dense_covariance(spec: CausalSpec, templates: np.ndarray) -> np.ndarray:
    """Sigma = A A^T of (theta, z_1..z_N), built from the paper's matrix A (Eq. 1) directly.

    Args:
        templates: (N, K, d).

    Returns:
        (1 + N d, 1 + N d) float64; row 0 is theta, then block i covers rows 1 + i d .. 1 + (i+1) d.
    """
    n, k, d = templates.shape
    j = spec.private_latents
    eta = np.asarray(spec.eta, float)
    a = np.zeros((1 + n * d, k + j * d))
    a[0, :k] = eta
    for i in range(n):
        rows = slice(1 + i * d, 1 + (i + 1) * d)
        for c in range(k):
            a[rows, c] = spec.rho_common[i][c] * spec.beta ** (-i) * templates[i, c]
        for p in range(j):
            a[rows, k + p * d : k + (p + 1) * d] = spec.rho_private[i][p] * spec.alpha ** (-abs(i - p)) * np.eye(d)
    return a @ a.T


def dense_indices(blocks, d: int) -> list[int]:
    """Rows of the dense covariance for block indices (0 = theta, i = x_i)."""
    out: list[int] = []
    for b in sorted(blocks):
        out.extend([0] if b == 0 else range(1 + (b - 1) * d, 1 + b * d))
    return out


def dense_entropy(cov: np.ndarray, blocks, d: int) -> float:
    """1/2 log|Sigma_S| (differential entropy up to its constant)."""
    if not blocks:
        return 0.0
    idx = dense_indices(blocks, d)
    sign, logdet = np.linalg.slogdet(cov[np.ix_(idx, idx)])
    assert sign > 0
    return 0.5 * logdet


def dense_mi(cov: np.ndarray, d: int, a, b, c=()) -> float:
    """I(A;B|C) from dense entropies."""
    a, b, c = set(a), set(b), set(c)
    h = lambda s: dense_entropy(cov, s, d)  # noqa: E731
    return h(a | c) + h(b | c) - h(a | b | c) - h(c)


def random_spec(rng: np.random.Generator, tmp_path, *, n: int, k: int, shape=(2, 2, 3), scaling="none") -> CausalSpec:
    """A random spec with random .npy templates, decay factors and extra private latents."""
    j = n + int(rng.integers(0, 2))
    templates = {}
    for i in range(n):
        row = []
        for c in range(k):
            path = tmp_path / f"t{i}_{c}.npy"
            np.save(path, rng.normal(size=shape) * rng.uniform(0.2, 1.0))
            row.append(path.name)
        templates[f"x{i + 1}"] = row
    return CausalSpec(
        name="random",
        shape=shape,
        modalities=n,
        common_causes=k,
        private_latents=j,
        eta=rng.normal(size=k).tolist(),
        rho_common=rng.normal(size=(n, k)).tolist(),
        rho_private=(np.eye(n, j) + 0.4 * rng.normal(size=(n, j))).tolist(),
        alpha=float(rng.uniform(1.0, 2.0)),
        beta=float(rng.uniform(1.0, 2.0)),
        templates=templates,
        latent_scaling=scaling,
        base_dir=tmp_path,
    )


def all_groups(n: int):
    """Every nonempty subset of {theta, x1..xN} as a tuple of block indices."""
    blocks = range(n + 1)
    return [g for r in range(1, n + 2) for g in itertools.combinations(blocks, r)]
