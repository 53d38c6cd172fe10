"""ModalityUNets: the velocity networks of the modality generators f_i.

Either one class-conditional ``UNet2DModel`` (modality <-> class label, as in the paper: f_1
trained on cars, f_2 on frogs) or one unconditional UNet per class. A diffusers
``ModelMixin, ConfigMixin`` holding a ``ModuleList``, so ``save_pretrained`` /
``from_pretrained`` keep every UNet (a bare list component would be silently dropped).
"""

from __future__ import annotations

from collections.abc import Sequence

import torch
from diffusers import ModelMixin, UNet2DModel
from diffusers.configuration_utils import ConfigMixin, register_to_config
from torch import nn

__all__ = ["LabelledVelocity", "ModalityUNets"]

#: t in [0, 1] is fed to the UNet's sinusoidal embedding as t * TIME_SCALE
TIME_SCALE = 1000.0


class ModalityUNets(ModelMixin, ConfigMixin):
    """Velocity fields v(x_t, t, label) of the flow generators (time convention: ``flows/ode.py``).

    Args:
        sample_size: image height = width.
        in_channels: image channels C.
        num_classes: number of class labels (generators).
        per_class: one unconditional UNet per class instead of one class-conditional UNet.
        class_names: human-readable name of each class.
        cfg_null_label: reserve label ``num_classes`` as the "no class" label for classifier-free
            guidance (shared UNet only).
        block_out_channels, layers_per_block, down_block_types, up_block_types, norm_num_groups,
        attention_head_dim: passed to ``UNet2DModel``.
        sigma_min: the training path's data-end noise (recorded for the generator's users).
    """

    config_name = "config.json"

    @register_to_config
    def __init__(
        self,
        sample_size: int = 8,
        in_channels: int = 1,
        num_classes: int = 10,
        per_class: bool = False,
        class_names: Sequence[str] | None = None,
        cfg_null_label: bool = False,
        block_out_channels: Sequence[int] = (32, 64),
        layers_per_block: int = 2,
        down_block_types: Sequence[str] = ("DownBlock2D", "AttnDownBlock2D"),
        up_block_types: Sequence[str] = ("AttnUpBlock2D", "UpBlock2D"),
        norm_num_groups: int = 8,
        attention_head_dim: int = 8,
        sigma_min: float = 0.05,
    ) -> None:
        super().__init__()
        if per_class and cfg_null_label:
            raise ValueError("cfg_null_label: classifier-free guidance needs the shared class-conditional UNet (per_class=False)")
        if class_names is not None and len(class_names) != num_classes:
            raise ValueError(f"class_names: expected {num_classes} names, got {len(class_names)}")

        def unet(num_class_embeds: int | None) -> UNet2DModel:
            return UNet2DModel(
                sample_size=sample_size,
                in_channels=in_channels,
                out_channels=in_channels,
                block_out_channels=tuple(block_out_channels),
                layers_per_block=layers_per_block,
                down_block_types=tuple(down_block_types),
                up_block_types=tuple(up_block_types),
                norm_num_groups=norm_num_groups,
                attention_head_dim=attention_head_dim,
                num_class_embeds=num_class_embeds,
            )

        if per_class:
            self.unets = nn.ModuleList([unet(None) for _ in range(num_classes)])
        else:
            self.unets = nn.ModuleList([unet(num_classes + int(cfg_null_label))])

    @classmethod
    def from_pretrained(cls, *args, **kwargs) -> ModalityUNets:
        """``ModelMixin.from_pretrained``, then every tensor copied into freshly allocated memory.

        Tensors loaded from safetensors can sit at unaligned addresses, where CPU kernels take
        another SIMD path and round differently (outputs off by ~1e-7). The copy makes a loaded
        model compute bit-identically to the one that was saved.
        """
        model = super().from_pretrained(*args, **kwargs)
        with torch.no_grad():
            for tensor in (*model.parameters(), *model.buffers()):
                tensor.data = tensor.data.clone()
        return model

    @property
    def shape(self) -> tuple[int, int, int]:
        """(C, H, W) of the images."""
        c, s = self.config.in_channels, self.config.sample_size
        return (c, s, s)

    def check_labels(self, labels: Sequence[int]) -> None:
        """Raise ValueError unless every label names one of the trained classes."""
        bad = [int(label) for label in labels if not 0 <= int(label) < self.config.num_classes]
        if bad:
            raise ValueError(f"labels: {bad[0]} is out of range; this generator knows classes 0..{self.config.num_classes - 1}")

    def forward(self, x_t: torch.Tensor, t: torch.Tensor | float, labels: torch.Tensor) -> torch.Tensor:
        """Velocity dx_t/dt.

        Args:
            x_t: (B, C, H, W) points at time t.
            t: time in [0, 1], a float or a (B,) tensor (0 = latent, 1 = data).
            labels: (B,) int64 class labels; ``num_classes`` is the null label when
                ``cfg_null_label`` is set.

        Returns:
            (B, C, H, W).
        """
        timestep = torch.as_tensor(t, dtype=x_t.dtype, device=x_t.device) * TIME_SCALE
        if timestep.dim() == 0:
            timestep = timestep.expand(x_t.shape[0])
        if not self.config.per_class:
            return self.unets[0](x_t, timestep, class_labels=labels).sample
        out = torch.empty_like(x_t)
        for label in labels.unique().tolist():
            rows = labels == label
            out[rows] = self.unets[label](x_t[rows], timestep[rows]).sample
        return out

    def velocity(self, labels: torch.Tensor, guidance_scale: float = 1.0) -> LabelledVelocity:
        """A ``velocity(x, t)`` callable for ``flows/ode.py`` with one label per sample.

        With ``guidance_scale`` w != 1 (needs ``cfg_null_label``), the classifier-free guided
        field v_null + w (v_label - v_null).
        """
        if guidance_scale != 1.0 and not self.config.cfg_null_label:
            raise ValueError("guidance_scale: this generator was trained without a null label (cfg_null_label)")
        return LabelledVelocity(self, labels, guidance_scale)


class LabelledVelocity:
    """v(x, t) of a ModalityUNets for a batch with fixed per-sample labels (B,).

    ``subset(index)`` gives the field of some of the samples, so solvers can keep working on the
    samples that still need it.
    """

    def __init__(self, unets: ModalityUNets, labels: torch.Tensor, guidance_scale: float = 1.0) -> None:
        self.unets, self.labels, self.guidance_scale = unets, labels, guidance_scale

    def subset(self, index: torch.Tensor) -> LabelledVelocity:
        return LabelledVelocity(self.unets, self.labels[index], self.guidance_scale)

    def __call__(self, x: torch.Tensor, t: float) -> torch.Tensor:
        if self.guidance_scale == 1.0:
            return self.unets(x, t, self.labels)
        null = torch.full_like(self.labels, self.unets.config.num_classes)
        v_label, v_null = self.unets(torch.cat([x, x]), t, torch.cat([self.labels, null])).chunk(2)
        return v_null + self.guidance_scale * (v_label - v_null)
