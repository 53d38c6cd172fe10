"""CausalModel: a spec turned into coefficients, exact information and a latent sampler.

Sampling draws the proto-latents ``u_common`` (K,) and ``u_private`` (J, d) of each sample
from its own stream, seeded by (base seed, sample index), so sample i is the same whatever
the batch it is drawn in. The structural equations are applied blockwise; the (N d) x (K + J d)
matrix A of the paper is never built.

Latent scaling acts on each block z_i separately and is invertible, so it never changes MI:

- ``whiten``: z_i -> Sigma_ii^(-1/2) z_i (symmetric root, from the structure), so every z_i is
  exactly N(0, I_d), the generator's own prior;
- ``percentile:Q``: every block divided by one scalar s, the Q-quantile of |z| over all
  coordinates of all modalities. s comes from the exact marginal variances, not from a batch,
  so samples never depend on each other (the reference code's global rescale, made exact);
- ``none``: z as is.
"""

from __future__ import annotations

import math
import os
from dataclasses import dataclass

import numpy as np
import torch
from scipy.optimize import brentq
from scipy.special import erf

from mmmi_hf.causal.information import resolve
from mmmi_hf.causal.spec import CausalSpec, load_spec

__all__ = ["CausalModel", "LatentSample", "base_seed", "sample_seeds"]


@dataclass
class LatentSample:
    """Latents of n samples.

    Attributes:
        theta: (n,) the target z_theta.
        z: (n, N, C, H, W) latents z_1..z_N after the spec's latent scaling.
        index: (n,) int64 global sample indices.
        u_common: (n, K) common causes, if requested.
        u_private: (n, J, d) private proto-latents, if requested.
    """

    theta: torch.Tensor
    z: torch.Tensor
    index: torch.Tensor
    u_common: torch.Tensor | None = None
    u_private: torch.Tensor | None = None


def base_seed(generator: torch.Generator | None, default: int) -> int:
    """One 63-bit base seed drawn from ``generator``, or ``default`` without one."""
    if generator is None:
        return default
    return int(torch.randint(0, 2**63 - 1, (1,), generator=generator).item())


def sample_seeds(base_seed: int, index: np.ndarray) -> np.ndarray:
    """Per-sample 64-bit seeds derived from (base seed, sample index) with numpy's SeedSequence.

    Args:
        base_seed: nonnegative integer.
        index: (n,) nonnegative sample indices.

    Returns:
        (n,) uint64 seeds.
    """
    out = np.empty(len(index), dtype=np.uint64)
    for row, i in enumerate(np.asarray(index, dtype=np.int64)):
        out[row] = np.random.SeedSequence([int(base_seed), int(i)]).generate_state(1, dtype=np.uint64)[0]
    return out


class CausalModel:
    """Coefficients, exact information and sampling for one causal spec.

    Args:
        spec: a :class:`CausalSpec`. ``mi_targets`` are solved on construction; the resolved spec
            (solved coefficient in place, ``solved`` filled in) is ``self.spec``.
    """

    def __init__(self, spec: CausalSpec) -> None:
        self.spec, self.information = resolve(spec)
        self.templates = self.information.templates  # (N, K, d)
        eta, rho_common, rho_private = self.spec.coefficients()  # solved coefficients
        self._eta = torch.from_numpy(eta)
        self._loadings = torch.from_numpy(rho_common[:, :, None] * self.templates)  # L_i^T: (N, K, d)
        self._rho_private = torch.from_numpy(rho_private)
        self._init_scaling()

    @classmethod
    def from_spec(cls, spec: CausalSpec | str | os.PathLike[str]) -> CausalModel:
        """From a spec, a built-in configuration name or a YAML path."""
        return cls(spec if isinstance(spec, CausalSpec) else load_spec(spec))

    # -- information ---------------------------------------------------------------------------
    def mutual_information(self, query: str) -> float:
        """Exact MI of a query such as ``"theta;x1"``, ``"x1;x2|theta"``, in nats."""
        return self.information.mutual_information(query)

    def table(self, queries: list[str] | None = None) -> dict[str, float]:
        """{query: nats}; the standard table by default."""
        return self.information.table(queries)

    def pmi(self, query: str, theta: torch.Tensor | np.ndarray, z: torch.Tensor | np.ndarray, *, scaled: bool = True) -> np.ndarray:
        """Per-sample PMI (in nats) at given latents.

        Args:
            query: ``A;B``, ``A;B|C`` or ``A;B;C``.
            theta: (n,).
            z: (n, N, C, H, W) or (n, N, d) latents; ``scaled`` says whether they carry the
                spec's latent scaling (as :meth:`sample` returns them). PMI is the same either way
                up to that invertible map, whose Jacobian cancels.

        Returns:
            (n,) float64.
        """
        z = torch.as_tensor(z)
        if scaled:
            z = self.unscale(z)
        return self.information.pmi(query, np.asarray(theta, dtype=np.float64), z.double().numpy())

    # -- scaling --------------------------------------------------------------------------------
    def _init_scaling(self) -> None:
        n, k, d = self.templates.shape
        m_diag = np.diag(self.information.m)
        loadings = self._loadings.numpy()  # (N, K, d)
        mode = self.spec.latent_scaling
        self._block_scale = torch.ones(n, dtype=torch.float64)
        self._basis = torch.zeros(n, d, k, dtype=torch.float64)  # U_i, orthonormal columns
        self._gain = torch.zeros(n, k, dtype=torch.float64)  # (1 + s^2)^(-1/2) - 1 per column
        if mode == "whiten":
            # Sigma_ii = M_ii (I + B B^T), B = L_i / sqrt(M_ii) = U S V^T; from the K x K Gram only.
            for i in range(n):
                b = loadings[i].T / math.sqrt(m_diag[i])  # (d, K)
                s2, v = np.linalg.eigh(b.T @ b)
                keep = s2 > 1e-12 * max(float(s2.max()), 1e-300)
                u = b @ v[:, keep] / np.sqrt(s2[keep])
                self._basis[i, :, : u.shape[1]] = torch.from_numpy(u)
                self._gain[i, : u.shape[1]] = torch.from_numpy(1.0 / np.sqrt(1.0 + s2[keep]) - 1.0)
            self._block_scale = torch.from_numpy(1.0 / np.sqrt(m_diag))
        elif mode.startswith("percentile:"):
            q = float(mode.split(":", 1)[1])
            sigma = np.sqrt(m_diag[:, None] + np.sum(loadings**2, axis=1))  # (N, d) marginal std
            frac = lambda s: float(np.mean(erf(s / (sigma * math.sqrt(2.0))))) - q  # noqa: E731
            s = brentq(frac, 0.0, 50.0 * float(sigma.max()), xtol=1e-14, rtol=4 * np.finfo(float).eps)
            self._block_scale = torch.full((n,), 1.0 / s, dtype=torch.float64)

    def _linear(self, z: torch.Tensor, gain: torch.Tensor, block_scale: torch.Tensor) -> torch.Tensor:
        """Per block: block_scale_i (z_i + U_i diag(gain_i) U_i^T z_i). z: (n, N, ...)."""
        flat = z.double().reshape(z.shape[0], z.shape[1], self.spec.d)
        coef = torch.einsum("ndk,bnd->bnk", self._basis, flat) * gain
        out = (flat + torch.einsum("ndk,bnk->bnd", self._basis, coef)) * block_scale[:, None]
        return out.reshape(z.shape).to(z.dtype)

    def scale(self, z: torch.Tensor) -> torch.Tensor:
        """Apply the spec's latent scaling to unscaled latents. z: (n, N, ...) -> same shape."""
        return self._linear(z, self._gain, self._block_scale)

    def unscale(self, z: torch.Tensor) -> torch.Tensor:
        """Invert :meth:`scale`. z: (n, N, ...) -> same shape."""
        inverse_gain = 1.0 / (1.0 + self._gain) - 1.0  # (1 + s^2)^(+1/2) - 1
        return self._linear(z, inverse_gain, 1.0 / self._block_scale)

    # -- sampling --------------------------------------------------------------------------------
    def sample(
        self,
        n: int,
        generator: torch.Generator | None = None,
        *,
        seed: int | None = None,
        start: int = 0,
        return_proto: bool = False,
        dtype: torch.dtype = torch.float32,
    ) -> LatentSample:
        """Draw samples ``start .. start+n-1``.

        Args:
            n: number of samples.
            generator: if given (and ``seed`` is not), one base seed is drawn from it.
            seed: base seed; default: the spec's ``seed``.
            start: global index of the first sample; sample i depends only on (base seed, i).
            return_proto: also return ``u_common`` and ``u_private``.
            dtype: dtype of the returned tensors (computation is float64).

        Returns:
            :class:`LatentSample` with theta (n,) and z (n, N, C, H, W).
        """
        if isinstance(n, bool) or not isinstance(n, int) or n < 0:
            raise ValueError(f"n: expected a nonnegative integer, got {n!r}")
        if isinstance(start, bool) or not isinstance(start, int) or start < 0:
            raise ValueError(f"start: expected a nonnegative integer, got {start!r}")
        if seed is None:
            seed = base_seed(generator, self.spec.seed)
        n_mod, k, d = self.templates.shape
        j = self.spec.private_latents
        index = np.arange(start, start + n, dtype=np.int64)
        draws = torch.empty(n, k + j * d, dtype=torch.float64)
        stream = torch.Generator()
        for row, s in enumerate(sample_seeds(seed, index)):
            stream.manual_seed(int(s))
            torch.randn(k + j * d, generator=stream, dtype=torch.float64, out=draws[row])
        u_common, u_private = draws[:, :k], draws[:, k:].reshape(n, j, d)
        z = torch.einsum("bk,nkd->bnd", u_common, self._loadings) + torch.einsum(
            "nj,bjd->bnd", self._rho_private, u_private
        )
        z = self.scale(z).reshape(n, n_mod, *self.spec.shape)
        out = LatentSample(theta=(u_common @ self._eta).to(dtype), z=z.to(dtype), index=torch.from_numpy(index))
        if return_proto:
            out.u_common, out.u_private = u_common.to(dtype), u_private.to(dtype)
        return out
