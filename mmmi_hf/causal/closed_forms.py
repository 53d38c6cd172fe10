"""Closed forms of the paper's Appendix B (Eqs. 14-23): two modalities, all-ones templates.

An independent cross-check of :class:`~mmmi_hf.causal.information.LatentInformation`; nothing
else uses it. Eq. 6 in the main text has a typo (its numerator must be d * rho_common^2, as in
Eq. 21), so :func:`dag1_closed_forms` is written from Eq. 21. All values in nats.
"""

from __future__ import annotations

import math

import numpy as np

__all__ = ["bimodal_closed_forms", "dag1_closed_forms"]


def bimodal_closed_forms(eta: np.ndarray, rho_common: np.ndarray, rho_private: np.ndarray, d: int) -> dict[str, float]:
    """Eqs. 21-23 for z_theta = eta.u_common, z_i = sum_k rho_common[i,k] u_k 1_d + sum_j rho_private[i,j] u_j.

    Args:
        eta: (K,); rho_common: (2, K); rho_private: (2, J); d: dimension of each modality.

    Returns:
        {"theta;x1", "theta;x2", "x1;x2"} -> nats.
    """
    eta, rc, rp = (np.asarray(v, dtype=np.float64) for v in (eta, rho_common, rho_private))
    a = float(eta @ eta)
    r1, r2 = float(eta @ rc[0]), float(eta @ rc[1])
    o, q, p = float(rc[0] @ rc[0]), float(rc[1] @ rc[1]), float(rc[0] @ rc[1])
    b, c = o + float(rp[0] @ rp[0]), q + float(rp[1] @ rp[1])
    f = p + float(rp[0] @ rp[1])
    big1, big2, big12 = b + (d - 1) * o, c + (d - 1) * q, f + (d - 1) * p
    small = (b - o) * (c - q)
    return {
        "theta;x1": -0.5 * math.log(1.0 - d * r1**2 / (a * big1)),  # Eq. 21
        "theta;x2": -0.5 * math.log(1.0 - d * r2**2 / (a * big2)),  # Eq. 22
        "x1;x2": 0.5 * (d - 1) * math.log(small / (small - (f - p) ** 2))  # Eq. 23
        + 0.5 * math.log(big1 * big2 / (big1 * big2 - big12**2)),
    }


def dag1_closed_forms(rho_common_1: float, rho_common_2: float, rho_private_1: float, rho_private_2: float, d: int) -> dict[str, float]:
    """Eqs. 6 (corrected) and 7 for the model of Eq. 2 (one common cause, private noise each).

    Returns:
        {"theta;x1", "x1;x2"} -> nats.
    """
    t1, t2 = d * rho_common_1**2, d * rho_common_2**2
    h1, h2 = rho_private_1**2, rho_private_2**2
    return {
        "theta;x1": -0.5 * math.log(1.0 - t1 / (h1 + t1)),
        "x1;x2": -0.5 * math.log(1.0 - t1 * t2 / ((h1 + t1) * (h2 + t2))),
    }
