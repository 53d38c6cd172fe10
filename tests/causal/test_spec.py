"""Spec validation: every bad input names the key, the value and what was expected."""

from __future__ import annotations

import pytest
import yaml

from mmmi_hf.causal.spec import CausalSpec, dump_spec, list_builtin_configs, load_spec

GOOD = {
    "name": "dag1",
    "shape": [1, 8, 8],
    "modalities": 2,
    "common_causes": 1,
    "private_latents": 2,
    "eta": [1.0],
    "rho_common": [[1.0], [1.0]],
    "rho_private": [[1.0, 0.0], [0.0, 1.0]],
}


def spec_with(**changes) -> CausalSpec:
    data = {**GOOD, **changes}
    return CausalSpec.from_dict({k: v for k, v in data.items() if v is not ...})


def test_good_spec_defaults():
    spec = spec_with()
    assert spec.d == 64 and spec.names == ["x1", "x2"]
    assert spec.labels == (0, 1) and spec.latent_scaling == "whiten" and spec.templates == "ones"
    assert spec_with(private_latents=..., rho_private=...).rho_private == ((1.0, 0.0), (0.0, 1.0))


@pytest.mark.parametrize(
    "changes,pattern",
    [
        ({"rho_common": [[1.0, 2.0], [1.0]]}, r"rho_common: expected a 2x1 matrix \(modalities x common_causes\), got 2 rows of lengths \[2, 1\]"),
        ({"rho_private": [[1.0, 0.0]]}, r"rho_private: expected a 2x2 matrix \(modalities x private_latents\)"),
        ({"eta": [1.0, 2.0]}, r"eta: expected 1 entries \(one per common cause\), got 2"),
        ({"rho_common": [[1.0], ["abc"]]}, r"rho_common\[1\]\[0\]: expected a number, got 'abc'"),
        ({"eta": [True]}, r"eta\[0\]: expected a number, got True"),
        ({"eta": [float("nan")]}, r"eta\[0\]: expected a finite number, got nan"),
        ({"colour": "red"}, r"colour: unknown key in spec \(expected one of: name, shape,"),
        ({"alpha": 0}, r"alpha: expected a positive number, got 0.0"),
        ({"beta": -1.5}, r"beta: expected a positive number, got -1.5"),
        ({"rho_private": [[1.0, 0.0], [0.0, 0.0]]}, r"rho_private\[1\]: x2 has no private noise .* singular and every MI with it is infinite"),
        ({"eta": [0.0]}, r"eta: all entries are zero \(\[0.0\]\), so theta is constant"),
        ({"name": "Dag_1"}, r"name: expected lowercase letters, digits, '-' and '.'.*got 'Dag_1'"),
        ({"shape": [1, 8]}, r"shape: expected \[C, H, W\] \(three positive integers\), got \[1, 8\]"),
        ({"shape": [1, 0, 8]}, r"shape\[1\]: expected an integer >= 1, got 0"),
        ({"modalities": 2.5}, r"modalities: expected an integer >= 1, got 2.5"),
        ({"latent_scaling": "percentile:1.5"}, r"latent_scaling: expected 'whiten', 'none' or 'percentile:Q' with 0 < Q < 1, got 'percentile:1.5'"),
        ({"labels": [1]}, r"labels: expected 2 class labels \(one per modality\), got \[1\]"),
        ({"labels": [1, -1]}, r"labels\[1\]: expected an integer >= 0, got -1"),
        ({"seed": "x"}, r"seed: expected an integer >= 0, got 'x'"),
        ({"private_latents": 3, "rho_private": ...}, r"rho_private: required when private_latents \(3\) differs from modalities \(2\)"),
        ({"mi_targets": {"theta;x1": 0.5}}, r"solve_for: required with mi_targets"),
        ({"mi_targets": {"theta;x3": 0.5}, "solve_for": "eta"}, r"query 'theta;x3': unknown block 'x3'"),
        ({"mi_targets": {"theta;x1": -0.5}, "solve_for": "eta"}, r"mi_targets\['theta;x1'\]: expected a nonnegative MI in nats, got -0.5"),
        ({"mi_targets": {"theta;x1": 0.5, "x1;x2": 0.1}, "solve_for": "rho_common"}, r"mi_targets: solve_for solves one coefficient, so expected exactly one target, got 2"),
        ({"mi_targets": {"theta;x1": 0.5}, "solve_for": "gamma"}, r"solve_for: expected one of eta, rho_common, rho_private, alpha, beta .* got 'gamma'"),
        ({"mi_targets": {"theta;x1": 0.5}, "solve_for": "rho_common[2][0]"}, r"solve_for: 'rho_common\[2\]\[0\]' does not name an entry of rho_common \(shape \[2, 1\]\)"),
        ({"mi_targets": {"theta;x1": 0.5}, "solve_for": "rho_private[0][1]"}, r"solve_for: 'rho_private\[0\]\[1\]' is zero"),
        ({"templates": 3}, r"templates: expected one template or a mapping"),
        ({"solved": {"factor": 2.0}}, r"solved: is recorded by inverse design and is only valid together with mi_targets"),
    ],
)
def test_bad_specs(changes, pattern):
    with pytest.raises(ValueError, match=pattern):
        spec_with(**changes)


def test_missing_key():
    data = dict(GOOD)
    del data["eta"]
    with pytest.raises(ValueError, match=r"eta: required key missing from spec"):
        CausalSpec.from_dict(data)


def test_load_errors(tmp_path):
    with pytest.raises(ValueError, match=r"spec: 'nope' is neither a YAML file nor a built-in configuration \(built-in: .*dag1"):
        load_spec("nope")
    with pytest.raises(ValueError, match=r"spec: file not found: .*missing.yaml"):
        load_spec(tmp_path / "missing.yaml")
    bad = tmp_path / "bad.yaml"
    bad.write_text("name: x\nshape: [1, 8\n")
    with pytest.raises(ValueError, match=r"spec: .*bad.yaml is not valid YAML at line \d+, column \d+"):
        load_spec(bad)
    listing = tmp_path / "list.yaml"
    listing.write_text("- 1\n- 2\n")
    with pytest.raises(ValueError, match=r"list.yaml: expected a mapping of spec keys, got list"):
        load_spec(listing)


def test_dump_and_load_round_trip(tmp_path):
    spec = spec_with(alpha=1.3, labels=[3, 4], templates={"x1": ["ones"], "x2": ["onehot:5"]}, seed=9)
    path = tmp_path / "spec.yaml"
    dump_spec(spec, path)
    assert load_spec(path) == spec
    assert yaml.safe_load(path.read_text())["alpha"] == 1.3
    assert not list(tmp_path.glob(".*tmp"))  # no temp file left behind


def test_builtin_configs_all_load():
    names = list_builtin_configs()
    expected = {"dag1", "blackhole-mass", "blackhole-atmosphere", "templates-homogeneous", "templates-concentrated"}
    expected |= {f"dag1-sweep-{i:02d}" for i in range(10)}
    expected |= {f"decay-a{a}-b{b}" for a in ("1.2", "1.4", "1.6") for b in ("1.2", "1.4", "1.6")}
    assert set(names) == expected
    for name in names:
        assert load_spec(name).name == name


def test_coefficients_apply_decay():
    spec = spec_with(alpha=2.0, beta=4.0, rho_private=[[1.0, 1.0], [1.0, 1.0]])
    eta, rho_common, rho_private = spec.coefficients()
    assert rho_common.tolist() == [[1.0], [0.25]]  # beta^-i, x1 unscaled
    assert rho_private.tolist() == [[1.0, 0.5], [0.5, 1.0]]  # alpha^-|i-j|
