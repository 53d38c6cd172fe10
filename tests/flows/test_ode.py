"""Solvers, exact inverse and certificate, against linear fields with closed-form answers."""

from __future__ import annotations

import math

import numpy as np
import pytest
import torch
from scipy.linalg import expm

from mmmi_hf.flows import ode
from tests.flows.tiny import tiny_unets

A = torch.tensor([[-0.5, 1.0, 0.0], [-0.3, 0.2, 0.4], [0.1, 0.0, -0.7]], dtype=torch.float64)


def linear(x: torch.Tensor, t: float) -> torch.Tensor:
    return x @ A.T


def test_grids():
    assert ode.time_grid(4) == [0.0, 0.25, 0.5, 0.75, 1.0]
    quad = ode.time_grid(4, "quadratic")
    assert quad[0] == 0.0 and quad[-1] == 1.0 and np.all(np.diff(np.diff(quad)) < 0)  # steps shrink towards t = 1
    with pytest.raises(ValueError, match=r"grid: expected one of uniform, quadratic, got 'cosine'"):
        ode.time_grid(4, "cosine")
    with pytest.raises(ValueError, match=r"num_steps: expected a positive integer, got 0"):
        ode.time_grid(0)
    with pytest.raises(ValueError, match=r"solver: expected one of euler, midpoint, heun, rk4, got 'rk45'"):
        ode.integrate(linear, torch.ones(1, 3), solver="rk45")


@pytest.mark.parametrize("solver,order", [("euler", 1), ("midpoint", 2), ("heun", 2), ("rk4", 4)])
def test_order_of_accuracy(solver, order):
    x0 = torch.tensor([[1.0, -2.0, 0.5]], dtype=torch.float64)
    exact = x0.numpy() @ expm(A.numpy()).T
    errors = [float(np.abs(ode.integrate(linear, x0, solver=solver, num_steps=s).numpy() - exact).max()) for s in (8, 16)]
    assert np.log2(errors[0] / errors[1]) == pytest.approx(order, abs=0.25)


@pytest.mark.parametrize("solver", ["euler", "midpoint", "heun", "rk4"])
def test_invert_linear_is_exact(solver):
    x0 = torch.randn(5, 3, dtype=torch.float64, generator=torch.Generator().manual_seed(0))
    x1 = ode.integrate(linear, x0, solver=solver, num_steps=10, grid="quadratic")
    inv = ode.invert(linear, x1, solver=solver, num_steps=10, grid="quadratic", tol=1e-14)
    assert inv.converged.all() and float(inv.residual.max()) < 1e-13
    torch.testing.assert_close(inv.x_0, x0, rtol=1e-12, atol=1e-12)


@pytest.mark.parametrize("solver", ["euler", "midpoint", "rk4"])
def test_step_lipschitz_matches_the_step_jacobian(solver):
    h = 0.1
    a = A.numpy()
    rk4 = sum(np.linalg.matrix_power(h * a, p) / math.factorial(p) for p in range(1, 5))  # Taylor terms 1..4
    jac = {"euler": h * a, "midpoint": h * a @ (np.eye(3) + 0.5 * h * a), "rk4": rk4}[solver]
    x = torch.randn(4, 3, dtype=torch.float64, generator=torch.Generator().manual_seed(1))
    sigma = ode.step_lipschitz(linear, x, 0.3, h, solver, iters=50)
    np.testing.assert_allclose(sigma.numpy(), np.linalg.norm(jac, 2), rtol=1e-6)
    cert = ode.certify(linear, x, solver=solver, num_steps=10, iters=50)
    assert cert.max == pytest.approx(np.linalg.norm(jac, 2), rel=1e-6) and cert.certified


def test_jacobian_singular_values_of_a_linear_flow():
    x = torch.zeros(2, 3, dtype=torch.float64)
    values = ode.jacobian_singular_values(linear, x, solver="rk4", num_steps=8)
    step = sum(np.linalg.matrix_power(A.numpy() / 8, p) / math.factorial(p) for p in range(5))  # one rk4 step
    expected = np.linalg.svd(np.linalg.matrix_power(step, 8), compute_uv=False)
    np.testing.assert_allclose(values.numpy(), np.stack([expected, expected]), rtol=1e-10)


def test_expansive_step_is_flagged_unconverged():
    stiff = lambda x, t: -30.0 * x  # noqa: E731  (euler step increment Jacobian -3: not a contraction)
    x1 = ode.integrate(stiff, torch.ones(2, 3, dtype=torch.float64), solver="euler", num_steps=10)
    inv = ode.invert(stiff, x1, solver="euler", num_steps=10, max_iter=30)
    assert not inv.converged.any()
    assert not ode.certify(stiff, torch.ones(1, 3, dtype=torch.float64), solver="euler", num_steps=10).certified


def test_tiny_unet_round_trip_and_reversed_ode():
    unets = tiny_unets()
    labels = torch.tensor([0, 1, 2, 1])
    field = unets.velocity(labels)
    z = torch.randn(4, 1, 8, 8, generator=torch.Generator().manual_seed(3))
    with torch.no_grad():
        x = ode.integrate(field, z, num_steps=8)
        inv = ode.invert(field, x, num_steps=8)
    err = ((inv.x_0 - z).flatten(1).norm(dim=1) / z.flatten(1).norm(dim=1)).max()
    assert inv.converged.all() and float(err) < 1e-5
    cert = ode.certify(field, z, num_steps=8, iters=4, refine_iters=4)
    assert len(cert.per_step) == 8 and 0 < cert.max < 1
