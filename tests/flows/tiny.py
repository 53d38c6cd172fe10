"""Tiny generators for fast tests."""

from __future__ import annotations

import torch

from mmmi_hf.flows.unets import ModalityUNets


def tiny_unets(*, per_class: bool = False, num_classes: int = 3, cfg: bool = False, seed: int = 0, channels: int = 1) -> ModalityUNets:
    torch.manual_seed(seed)
    return ModalityUNets(
        sample_size=8, in_channels=channels, num_classes=num_classes, per_class=per_class, cfg_null_label=cfg,
        block_out_channels=(8, 16), layers_per_block=1, norm_num_groups=4, attention_head_dim=8,
    ).eval()
