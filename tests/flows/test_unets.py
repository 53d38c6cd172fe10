"""ModalityUNets: routing, label checks, guidance, bit-identical save/load."""

from __future__ import annotations

import pytest
import torch

from mmmi_hf.flows.unets import ModalityUNets
from tests.flows.tiny import tiny_unets


@pytest.mark.parametrize("per_class", [False, True])
def test_save_load_is_bit_identical(tmp_path, per_class):
    unets = tiny_unets(per_class=per_class)
    unets.save_pretrained(tmp_path / "unets")
    assert (tmp_path / "unets" / "diffusion_pytorch_model.safetensors").exists()
    loaded = ModalityUNets.from_pretrained(tmp_path / "unets").eval()
    assert len(loaded.unets) == (3 if per_class else 1)
    for (name, a), (_, b) in zip(unets.state_dict().items(), loaded.state_dict().items()):
        assert torch.equal(a, b), name
    x = torch.randn(3, 1, 8, 8)
    labels = torch.tensor([2, 0, 1])
    with torch.no_grad():
        assert torch.equal(unets(x, 0.3, labels), loaded(x, 0.3, labels))


def test_per_class_routes_each_label_to_its_unet():
    unets = tiny_unets(per_class=True)
    x = torch.randn(4, 1, 8, 8)
    labels = torch.tensor([1, 0, 1, 2])
    with torch.no_grad():
        out = unets(x, 0.5, labels)
        direct = unets.unets[1](x[[0, 2]], torch.full((2,), 500.0)).sample
    torch.testing.assert_close(out[[0, 2]], direct)


def test_labels_and_guidance_checks():
    unets = tiny_unets()
    unets.check_labels([0, 2])
    with pytest.raises(ValueError, match=r"labels: 3 is out of range; this generator knows classes 0..2"):
        unets.check_labels([0, 3])
    with pytest.raises(ValueError, match=r"guidance_scale: this generator was trained without a null label"):
        unets.velocity(torch.tensor([0]), guidance_scale=2.0)
    with pytest.raises(ValueError, match=r"cfg_null_label: classifier-free guidance needs the shared"):
        ModalityUNets(per_class=True, cfg_null_label=True)
    with pytest.raises(ValueError, match=r"class_names: expected 10 names, got 2"):
        ModalityUNets(class_names=["a", "b"])


def test_guided_field_combines_label_and_null():
    unets = tiny_unets(cfg=True)
    x = torch.randn(2, 1, 8, 8)
    labels = torch.tensor([0, 1])
    with torch.no_grad():
        guided = unets.velocity(labels, guidance_scale=3.0)(x, 0.4)
        v_label, v_null = unets(x, 0.4, labels), unets(x, 0.4, torch.tensor([3, 3]))
    torch.testing.assert_close(guided, v_null + 3.0 * (v_label - v_null), rtol=1e-5, atol=1e-5)
