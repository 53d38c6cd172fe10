"""Image sources for training the generators, as tensors in [-1, 1].

- ``digits``: scikit-learn's bundled 8x8 digits (1,797 images, 10 classes, values 0..16); offline.
- a local folder of class subfolders (``imagefolder``: ``DIR/<class>/<image>``);
- a folder written by ``datasets.Dataset.save_to_disk``;
- any Hugging Face image dataset with image and label columns, by name (``uoft-cs/cifar10``),
  where the Hub can be reached.
"""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path

import numpy as np
import torch

__all__ = ["ImageSource", "load_image_source"]

_IMAGE_COLUMNS = ("image", "img", "pixel_values")
_LABEL_COLUMNS = ("label", "labels", "fine_label", "class")


@dataclass
class ImageSource:
    """Training images.

    Attributes:
        images: (n, C, H, W) float32 in [-1, 1].
        labels: (n,) int64 class indices.
        class_names: name of each class index.
        name: where the images came from.
    """

    images: torch.Tensor
    labels: torch.Tensor
    class_names: list[str]
    name: str

    @property
    def shape(self) -> tuple[int, int, int]:
        return tuple(self.images.shape[1:])  # type: ignore[return-value]


def _digits() -> ImageSource:
    from sklearn.datasets import load_digits

    digits = load_digits()
    images = torch.from_numpy(digits.images.astype(np.float32) / 8.0 - 1.0).unsqueeze(1)
    return ImageSource(images, torch.from_numpy(digits.target.astype(np.int64)), [str(c) for c in digits.target_names], "digits")


def _pick(columns: list[str], given: str | None, candidates: tuple[str, ...], what: str, source: str) -> str:
    if given is not None:
        if given not in columns:
            raise ValueError(f"{what}_column: {given!r} is not a column of {source} (columns: {', '.join(columns)})")
        return given
    for name in candidates:
        if name in columns:
            return name
    raise ValueError(
        f"{what}_column: {source} has none of the usual {what} columns ({', '.join(candidates)}); "
        f"name one with --{what}-column (columns: {', '.join(columns)})"
    )


def load_image_source(
    source: str,
    *,
    split: str = "train",
    resolution: int | None = None,
    channels: int | None = None,
    image_column: str | None = None,
    label_column: str | None = None,
    max_samples: int | None = None,
) -> ImageSource:
    """Load training images.

    Args:
        source: ``digits``, a local imagefolder, a ``save_to_disk`` folder, or a Hub dataset name.
        split: split to read (Hugging Face sources).
        resolution: resize to resolution x resolution (bicubic); default: keep the size, which
            must then be the same for every image.
        channels: 1 (L) or 3 (RGB); default: 1 if the first image is greyscale, else 3.
        image_column, label_column: column names; default: the usual ones.
        max_samples: keep only the first n images.
    """
    if source == "digits":
        data = _digits()
        if resolution not in (None, 8) or channels not in (None, 1):
            raise ValueError("digits: the bundled digits are 1 x 8 x 8; drop --resolution/--channels")
    else:
        data = _from_datasets(source, split, resolution, channels, image_column, label_column, max_samples)
    if max_samples is not None:
        data = ImageSource(data.images[:max_samples], data.labels[:max_samples], data.class_names, data.name)
    if data.images.shape[0] == 0:
        raise ValueError(f"{source}: no images")
    return data


def _from_datasets(source, split, resolution, channels, image_column, label_column, max_samples) -> ImageSource:
    import datasets

    path = Path(source)
    try:
        if path.is_dir() and any((path / f).exists() for f in ("state.json", "dataset_dict.json")):
            ds = datasets.load_from_disk(str(path))
            if isinstance(ds, datasets.DatasetDict):
                if split not in ds:
                    raise ValueError(f"split: {split!r} not in {source} (splits: {', '.join(ds)})")
                ds = ds[split]
        elif path.is_dir():
            ds = datasets.load_dataset("imagefolder", data_dir=str(path), split=split)
        elif path.exists():
            raise ValueError(f"{source}: expected a folder of class subfolders, got a file")
        else:
            ds = datasets.load_dataset(source, split=split)
    except FileNotFoundError as err:
        raise ValueError(f"{source}: not found ({err})") from None
    columns = list(ds.column_names)
    image_column = _pick(columns, image_column, _IMAGE_COLUMNS, "image", source)
    label_column = _pick(columns, label_column, _LABEL_COLUMNS, "label", source)
    if max_samples is not None:
        ds = ds.select(range(min(max_samples, len(ds))))
    feature = ds.features[label_column]
    class_names = list(getattr(feature, "names", []) or [])
    images, labels = [], []
    mode = None if channels is None else {1: "L", 3: "RGB"}.get(channels)
    if channels is not None and mode is None:
        raise ValueError(f"channels: expected 1 or 3, got {channels}")
    from PIL import Image

    for row in ds:
        image = row[image_column]
        if not isinstance(image, Image.Image):
            raise ValueError(f"image_column: {image_column!r} does not hold images (got {type(image).__name__})")
        mode = mode or ("L" if image.mode in ("L", "1", "I", "I;16") else "RGB")
        image = image.convert(mode)
        if resolution is not None:
            image = image.resize((resolution, resolution), Image.Resampling.BICUBIC)
        images.append(np.asarray(image, dtype=np.float32).reshape(image.height, image.width, -1))
        labels.append(int(row[label_column]))
    sizes = {a.shape for a in images}
    if len(sizes) > 1:
        raise ValueError(f"{source}: images differ in size ({sorted(sizes)[:3]}...); give --resolution")
    array = np.stack(images).transpose(0, 3, 1, 2) / 127.5 - 1.0
    if not class_names:
        class_names = [str(i) for i in range(max(labels) + 1)]
    return ImageSource(torch.from_numpy(array.astype(np.float32)), torch.tensor(labels, dtype=torch.int64), class_names, source)
