"""``mmmi build``: materialize configurations into a dataset folder in the Hub layout.

Shards are independent (see ``data/hub_layout.py``): ``num_proc`` worker processes on one
machine, or the ranks of ``accelerate launch``, each make every K-th missing shard; the result
is the same files as a single-process build. Finished shards are kept, so an interrupted build
resumes where it stopped.
"""

from __future__ import annotations

import json
import os
import platform
import time
from concurrent.futures import ProcessPoolExecutor
from multiprocessing import get_context
from pathlib import Path
from typing import Any

import numpy as np

from mmmi_hf.data import hub_layout

__all__ = ["build_configs", "generator_certificate", "generator_name", "load_pipeline", "parse_splits", "read_metadata"]

_WORKER_PIPE: dict[str, Any] = {}


def parse_splits(text: str | None, num_samples: int | None) -> dict[str, int]:
    """``train=1000,test=200`` -> {"train": 1000, "test": 200}; default {"train": num_samples or 1000}."""
    if not text:
        n = 1000 if num_samples is None else num_samples
        if n < 1:
            raise ValueError(f"num_samples: expected a positive integer, got {n}")
        return {"train": n}
    splits: dict[str, int] = {}
    for part in text.split(","):
        name, _, count = part.partition("=")
        if not name.strip().isidentifier() or not count.strip().isdigit() or int(count) < 1:
            raise ValueError(f"split: expected NAME=COUNT pairs such as train=1000,test=200, got {part!r}")
        splits[name.strip()] = int(count)
    return splits


def load_pipeline(model: str, config: str):
    """The pipeline of ``model`` with config's causal spec (one cached per process)."""
    from mmmi_hf.pipelines import MMMIPipeline

    key = f"{model}::{config}"
    if key not in _WORKER_PIPE:
        pipe = MMMIPipeline.from_pretrained(model)
        pipe.scheduler = pipe.scheduler.with_spec(config)
        _WORKER_PIPE.clear()
        _WORKER_PIPE[key] = pipe
    return _WORKER_PIPE[key]


def _make_shards(
    model: str, config: str, root: str, plans: list[hub_layout.ShardPlan], options: dict, threads: int | None = None,
    on_samples=None, device: str | None = None,
) -> dict[str, float]:
    """Worker: write the given shards; returns {"samples": written, "generate": s, "write": s}
    (wall seconds spent generating the columns and writing the parquet files). ``on_samples``
    is called as parts of a shard are made (progress); ``device`` is the rank's device."""
    import datasets
    import torch

    datasets.disable_progress_bars()  # the build shows one bar of its own, not one per shard
    if threads:
        torch.set_num_threads(threads)
    pipe = load_pipeline(model, config)
    if device is not None:
        pipe.to(device)
    spec = pipe.scheduler.spec
    pmi = hub_layout.pmi_queries(pipe.scheduler.mutual_information(), spec.modalities)
    features = hub_layout.features_for(spec.names, spec.shape, pmi, latents=options["latents"], previews=options["previews"])
    report = {"samples": 0, "generate": 0.0, "write": 0.0}

    def make(start: int, n: int) -> dict[str, Any]:
        began = time.perf_counter()
        columns = hub_layout.sample_columns(pipe, start, n, pmi=pmi, latents=options["latents"], previews=options["previews"], on_samples=on_samples)
        report["generate"] += time.perf_counter() - began
        return columns

    for plan in plans:
        began = time.perf_counter()
        hub_layout.write_shard(Path(root), plan, make, features)
        report["write"] += time.perf_counter() - began
        report["samples"] += plan.stop - plan.start
    report["write"] -= report["generate"]
    return report


def build_configs(
    configs: list[str],
    out: str | os.PathLike[str],
    *,
    splits: dict[str, int],
    model: str = "mmmi-digits",
    shard_size: int = 1000,
    num_proc: int = 1,
    latents: bool = False,
    previews: bool = False,
    progress: bool = True,
) -> dict[str, dict]:
    """Build each config into ``out``.

    Returns:
        {config: metadata written to the README, plus ``seconds``: {"shards": wall time making
        the missing shards, of which "generate" (pipeline) and "write" (parquet; summed over
        workers), and "checks": the card's checks; and ``processes``: ranks x worker processes}}
        (these stay out of the README so that a rebuild writes the same card).
    """
    import torch
    from accelerate import PartialState
    from tqdm.auto import tqdm

    from mmmi_hf.data.card import write_dataset_readme

    if isinstance(shard_size, bool) or not isinstance(shard_size, int) or shard_size < 1:
        raise ValueError(f"shard_size: expected a positive integer, got {shard_size!r}")
    if isinstance(num_proc, bool) or not isinstance(num_proc, int) or num_proc < 1:
        raise ValueError(f"num_proc: expected a positive integer, got {num_proc!r}")
    state = PartialState(cpu=not torch.cuda.is_available())  # CPU ranks (torchrun) join through gloo
    root = Path(out)
    root.mkdir(parents=True, exist_ok=True)
    options = {"latents": latents, "previews": previews}
    results = {}
    for config in configs:
        pipe = load_pipeline(model, config)
        pipe.check_inputs(1, None, 0)
        spec = pipe.scheduler.spec
        plans = hub_layout.plan_shards(spec.name, splits, shard_size)
        _remove_stale(root / spec.name, {Path(p.path).name for p in plans}, state.is_main_process)
        state.wait_for_everyone()
        todo = [p for p in plans if not (root / p.path).exists()][state.process_index :: state.num_processes]
        total = sum(p.stop - p.start for p in plans)
        done = total - sum(p.stop - p.start for p in plans if not (root / p.path).exists())
        started = time.perf_counter()
        bar = tqdm(total=total, initial=done, unit="sample", desc=spec.name, disable=not (progress and state.is_main_process))
        reports = []
        if num_proc == 1:
            for plan in todo:
                reports.append(_make_shards(model, config, str(root), [plan], options, on_samples=bar.update, device=str(state.device)))
        else:
            threads = max(1, (os.cpu_count() or 1) // num_proc)
            with ProcessPoolExecutor(num_proc, mp_context=get_context("spawn")) as pool:
                for future in [pool.submit(_make_shards, model, config, str(root), [plan], options, threads) for plan in todo]:
                    reports.append(future.result())
                    bar.update(reports[-1]["samples"])
        bar.close()
        state.wait_for_everyone()
        if state.is_main_process:
            shards_done = time.perf_counter()
            meta = _metadata(pipe, root, plans, splits, model)
            write_dataset_readme(root, spec.name, meta, splits)
            seconds = {key: sum(r[key] for r in reports) for key in ("generate", "write")}
            seconds.update(shards=shards_done - started, checks=time.perf_counter() - shards_done)
            results[spec.name] = {**meta, "seconds": seconds, "processes": state.num_processes * num_proc}
        state.wait_for_everyone()
    return results


def _remove_stale(folder: Path, keep: set[str], main: bool) -> None:
    """Shards of an earlier plan (other sample counts) would mix into the config's files."""
    if main and folder.is_dir():
        for path in folder.glob("*.parquet"):
            if path.name not in keep:
                path.unlink()


def _metadata(pipe, root: Path, plans: list[hub_layout.ShardPlan], splits: dict[str, int], model: str) -> dict:
    """The ``mmmi:`` block of a config: spec, exact MI, PMI means, generator and its checks."""
    import torch

    import mmmi_hf

    scheduler = pipe.scheduler
    spec = scheduler.spec
    table = scheduler.mutual_information()
    pmi = hub_layout.pmi_queries(table, spec.modalities)
    pmi_columns = hub_layout.read_columns([root / p.path for p in plans], [hub_layout.pmi_column(q) for q in pmi])
    n_check = min(16, plans[0].stop - plans[0].start)
    first = hub_layout.read_columns([root / plans[0].path], ["theta", *spec.names], max_rows=n_check)
    stored = {name: first[name] for name in spec.names}
    back = pipe.invert(stored)
    truth = scheduler.sample_latents(n_check, spec.seed, start=plans[0].start).z
    err = (back["latents"] - truth).flatten(1).norm(dim=1) / truth.flatten(1).norm(dim=1)
    from mmmi_hf.images import modality_grid

    grid = f"images/{spec.name}.png"
    (root / "images").mkdir(exist_ok=True)
    shown = min(8, n_check)
    modality_grid({name: stored[name][:shown] for name in spec.names}, first["theta"][:shown], root / grid, title=spec.name)
    return {
        "spec": spec.to_dict(),
        "mutual_information": table,
        "pmi_mean": {q: float(np.mean(pmi_columns[hub_layout.pmi_column(q)])) for q in pmi},
        "splits": splits,
        "generator": {"name": generator_name(model), **scheduler.ode_settings},
        **generator_certificate(pipe),
        "round_trip_error_max": float(err.max()),
        "seed": spec.seed,
        "samples_image": grid,
        "package_version": mmmi_hf.__version__,
        "built_with": f"python {platform.python_version()}, torch {torch.__version__}",
    }


def generator_name(model: str) -> str:
    """How a card names the generator: a shipped name or Hub repo as given, a folder by its name."""
    return Path(model).name if Path(model).exists() else model


def generator_certificate(pipe) -> dict[str, Any]:
    """The generator map's invertibility certificate (max per-step h Lip, dimensionless).

    The one the generator's folder records in ``figures.json`` (measured over many latents, e.g.
    1,000 for mmmi-digits) when it was measured with the scheduler's ODE settings; otherwise it
    is measured now on the trajectories of 8 samples' latents.

    Returns:
        {"certificate_max_h_lip", "certificate_latents", "certificate_source"}.
    """
    import torch

    settings = pipe.scheduler.ode_settings
    from mmmi_hf.flows.report import FIGURES

    figures = Path(pipe.name_or_path) / FIGURES
    if figures.is_file():
        recorded = json.loads(figures.read_text()).get("invertibility", {})
        if "certificate_max_h_lip" in recorded and all(recorded.get(k) == v for k, v in settings.items()):
            return {
                "certificate_max_h_lip": float(recorded["certificate_max_h_lip"]),
                "certificate_latents": int(recorded["latents"]),
                "certificate_source": "generator figures.json",
            }
    cert = pipe.certify(8, generator=torch.Generator().manual_seed(0))
    return {
        "certificate_max_h_lip": cert.max,
        "certificate_latents": 8 * pipe.scheduler.spec.modalities,
        "certificate_source": "measured at build time",
    }


def read_metadata(root: str | os.PathLike[str]) -> dict:
    """The ``mmmi`` block of a dataset folder's README."""
    from huggingface_hub import DatasetCard

    path = Path(root) / "README.md"
    if not path.exists():
        raise ValueError(f"dataset: {path} not found (build the folder with `mmmi build`)")
    return dict(DatasetCard.load(path).data.to_dict().get("mmmi", {}))
