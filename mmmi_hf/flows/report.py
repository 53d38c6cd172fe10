"""The folder a training run leaves behind: weights, sample grid, figures and model card."""

from __future__ import annotations

import json
import os
from pathlib import Path

import torch

from mmmi_hf.atomic import atomic_write_text
from mmmi_hf.data.card import write_model_card
from mmmi_hf.flows import quality
from mmmi_hf.flows.data import ImageSource
from mmmi_hf.flows.unets import ModalityUNets
from mmmi_hf.images import image_grid

__all__ = ["measure", "sample_grid", "write_card", "write_generator_folder"]

SAMPLES = "samples.png"
FIGURES = "figures.json"


def sample_grid(unets: ModalityUNets, settings: quality.SolverSettings, *, per_class: int = 10, seed: int = 0):
    """A PIL image with one row of ``per_class`` generated samples per class."""
    k = unets.config.num_classes
    labels = torch.arange(k).repeat_interleave(per_class)
    z = torch.randn((len(labels), *unets.shape), generator=torch.Generator().manual_seed(seed))
    x = quality.generate(unets, z, labels, settings)
    return image_grid(x.view(k, per_class, *unets.shape), scale=max(1, 64 // unets.shape[-1]))


def measure(unets: ModalityUNets, data: ImageSource, settings: quality.SolverSettings, *, latents: int = 1000) -> dict:
    """Fidelity and, with ``latents`` > 0, certificate, round trip, throughput and (d <= 256)
    Jacobian singular values of the generator map ``settings``."""
    figures: dict = {"generator": settings.kwargs(), "nfe": settings.nfe}
    figures["fidelity"] = quality.class_fidelity(unets, data, settings)
    if latents:
        figures["invertibility"] = quality.invertibility(unets, settings, n=latents)
        figures["throughput"] = quality.throughput(unets, settings)
        if unets.shape[0] * unets.shape[1] * unets.shape[2] <= 256:
            figures["singular_values"] = quality.jacobian_spectrum(unets, settings)
    return figures


def write_card(folder: str | os.PathLike[str], figures: dict, *, shipped: bool = False) -> str:
    """Render README.md of a generator folder from its training_args.json and ``figures``;
    ``shipped``: the folder is a pretrained model shipped in the package."""
    folder = Path(folder)
    args = json.loads((folder / "training_args.json").read_text())
    unets_config = json.loads((folder / "unets" / "config.json").read_text())
    kind = "one UNet2DModel per class" if unets_config["per_class"] else "one class-conditional UNet2DModel"
    c, s = unets_config["in_channels"], unets_config["sample_size"]
    return write_model_card(
        folder,
        model_name=folder.name,
        tags=[args["data_name"]],
        description=f"Trained on {args['data_name']}; class label = modality.",
        architecture=f"{kind}, blocks {unets_config['block_out_channels']}",
        parameters=args["parameters"],
        class_names=args["class_names"],
        data_name=args["data_name"],
        num_images=args["num_images"],
        shape=[c, s, s],
        sigma_min=unets_config["sigma_min"],
        load_expr=f"pretrained_path({folder.name!r})" if shipped else repr(str(folder)),
        pipeline_expr=repr(folder.name if shipped else str(folder)),
        has_scheduler=(folder / "scheduler").is_dir(),
        shipped=shipped,
        samples_file=SAMPLES,
        **{k: args.get(k) for k in ("steps", "batch_size", "learning_rate", "ema_decay", "final_loss", "train_seconds", "train_hardware")},
        **figures["generator"],
        **{k: figures.get(k) for k in ("command", "nfe", "fidelity", "invertibility", "singular_values", "throughput", "solver_table")},
    )


def write_generator_folder(
    folder: str | os.PathLike[str],
    unets: ModalityUNets,
    settings: quality.SolverSettings,
    *,
    data: ImageSource,
    command: str,
    latents: int = 1000,
) -> dict:
    """Measure the figures of merit and write samples.png, figures.json and README.md into
    ``folder`` (beside ``unets/`` and ``training_args.json``). Returns the figures."""
    folder = Path(folder)
    sample_grid(unets, settings).save(folder / SAMPLES)
    figures = {"command": command, **measure(unets, data, settings, latents=latents)}
    atomic_write_text(folder / FIGURES, json.dumps(figures, indent=2))
    write_card(folder, figures)
    return figures
