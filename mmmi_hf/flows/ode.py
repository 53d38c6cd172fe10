"""Fixed-step ODE solvers for the flow generators, their exact inverse and its certificate.

Time convention (used everywhere in this package): t runs from 0 to 1, **t = 0 is the Gaussian
latent and t = 1 is data**. Training uses the straight path x_t = (1 - t) x_0 + t x_1 with
x_0 ~ N(0, I) and x_1 = data + sigma_min * N(0, I); the network predicts the velocity
dx_t/dt = x_1 - x_0. (diffusers' FlowMatchEulerDiscreteScheduler uses the opposite direction,
sigma = 1 - t, and predicts noise - data = -velocity.)

The generator F is the *discrete* map of a fixed-step solver on a fixed grid
0 = t_0 < ... < t_S = 1: each step is x_{i+1} = x_i + g_i(x_i) with the increment
g_i(x) = h_i Phi(x, t_i). If h_i Lip(Phi) < 1, each step is a bijection and its inverse is the
limit of the fixed-point iteration x <- x_{i+1} - g_i(x) (the invertible-ResNet argument of
Behrmann et al., 2019). :func:`invert` runs that iteration step by step; :func:`certify`
estimates Lip(g_i) by power iteration (Jacobian-vector products by central differences,
vector-Jacobian products by autograd) at the points the trajectories visit, and reports the
maximum: below 1 means every step was contracting where it was inverted.

A ``velocity`` argument is any callable ``velocity(x, t) -> dx/dt`` with x of shape (B, ...) and t
a float; it must act on each sample separately (no batch statistics). If it also has
``subset(index)`` (the field of some of its samples, as ``LabelledVelocity`` has), the inverse
and the certificate spend their extra iterations on the samples that need them only.
"""

from __future__ import annotations

import math
from collections.abc import Callable
from dataclasses import dataclass

import torch

__all__ = [
    "GRIDS",
    "SOLVERS",
    "Certificate",
    "Inversion",
    "certify",
    "increment",
    "integrate",
    "invert",
    "jacobian_singular_values",
    "reverse_integrate",
    "step_lipschitz",
    "time_grid",
]

Velocity = Callable[[torch.Tensor, float], torch.Tensor]

#: velocity evaluations per step
SOLVERS = {"euler": 1, "midpoint": 2, "heun": 2, "rk4": 4}
GRIDS = ("uniform", "quadratic")


def time_grid(num_steps: int, grid: str = "uniform") -> list[float]:
    """The S + 1 times 0 = t_0 < ... < t_S = 1.

    ``uniform``: t_i = i / S. ``quadratic``: t_i = 1 - (1 - i/S)^2, steps shrinking towards the
    data end (t = 1) where a flow fitted to finite data is stiffest.
    """
    if isinstance(num_steps, bool) or not isinstance(num_steps, int) or num_steps < 1:
        raise ValueError(f"num_steps: expected a positive integer, got {num_steps!r}")
    if grid == "uniform":
        return [i / num_steps for i in range(num_steps + 1)]
    if grid == "quadratic":
        return [1.0 - (1.0 - i / num_steps) ** 2 for i in range(num_steps + 1)]
    raise ValueError(f"grid: expected one of {', '.join(GRIDS)}, got {grid!r}")


def _check_solver(solver: str) -> None:
    if solver not in SOLVERS:
        raise ValueError(f"solver: expected one of {', '.join(SOLVERS)}, got {solver!r}")


def increment(velocity: Velocity, x: torch.Tensor, t: float, h: float, solver: str) -> torch.Tensor:
    """g(x) = h Phi(x, t): the change one solver step makes. x: (B, ...) -> (B, ...)."""
    _check_solver(solver)
    if solver == "euler":
        return h * velocity(x, t)
    if solver == "midpoint":
        return h * velocity(x + 0.5 * h * velocity(x, t), t + 0.5 * h)
    k1 = velocity(x, t)
    if solver == "heun":
        return 0.5 * h * (k1 + velocity(x + h * k1, t + h))
    k2 = velocity(x + 0.5 * h * k1, t + 0.5 * h)  # rk4
    k3 = velocity(x + 0.5 * h * k2, t + 0.5 * h)
    k4 = velocity(x + h * k3, t + h)
    return h / 6.0 * (k1 + 2.0 * k2 + 2.0 * k3 + k4)


def integrate(
    velocity: Velocity,
    x_0: torch.Tensor,
    *,
    solver: str = "midpoint",
    num_steps: int = 20,
    grid: str = "uniform",
    return_trajectory: bool = False,
) -> torch.Tensor:
    """The generator F: latents x_0 (B, ...) at t = 0 to data x_1 (B, ...) at t = 1.

    With ``return_trajectory``, returns (S + 1, B, ...) holding x_0 .. x_S.
    """
    _check_solver(solver)
    times = time_grid(num_steps, grid)
    x = x_0
    path = [x] if return_trajectory else None
    for t, t_next in zip(times[:-1], times[1:]):
        x = x + increment(velocity, x, t, t_next - t, solver)
        if path is not None:
            path.append(x)
    return torch.stack(path) if path is not None else x


def reverse_integrate(
    velocity: Velocity, x_1: torch.Tensor, *, solver: str = "midpoint", num_steps: int = 20, grid: str = "uniform"
) -> torch.Tensor:
    """The reversed ODE (the usual approximate inverse, for comparison): the same solver run
    from t = 1 back to t = 0 on the same grid. Not the inverse of F."""
    _check_solver(solver)
    times = time_grid(num_steps, grid)
    x = x_1
    for t, t_prev in zip(times[:0:-1], times[-2::-1]):
        x = x + increment(velocity, x, t, t_prev - t, solver)
    return x


def _norms(x: torch.Tensor) -> torch.Tensor:
    return x.flatten(1).norm(dim=1)


@dataclass
class Inversion:
    """Result of :func:`invert`.

    Attributes:
        x_0: (B, ...) recovered latents.
        iterations: (S,) fixed-point iterations used per step (the slowest sample).
        residual: (B,) final ||x_i + g_i(x_i) - x_{i+1}|| / ||x_{i+1}||, maximum over steps.
        converged: (B,) whether every step met the tolerance.
    """

    x_0: torch.Tensor
    iterations: list[int]
    residual: torch.Tensor
    converged: torch.Tensor


def _subset(velocity: Velocity, index: torch.Tensor) -> Velocity | None:
    subset = getattr(velocity, "subset", None)
    return subset(index) if subset is not None else None


def _rows(x: torch.Tensor, values: torch.Tensor) -> torch.Tensor:
    """Per-sample values (B,) shaped to broadcast against x (B, ...)."""
    return values.view(-1, *[1] * (x.dim() - 1))


@torch.no_grad()
def invert(
    velocity: Velocity,
    x_1: torch.Tensor,
    *,
    solver: str = "midpoint",
    num_steps: int = 20,
    grid: str = "uniform",
    tol: float = 3e-7,
    max_iter: int = 200,
) -> Inversion:
    """Exact inverse F^-1 of the discrete generator map, step by step from t = 1 back to 0.

    Each step solves x + g_i(x) = x_{i+1} by the fixed-point iteration x <- x_{i+1} - g_i(x),
    which converges when Lip(g_i) < 1 (see :func:`certify`). A sample stops once its update is
    below ``tol`` relative to its norm; the step ends when every sample has.

    Args:
        x_1: (B, ...) data-side points.
        tol: relative update size at which a sample's iteration stops.
        max_iter: iteration cap per step; samples still moving then are flagged unconverged.
    """
    _check_solver(solver)
    times = time_grid(num_steps, grid)
    y = x_1
    iterations: list[int] = []
    residual = torch.zeros(x_1.shape[0], dtype=torch.float64)
    converged = torch.ones(x_1.shape[0], dtype=torch.bool)
    everyone = torch.arange(x_1.shape[0])
    for t, t_next in zip(times[-2::-1], times[:0:-1]):
        h = t_next - t
        x = y - increment(velocity, y, t, h, solver)
        active, used = everyone, 1
        while active.numel() and used < max_iter:
            field = _subset(velocity, active) if active.numel() < everyone.numel() else velocity
            if field is None:  # no subset(): iterate the whole batch, move only the active samples
                new = (y - increment(velocity, x, t, h, solver))[active]
            else:
                new = y[active] - increment(field, x[active], t, h, solver)
            moved = _norms(new - x[active]) / _norms(new).clamp_min(1e-30)
            x[active] = new
            active = active[moved > tol]
            used += 1
        converged[active] = False
        iterations.append(used)
        res = _norms(x + increment(velocity, x, t, h, solver) - y) / _norms(y).clamp_min(1e-30)
        residual = torch.maximum(residual, res.double())
        y = x
    return Inversion(x_0=y, iterations=iterations[::-1], residual=residual, converged=converged)


def step_lipschitz(
    velocity: Velocity,
    x: torch.Tensor,
    t: float,
    h: float,
    solver: str,
    *,
    iters: int = 12,
    eps: float = 1e-3,
    seed: int = 0,
    v0: torch.Tensor | None = None,
    return_vector: bool = False,
) -> torch.Tensor | tuple[torch.Tensor, torch.Tensor]:
    """Local spectral norm of the step increment's Jacobian, ||d g / d x||_2, at each sample.

    Power iteration on J^T J: J v by central differences (step ``eps`` times the sample's RMS
    size), J^T w by autograd. Power iteration approaches the norm from below.

    Args:
        x: (B, ...) points.
        iters: power iterations.
        v0: (B, ...) starting directions (default: random from ``seed``).
        return_vector: also return the final directions (to warm-start a nearby point).

    Returns:
        (B,) float64 estimates of h Lip(Phi) at each point [, (B, ...) directions].
    """
    _check_solver(solver)
    g = lambda z: increment(velocity, z, t, h, solver)  # noqa: E731
    if v0 is None:
        v0 = torch.randn(x.shape, generator=torch.Generator().manual_seed(seed), dtype=torch.float64).to(x)
    v = v0 / _rows(x, _norms(v0).clamp_min(1e-30))
    step = eps * _rows(x, (_norms(x) / math.sqrt(x[0].numel())).clamp_min(1e-3))
    sigma = torch.zeros(x.shape[0], dtype=torch.float64)
    for _ in range(iters):
        with torch.no_grad():
            jv = (g(x + step * v) - g(x - step * v)) / (2 * step)
        sigma = _norms(jv).double()
        with torch.enable_grad():
            z = x.detach().requires_grad_(True)
            (jt_jv,) = torch.autograd.grad(g(z), z, grad_outputs=jv)
        v = jt_jv / _rows(x, _norms(jt_jv).clamp_min(1e-30))
    return (sigma, v) if return_vector else sigma


@dataclass
class Certificate:
    """Result of :func:`certify`.

    Attributes:
        per_step: (S,) maximum over samples of h_i Lip(Phi) at step i.
        max: the maximum over steps: below 1 certifies every step as a contraction where the
            trajectories go, so F is a bijection there and :func:`invert` converges.
    """

    per_step: list[float]

    @property
    def max(self) -> float:
        return max(self.per_step)

    @property
    def certified(self) -> bool:
        return self.max < 1.0


def certify(
    velocity: Velocity,
    x_0: torch.Tensor,
    *,
    solver: str = "midpoint",
    num_steps: int = 20,
    grid: str = "uniform",
    iters: int = 4,
    refine_iters: int = 16,
    refine_fraction: float = 0.5,
    refine_top: int = 32,
) -> Certificate:
    """Estimate h_i Lip(Phi) at every step along the trajectories of latents x_0 (B, ...).

    Every sample gets ``iters`` power iterations, warm-started from its direction at the
    previous step; the ``refine_top`` highest estimates within ``refine_fraction`` of the step's
    largest (those that can set the maximum) get ``refine_iters`` more.
    """
    times = time_grid(num_steps, grid)
    with torch.no_grad():
        path = integrate(velocity, x_0, solver=solver, num_steps=num_steps, grid=grid, return_trajectory=True)
    per_step, v = [], None
    for i, (t, t_next) in enumerate(zip(times[:-1], times[1:])):
        h = t_next - t
        sigma, v = step_lipschitz(velocity, path[i], t, h, solver, iters=iters, seed=i, v0=v, return_vector=True)
        if refine_iters:
            near = torch.nonzero(sigma >= refine_fraction * sigma.max()).flatten()
            rows = near[sigma[near].argsort(descending=True)[: max(refine_top, 1)]]
            field = _subset(velocity, rows) if rows.numel() < sigma.numel() else velocity
            if field is None:  # no subset(): refine the whole batch
                field, rows = velocity, torch.arange(sigma.numel())
            refined, v[rows] = step_lipschitz(field, path[i][rows], t, h, solver, iters=refine_iters, v0=v[rows], return_vector=True)
            sigma[rows] = torch.maximum(sigma[rows], refined)
        per_step.append(float(sigma.max()))
    return Certificate(per_step=per_step)


def jacobian_singular_values(
    velocity: Velocity, x_0: torch.Tensor, *, solver: str = "midpoint", num_steps: int = 20, grid: str = "uniform"
) -> torch.Tensor:
    """Singular values of the Jacobian of F at each latent, by autograd (for small d only).

    Args:
        x_0: (B, ...) latents with d = prod(...) elements each.

    Returns:
        (B, d) float64 singular values, descending. The smallest says how faint the weakest
        direction of z is in x.
    """
    d = x_0[0].numel()
    eye = torch.eye(d, dtype=x_0.dtype).view(d, *x_0.shape[1:])
    out = []
    for x in x_0:
        z = x.expand(d, *x.shape).clone().requires_grad_(True)
        (rows,) = torch.autograd.grad(integrate(velocity, z, solver=solver, num_steps=num_steps, grid=grid), z, grad_outputs=eye)
        out.append(torch.linalg.svdvals(rows.reshape(d, d).double()))
    return torch.stack(out)
