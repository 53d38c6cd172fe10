"""Sampling, latent scaling and inverse design."""

from __future__ import annotations

import dataclasses
import math

import numpy as np
import pytest
import torch
from scipy.special import erf

from mmmi_hf.causal.model import CausalModel
from mmmi_hf.causal.spec import CausalSpec, dump_spec, load_spec
from mmmi_hf.causal.templates import build_templates
from tests.dense import dense_covariance, random_spec


def test_sample_follows_the_structural_equations(rng, tmp_path):
    spec = random_spec(rng, tmp_path, n=3, k=2)
    model = CausalModel(spec)
    s = model.sample(4, seed=11, return_proto=True, dtype=torch.float64)
    assert s.z.shape == (4, 3, *spec.shape) and s.theta.shape == (4,)
    assert s.u_common.shape == (4, 2) and s.u_private.shape == (4, spec.private_latents, spec.d)
    eta, rho_common, rho_private = spec.coefficients()
    templates = build_templates(spec)
    u_c, u_p = s.u_common.numpy(), s.u_private.numpy()
    for i in range(3):
        expected = sum(rho_common[i, k] * u_c[:, k, None] * templates[i, k] for k in range(2))
        expected = expected + sum(rho_private[i, j] * u_p[:, j] for j in range(spec.private_latents))
        np.testing.assert_allclose(s.z[:, i].reshape(4, -1).numpy(), expected, rtol=1e-12, atol=1e-12)
    np.testing.assert_allclose(s.theta.numpy(), u_c @ eta, rtol=1e-12)


def test_sample_i_depends_only_on_seed_and_index():
    model = CausalModel.from_spec("dag1")
    whole = model.sample(10, seed=5)
    part = model.sample(4, seed=5, start=3)
    assert torch.equal(whole.z[3:7], part.z) and torch.equal(whole.theta[3:7], part.theta)
    assert part.index.tolist() == [3, 4, 5, 6]
    assert torch.equal(model.sample(10).z, model.sample(10, seed=model.spec.seed).z)
    assert not torch.equal(model.sample(3, seed=6).z, whole.z[:3])


def test_generator_gives_a_base_seed():
    model = CausalModel.from_spec("dag1")
    a = model.sample(6, torch.Generator().manual_seed(0))
    b = model.sample(3, torch.Generator().manual_seed(0))
    assert torch.equal(a.z[:3], b.z)
    g = torch.Generator().manual_seed(0)
    first, second = model.sample(2, g), model.sample(2, g)
    assert not torch.equal(first.z, second.z)


def test_whitening_is_exact(rng, tmp_path):
    spec = random_spec(rng, tmp_path, n=3, k=2, scaling="whiten")
    model = CausalModel(spec)
    cov = dense_covariance(spec, build_templates(spec))
    d = spec.d
    for i in range(3):
        block = torch.from_numpy(cov[1 + i * d : 1 + (i + 1) * d, 1 + i * d : 1 + (i + 1) * d])
        # W Sigma_ii W^T with W applied to the columns, then to the rows (W is symmetric)
        batch = torch.zeros(d, 3, d, dtype=torch.float64)
        batch[:, i] = block
        half = model.scale(batch)[:, i]
        batch[:, i] = half.T
        np.testing.assert_allclose(model.scale(batch)[:, i].numpy(), np.eye(d), atol=1e-10)


def test_scale_unscale_round_trip_and_modes():
    for scaling in ("whiten", "percentile:0.95", "none"):
        spec = dataclasses.replace(load_spec("blackhole-mass"), latent_scaling=scaling)
        model = CausalModel(spec)
        z = torch.randn(3, 2, 3, 32, 32, dtype=torch.float64)
        np.testing.assert_allclose(model.unscale(model.scale(z)).numpy(), z.numpy(), rtol=1e-10, atol=1e-10)
    none = CausalModel(dataclasses.replace(load_spec("dag1"), latent_scaling="none"))
    z = torch.randn(2, 2, 1, 8, 8, dtype=torch.float64)
    assert torch.equal(none.scale(z), z)


def test_percentile_scale_is_exact_quantile():
    spec = dataclasses.replace(load_spec("blackhole-mass"), latent_scaling="percentile:0.9")
    model = CausalModel(spec)
    s = 1.0 / float(model._block_scale[0])
    m_diag = np.diag(model.information.m)
    loadings = model._loadings.numpy()
    sigma = np.sqrt(m_diag[:, None] + np.sum(loadings**2, axis=1))
    assert np.mean(erf(s / (sigma * math.sqrt(2)))) == pytest.approx(0.9, abs=1e-12)
    z = model.sample(400, seed=0).z
    assert float((z.abs() <= 1).double().mean()) == pytest.approx(0.9, abs=0.01)


def test_whitened_samples_are_standard_normal():
    model = CausalModel.from_spec("dag1")
    z = model.sample(20000, seed=2).z.double().reshape(20000, 2, 64)
    for i in range(2):
        cov = np.cov(z[:, i].numpy().T)
        assert np.abs(cov - np.eye(64)).max() < 0.06  # 4 standard errors of a sample covariance


def test_inverse_design_solves_and_is_idempotent(tmp_path):
    model = CausalModel.from_spec("dag1-sweep-04")
    target = model.spec.mi_targets["theta;x1"]
    assert model.mutual_information("theta;x1") == pytest.approx(target, rel=1e-12)
    solved = model.spec.solved
    assert solved["coefficient"] == "rho_common" and solved["value"] == [list(r) for r in model.spec.rho_common]
    dump_spec(model.spec, tmp_path / "resolved.yaml")
    again = CausalModel.from_spec(tmp_path / "resolved.yaml")
    assert again.spec.solved["factor"] == 1.0 and again.spec.rho_common == model.spec.rho_common  # bit for bit
    assert again.mutual_information("theta;x1") == pytest.approx(target, rel=1e-12)


def test_an_inverse_designed_spec_samples_with_its_solved_coefficients():
    model = CausalModel.from_spec("dag1-sweep-03")  # unresolved YAML: rho_common 1.0, solved 0.2087
    sample = model.sample(20000, seed=0, dtype=torch.float64)
    for query in ("theta;x1", "x1;x2"):
        pmi = model.pmi(query, sample.theta, sample.z)
        assert abs(pmi.mean() - model.mutual_information(query)) < 4 * pmi.std() / math.sqrt(pmi.size)
    theta = sample.theta.numpy()
    explained = np.corrcoef(theta, sample.z[:, 0].reshape(len(theta), -1).sum(1).numpy())[0, 1] ** 2
    assert -0.5 * math.log(1 - explained) == pytest.approx(model.mutual_information("theta;x1"), abs=0.02)  # closed form, ones templates


def test_inverse_design_entries_and_decay():
    base = load_spec("blackhole-mass").to_dict()
    spec = CausalSpec.from_dict({**base, "mi_targets": {"theta;x1": 2.0}, "solve_for": "rho_common[0][0]"}, base_dir=load_spec("blackhole-mass").base_dir)
    model = CausalModel(spec)
    assert model.mutual_information("theta;x1") == pytest.approx(2.0, rel=1e-12)
    assert model.spec.rho_common[1][0] == 1.0 and model.spec.rho_common[0][0] != 1.0
    decay = CausalSpec.from_dict({**load_spec("decay-a1.2-b1.2").to_dict(), "mi_targets": {"theta;x5": 0.3}, "solve_for": "beta"})
    assert CausalModel(decay).mutual_information("theta;x5") == pytest.approx(0.3, rel=1e-12)


def test_inverse_design_unreachable_targets():
    base = load_spec("dag1").to_dict()
    with pytest.raises(ValueError, match=r"mi_targets\['theta;x1'\] by scaling eta: the MI does not depend on this coefficient \(it stays 0.804719 nats\)"):
        CausalModel(CausalSpec.from_dict({**base, "mi_targets": {"theta;x1": 0.5}, "solve_for": "eta"}))
    with pytest.raises(ValueError, match=r"target 50 nats is out of reach"):
        CausalModel(CausalSpec.from_dict({**base, "mi_targets": {"x1;x2": 50.0}, "solve_for": "rho_common[0][0]"}))


def test_sample_arguments():
    model = CausalModel.from_spec("dag1")
    with pytest.raises(ValueError, match=r"n: expected a nonnegative integer, got -1"):
        model.sample(-1)
    with pytest.raises(ValueError, match=r"start: expected a nonnegative integer, got 1.5"):
        model.sample(1, start=1.5)
    assert model.sample(0).z.shape == (0, 2, 1, 8, 8)
