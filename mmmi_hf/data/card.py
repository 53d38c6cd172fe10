"""Dataset and model cards, rendered from the Jinja templates in ``model_cards/``."""

from __future__ import annotations

import os
from importlib import resources
from pathlib import Path
from typing import Any

from huggingface_hub import DatasetCard, DatasetCardData, ModelCard, ModelCardData

from mmmi_hf.atomic import atomic_write_text

__all__ = ["card_template", "write_dataset_readme", "write_model_card"]


def card_template(name: str) -> Path:
    """Path of a template in ``model_cards/`` (shipped as ``mmmi_hf.model_cards``)."""
    return Path(str(resources.files("mmmi_hf.model_cards") / name))


def write_model_card(folder: str | os.PathLike[str], *, model_name: str, tags: list[str], **fields: Any) -> str:
    """Render ``model_card.md`` with ``fields`` into ``folder/README.md`` (atomically); returns the text."""
    data = ModelCardData(library_name="diffusers", license="apache-2.0", tags=["mmmi-hf", "flow-matching", *tags])
    card = ModelCard.from_template(data, template_path=str(card_template("model_card.md")), model_name=model_name, **fields)
    atomic_write_text(Path(folder) / "README.md", str(card))
    return str(card)


def dag_mermaid(spec: dict) -> str:
    """A Mermaid diagram of a spec's causal model: common causes, private latents, theta and the
    modalities, each edge labelled with its effective weight (decay factors applied)."""
    from mmmi_hf.causal.spec import CausalSpec

    eta, rho_common, rho_private = CausalSpec.from_dict({k: v for k, v in spec.items() if k != "solved"} | {"mi_targets": {}, "solve_for": None}).coefficients()
    lines = ["graph LR"]
    for k, weight in enumerate(eta):
        if weight:
            lines.append(f"  u{k + 1}((ũ{k + 1})) -- {weight:.3g} --> theta[θ]")
    for i, row in enumerate(rho_common):
        for k, weight in enumerate(row):
            if weight:
                lines.append(f"  u{k + 1}((ũ{k + 1})) -- {weight:.3g} · T --> x{i + 1}[x{i + 1}]")
    for i, row in enumerate(rho_private):
        for j, weight in enumerate(row):
            if abs(weight) > 1e-3:
                lines.append(f"  p{j + 1}((û{j + 1})) -- {weight:.3g} --> x{i + 1}[x{i + 1}]")
    return "\n".join(lines)


def write_dataset_readme(root: str | os.PathLike[str], name: str, meta: dict, splits: dict[str, int], *, repo: str | None = None) -> str:
    """Add (or replace) config ``name`` in ``root/README.md``: its ``configs`` entry, its
    ``mmmi`` metadata block and its section of the card; other configs are kept."""
    import mmmi_hf

    root = Path(root)
    path = root / "README.md"
    data = DatasetCard.load(path).data.to_dict() if path.exists() else {}
    configs = [c for c in data.get("configs", []) if c.get("config_name") != name]
    configs.append({"config_name": name, "data_files": [{"split": s, "path": f"{name}/{s}-*"} for s in splits]})
    configs.sort(key=lambda c: c["config_name"])
    blocks = dict(data.get("mmmi", {}))
    blocks[name] = meta
    blocks = dict(sorted(blocks.items()))
    card_data = DatasetCardData(
        configs=configs,
        license="apache-2.0",
        tags=["mmmi-hf", "mutual-information", "multimodal", "synthetic"],
        mmmi=blocks,
    )
    card = DatasetCard.from_template(
        card_data,
        template_path=str(card_template("dataset_card.md")),
        configs=blocks,
        names=list(blocks),
        first=next(iter(blocks)),
        repo=repo or root.name,
        version=mmmi_hf.__version__,
        diagrams={key: dag_mermaid(value["spec"]) for key, value in blocks.items()},
    )
    atomic_write_text(path, str(card))
    return str(card)
