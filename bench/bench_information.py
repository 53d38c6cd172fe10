"""Structured vs dense exact MI, measured side by side in one run.

1. N = 2, d = 3072 (blackhole-mass: two common causes, galaxy templates): one MI query
   I(x1;x2) through the structure (cold: no cached factorisations) vs dense log-dets of the
   6145 x 6145 covariance (built once, not timed: the dense side gets only its slogdets timed).
2. N = 10, d = 3072 (decay-a1.2-b1.2 at CIFAR shape): the full default table from a fresh
   model; dense would need a 30721 x 30721 matrix (7.55 GB in float64).

Run: python bench/bench_information.py [--repeats R]
"""

from __future__ import annotations

import argparse
import dataclasses
import statistics
import time

import numpy as np

from mmmi_hf.causal.information import standard_queries
from mmmi_hf.causal.model import CausalModel
from mmmi_hf.causal.spec import load_spec


def timed(fn, repeats: int) -> tuple[float, object]:
    """Median wall time in seconds over ``repeats`` calls, and the last result."""
    times, result = [], None
    for _ in range(repeats):
        start = time.perf_counter()
        result = fn()
        times.append(time.perf_counter() - start)
    return statistics.median(times), result


def dense_covariance(model: CausalModel) -> np.ndarray:
    """(N d) x (N d) covariance of z_1..z_N: M (x) I_d + L L^T, formed densely."""
    info = model.information
    n, k, d = model.templates.shape
    loadings = (info.rho_common[:, :, None] * model.templates).transpose(0, 2, 1).reshape(n * d, k)
    return np.kron(info.m, np.eye(d)) + loadings @ loadings.T


def dense_mi_x1_x2(cov: np.ndarray, d: int) -> float:
    ld = lambda a: np.linalg.slogdet(a)[1]  # noqa: E731
    return 0.5 * (ld(cov[:d, :d]) + ld(cov[d:, d:]) - ld(cov))


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--repeats", type=int, default=3, help="dense repeats (structured runs 200x more)")
    args = parser.parse_args()

    model = CausalModel.from_spec("blackhole-mass")
    d = model.spec.d
    cov = dense_covariance(model)

    def structured() -> float:
        model.information._factors.clear()  # cold: factorise M_S and I + P_S again
        return model.mutual_information("x1;x2")

    t_struct, v_struct = timed(structured, 200 * args.repeats)
    t_dense, v_dense = timed(lambda: dense_mi_x1_x2(cov, d), args.repeats)
    print(f"[N=2, d={d}] I(x1;x2): structured {v_struct:.12f} nats, dense {v_dense:.12f} nats, |diff| {abs(v_struct - v_dense):.2e}")
    print(f"[N=2, d={d}] per query: structured {t_struct * 1e6:.1f} us, dense {t_dense:.3f} s, ratio {t_dense / t_struct:,.0f}x")
    t_setup, _ = timed(lambda: CausalModel.from_spec("blackhole-mass").mutual_information("x1;x2"), 10)
    print(f"[N=2, d={d}] from spec name to value (load YAML + PNG templates, inner products, query): {t_setup * 1e3:.1f} ms")

    spec = dataclasses.replace(load_spec("decay-a1.2-b1.2"), shape=(3, 32, 32))
    queries = standard_queries(spec.modalities)
    t_model, big = timed(lambda: CausalModel(spec), 5)

    def table() -> dict[str, float]:
        big.information._factors.clear()
        return big.table()

    t_table, values = timed(table, 20)
    print(
        f"[N=10, d={spec.d}] full default table ({len(queries)} queries, {len(big.information._factors)} distinct "
        f"factorisations): {t_table * 1e3:.2f} ms; model set-up (templates, inner products, whitening) {t_model * 1e3:.2f} ms; "
        f"dense would factorise a {1 + 10 * spec.d}^2 matrix ({(1 + 10 * spec.d) ** 2 * 8 / 1e9:.2f} GB)"
    )
    print(f"[N=10, d={spec.d}] e.g. I(theta;x1) = {values['theta;x1']:.6f}, I(x1;x10) = {values['x1;x10']:.6f} nats")


if __name__ == "__main__":
    main()
