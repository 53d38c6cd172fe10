"""Figures of merit of a generator: class fidelity, the invertibility certificate, exact
round-trip error (beside the reversed ODE), Jacobian singular values, and throughput."""

from __future__ import annotations

import statistics
import time
from dataclasses import dataclass

import numpy as np
import torch

from mmmi_hf.flows import ode
from mmmi_hf.flows.data import ImageSource
from mmmi_hf.flows.unets import ModalityUNets

__all__ = ["SolverSettings", "class_fidelity", "generate", "invertibility", "jacobian_spectrum", "throughput"]


@dataclass(frozen=True)
class SolverSettings:
    """The discrete generator map: solver, number of steps and time grid (see ``flows/ode.py``)."""

    solver: str = "midpoint"
    num_steps: int = 20
    grid: str = "uniform"

    @property
    def nfe(self) -> int:
        """Velocity evaluations of one forward pass."""
        return ode.SOLVERS[self.solver] * self.num_steps

    def kwargs(self) -> dict:
        return {"solver": self.solver, "num_steps": self.num_steps, "grid": self.grid}

    def check(self) -> None:
        """Raise ValueError naming the bad setting."""
        if self.solver not in ode.SOLVERS:
            raise ValueError(f"solver: expected one of {', '.join(ode.SOLVERS)}, got {self.solver!r}")
        ode.time_grid(self.num_steps, self.grid)


def _latents(unets: ModalityUNets, n: int, seed: int) -> torch.Tensor:
    return torch.randn((n, *unets.shape), generator=torch.Generator().manual_seed(seed))


def _cycled_labels(unets: ModalityUNets, n: int) -> torch.Tensor:
    return torch.arange(n) % unets.config.num_classes


@torch.no_grad()
def generate(unets: ModalityUNets, z: torch.Tensor, labels: torch.Tensor, settings: SolverSettings, *, batch_size: int = 500) -> torch.Tensor:
    """x = F(z) for latents z (B, C, H, W) and labels (B,), in batches."""
    out = [
        ode.integrate(unets.velocity(labels[i : i + batch_size]), z[i : i + batch_size], **settings.kwargs())
        for i in range(0, z.shape[0], batch_size)
    ]
    return torch.cat(out) if out else z.clone()


def class_fidelity(
    unets: ModalityUNets, data: ImageSource, settings: SolverSettings, *, per_class: int = 100, seed: int = 0
) -> dict:
    """Share of generated samples of class c that a classifier fitted on the real images labels c.

    The classifier is an RBF support-vector machine on raw pixels; its accuracy on a held-out
    quarter of the real images is reported beside the fidelity so the number can be trusted.
    """
    from sklearn.model_selection import train_test_split
    from sklearn.svm import SVC

    real = data.images.flatten(1).numpy()
    target = data.labels.numpy()
    fit, held, y_fit, y_held = train_test_split(real, target, test_size=0.25, random_state=seed, stratify=target)
    held_out = float(SVC(gamma="scale").fit(fit, y_fit).score(held, y_held))
    classifier = SVC(gamma="scale").fit(real, target)
    k = unets.config.num_classes
    labels = torch.arange(k).repeat_interleave(per_class)
    x = generate(unets, _latents(unets, len(labels), seed), labels, settings)
    predicted = classifier.predict(x.flatten(1).numpy())
    hits = predicted == labels.numpy()
    return {
        "fidelity": float(hits.mean()),
        "per_class": [float(hits[labels.numpy() == c].mean()) for c in range(k)],
        "classifier_held_out_accuracy": held_out,
        "samples": int(len(labels)),
        "pixel_range": [float(x.min()), float(x.max())],
    }


def invertibility(
    unets: ModalityUNets,
    settings: SolverSettings,
    *,
    n: int = 1000,
    seed: int = 1,
    tol: float = 3e-7,
    batch_size: int = 500,
) -> dict:
    """Certificate (max per-step h Lip over n latents' trajectories), the exact inverse's
    round-trip error ||F^-1(F(z)) - z|| / ||z|| and, for comparison, the reversed ODE's."""
    z = _latents(unets, n, seed)
    labels = _cycled_labels(unets, n)
    per_step = np.zeros(settings.num_steps)
    errors, reversed_errors, iterations, converged = [], [], [], []
    start = time.perf_counter()
    for i in range(0, n, batch_size):
        zb, lb = z[i : i + batch_size], labels[i : i + batch_size]
        field = unets.velocity(lb)
        cert = ode.certify(field, zb, **settings.kwargs())
        per_step = np.maximum(per_step, cert.per_step)
        with torch.no_grad():
            x = ode.integrate(field, zb, **settings.kwargs())
            inv = ode.invert(field, x, tol=tol, **settings.kwargs())
            back = ode.reverse_integrate(field, x, **settings.kwargs())
        norm = zb.flatten(1).norm(dim=1)
        errors.append(((inv.x_0 - zb).flatten(1).norm(dim=1) / norm).double())
        reversed_errors.append(((back - zb).flatten(1).norm(dim=1) / norm).double())
        iterations.append(inv.iterations)
        converged.append(inv.converged)
    err, rev = torch.cat(errors), torch.cat(reversed_errors)
    return {
        "latents": n,
        **settings.kwargs(),
        "nfe": settings.nfe,
        "certificate_max_h_lip": float(per_step.max()),
        "certificate_per_step": [round(float(v), 4) for v in per_step],
        "round_trip_median": float(err.median()),
        "round_trip_max": float(err.max()),
        "all_converged": bool(torch.cat(converged).all()),
        "inverse_iterations_per_step_max": int(np.max(iterations)),
        "reversed_ode_median": float(rev.median()),
        "reversed_ode_max": float(rev.max()),
        "seconds": time.perf_counter() - start,
    }


def jacobian_spectrum(unets: ModalityUNets, settings: SolverSettings, *, n: int = 16, seed: int = 2) -> dict:
    """Smallest and largest singular values of F's Jacobian at n latents (small d only)."""
    z = _latents(unets, n, seed)
    labels = _cycled_labels(unets, n)
    values = torch.cat([
        ode.jacobian_singular_values(unets.velocity(labels[i : i + 1]), z[i : i + 1], **settings.kwargs()) for i in range(n)
    ])
    smallest, largest = values[:, -1], values[:, 0]
    return {
        "latents": n,
        "min_median": float(smallest.median()),
        "min_min": float(smallest.min()),
        "max_median": float(largest.median()),
    }


@torch.no_grad()
def throughput(unets: ModalityUNets, settings: SolverSettings, *, batch_size: int = 256, repeats: int = 3) -> dict:
    """Samples/s of F with ``settings``, and the bare UNet cost of the same NFE on the same batch
    (solver overhead = solver time / bare time - 1). Median over ``repeats``, measured alternately."""
    z = _latents(unets, batch_size, 0)
    labels = _cycled_labels(unets, batch_size)
    field = unets.velocity(labels)
    t_values = [i / settings.nfe for i in range(settings.nfe)]

    def solver_run() -> None:
        ode.integrate(field, z, **settings.kwargs())

    def bare_run() -> None:
        for t in t_values:
            unets(z, t, labels)

    solver_times, bare_times = [], []
    solver_run()  # warm-up
    for _ in range(repeats):
        for fn, times in ((solver_run, solver_times), (bare_run, bare_times)):
            start = time.perf_counter()
            fn()
            times.append(time.perf_counter() - start)
    solver_s, bare_s = statistics.median(solver_times), statistics.median(bare_times)
    return {
        **settings.kwargs(),
        "batch_size": batch_size,
        "samples_per_second": batch_size / solver_s,
        "bare_unet_samples_per_second": batch_size / bare_s,
        "solver_overhead": solver_s / bare_s - 1.0,
        "threads": torch.get_num_threads(),
    }
