"""``mmmi verify``: check a built dataset against the MI its card states.

For a sample of stored rows: invert the stored x back to latents through the exact inverse of
the generator map, compare with the latents the seed defines (round trip), certify the map
(max per-step h Lip < 1), and test that the mean PMI of the recovered latents, and of the
stored PMI column, matches the analytic MI within a 4-standard-error band. A dataset whose
images were altered, reordered or re-generated with another model fails.
"""

from __future__ import annotations

import math
import os
from pathlib import Path

import numpy as np
import torch

from mmmi_hf.data import hub_layout

__all__ = ["verify_dataset"]

Z_BAND = 4.0  # standard errors allowed between a PMI mean and the exact MI
ROUND_TRIP_LIMIT = 1e-4


def verify_dataset(root: str | os.PathLike[str], config: str, *, num_samples: int = 256, model: str | None = None) -> dict:
    """Run the checks on up to ``num_samples`` rows of ``config``'s first split; returns a report
    with ``passed`` and one entry per check."""
    from mmmi_hf.causal.spec import CausalSpec, list_builtin_configs
    from mmmi_hf.data.build import read_metadata
    from mmmi_hf.pipelines import MMMIPipeline

    root = Path(root)
    blocks = read_metadata(root)
    if config not in blocks:
        raise ValueError(f"config: {config!r} is not in {root / 'README.md'} (configs: {', '.join(blocks) or 'none'})")
    meta = blocks[config]
    pipe = MMMIPipeline.from_pretrained(model or meta["generator"]["name"])
    spec = config if config in list_builtin_configs() else CausalSpec.from_dict(meta["spec"], base_dir=root)
    pipe.scheduler = pipe.scheduler.with_spec(spec)
    scheduler = pipe.scheduler
    split = next(iter(meta["splits"]))
    files = sorted((root / config).glob(f"{split}-*.parquet"))
    if not files:
        raise ValueError(f"dataset: no {split} shards in {root / config}")
    names = scheduler.spec.names
    pmi = hub_layout.pmi_queries(scheduler.mutual_information(), scheduler.spec.modalities)
    rows = hub_layout.read_columns(files, ["index", "theta", *names, *[hub_layout.pmi_column(q) for q in pmi]], max_rows=num_samples)
    n = len(rows["index"])
    index = rows["index"]
    theta = torch.from_numpy(rows["theta"])
    stored = {name: rows[name] for name in names}
    back = pipe.invert(stored)
    truth = torch.cat([scheduler.sample_latents(1, scheduler.spec.seed, start=int(i)).z for i in index])
    err = (back["latents"] - truth).flatten(1).norm(dim=1) / truth.flatten(1).norm(dim=1)
    cert = pipe.certify(16, generator=torch.Generator().manual_seed(0))
    checks: dict[str, dict] = {
        "inverse_converged": {"value": bool(back["converged"].all()), "passed": bool(back["converged"].all())},
        "round_trip_error_max": {"value": float(err.max()), "limit": ROUND_TRIP_LIMIT, "passed": float(err.max()) <= ROUND_TRIP_LIMIT},
        "certificate_max_h_lip": {"value": cert.max, "limit": 1.0, "passed": cert.max < 1.0},
    }
    exact = scheduler.mutual_information(pmi)
    for query in pmi:
        for source, values in (
            ("recovered", scheduler.pmi(query, theta, back["latents"])),
            ("stored_column", rows[hub_layout.pmi_column(query)]),
        ):
            mean, se = float(np.mean(values)), float(np.std(values, ddof=1) / math.sqrt(n))
            checks[f"pmi_mean[{query}]:{source}"] = {
                "value": mean,
                "exact": exact[query],
                "standard_error": se,
                "passed": abs(mean - exact[query]) <= Z_BAND * se + 1e-9,
            }
    return {"config": config, "samples": n, "passed": all(c["passed"] for c in checks.values()), "checks": checks}
