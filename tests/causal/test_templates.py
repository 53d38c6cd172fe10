"""Template constructors and their errors."""

from __future__ import annotations

import numpy as np
import pytest
from PIL import Image

from mmmi_hf.causal.spec import CausalSpec, load_spec
from mmmi_hf.causal.templates import build_templates, make_template


def test_ones_onehot_gaussian():
    assert make_template("ones", (1, 2, 3)).tolist() == [1.0] * 6
    assert make_template("onehot:4", (1, 2, 3)).tolist() == [0, 0, 0, 0, 1, 0]
    blob = make_template("gaussian:0,1,2", (2, 2, 3)).reshape(2, 2, 3)
    assert blob[0, 0, 1] == 1.0 and blob[1, 0, 1] == 1.0  # peak, repeated over channels
    assert blob[0, 1, 2] == pytest.approx(np.exp(-(1 + 1) / 8))


def test_npy_both_shapes(tmp_path):
    array = np.arange(12.0).reshape(3, 2, 2)
    np.save(tmp_path / "t.npy", array)
    np.save(tmp_path / "flat.npy", array.reshape(-1))
    assert make_template("t.npy", (3, 2, 2), base_dir=tmp_path).tolist() == list(range(12))
    assert make_template(str(tmp_path / "flat.npy"), (3, 2, 2)).tolist() == list(range(12))


def test_image_is_chw_and_divided_by_255(tmp_path):
    pixels = np.zeros((2, 3, 3), dtype=np.uint8)  # H=2, W=3, RGB
    pixels[0, 1] = (255, 51, 0)
    Image.fromarray(pixels, "RGB").save(tmp_path / "t.png")
    t = make_template("t.png", (3, 2, 3), base_dir=tmp_path).reshape(3, 2, 3)
    assert t[0, 0, 1] == 1.0 and t[1, 0, 1] == pytest.approx(0.2) and t[2, 0, 1] == 0.0
    grey = make_template("t.png", (1, 2, 3), base_dir=tmp_path).reshape(2, 3)
    assert grey[0, 1] == pytest.approx(round(0.299 * 255 + 0.587 * 51) / 255, abs=1 / 255)


def test_galaxy_templates():
    templates = build_templates(load_spec("blackhole-mass"))
    assert templates.shape == (2, 2, 3072)
    assert 0.0 <= templates.min() and templates.max() <= 1.0
    assert np.sum(templates[0, 0] ** 2) == pytest.approx(773.3628143021914)


@pytest.mark.parametrize(
    "text,shape,pattern",
    [
        ("wave", (1, 2, 2), r"templates: expected ones, onehot:IDX, gaussian:CY,CX,SIGMA, a .npy file or an image file, got 'wave'"),
        ("onehot:4", (1, 2, 2), r"templates: onehot index must be an integer in \[0, 4\), got 'onehot:4'"),
        ("onehot:x", (1, 2, 2), r"templates: expected 1 comma-separated numbers after ':', got 'x'"),
        ("gaussian:1,1", (1, 2, 2), r"templates: expected 3 comma-separated numbers after ':', got '1,1'"),
        ("gaussian:1,1,0", (1, 2, 2), r"templates: gaussian SIGMA must be positive"),
        ("missing.npy", (1, 2, 2), r"templates: file not found: .*missing.npy"),
        ("missing.png", (1, 2, 2), r"templates: file not found: .*missing.png"),
        ("t.npy", (1, 2, 2), r"templates: t.npy has shape \[3, 3\], expected \[1, 2, 2\] or \[4\]"),
        ("t.png", (1, 2, 2), r"templates: t.png is 3x3 \(WxH\), expected 2x2 for shape \[1, 2, 2\]"),
        ("t.png", (2, 3, 3), r"templates: image templates need 1 or 3 channels, the shape \[2, 3, 3\] has 2"),
        ("junk.png", (1, 3, 3), r"templates: cannot read .*junk.png as an image"),
    ],
)
def test_template_errors(tmp_path, text, shape, pattern):
    np.save(tmp_path / "t.npy", np.zeros((3, 3)))
    Image.fromarray(np.zeros((3, 3), dtype=np.uint8), "L").save(tmp_path / "t.png")
    (tmp_path / "junk.png").write_bytes(b"not an image")
    with pytest.raises(ValueError, match=pattern):
        make_template(text, shape, base_dir=tmp_path)


def _spec(templates) -> CausalSpec:
    return CausalSpec(
        name="t", shape=(1, 2, 2), modalities=2, common_causes=2, eta=[1.0, 1.0],
        rho_common=[[1.0, 1.0], [1.0, 1.0]], templates=templates,
    )


def test_mapping_per_modality():
    templates = build_templates(_spec({"x1": ["ones", "onehot:0"], "x2": "onehot:3"}))
    assert templates[0, 1].tolist() == [1, 0, 0, 0]
    assert templates[1, 0].tolist() == templates[1, 1].tolist() == [0, 0, 0, 1]


@pytest.mark.parametrize(
    "templates,pattern",
    [
        ({"x1": "ones"}, r"templates: missing x2 \(expected an entry for every modality\)"),
        ({"x1": "ones", "x2": "ones", "x3": "ones"}, r"templates: unknown modality 'x3' \(expected x1, x2\)"),
        ({"x1": ["ones"], "x2": "ones"}, r"templates.x1: expected 2 templates \(one per common cause\), got \['ones'\]"),
        ({"x1": ["ones", "onehot:9"], "x2": "ones"}, r"templates.x1\[1\]: onehot index must be an integer in \[0, 4\)"),
    ],
)
def test_mapping_errors(templates, pattern):
    with pytest.raises(ValueError, match=pattern):
        build_templates(_spec(templates))
