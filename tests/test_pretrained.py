"""The shipped mmmi-digits pipeline: loads offline by its short name and keeps its promises."""

from __future__ import annotations

import json

import pytest
import torch

from mmmi_hf.flows import ode, quality
from mmmi_hf.flows.data import load_image_source
from mmmi_hf.pipelines import MMMICausalScheduler, MMMIPipeline
from mmmi_hf.pretrained import list_pretrained, pretrained_path


@pytest.fixture(scope="module")
def pipe() -> MMMIPipeline:
    return MMMIPipeline.from_pretrained("mmmi-digits")


def test_short_name_resolves_offline(pipe):
    assert "mmmi-digits" in list_pretrained()
    assert pipe.scheduler.spec.name == "dag1" and pipe.unets.config.num_classes == 10
    out = pipe(4, generator=torch.Generator().manual_seed(0))
    assert out.modalities["x1"].shape == (4, 1, 8, 8)
    with pytest.raises(ValueError, match=r"pretrained: no shipped model named 'nope' \(shipped: mmmi-digits\)"):
        pretrained_path("nope")


def test_scheduler_swap(pipe):
    swapped = MMMIPipeline.from_pretrained("mmmi-digits", scheduler=MMMICausalScheduler.from_spec("dag1-sweep-03"))
    assert swapped(2).mutual_information["theta;x1"] == pytest.approx(0.666, abs=1e-12)


def test_class_fidelity_on_a_small_sample(pipe):
    settings = quality.SolverSettings(**json.loads((pretrained_path() / "figures.json").read_text())["generator"])
    assert settings.kwargs() == {"solver": pipe.scheduler.config.solver, "num_steps": pipe.scheduler.config.num_inference_steps, "grid": pipe.scheduler.config.grid}
    figures = quality.class_fidelity(pipe.unets, load_image_source("digits"), settings, per_class=10)
    assert figures["fidelity"] >= 0.9  # the model card reports it on 1,000 samples


def test_exact_inverse_and_certificate(pipe):
    out = pipe(4, generator=torch.Generator().manual_seed(1), return_latents=True)
    back = pipe.invert(out.modalities)
    err = (back["latents"] - out.latents).flatten(1).norm(dim=1) / out.latents.flatten(1).norm(dim=1)
    assert back["converged"].all() and float(err.max()) < 1e-4
    labels = torch.tensor([1, 6])
    z = torch.randn(2, 1, 8, 8, generator=torch.Generator().manual_seed(2))
    assert ode.certify(pipe.unets.velocity(labels), z, **pipe.scheduler.ode_settings, iters=3, refine_iters=3).certified
