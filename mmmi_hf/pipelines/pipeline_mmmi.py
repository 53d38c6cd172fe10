"""MMMIPipeline: correlated multimodal samples with exactly known mutual information.

    pipe = MMMIPipeline.from_pretrained("mmmi-digits")          # shipped, offline
    out = pipe(16, generator=torch.Generator().manual_seed(0))
    out.modalities["x1"], out.theta, out.mutual_information

Steps: check inputs -> sample theta and latents from the causal model -> push every modality's
latents through its generator (the discrete ODE map of the scheduler) -> output.
"""

from __future__ import annotations

import os
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import numpy as np
import torch
from diffusers import DiffusionPipeline
from diffusers.utils import BaseOutput

from mmmi_hf.causal.model import base_seed
from mmmi_hf.flows import ode
from mmmi_hf.flows.unets import ModalityUNets
from mmmi_hf.images import to_uint8
from mmmi_hf.pipelines.scheduling_causal import MMMICausalScheduler

__all__ = ["MMMIPipeline", "MMMIPipelineOutput"]

#: the generators run on chunks of exactly this many (sample, modality) pairs, padded if needed:
#: CPU kernels round differently for different batch sizes, so a fixed size makes sample i
#: bit-identical whatever the batch it was requested in.
CHUNK = 64


@dataclass
class MMMIPipelineOutput(BaseOutput):
    """Output of :class:`MMMIPipeline`.

    Attributes:
        modalities: {"x1": ..., "xN": ...}: (n, C, H, W) float32 tensors or arrays (the exact
            generator outputs), or lists of 8-bit PIL previews with ``output_type="pil"``.
        theta: (n,) the regression target z_theta.
        latents: (n, N, C, H, W) scaled latents z, if requested.
        pmi: {query: (n,) nats} per-sample PMI, if requested.
        mutual_information: {query: nats} exact MI table of the causal model.
    """

    modalities: dict[str, Any]
    theta: Any
    latents: Any = None
    pmi: dict[str, np.ndarray] | None = None
    mutual_information: dict[str, float] = field(default_factory=dict)


class MMMIPipeline(DiffusionPipeline):
    """Components: ``unets`` (:class:`ModalityUNets`) and ``scheduler`` (:class:`MMMICausalScheduler`)."""

    model_cpu_offload_seq = "unets"

    def __init__(self, unets: ModalityUNets, scheduler: MMMICausalScheduler) -> None:
        super().__init__()
        self.register_modules(unets=unets, scheduler=scheduler)

    @classmethod
    def from_pretrained(cls, pretrained_model_name_or_path: str | os.PathLike[str], **kwargs: Any) -> MMMIPipeline:
        """Like ``DiffusionPipeline.from_pretrained``; a shipped model's short name
        (``"mmmi-digits"``) resolves to its packaged folder first, offline."""
        from mmmi_hf.pretrained import list_pretrained, pretrained_path

        name = str(pretrained_model_name_or_path)
        if name in list_pretrained():
            pretrained_model_name_or_path = pretrained_path(name)
        elif not Path(name).exists():
            # a Hub repo: fetch the snapshot, then load it as a folder (diffusers only resolves
            # components from outside its own library for local folders)
            from huggingface_hub import snapshot_download

            pretrained_model_name_or_path = snapshot_download(
                name, revision=kwargs.pop("revision", None), token=kwargs.pop("token", None), cache_dir=kwargs.get("cache_dir")
            )
        return super().from_pretrained(pretrained_model_name_or_path, **kwargs)

    # -- checks -------------------------------------------------------------------------------------
    def check_inputs(self, num_samples: int, generator: torch.Generator | list[torch.Generator] | None, start: int) -> None:
        """Raise ValueError for arguments, or a scheduler spec, that do not fit the generators."""
        if isinstance(num_samples, bool) or not isinstance(num_samples, int) or num_samples < 1:
            raise ValueError(f"num_samples: expected a positive integer, got {num_samples!r}")
        if isinstance(start, bool) or not isinstance(start, int) or start < 0:
            raise ValueError(f"start: expected a nonnegative integer, got {start!r}")
        if isinstance(generator, list) and len(generator) != num_samples:
            raise ValueError(f"generator: a list must hold one generator per sample ({num_samples}), got {len(generator)}")
        spec = self.scheduler.spec
        if tuple(spec.shape) != tuple(self.unets.shape):
            raise ValueError(
                f"scheduler: spec {spec.name!r} has shape {list(spec.shape)}, but the generators make {list(self.unets.shape)}"
            )
        classes = self.unets.config.num_classes
        bad = [label for label in spec.labels if label >= classes]
        if bad:
            raise ValueError(
                f"scheduler: spec {spec.name!r} asks for label {bad[0]}, but the generators know classes 0..{classes - 1}"
            )

    # -- the generator map ---------------------------------------------------------------------------
    def _labels(self, n: int) -> torch.Tensor:
        """(n * N,) class labels of the flattened (sample, modality) batch."""
        return torch.tensor(self.scheduler.spec.labels, dtype=torch.int64).repeat(n)

    def _chunked(self, fn, x: torch.Tensor, labels: torch.Tensor, *, pad_last: bool = True) -> tuple[torch.Tensor, list]:
        """Apply ``fn(velocity, x_chunk)`` on chunks of CHUNK items, padding the last one to full
        size (for bit-identical outputs whatever the batch) unless ``pad_last`` is False."""
        outs, extras = [], []
        for i in range(0, x.shape[0], CHUNK):
            xc, lc = x[i : i + CHUNK], labels[i : i + CHUNK]
            real = xc.shape[0]
            if pad_last and real < CHUNK:
                xc = torch.cat([xc, xc.new_zeros((CHUNK - real, *xc.shape[1:]))])
                lc = torch.cat([lc, lc.new_zeros(CHUNK - real)])
            out, extra = fn(self.unets.velocity(lc.to(self.device)), xc.to(self.device, self.unets.dtype))
            outs.append(out[:real].cpu())
            extras.append((extra, real))
        return torch.cat(outs), extras

    @torch.no_grad()
    def generate(self, z: torch.Tensor, num_inference_steps: int | None = None) -> torch.Tensor:
        """x = F(z) for scaled latents z (n, N, C, H, W) -> (n, N, C, H, W) float32."""
        n, m = z.shape[:2]
        settings = dict(self.scheduler.ode_settings)
        if num_inference_steps is not None:
            settings["num_steps"] = num_inference_steps
        x, _ = self._chunked(lambda v, zc: (ode.integrate(v, zc, **settings), None), z.reshape(n * m, *z.shape[2:]), self._labels(n))
        return x.reshape(z.shape).float()

    # -- call -------------------------------------------------------------------------------------------
    @torch.no_grad()
    def __call__(
        self,
        num_samples: int = 1,
        generator: torch.Generator | list[torch.Generator] | None = None,
        num_inference_steps: int | None = None,
        output_type: str = "pt",
        return_latents: bool = False,
        return_pmi: bool = False,
        return_dict: bool = True,
        start: int = 0,
    ) -> MMMIPipelineOutput | tuple:
        """Generate ``num_samples`` correlated tuples (x_1..x_N, theta).

        Args:
            num_samples: number of samples n.
            generator: a torch.Generator (one base seed is drawn from it), a list of n generators
                (one stream per sample), or None (the spec's seed). Sample i depends only on the
                base seed and its index ``start + i``, never on the batch size.
            num_inference_steps: override the scheduler's solver steps (a different generator map).
            output_type: ``"pt"`` (torch), ``"np"`` (numpy) or ``"pil"`` (8-bit previews, not MI-exact).
            return_latents: include the scaled latents z.
            return_pmi: include per-sample PMI for each query of the standard table.
            return_dict: return :class:`MMMIPipelineOutput` (else a tuple in its field order).
            start: global index of the first sample.
        """
        # 1. check inputs
        if output_type not in ("pt", "np", "pil"):
            raise ValueError(f"output_type: expected 'pt', 'np' or 'pil', got {output_type!r}")
        self.check_inputs(num_samples, generator, start)
        scheduler = self.scheduler

        # 2. latents: theta and z from the causal model
        if isinstance(generator, list):
            parts = [scheduler.sample_latents(1, base_seed(g, 0)) for g in generator]
            theta, z = torch.cat([p.theta for p in parts]), torch.cat([p.z for p in parts])
        else:
            sample = scheduler.sample_latents(num_samples, base_seed(generator, scheduler.spec.seed), start=start)
            theta, z = sample.theta, sample.z

        # 3. the generators: x_i = f_i(z_i)
        x = self.generate(z, num_inference_steps)

        # 4. outputs
        names = scheduler.spec.names
        if output_type == "pil":
            from PIL import Image

            modalities: dict[str, Any] = {}
            for i, name in enumerate(names):
                arrays = to_uint8(x[:, i])
                modalities[name] = [Image.fromarray(a[..., 0] if a.shape[-1] == 1 else a) for a in arrays]
        else:
            modalities = {name: x[:, i] for i, name in enumerate(names)}
            if output_type == "np":
                modalities = {k: v.numpy() for k, v in modalities.items()}
        pmi = {q: scheduler.pmi(q, theta, z) for q in scheduler.mutual_information()} if return_pmi else None
        as_np = output_type == "np"
        out = MMMIPipelineOutput(
            modalities=modalities,
            theta=theta.numpy() if as_np else theta,
            latents=(z.numpy() if as_np else z) if return_latents else None,
            pmi=pmi,
            mutual_information=scheduler.mutual_information(),
        )
        return out if return_dict else out.to_tuple()

    # -- inverse and certificate -------------------------------------------------------------------
    @torch.no_grad()
    def invert(self, modalities: dict[str, torch.Tensor | np.ndarray]) -> dict[str, Any]:
        """Latents z of given images through the exact inverse of the generator map.

        Args:
            modalities: {"x1": (n, C, H, W), ...} float images, every modality of the spec.

        Returns:
            {"latents": (n, N, C, H, W) scaled latents, "converged": (n,) bool,
             "residual": (n,) largest relative step residual}.
        """
        names = self.scheduler.spec.names
        missing = [name for name in names if name not in modalities]
        if missing:
            raise ValueError(f"modalities: missing {missing[0]} (expected {', '.join(names)})")
        x = torch.stack([torch.as_tensor(np.asarray(modalities[name]), dtype=torch.float32) for name in names], dim=1)
        if tuple(x.shape[2:]) != tuple(self.unets.shape):
            raise ValueError(f"modalities: expected images of shape {list(self.unets.shape)}, got {list(x.shape[2:])}")
        n, m = x.shape[:2]
        settings = {**self.scheduler.ode_settings, "tol": self.scheduler.config.inverse_tol}

        def inverse(v, xc):
            result = ode.invert(v, xc, **settings)
            return result.x_0, result

        z, extras = self._chunked(inverse, x.reshape(n * m, *x.shape[2:]), self._labels(n), pad_last=False)
        converged = torch.cat([r.converged[:k] for r, k in extras]).reshape(n, m).all(dim=1)
        residual = torch.cat([r.residual[:k] for r, k in extras]).reshape(n, m).amax(dim=1)
        return {"latents": z.reshape(x.shape), "converged": converged, "residual": residual}

    def certify(self, num_samples: int = 64, generator: torch.Generator | None = None) -> ode.Certificate:
        """The invertibility certificate (max per-step h Lip) on the trajectories of the latents
        of ``num_samples`` samples, all modalities together."""
        z = self.scheduler.sample_latents(num_samples, base_seed(generator, self.scheduler.spec.seed)).z
        flat = z.reshape(-1, *z.shape[2:])
        return ode.certify(self.unets.velocity(self._labels(num_samples)), flat.to(self.unets.dtype), **self.scheduler.ode_settings)
