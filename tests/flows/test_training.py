"""Training: resume gives the uninterrupted result, the log and folder layout, option checks."""

from __future__ import annotations

import csv
import json

import pytest
import torch

from mmmi_hf.flows.data import load_image_source
from mmmi_hf.flows.training import TrainConfig, train
from mmmi_hf.flows.unets import ModalityUNets

TINY = dict(block_out_channels=[8, 16], layers_per_block=1, batch_size=16, log_every=1, progress=False, warmup_steps=2)


@pytest.fixture(scope="module")
def digits():
    return load_image_source("digits")


def test_resume_matches_the_uninterrupted_run(tmp_path, digits, monkeypatch):
    import mmmi_hf.flows.training as training

    straight = train(TrainConfig(output_dir=str(tmp_path / "a"), steps=6, checkpoint_every=3, **TINY), digits)
    assert not (tmp_path / "a" / "checkpoints" / "step-0000006").exists()  # the final folder is the result

    real_loss, calls = training.flow_matching_loss, {"n": 0}

    def crash_at_step_5(*args, **kwargs):  # a crash after the step-3 checkpoint
        calls["n"] += 1
        if calls["n"] == 5:
            raise KeyboardInterrupt
        return real_loss(*args, **kwargs)

    monkeypatch.setattr(training, "flow_matching_loss", crash_at_step_5)
    with pytest.raises(KeyboardInterrupt):
        train(TrainConfig(output_dir=str(tmp_path / "b"), steps=6, checkpoint_every=3, **TINY), digits)
    monkeypatch.setattr(training, "flow_matching_loss", real_loss)
    assert sorted(p.name for p in (tmp_path / "b" / "checkpoints").iterdir()) == ["step-0000003"]
    resumed = train(TrainConfig(output_dir=str(tmp_path / "b"), steps=6, checkpoint_every=3, resume=True, **TINY), digits)
    for (name, a), (_, b) in zip(straight.state_dict().items(), resumed.state_dict().items()):
        assert torch.equal(a, b), name
    with open(tmp_path / "b" / "loss_log.csv") as fh:
        steps = [int(r["step"]) for r in csv.DictReader(fh)]
    assert steps == [1, 2, 3, 4, 5, 6]  # nothing lost or duplicated


def test_output_folder(tmp_path, digits):
    model = train(TrainConfig(output_dir=str(tmp_path), steps=4, cfg_dropout=0.1, **TINY), digits)
    loaded = ModalityUNets.from_pretrained(tmp_path / "unets")
    assert loaded.config.cfg_null_label and loaded.config.class_names == [str(i) for i in range(10)]
    for (name, a), (_, b) in zip(model.state_dict().items(), loaded.state_dict().items()):
        assert torch.equal(a, b), name
    args = json.loads((tmp_path / "training_args.json").read_text())
    assert args["steps"] == 4 and args["num_images"] == 1797 and args["final_loss"] > 0


@pytest.mark.parametrize(
    "changes,pattern",
    [
        ({"steps": 0}, r"steps: expected a positive integer, got 0"),
        ({"sigma_min": 0.0}, r"sigma_min: expected a positive number \(a zero sigma_min makes the flow stiff\), got 0.0"),
        ({"cfg_dropout": 1.0}, r"cfg_dropout: expected a probability in \[0, 1\), got 1.0"),
        ({"mixed_precision": "fp8"}, r"mixed_precision: expected no, fp16 or bf16, got 'fp8'"),
        ({"ema_decay": 1.5}, r"ema_decay: expected a number in \[0, 1\), got 1.5"),
    ],
)
def test_config_checks(tmp_path, changes, pattern):
    with pytest.raises(ValueError, match=pattern):
        TrainConfig(output_dir=str(tmp_path), **changes)


def test_train_command_writes_a_model_folder(tmp_path, capsys):
    from mmmi_hf.cli import main

    out = tmp_path / "model"
    code = main([
        "train", "--output-dir", str(out), "--steps", "3", "--batch-size", "16", "--block-out-channels", "8,16",
        "--layers-per-block", "1", "--no-progress", "--num-steps", "4", "--eval-latents", "8",
    ])
    assert code == 0
    assert {"unets", "README.md", "samples.png", "figures.json", "loss_log.csv", "training_args.json"} <= {p.name for p in out.iterdir()}
    figures = json.loads((out / "figures.json").read_text())
    assert figures["generator"] == {"solver": "midpoint", "num_steps": 4, "grid": "uniform"}
    assert 0 <= figures["fidelity"]["fidelity"] <= 1 and figures["invertibility"]["latents"] == 8
    card = (out / "README.md").read_text()
    assert "mmmi train --output-dir" in card and "Invertibility certificate" in card and "library_name: diffusers" in card


def test_train_command_rejects_bad_options(capsys):
    from mmmi_hf.cli import main

    assert main(["train", "--output-dir", "x", "--sigma-min", "0"]) == 2
    assert capsys.readouterr().err.startswith("mmmi: error: sigma_min: expected a positive number")
    assert main(["train", "--output-dir", "x", "--num-steps", "0"]) == 2
    assert "num_steps: expected a positive integer, got 0" in capsys.readouterr().err
