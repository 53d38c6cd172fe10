"""mmmi build: the Hub layout, load_dataset by config name, card metadata, resume, processes."""

from __future__ import annotations

import hashlib
import os
import subprocess
import sys
from pathlib import Path

import numpy as np
import pytest
import torch

from mmmi_hf.data.build import build_configs, parse_splits, read_metadata
from mmmi_hf.pipelines import MMMICausalScheduler, MMMIPipeline


def digest(folder) -> dict[str, str]:
    return {p.name: hashlib.sha256(p.read_bytes()).hexdigest() for p in sorted(folder.glob("*.parquet"))}


def test_layout_load_dataset_and_card(model_dir, tmp_path):
    from datasets import load_dataset

    out = tmp_path / "mmmi"
    build_configs(["dag1"], out, splits={"train": 10, "test": 3}, model=model_dir, shard_size=4, progress=False)
    assert sorted(p.name for p in (out / "dag1").iterdir()) == [
        "test-00000-of-00001.parquet", "train-00000-of-00003.parquet", "train-00001-of-00003.parquet", "train-00002-of-00003.parquet",
    ]
    ds = load_dataset(str(out), "dag1")
    assert ds["train"].num_rows == 10 and ds["test"].num_rows == 3
    train = ds["train"].with_format("numpy")
    pipe = MMMIPipeline.from_pretrained(model_dir)
    ref = pipe(10)
    np.testing.assert_array_equal(train["x1"], ref.modalities["x1"].numpy())  # exact float32, not rescaled
    np.testing.assert_array_equal(train["theta"], ref.theta.numpy())
    assert np.asarray(ds["test"].with_format("numpy")["index"]).tolist() == [10, 11, 12]  # the test split continues the stream
    meta = read_metadata(out)["dag1"]
    assert meta["mutual_information"]["x1;x2"] == pytest.approx(0.5108256237659907, abs=1e-15)
    assert set(meta["pmi_mean"]) == {"theta;x1", "theta;x2", "x1;x2"}
    assert meta["certificate_max_h_lip"] < 1 and meta["round_trip_error_max"] < 1e-4
    # a second config is added, the first is kept
    build_configs(["dag1-sweep-00"], out, splits={"train": 4}, model=model_dir, shard_size=4, progress=False)
    assert set(read_metadata(out)) == {"dag1", "dag1-sweep-00"}
    assert load_dataset(str(out), "dag1")["train"].num_rows == 10
    assert "pmi_x1_x2" in load_dataset(str(out), "dag1-sweep-00")["train"].column_names


def test_resume_and_processes_give_identical_files(model_dir, tmp_path):
    one = tmp_path / "one"
    build_configs(["dag1"], one, splits={"train": 9}, model=model_dir, shard_size=3, progress=False)
    reference = digest(one / "dag1")
    (one / "dag1" / "train-00001-of-00003.parquet").unlink()  # an interrupted build
    build_configs(["dag1"], one, splits={"train": 9}, model=model_dir, shard_size=3, progress=False)
    assert digest(one / "dag1") == reference
    two = tmp_path / "two"
    build_configs(["dag1"], two, splits={"train": 9}, model=model_dir, shard_size=3, num_proc=2, progress=False)
    assert digest(two / "dag1") == reference
    # two ranks (torchrun, what `accelerate launch --multi_gpu` runs; CPU ranks meet through gloo)
    ranks = tmp_path / "ranks"
    launch = [str(Path(sys.executable).with_name("torchrun")), "--nproc_per_node", "2", str(Path(sys.executable).with_name("mmmi")),
              "build", "dag1", "--out", str(ranks), "--num-samples", "9", "--shard-size", "3", "--model", model_dir, "--no-progress"]
    done = subprocess.run(launch, capture_output=True, text=True, timeout=600, env={**os.environ, "OMP_NUM_THREADS": "1"}, cwd=tmp_path)
    assert done.returncode == 0, done.stderr[-2000:]
    assert "on 2 processes" in done.stdout
    assert digest(ranks / "dag1") == reference


def test_split_parsing_and_errors(model_dir, tmp_path):
    assert parse_splits("train=10,test=2", None) == {"train": 10, "test": 2}
    assert parse_splits(None, 5) == {"train": 5}
    with pytest.raises(ValueError, match=r"split: expected NAME=COUNT pairs such as train=1000,test=200, got 'train=x'"):
        parse_splits("train=x", None)
    with pytest.raises(ValueError, match=r"num_samples: expected a positive integer, got 0"):
        parse_splits(None, 0)
    with pytest.raises(ValueError, match=r"has shape \[3, 32, 32\], but the generators make \[1, 8, 8\]"):
        build_configs(["blackhole-mass"], tmp_path / "x", splits={"train": 2}, model=model_dir, progress=False)


def test_verify_passes_on_a_good_build_and_fails_on_a_tampered_one(model_dir, tmp_path, capsys):
    import json

    import pyarrow as pa
    import pyarrow.parquet as pq

    from mmmi_hf.cli import main

    out = tmp_path / "mmmi"
    build_configs(["dag1"], out, splits={"train": 64}, model=model_dir, shard_size=64, progress=False)
    assert main(["verify", str(out), "--config", "dag1", "--model", model_dir, "--json"]) == 0
    report = json.loads(capsys.readouterr().out)
    assert report["passed"] and report["checks"]["round_trip_error_max"]["value"] < 1e-4
    shard = out / "dag1" / "train-00000-of-00001.parquet"
    table = pq.read_table(shard)
    x2 = table.column("x2").to_pylist()
    tampered = table.set_column(table.schema.get_field_index("x2"), "x2", pa.array(x2[1:] + x2[:1], type=table.schema.field("x2").type))
    pq.write_table(tampered.replace_schema_metadata(table.schema.metadata), shard)
    assert main(["verify", str(out), "--config", "dag1", "--model", model_dir]) == 1
    text = capsys.readouterr().out
    assert "verification FAILED" in text and "pmi_mean[x1;x2]" in text  # rich markup escaped
    assert main(["verify", str(out), "--config", "nope", "--model", model_dir]) == 2
    assert "config: 'nope' is not in" in capsys.readouterr().err


def test_builder_matches_the_materialized_rows(model_dir, tmp_path):
    from mmmi_hf.builders.mmmi import MMMI

    builder = MMMI(config_name="dag1", cache_dir=str(tmp_path / "cache"), num_samples=5, test_samples=2, model=model_dir, batch_size=3)
    builder.download_and_prepare()
    ds = builder.as_dataset()
    assert ds["train"].num_rows == 5 and ds["test"].num_rows == 2
    ref = MMMIPipeline.from_pretrained(model_dir)(7)
    np.testing.assert_array_equal(np.asarray(ds["train"].with_format("numpy")["x2"]), ref.modalities["x2"][:5].numpy())
    np.testing.assert_array_equal(np.asarray(ds["test"].with_format("numpy")["theta"]), ref.theta[5:].numpy())
    with pytest.raises(ValueError, match=r"num_samples: expected a positive integer, got 0"):
        MMMI(config_name="dag1", cache_dir=str(tmp_path / "cache2"), num_samples=0, model=model_dir)


def test_card_certificate_comes_from_the_generator_figures_when_settings_match(model_dir, tmp_path):
    import json
    import shutil

    from mmmi_hf.data.build import generator_certificate

    folder = tmp_path / "pipe"
    shutil.copytree(model_dir, folder)
    pipe = MMMIPipeline.from_pretrained(str(folder))
    measured = generator_certificate(pipe)
    assert measured["certificate_source"] == "measured at build time" and measured["certificate_latents"] == 16
    assert measured["certificate_max_h_lip"] == pipe.certify(8, generator=torch.Generator().manual_seed(0)).max
    recorded = {"latents": 1000, "certificate_max_h_lip": 0.123, **pipe.scheduler.ode_settings}
    (folder / "figures.json").write_text(json.dumps({"invertibility": recorded}))
    pipe = MMMIPipeline.from_pretrained(str(folder))
    assert generator_certificate(pipe) == {
        "certificate_max_h_lip": 0.123, "certificate_latents": 1000, "certificate_source": "generator figures.json",
    }
    pipe.scheduler = MMMICausalScheduler.from_spec("dag1", num_inference_steps=pipe.scheduler.ode_settings["num_steps"] + 1)
    assert generator_certificate(pipe)["certificate_source"] == "measured at build time"  # other settings: not the recorded map


def test_a_shard_made_in_parts_equals_one_pipeline_call(model_dir, tmp_path):
    from mmmi_hf.evaluate.sweep import load_split

    out = tmp_path / "mmmi"
    meta = build_configs(["dag1"], out, splits={"train": 300, "test": 70}, model=model_dir, shard_size=1000, progress=False)["dag1"]
    assert set(meta["seconds"]) == {"generate", "write", "shards", "checks"} and meta["seconds"]["write"] > 0
    ref = MMMIPipeline.from_pretrained(model_dir)(370, return_pmi=True)
    for split, rows in (("train", slice(0, 300)), ("test", slice(300, 370))):  # parts of 128 from 0 and from 300
        got = load_split(out, "dag1", split, ["x1", "x2", "pmi_x1_x2"])
        np.testing.assert_array_equal(got["x1"], ref.modalities["x1"][rows].numpy())
        np.testing.assert_array_equal(got["x2"], ref.modalities["x2"][rows].numpy())
        np.testing.assert_array_equal(got["pmi_x1_x2"], ref.pmi["x1;x2"][rows])
