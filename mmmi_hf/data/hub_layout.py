"""A dataset folder in the Hugging Face Hub layout, written shard by shard.

    DIR/README.md                              YAML: configs (data files per config) and an
                                               ``mmmi`` block per config (spec, exact MI, ...)
    DIR/<config>/<split>-00000-of-0000K.parquet

Samples go to parquet as they are generated, one shard at a time, so memory does not grow with
the number of samples. Shard j of a split holds samples ``offset + j*S .. offset + (j+1)*S - 1``
of the config's seed (the test split continues after the train split), so a shard's content
depends only on (seed, indices): shards can be made in any order, by any process, and a build
that was interrupted resumes by making only the missing shards. Every file is written to a
temporary name and renamed into place.

``load_dataset(DIR, "dag1")`` then works offline; ``x1..xN`` are ``Array3D(float32)``: the exact
generator outputs, never rescaled or quantized.
"""

from __future__ import annotations

import math
import os
import re
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np

from mmmi_hf.causal.information import parse_query

__all__ = ["ShardPlan", "features_for", "plan_shards", "pmi_column", "pmi_queries", "push_folder", "read_columns", "sample_columns", "write_shard"]


def pmi_column(query: str) -> str:
    """Column name of a per-sample PMI: ``theta;x1`` -> ``pmi_theta_x1``."""
    return "pmi_" + re.sub(r"[^a-z0-9]+", "_", query).strip("_")


def pmi_queries(table: dict[str, float], modalities: int) -> list[str]:
    """The pairwise MI queries of a table (``theta;xi`` and ``xi;xj``), which get PMI columns."""
    out = []
    for query in table:
        q = parse_query(query, modalities)
        if q.kind == "mi" and all(len(g) == 1 for g in q.groups):
            out.append(query)
    return out


def features_for(names: list[str], shape: tuple[int, int, int], pmi: list[str], *, latents: bool, previews: bool):
    """The datasets Features of a config."""
    from datasets import Array3D, Features, Image, Value

    columns: dict[str, Any] = {"index": Value("int64"), "theta": Value("float32")}
    columns.update({name: Array3D(shape=tuple(shape), dtype="float32") for name in names})
    if latents:
        columns.update({f"z{name[1:]}": Array3D(shape=tuple(shape), dtype="float32") for name in names})
    columns.update({pmi_column(q): Value("float64") for q in pmi})
    if previews:
        columns.update({f"{name}_preview": Image() for name in names})
    return Features(columns)


@dataclass(frozen=True)
class ShardPlan:
    """One shard: file ``<config>/<split>-JJJJJ-of-KKKKK.parquet`` holding samples start..stop-1."""

    config: str
    split: str
    index: int
    total: int
    start: int
    stop: int

    @property
    def path(self) -> str:
        return f"{self.config}/{self.split}-{self.index:05d}-of-{self.total:05d}.parquet"


def plan_shards(config: str, splits: dict[str, int], shard_size: int) -> list[ShardPlan]:
    """Shards of every split; splits take consecutive sample indices in the order given."""
    plans, offset = [], 0
    for split, n in splits.items():
        total = max(1, math.ceil(n / shard_size))
        for j in range(total):
            start = offset + j * shard_size
            plans.append(ShardPlan(config, split, j, total, start, min(start + shard_size, offset + n)))
        offset += n
    return plans


def write_shard(
    root: Path,
    plan: ShardPlan,
    make: Callable[[int, int], dict[str, Any]],
    features,
) -> Path:
    """Write one shard atomically; ``make(start, n)`` returns its columns as arrays."""
    from datasets import Dataset

    path = root / plan.path
    path.parent.mkdir(parents=True, exist_ok=True)
    columns = make(plan.start, plan.stop - plan.start)
    tmp = path.with_name(f".{path.name}.{os.getpid()}.tmp")
    try:
        Dataset.from_dict(columns, features=features).to_parquet(str(tmp))
        os.replace(tmp, path)
    finally:
        tmp.unlink(missing_ok=True)
    return path


def read_columns(paths: list[Path], columns: list[str], *, max_rows: int | None = None) -> dict[str, np.ndarray]:
    """Columns of parquet shards as numpy arrays, rows in file order (the first ``max_rows``);
    ``x*`` come back with their full shape (n, C, H, W), float32 exactly as stored."""
    import pyarrow as pa
    import pyarrow.parquet as pq

    tables, rows = [], 0
    for path in paths:
        if max_rows is not None and rows >= max_rows:
            break
        tables.append(pq.read_table(path, columns=columns))
        rows += tables[-1].num_rows
    table = pa.concat_tables(tables)
    if max_rows is not None:
        table = table.slice(0, max_rows)
    out: dict[str, np.ndarray] = {}
    for name in columns:
        column = table.column(name).combine_chunks()
        if isinstance(column.type, pa.ExtensionType):  # datasets' Array3D, once datasets is imported
            column = column.storage
        shape, values = [], column
        while pa.types.is_list(values.type) or pa.types.is_fixed_size_list(values.type) or pa.types.is_large_list(values.type):
            shape.append(len(values[0]) if len(values) else 0)
            values = values.flatten()
        out[name] = np.array(values.to_numpy(zero_copy_only=False)).reshape(len(column), *shape)  # writable, owned
    return out


def sample_columns(
    pipe, start: int, n: int, *, pmi: list[str], latents: bool, previews: bool, on_samples: Callable[[int], None] | None = None
) -> dict[str, Any]:
    """Columns of samples start..start+n-1 of a pipeline (base seed: its spec's seed).

    With ``on_samples`` (a progress callback, called with the count of each finished part) the
    samples are made in parts of 128; sample i is the same whatever the part sizes.
    """
    if on_samples is not None and n > 128:
        parts = []
        for s in range(start, start + n, 128):
            parts.append(sample_columns(pipe, s, min(128, start + n - s), pmi=pmi, latents=latents, previews=previews))
            on_samples(len(parts[-1]["index"]))
        return {k: np.concatenate([p[k] for p in parts]) if isinstance(parts[0][k], np.ndarray) else sum((p[k] for p in parts), [])
                for k in parts[0]}
    out = pipe(n, start=start, return_latents=True, return_pmi=bool(pmi))
    names = list(out.modalities)
    columns: dict[str, Any] = {"index": np.arange(start, start + n, dtype=np.int64), "theta": out.theta.numpy()}
    for i, name in enumerate(names):
        columns[name] = out.modalities[name].numpy()
        if latents:
            columns[f"z{name[1:]}"] = out.latents[:, i].numpy()
    for q in pmi:
        columns[pmi_column(q)] = out.pmi[q]
    if previews:
        from PIL import Image

        from mmmi_hf.images import to_uint8

        for name in names:
            columns[f"{name}_preview"] = [Image.fromarray(a[..., 0] if a.shape[-1] == 1 else a) for a in to_uint8(out.modalities[name])]
    if on_samples is not None:
        on_samples(n)
    return columns


def _git_blob_sha1(data: bytes) -> str:
    import hashlib

    return hashlib.sha1(b"blob %d\0" % len(data) + data).hexdigest()


def push_folder(folder: str | os.PathLike[str], repo_id: str, *, repo_type: str, private: bool = False, token: str | None = None) -> dict[str, Any]:
    """Mirror ``folder`` into a Hub repo in one commit, README.md as the last operation.

    Idempotent: files whose content the repo already holds are not sent, remote files missing
    locally are deleted, and nothing is committed when the repo already matches.

    Returns:
        {"commit": sha or None, "added": [...], "deleted": [...], "unchanged": n}.
    """
    import hashlib

    from huggingface_hub import CommitOperationAdd, CommitOperationDelete, HfApi
    from huggingface_hub.hf_api import RepoFile

    root = Path(folder)
    if not (root / "README.md").is_file():
        raise ValueError(f"folder: {root} has no README.md (a card is required before publishing)")
    if not re.fullmatch(r"[\w.-]+/[\w.-]+", repo_id):
        raise ValueError(f"repo_id: expected OWNER/NAME, got {repo_id!r}")
    api = HfApi(token=token)
    api.create_repo(repo_id, repo_type=repo_type, private=private, exist_ok=True)
    remote = {
        entry.path: entry
        for entry in api.list_repo_tree(repo_id, repo_type=repo_type, recursive=True)
        if isinstance(entry, RepoFile)
    }
    local = sorted(p for p in root.rglob("*") if p.is_file() and not any(part.startswith(".") for part in p.relative_to(root).parts))
    local = [p for p in local if "checkpoints" not in p.relative_to(root).parts]
    adds, unchanged = [], 0
    for path in sorted(local, key=lambda p: (p.name == "README.md" and p.parent == root, str(p))):
        rel = path.relative_to(root).as_posix()
        data = path.read_bytes()
        entry = remote.get(rel)
        if entry is not None:
            same = (entry.lfs.sha256 == hashlib.sha256(data).hexdigest()) if entry.lfs else entry.blob_id == _git_blob_sha1(data)
            if same:
                unchanged += 1
                continue
        adds.append(CommitOperationAdd(path_in_repo=rel, path_or_fileobj=str(path)))
    keep = {p.relative_to(root).as_posix() for p in local} | {".gitattributes"}
    deletes = [CommitOperationDelete(path_in_repo=rel) for rel in sorted(remote) if rel not in keep]
    if not adds and not deletes:
        return {"commit": None, "added": [], "deleted": [], "unchanged": unchanged}
    readme = [op for op in adds if op.path_in_repo == "README.md"]
    operations = [op for op in adds if op.path_in_repo != "README.md"] + deletes + readme
    info = api.create_commit(repo_id, operations=operations, repo_type=repo_type, commit_message=f"mmmi-hf: publish {root.name}")
    return {"commit": info.oid, "added": [op.path_in_repo for op in adds], "deleted": [op.path_in_repo for op in deletes], "unchanged": unchanged}
