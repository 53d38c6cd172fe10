"""The datasets a benchmark runs on: config names, built on demand into a dataset folder (the
same Hub-layout folder ``mmmi build`` writes, so a cached config is reused by every later run),
and read back as numpy arrays.
"""

from __future__ import annotations

import os
import re
from pathlib import Path

import numpy as np

__all__ = ["bench_splits", "ensure_built", "expand_configs", "load_split"]

SHARD_SIZE = 1000  # samples per parquet shard of the benchmark datasets (mmmi build's default)


def expand_configs(items: list[str]) -> list[str]:
    """Expand ranges: ``["dag1-sweep-00..09"]`` -> dag1-sweep-00, ..., dag1-sweep-09 (zero
    padding kept); other names and YAML paths pass through. Each name must be a built-in config
    or an existing YAML file."""
    from mmmi_hf.causal.spec import list_builtin_configs

    builtin = set(list_builtin_configs())
    out: list[str] = []
    for item in items:
        match = re.fullmatch(r"(.*?)(\d+)\.\.(\d+)", item)
        if match:
            prefix, lo, hi = match.groups()
            if int(hi) < int(lo):
                raise ValueError(f"configs: range {item!r} runs backwards (expected LOW..HIGH such as dag1-sweep-00..09)")
            names = [f"{prefix}{i:0{len(lo)}d}" for i in range(int(lo), int(hi) + 1)]
        else:
            names = [item]
        for name in names:
            if name not in builtin and not Path(name).is_file():
                raise ValueError(f"configs: {name!r} is neither a built-in configuration (see `mmmi configs`) nor a YAML file")
            out.append(name)
    if not out:
        raise ValueError("configs: expected at least one configuration")
    return list(dict.fromkeys(out))  # each once, in order


def bench_splits(num_samples: int, test_fraction: float = 0.2) -> dict[str, int]:
    """{"train": ..., "test": ...} of ``num_samples`` samples in all."""
    test = int(round(num_samples * test_fraction))
    if num_samples < 10 or test < 2:
        raise ValueError(f"num_samples: expected at least 10 (to leave a held-out test split), got {num_samples}")
    return {"train": num_samples - test, "test": test}


def ensure_built(
    configs: list[str], data_dir: str | os.PathLike[str], splits: dict[str, int], *, model: str = "mmmi-digits", progress: bool = True
) -> dict[str, dict]:
    """Build the configs that ``data_dir`` does not hold with exactly these splits (and model);
    returns each config's ``mmmi`` metadata block."""
    from mmmi_hf.causal.spec import load_spec
    from mmmi_hf.data.build import build_configs, generator_name, read_metadata
    from mmmi_hf.data.hub_layout import plan_shards

    root = Path(data_dir)
    have = read_metadata(root) if (root / "README.md").exists() else {}
    generator = generator_name(model)
    names = {config: load_spec(config).name for config in configs}
    missing = [
        config for config, name in names.items()
        if have.get(name, {}).get("splits") != splits
        or have[name].get("generator", {}).get("name") != generator
        or not all((root / plan.path).exists() for plan in plan_shards(name, splits, SHARD_SIZE))
    ]
    if missing:
        build_configs(missing, root, splits=splits, model=model, shard_size=SHARD_SIZE, progress=progress)
        have = read_metadata(root)
    return {name: have[name] for name in names.values()}


def load_split(data_dir: str | os.PathLike[str], config: str, split: str, columns: list[str]) -> dict[str, np.ndarray]:
    """Columns of one split as numpy arrays, rows in sample order; ``x*`` come back with their
    full shape (n, C, H, W), float32 exactly as stored."""
    from mmmi_hf.data.hub_layout import read_columns

    files = sorted((Path(data_dir) / config).glob(f"{split}-*.parquet"))
    if not files:
        raise ValueError(f"dataset: no {split} shards of {config!r} in {data_dir}")
    return read_columns(files, columns)
