"""Publishing: the real huggingface_hub / datasets / diffusers clients against a test double of
the Hub on 127.0.0.1. Each client runs in a subprocess whose environment points at the double
(HF_ENDPOINT is read when huggingface_hub is imported)."""

from __future__ import annotations

import json
import os
import subprocess
import sys

import numpy as np
import pytest

from mmmi_hf.data.build import build_configs
from tests import hub_double


def run(code_or_argv, env, *, cli=False):
    argv = [sys.executable, "-m", "mmmi_hf", *code_or_argv] if cli else [sys.executable, "-c", code_or_argv]
    return subprocess.run(argv, env=env, capture_output=True, text=True, timeout=300)


@pytest.fixture
def hub(tmp_path):
    with hub_double.HubDouble() as double:
        env = {**os.environ, "HF_ENDPOINT": double.endpoint, "HF_HUB_DISABLE_XET": "1", "HF_HUB_OFFLINE": "0",
               "HF_DATASETS_OFFLINE": "0", "HF_TOKEN": "test-token", "HF_HOME": str(tmp_path / "hf-home")}
        yield double, env


def test_push_dataset_and_load_by_config(model_dir, tmp_path, hub):
    double, env = hub
    out = tmp_path / "mmmi"
    build_configs(["dag1", "dag1-sweep-00"], out, splits={"train": 6}, model=model_dir, shard_size=4, progress=False)
    first = run(["push", str(out), "--repo-id", "me/mmmi"], env, cli=True)
    assert first.returncode == 0, first.stderr
    assert "files sent" in first.stdout
    again = run(["push", str(out), "--repo-id", "me/mmmi"], env, cli=True)
    assert again.returncode == 0 and "already up to date" in again.stdout  # idempotent: no second commit
    assert len(double.commits("me/mmmi", "dataset")) == 1
    files = double.files("me/mmmi", "dataset")
    assert {"README.md", "dag1/train-00000-of-00002.parquet", "dag1-sweep-00/train-00001-of-00002.parquet"} <= set(files)
    loaded = run(
        "import json, numpy as np\nfrom datasets import load_dataset\n"
        "ds = load_dataset('me/mmmi', 'dag1')['train'].with_format('numpy')\n"
        "print(json.dumps({'n': ds.num_rows, 'x1': np.asarray(ds['x1']).tolist()}))",
        env,
    )
    assert loaded.returncode == 0, loaded.stderr
    remote = json.loads(loaded.stdout.strip().splitlines()[-1])
    from datasets import load_dataset

    local = np.asarray(load_dataset(str(out), "dag1")["train"].with_format("numpy")["x1"])
    assert remote["n"] == 6 and np.array_equal(np.asarray(remote["x1"], dtype=np.float32), local)


def test_push_pipeline_and_from_pretrained(model_dir, hub):
    double, env = hub
    pushed = run(["push-model", model_dir, "--repo-id", "me/tiny"], env, cli=True)
    assert pushed.returncode == 0, pushed.stderr
    loaded = run(
        "import json, torch\nfrom mmmi_hf.pipelines import MMMIPipeline\n"
        "out = MMMIPipeline.from_pretrained('me/tiny')(3, generator=torch.Generator().manual_seed(0))\n"
        "print(json.dumps(out.modalities['x2'].flatten().tolist()))",
        env,
    )
    assert loaded.returncode == 0, loaded.stderr
    import torch

    from mmmi_hf.pipelines import MMMIPipeline

    local = MMMIPipeline.from_pretrained(model_dir)(3, generator=torch.Generator().manual_seed(0)).modalities["x2"].flatten()
    assert json.loads(loaded.stdout.strip().splitlines()[-1]) == local.tolist()  # bit-identical through the Hub


def test_push_errors(tmp_path, hub):
    _, env = hub
    (tmp_path / "empty").mkdir()
    bad = run(["push", str(tmp_path / "empty"), "--repo-id", "me/x"], env, cli=True)
    assert bad.returncode == 2 and "has no README.md" in bad.stderr and "Traceback" not in bad.stderr
    bad = run(["push-model", str(tmp_path / "empty"), "--repo-id", "me/x"], env, cli=True)
    assert bad.returncode == 2 and "is not a pipeline folder (no model_index.json)" in bad.stderr
