"""Dataset and model cards, rendered from the Jinja templates in ``model_cards/``."""

from __future__ import annotations

import os
from importlib import resources
from pathlib import Path
from typing import Any

from huggingface_hub import ModelCard, ModelCardData

from mmmi_hf.atomic import atomic_write_text

__all__ = ["card_template", "write_model_card"]


def card_template(name: str) -> Path:
    """Path of a template in ``model_cards/`` (shipped as ``mmmi_hf.model_cards``)."""
    return Path(str(resources.files("mmmi_hf.model_cards") / name))


def write_model_card(folder: str | os.PathLike[str], *, model_name: str, tags: list[str], **fields: Any) -> str:
    """Render ``model_card.md`` with ``fields`` into ``folder/README.md`` (atomically); returns the text."""
    data = ModelCardData(library_name="diffusers", license="apache-2.0", tags=["mmmi-hf", "flow-matching", *tags])
    card = ModelCard.from_template(data, template_path=str(card_template("model_card.md")), model_name=model_name, **fields)
    atomic_write_text(Path(folder) / "README.md", str(card))
    return str(card)
