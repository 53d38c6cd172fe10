"""MMMICausalScheduler: the causal model and the ODE settings of an MMMIPipeline.

Its config is the resolved causal spec (every coefficient as JSON, ``mi_targets`` already solved)
plus the generator map (solver, steps, grid). Templates given as text (``ones``, ``onehot:``,
``gaussian:``) stay text; templates read from files are saved beside the config as
``templates/x{i}_{k}.npy`` (float64, flat d), exactly as the model uses them.
"""

from __future__ import annotations

import json
import os
from pathlib import Path
from typing import Any

import numpy as np
import torch
from diffusers.configuration_utils import ConfigMixin, register_to_config
from diffusers.schedulers.scheduling_utils import SchedulerMixin

from mmmi_hf.causal.model import CausalModel, LatentSample
from mmmi_hf.causal.spec import CausalSpec, load_spec
from mmmi_hf.flows import ode

__all__ = ["MMMICausalScheduler"]

_TEXT_TEMPLATES = ("ones", "onehot:", "gaussian:")


def _is_text(template: Any) -> bool:
    return isinstance(template, str) and template.startswith(_TEXT_TEMPLATES)


class MMMICausalScheduler(SchedulerMixin, ConfigMixin):
    """Causal model (latent sampling, exact MI, PMI) and fixed-step ODE of the generators.

    Args:
        spec: the causal spec as a mapping (see ``CausalSpec``).
        solver: ``euler``, ``midpoint``, ``heun`` or ``rk4``.
        num_inference_steps: solver steps from t = 0 (latent) to t = 1 (data).
        grid: ``uniform`` or ``quadratic`` time grid.
        inverse_tol: relative tolerance of the exact inverse's fixed-point iteration.
    """

    config_name = "scheduler_config.json"
    order = 1

    @register_to_config
    def __init__(
        self,
        spec: dict | None = None,
        solver: str = "midpoint",
        num_inference_steps: int = 20,
        grid: str = "uniform",
        inverse_tol: float = 3e-7,
    ) -> None:
        if spec is None:
            raise ValueError("spec: required (use MMMICausalScheduler.from_spec('dag1') or a YAML path)")
        if solver not in ode.SOLVERS:
            raise ValueError(f"solver: expected one of {', '.join(ode.SOLVERS)}, got {solver!r}")
        self.timesteps = ode.time_grid(num_inference_steps, grid)
        self._base_dir: Path | None = None
        self._model: CausalModel | None = None

    # -- construction and persistence -------------------------------------------------------
    @classmethod
    def from_spec(cls, spec: CausalSpec | str | os.PathLike[str], **settings: Any) -> MMMICausalScheduler:
        """From a spec, a built-in configuration name (``"dag1-sweep-03"``) or a YAML path;
        ``settings`` are the ODE settings (solver, num_inference_steps, grid, inverse_tol)."""
        model = CausalModel.from_spec(spec if isinstance(spec, CausalSpec) else load_spec(spec))
        scheduler = cls(spec=model.spec.to_dict(), **settings)
        scheduler._base_dir = model.spec.base_dir
        scheduler._model = model
        return scheduler

    def with_spec(self, spec: CausalSpec | str | os.PathLike[str]) -> MMMICausalScheduler:
        """Another causal spec with this scheduler's ODE settings (the same generator map)."""
        keys = ("solver", "num_inference_steps", "grid", "inverse_tol")
        return type(self).from_spec(spec, **{k: self.config[k] for k in keys})

    def save_pretrained(self, save_directory: str | os.PathLike[str], push_to_hub: bool = False, **kwargs: Any) -> None:
        """Write the config and any file-based templates (as .npy) into ``save_directory``."""
        folder = Path(save_directory)
        folder.mkdir(parents=True, exist_ok=True)
        spec = dict(self.config.spec)
        templates = spec.get("templates", "ones")
        if not (isinstance(templates, str) and _is_text(templates)):
            arrays = self.causal_model.templates  # (N, K, d), as used
            (folder / "templates").mkdir(exist_ok=True)
            mapping = {}
            for i, name in enumerate(self.causal_model.spec.names):
                mapping[name] = []
                for k in range(arrays.shape[1]):
                    given = templates if isinstance(templates, str) else _entry(templates[name], k)
                    if _is_text(given):
                        mapping[name].append(given)
                        continue
                    file = f"templates/{name}_{k}.npy"
                    np.save(folder / file, arrays[i, k])
                    mapping[name].append(file)
            spec["templates"] = mapping
        self.register_to_config(spec=spec)
        super().save_pretrained(folder, push_to_hub=push_to_hub, **kwargs)
        self._base_dir = folder

    @classmethod
    def from_pretrained(cls, pretrained_model_name_or_path: str | os.PathLike[str] | None = None, subfolder: str | None = None, **kwargs: Any) -> MMMICausalScheduler:
        """Load a saved scheduler; template files resolve against its folder."""
        scheduler = super().from_pretrained(pretrained_model_name_or_path, subfolder=subfolder, **kwargs)
        folder = Path(str(pretrained_model_name_or_path)) / (subfolder or "")
        if not folder.is_dir():  # on the Hub: fetch the folder (config and template files)
            from huggingface_hub import snapshot_download

            root = snapshot_download(str(pretrained_model_name_or_path), allow_patterns=[f"{subfolder or ''}*"] if subfolder else None)
            folder = Path(root) / (subfolder or "")
        scheduler._base_dir = folder
        return scheduler

    # -- the causal model ----------------------------------------------------------------------
    @property
    def causal_model(self) -> CausalModel:
        """The :class:`CausalModel` of the config (built on first use)."""
        if self._model is None:
            self._model = CausalModel(CausalSpec.from_dict(dict(self.config.spec), base_dir=self._base_dir, source="scheduler spec"))
        return self._model

    @property
    def spec(self) -> CausalSpec:
        return self.causal_model.spec

    def mutual_information(self, queries: list[str] | None = None) -> dict[str, float]:
        """Exact MI table {query: nats} of the latents, hence of the generated modalities."""
        return self.causal_model.table(queries)

    def pmi(self, query: str, theta: torch.Tensor, z: torch.Tensor) -> np.ndarray:
        """Per-sample PMI (nats) at scaled latents z (n, N, C, H, W) as the pipeline returns them."""
        return self.causal_model.pmi(query, theta, z)

    def sample_latents(self, num_samples: int, seed: int, *, start: int = 0) -> LatentSample:
        """theta (n,) and scaled latents z (n, N, C, H, W) of samples start .. start+n-1."""
        return self.causal_model.sample(num_samples, seed=seed, start=start)

    # -- the ODE -----------------------------------------------------------------------------
    @property
    def ode_settings(self) -> dict[str, Any]:
        return {"solver": self.config.solver, "num_steps": self.config.num_inference_steps, "grid": self.config.grid}

    def step(self, velocity: ode.Velocity, sample: torch.Tensor, step_index: int) -> torch.Tensor:
        """One solver step: x_{i+1} = x_i + h_i Phi(x_i, t_i)."""
        t, t_next = self.timesteps[step_index], self.timesteps[step_index + 1]
        return sample + ode.increment(velocity, sample, t, t_next - t, self.config.solver)

    def __repr__(self) -> str:
        return f"{type(self).__name__}(spec={self.config.spec.get('name')!r}, {json.dumps(self.ode_settings)})"


def _entry(row: Any, k: int) -> Any:
    return row if isinstance(row, str) else row[k]
