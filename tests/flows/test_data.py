"""Image sources: the bundled digits, a local imagefolder, a save_to_disk folder, and errors."""

from __future__ import annotations

import numpy as np
import pytest
from PIL import Image

from mmmi_hf.flows.data import load_image_source


def test_digits():
    data = load_image_source("digits")
    assert data.images.shape == (1797, 1, 8, 8) and data.labels.shape == (1797,)
    assert float(data.images.min()) == -1.0 and float(data.images.max()) == 1.0
    assert data.class_names == [str(i) for i in range(10)]
    with pytest.raises(ValueError, match=r"digits: the bundled digits are 1 x 8 x 8"):
        load_image_source("digits", resolution=32)


def _imagefolder(root, sizes=((6, 6), (6, 6))):
    rng = np.random.default_rng(0)
    for name, size in zip(("cat", "dog"), sizes):
        (root / name).mkdir(parents=True)
        for i in range(3):
            Image.fromarray(rng.integers(0, 256, (*size, 3), dtype=np.uint8), "RGB").save(root / name / f"{i}.png")


def test_imagefolder_and_resize(tmp_path):
    _imagefolder(tmp_path / "pets")
    data = load_image_source(str(tmp_path / "pets"))
    assert data.images.shape == (6, 3, 6, 6) and data.class_names == ["cat", "dog"]
    assert sorted(data.labels.tolist()) == [0, 0, 0, 1, 1, 1]
    assert -1.0 <= float(data.images.min()) and float(data.images.max()) <= 1.0
    grey = load_image_source(str(tmp_path / "pets"), resolution=4, channels=1, max_samples=2)
    assert grey.images.shape == (2, 1, 4, 4)


def test_save_to_disk_folder(tmp_path):
    _imagefolder(tmp_path / "pets")
    import datasets

    ds = datasets.load_dataset("imagefolder", data_dir=str(tmp_path / "pets"), split="train")
    ds.save_to_disk(str(tmp_path / "saved"))
    data = load_image_source(str(tmp_path / "saved"))
    assert data.images.shape == (6, 3, 6, 6)


def test_errors(tmp_path):
    _imagefolder(tmp_path / "mixed", sizes=((6, 6), (5, 5)))
    with pytest.raises(ValueError, match=r"images differ in size .*; give --resolution"):
        load_image_source(str(tmp_path / "mixed"))
    with pytest.raises(ValueError, match=r"label_column: 'kind' is not a column of .* \(columns: image, label\)"):
        load_image_source(str(tmp_path / "mixed"), label_column="kind", resolution=4)
    (tmp_path / "file.txt").write_text("x")
    with pytest.raises(ValueError, match=r"file.txt: expected a folder of class subfolders, got a file"):
        load_image_source(str(tmp_path / "file.txt"))
