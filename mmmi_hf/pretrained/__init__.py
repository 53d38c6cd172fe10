"""Pretrained generators shipped in the wheel; ``pretrained_path("mmmi-digits")`` finds one
offline."""

from __future__ import annotations

from importlib import resources
from pathlib import Path

__all__ = ["list_pretrained", "pretrained_path"]

DEFAULT = "mmmi-digits"


def list_pretrained() -> list[str]:
    """Names of the shipped pretrained folders."""
    root = Path(str(resources.files(__name__)))
    return sorted(p.name for p in root.iterdir() if (p / "unets" / "config.json").exists())


def pretrained_path(name: str = DEFAULT) -> Path:
    """Folder of a shipped pretrained model; ValueError if there is none by that name."""
    path = Path(str(resources.files(__name__))) / name
    if not (path / "unets" / "config.json").exists():
        raise ValueError(f"pretrained: no shipped model named {name!r} (shipped: {', '.join(list_pretrained()) or 'none'})")
    return path
