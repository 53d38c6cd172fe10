"""MMMIPipeline and MMMICausalScheduler with tiny generators."""

from __future__ import annotations

import numpy as np
import pytest
import torch

from mmmi_hf.causal.model import CausalModel
from mmmi_hf.pipelines import MMMICausalScheduler, MMMIPipeline
from tests.flows.tiny import tiny_unets


@pytest.fixture(scope="module")
def pipe() -> MMMIPipeline:
    return MMMIPipeline(unets=tiny_unets(num_classes=10), scheduler=MMMICausalScheduler.from_spec("dag1", num_inference_steps=4))


def g(seed: int) -> torch.Generator:
    return torch.Generator().manual_seed(seed)


def test_call_outputs(pipe):
    out = pipe(3, generator=g(0), return_latents=True, return_pmi=True)
    assert set(out.modalities) == {"x1", "x2"} and out.modalities["x1"].shape == (3, 1, 8, 8)
    assert out.modalities["x1"].dtype == torch.float32 and out.theta.shape == (3,)
    assert out.latents.shape == (3, 2, 1, 8, 8)
    assert out.mutual_information == CausalModel.from_spec("dag1").table()
    model = pipe.scheduler.causal_model
    np.testing.assert_array_equal(out.pmi["x1;x2"], model.pmi("x1;x2", out.theta, out.latents))
    as_np = pipe(2, generator=g(0), output_type="np")
    assert isinstance(as_np.modalities["x2"], np.ndarray)
    pil = pipe(2, generator=g(0), output_type="pil")
    assert pil.modalities["x1"][0].size == (8, 8)
    x1, theta, *_ = pipe(1, generator=g(0), return_dict=False)
    assert torch.equal(x1["x1"], out.modalities["x1"][:1])


def test_determinism_and_batch_size_invariance(pipe):
    big = pipe(70, generator=g(1))  # more than one chunk
    small = pipe(3, generator=g(1))
    for name in ("x1", "x2"):
        assert torch.equal(big.modalities[name][:3], small.modalities[name])
    assert torch.equal(big.theta[:3], small.theta)
    tail = pipe(4, generator=g(1), start=66)
    assert torch.equal(big.modalities["x1"][66:], tail.modalities["x1"])
    assert not torch.equal(pipe(3, generator=g(2)).modalities["x1"], small.modalities["x1"])
    listed = pipe(2, generator=[g(5), g(6)])
    again = pipe(2, generator=[g(5), g(6)])
    assert torch.equal(listed.modalities["x1"], again.modalities["x1"])


def test_save_load_round_trip_is_bit_identical(pipe, tmp_path):
    pipe.save_pretrained(tmp_path / "pipe")
    loaded = MMMIPipeline.from_pretrained(tmp_path / "pipe")
    assert isinstance(loaded.scheduler, MMMICausalScheduler) and loaded.scheduler.config.spec == pipe.scheduler.config.spec
    a, b = pipe(5, generator=g(3)), loaded(5, generator=g(3))
    for name in ("x1", "x2"):
        assert torch.equal(a.modalities[name], b.modalities[name])
    assert a.mutual_information == b.mutual_information


def test_swap_scheduler(pipe, tmp_path):
    pipe.save_pretrained(tmp_path / "pipe")
    swapped = MMMIPipeline.from_pretrained(tmp_path / "pipe", scheduler=MMMICausalScheduler.from_spec("dag1-sweep-03", num_inference_steps=4))
    assert swapped(2, generator=g(0)).mutual_information["theta;x1"] == pytest.approx(0.666, abs=1e-12)


def test_file_templates_survive_save_and_load(tmp_path):
    spec_dir = tmp_path / "spec"
    spec_dir.mkdir()
    np.save(spec_dir / "blob.npy", np.linspace(0, 1, 64).reshape(1, 8, 8))
    (spec_dir / "s.yaml").write_text(
        "name: s\nshape: [1, 8, 8]\nmodalities: 2\ncommon_causes: 1\neta: [1]\nrho_common: [[0.3], [0.3]]\n"
        "templates: {x1: [blob.npy], x2: [ones]}\nlabels: [0, 1]\n"
    )
    scheduler = MMMICausalScheduler.from_spec(spec_dir / "s.yaml")
    scheduler.save_pretrained(tmp_path / "saved")
    assert (tmp_path / "saved" / "templates" / "x1_0.npy").exists()
    loaded = MMMICausalScheduler.from_pretrained(tmp_path / "saved")
    assert loaded.config.spec["templates"] == {"x1": ["templates/x1_0.npy"], "x2": ["ones"]}
    np.testing.assert_array_equal(loaded.causal_model.templates, scheduler.causal_model.templates)
    assert loaded.mutual_information() == scheduler.mutual_information()


def test_invert_recovers_latents(pipe):
    out = pipe(3, generator=g(4), return_latents=True)
    back = pipe.invert(out.modalities)
    assert back["converged"].all()
    err = (back["latents"] - out.latents).flatten(1).norm(dim=1) / out.latents.flatten(1).norm(dim=1)
    assert float(err.max()) < 1e-5
    cert = pipe.certify(2, generator=g(0))
    assert len(cert.per_step) == 4 and cert.max < 1


def test_input_checks(pipe):
    with pytest.raises(ValueError, match=r"num_samples: expected a positive integer, got 0"):
        pipe(0)
    with pytest.raises(ValueError, match=r"generator: a list must hold one generator per sample \(3\), got 2"):
        pipe(3, generator=[g(0), g(1)])
    with pytest.raises(ValueError, match=r"output_type: expected 'pt', 'np' or 'pil', got 'latent'"):
        pipe(1, output_type="latent")
    wrong_shape = MMMIPipeline(unets=pipe.unets, scheduler=MMMICausalScheduler.from_spec("blackhole-mass"))
    with pytest.raises(ValueError, match=r"scheduler: spec 'blackhole-mass' has shape \[3, 32, 32\], but the generators make \[1, 8, 8\]"):
        wrong_shape(1)
    few_classes = MMMIPipeline(unets=tiny_unets(num_classes=3), scheduler=pipe.scheduler)
    with pytest.raises(ValueError, match=r"scheduler: spec 'dag1' asks for label 6, but the generators know classes 0..2"):
        few_classes(1)
    with pytest.raises(ValueError, match=r"modalities: missing x2 \(expected x1, x2\)"):
        pipe.invert({"x1": torch.zeros(1, 1, 8, 8)})
    with pytest.raises(ValueError, match=r"spec: required"):
        MMMICausalScheduler()


def test_sample_command_writes_a_grid(pipe, tmp_path, capsys):
    from PIL import Image

    from mmmi_hf.cli import main

    pipe.save_pretrained(tmp_path / "pipe")
    code = main(["sample", "dag1-sweep-09", "--model", str(tmp_path / "pipe"), "--num-samples", "4", "--out", str(tmp_path / "grid.png")])
    assert code == 0 and "dag1-sweep-09" in capsys.readouterr().out
    with Image.open(tmp_path / "grid.png") as image:
        assert image.width > image.height > 0
    assert main(["sample", "blackhole-mass", "--model", str(tmp_path / "pipe"), "--out", str(tmp_path / "bad.png")]) == 2
    assert "has shape [3, 32, 32], but the generators make [1, 8, 8]" in capsys.readouterr().err
    assert not (tmp_path / "bad.png").exists()
