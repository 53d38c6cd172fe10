"""The structured engine against dense log-dets, closed forms and the paper's tables."""

from __future__ import annotations

import math

import numpy as np
import pytest
from scipy.stats import multivariate_normal

from mmmi_hf.causal.closed_forms import bimodal_closed_forms, dag1_closed_forms
from mmmi_hf.causal.information import LatentInformation, format_group, parse_query, standard_queries
from mmmi_hf.causal.model import CausalModel
from mmmi_hf.causal.spec import CausalSpec, load_spec
from mmmi_hf.causal.templates import build_templates
from tests.dense import all_groups, dense_covariance, dense_entropy, dense_indices, dense_mi, random_spec


@pytest.mark.parametrize("n,k", [(1, 1), (2, 1), (2, 3), (3, 2), (4, 1), (4, 3)])
def test_logdet_matches_dense_on_random_specs(rng, tmp_path, n, k):
    for trial in range(3):
        folder = tmp_path / f"{trial}"
        folder.mkdir()
        spec = random_spec(rng, folder, n=n, k=k)
        model = CausalModel(spec)
        cov = dense_covariance(spec, build_templates(spec))
        for group in all_groups(n):
            assert model.information.logdet(group) == pytest.approx(
                2 * dense_entropy(cov, group, spec.d), rel=1e-10, abs=1e-9
            ), (n, k, group)


@pytest.mark.parametrize("n,k", [(2, 2), (3, 1), (4, 2)])
def test_queries_match_dense(rng, tmp_path, n, k):
    spec = random_spec(rng, tmp_path, n=n, k=k)
    model = CausalModel(spec)
    cov = dense_covariance(spec, build_templates(spec))
    d = spec.d
    for query in standard_queries(n):
        q = parse_query(query, n)
        if q.kind == "coinformation":
            a, b, c = q.groups
            expected = dense_mi(cov, d, a, b) - dense_mi(cov, d, a, b, c)
        else:
            expected = dense_mi(cov, d, *q.groups, q.given)
        assert model.mutual_information(query) == pytest.approx(expected, rel=1e-9, abs=1e-10), query
    if n >= 3:
        expected = dense_mi(cov, d, [0, 1], [3], [2])
        assert model.mutual_information("theta,x1;x3|x2") == pytest.approx(expected, rel=1e-9, abs=1e-10)
        parts = [dense_entropy(cov, [b], d) for b in range(1, n + 1)]
        expected_tc = sum(parts) - dense_entropy(cov, range(1, n + 1), d)
        tc = model.information.total_correlation([[b] for b in range(1, n + 1)])
        assert tc == pytest.approx(expected_tc, rel=1e-9)


def test_pmi_matches_dense_log_densities(rng, tmp_path):
    spec = random_spec(rng, tmp_path, n=3, k=2)
    model = CausalModel(spec)
    cov = dense_covariance(spec, build_templates(spec))
    d = spec.d
    sample = model.sample(5, seed=3)
    theta = sample.theta.double().numpy()
    z = sample.z.double().reshape(5, 3, d).numpy()
    full = np.concatenate([theta[:, None], z.reshape(5, -1)], axis=1)

    def logpdf(blocks):
        idx = dense_indices(blocks, d)
        return multivariate_normal(mean=np.zeros(len(idx)), cov=cov[np.ix_(idx, idx)]).logpdf(full[:, idx])

    expected = logpdf([0, 1, 2]) - logpdf([0]) - logpdf([1, 2])
    np.testing.assert_allclose(model.pmi("theta;x1,x2", sample.theta, sample.z, scaled=False), expected, rtol=1e-9, atol=1e-9)
    expected = logpdf([1, 2, 3]) + logpdf([3]) - logpdf([1, 3]) - logpdf([2, 3])
    np.testing.assert_allclose(model.information.pmi("x1;x2|x3", theta, z), expected, rtol=1e-9, atol=1e-9)


def test_pmi_mean_is_the_mi():
    model = CausalModel.from_spec("dag1")
    sample = model.sample(20000, seed=1)
    for query in ("theta;x1", "x1;x2"):
        pmi = model.pmi(query, sample.theta, sample.z)  # whitened latents: scaled=True
        se = pmi.std() / math.sqrt(len(pmi))
        assert abs(pmi.mean() - model.mutual_information(query)) < 4 * se, query


def test_pmi_is_invariant_to_the_latent_scaling():
    spec = load_spec("dag1")
    raw = CausalModel(CausalSpec.from_dict({**spec.to_dict(), "latent_scaling": "none"}))
    white = CausalModel(spec)
    a, b = raw.sample(8, seed=5), white.sample(8, seed=5)
    np.testing.assert_allclose(white.pmi("x1;x2", b.theta, b.z), raw.pmi("x1;x2", a.theta, a.z), rtol=1e-5, atol=1e-5)


@pytest.mark.parametrize("k,j", [(1, 2), (2, 2), (3, 3)])
def test_appendix_b_closed_forms(rng, k, j):
    for d in (5, 3072):
        eta = rng.normal(size=k)
        rho_common = rng.normal(size=(2, k))
        rho_private = np.eye(2, j) + 0.5 * rng.normal(size=(2, j))
        info = LatentInformation(eta=eta, rho_common=rho_common, rho_private=rho_private, templates=np.ones((2, k, d)))
        for query, value in bimodal_closed_forms(eta, rho_common, rho_private, d).items():
            assert info.mutual_information(query) == pytest.approx(value, rel=1e-9, abs=1e-12), (query, d)


def test_eq6_corrected_and_eq7():
    for d in (64, 3072):
        info = LatentInformation(
            eta=np.array([1.3]),
            rho_common=np.array([[0.3], [0.7]]),
            rho_private=np.diag([1.1, 0.6]),
            templates=np.ones((2, 1, d)),
        )
        closed = dag1_closed_forms(0.3, 0.7, 1.1, 0.6, d)
        assert info.mutual_information("theta;x1") == pytest.approx(closed["theta;x1"], rel=1e-12)
        assert info.mutual_information("x1;x2") == pytest.approx(closed["x1;x2"], rel=1e-12)
        # the printed Eq. 6 (numerator d * rho_private^2) is a typo: it gives another number
        typo = -0.5 * math.log(1 - d * 1.1**2 / (1.1**2 + d * 0.3**2)) if d * 1.1**2 < 1.1**2 + d * 0.3**2 else math.nan
        assert not info.mutual_information("theta;x1") == pytest.approx(typo, rel=1e-3)


@pytest.mark.parametrize(
    "name,expected",
    [
        ("blackhole-mass", {"theta;x1": 2.77, "theta;x2": 3.33, "x1;x2": 2.63}),
        ("blackhole-atmosphere", {"theta;x1": 2.77, "theta;x2": 0.0, "x1;x2": 2.63}),
    ],
)
def test_table2_blackhole(name, expected):
    model = CausalModel.from_spec(name)
    assert model.spec.d == 3072
    for query, value in expected.items():
        assert round(model.mutual_information(query), 2) == value, query
    assert model.mutual_information("theta;x2") == (0.0 if "atmosphere" in name else pytest.approx(0.5 * math.log1p(773.3628143021914)))


def test_table2_blackhole_mass_against_dense_logdets():
    """A slice of the full 6145 x 6145 dense check: theta and x2 (3073 x 3073)."""
    spec = load_spec("blackhole-mass")
    templates = build_templates(spec)
    t = templates[1, 0]
    cov = np.eye(3073)
    cov[0, 0] = 1.0
    cov[0, 1:] = cov[1:, 0] = t
    cov[1:, 1:] += np.outer(t, t)
    _, ld = np.linalg.slogdet(cov)
    _, ld2 = np.linalg.slogdet(cov[1:, 1:])
    assert CausalModel(spec).mutual_information("theta;x2") == pytest.approx(0.5 * (ld2 - ld), rel=1e-10)


def test_sweep_endpoints_and_spacing():
    theta_x1 = [CausalModel.from_spec(f"dag1-sweep-{i:02d}").mutual_information("theta;x1") for i in range(10)]
    np.testing.assert_allclose(theta_x1, np.linspace(0.134, 1.73, 10), rtol=1e-10)
    first, last = CausalModel.from_spec("dag1-sweep-00"), CausalModel.from_spec("dag1-sweep-09")
    assert round(first.mutual_information("x1;x2"), 4) == 0.0284
    assert round(last.mutual_information("x1;x2"), 2) == 1.39
    # whatever d is: the same targets at CIFAR shape give the same I(x1;x2)
    cifar = CausalSpec.from_dict({**load_spec("dag1-sweep-09").to_dict(), "shape": [3, 32, 32]})
    assert CausalModel(cifar).mutual_information("x1;x2") == pytest.approx(last.mutual_information("x1;x2"), rel=1e-10)


def test_dag1_is_moderate():
    model = CausalModel.from_spec("dag1")
    assert model.mutual_information("x1;x2") == pytest.approx(-0.5 * math.log(1 - 0.8**2), rel=1e-12)
    assert "0.5108" in model.spec.description


def test_templates_configs_have_equal_mi_and_different_templates():
    homogeneous, concentrated = CausalModel.from_spec("templates-homogeneous"), CausalModel.from_spec("templates-concentrated")
    for query in standard_queries(2):
        assert homogeneous.mutual_information(query) == pytest.approx(concentrated.mutual_information(query), abs=1e-10)
    assert not np.allclose(homogeneous.templates, concentrated.templates)


def test_decay_configs_fall_with_index():
    for a in ("1.2", "1.6"):
        for b in ("1.2", "1.6"):
            model = CausalModel.from_spec(f"decay-a{a}-b{b}")
            assert model.spec.modalities == 10
            first = [model.mutual_information(f"x1;x{i}") for i in range(2, 11)]
            theta = [model.mutual_information(f"theta;x{i}") for i in range(1, 11)]
            assert np.all(np.diff(first) < 0) and np.all(np.diff(theta) < 0)
    faster = CausalModel.from_spec("decay-a1.6-b1.2").mutual_information("x1;x5")
    slower = CausalModel.from_spec("decay-a1.2-b1.2").mutual_information("x1;x5")
    assert faster < slower


def test_query_parsing_and_errors():
    q = parse_query("theta,x1..x3;x4|x5", 5)
    assert q.kind == "cmi" and q.groups == (frozenset({0, 1, 2, 3}), frozenset({4})) and q.given == frozenset({5})
    assert format_group({0, 1, 2, 3, 5}) == "theta,x1..x3,x5"
    with pytest.raises(ValueError, match=r"query 'x1;x3': unknown block 'x3' \(expected theta, x1..x2"):
        parse_query("x1;x3", 2)
    with pytest.raises(ValueError, match=r"x1 appears in two groups"):
        parse_query("x1;x1,x2", 2)
    with pytest.raises(ValueError, match=r"expected 'A;B', 'A;B\|C' or 'A;B;C'"):
        parse_query("x1", 2)
    with pytest.raises(ValueError, match=r"empty condition"):
        parse_query("x1;x2|", 2)
    with pytest.raises(ValueError, match=r"names a block twice"):
        parse_query("x1,x1;x2", 2)


def test_singular_private_mixing_over_queried_modalities():
    spec = CausalSpec(
        name="shared-noise",
        shape=(1, 2, 2),
        modalities=3,
        common_causes=1,
        private_latents=2,
        eta=[1.0],
        rho_common=[[1.0], [1.0], [1.0]],
        rho_private=[[1.0, 0.0], [0.0, 1.0], [1.0, 1.0]],
    )
    model = CausalModel(spec)
    assert model.mutual_information("x1;x2") >= 0  # x1, x2 fine on their own
    with pytest.raises(ValueError, match=r"rho_private: the private mixing .* singular over x1..x3, .* MI is infinite"):
        model.mutual_information("x1,x2;x3")


def test_coinformation_can_be_negative_and_matches_definition():
    model = CausalModel.from_spec("blackhole-atmosphere")
    co = model.mutual_information("theta;x1;x2")
    assert co < 0
    assert co == pytest.approx(model.mutual_information("theta;x1") - model.mutual_information("theta;x1|x2"), abs=1e-12)
