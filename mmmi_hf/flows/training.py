"""Flow-matching training of ModalityUNets with accelerate.

Path (see ``flows/ode.py``): x_t = (1 - t) x_0 + t x_1, x_0 ~ N(0, I), x_1 = data + sigma_min N(0, I),
t ~ U(0, 1); loss = || v(x_t, t, label) - (x_1 - x_0) ||^2. The sigma_min > 0 smoothing of the data
end keeps the fitted velocity field from turning stiff near t = 1 (a plain rectified flow fitted
to a finite image set behaves like (x_1 - x)/(1 - t) there and cannot be inverted).

Everything goes through ``accelerate`` (AdamW, gradient accumulation, mixed precision,
checkpoints with ``save_state``), so ``accelerate launch mmmi train ...`` runs on several GPUs
or nodes unchanged. The randomness of optimizer step s on process r comes from a generator
seeded by (seed, s, r), so a resumed run draws exactly what the uninterrupted run would have.
"""

from __future__ import annotations

import csv
import json
import shutil
import time
from dataclasses import asdict, dataclass, field
from pathlib import Path

import numpy as np
import torch

from mmmi_hf.atomic import atomic_write_text
from mmmi_hf.flows.data import ImageSource, load_image_source
from mmmi_hf.flows.unets import ModalityUNets

__all__ = ["TrainConfig", "flow_matching_loss", "train"]

CHECKPOINTS = "checkpoints"
LOSS_LOG = "loss_log.csv"


@dataclass
class TrainConfig:
    """Settings of ``mmmi train`` (field names are the command's options)."""

    output_dir: str
    data: str = "digits"
    split: str = "train"
    resolution: int | None = None
    channels: int | None = None
    image_column: str | None = None
    label_column: str | None = None
    max_samples: int | None = None
    steps: int = 6000
    batch_size: int = 128
    learning_rate: float = 2e-3
    weight_decay: float = 0.0
    warmup_steps: int = 200
    sigma_min: float = 0.05
    jacobian_weight: float = 0.0
    cfg_dropout: float = 0.0
    ema_decay: float = 0.999
    gradient_accumulation_steps: int = 1
    mixed_precision: str = "no"
    checkpoint_every: int = 1000
    log_every: int = 25
    resume: bool = False
    seed: int = 0
    per_class: bool = False
    block_out_channels: list[int] = field(default_factory=lambda: [32, 64])
    layers_per_block: int = 2
    progress: bool = True

    def __post_init__(self) -> None:
        positive = ("steps", "batch_size", "gradient_accumulation_steps", "checkpoint_every", "log_every", "layers_per_block")
        for name in positive:
            value = getattr(self, name)
            if isinstance(value, bool) or not isinstance(value, int) or value < 1:
                raise ValueError(f"{name}: expected a positive integer, got {value!r}")
        if not self.sigma_min > 0:
            raise ValueError(f"sigma_min: expected a positive number (a zero sigma_min makes the flow stiff), got {self.sigma_min}")
        if not self.jacobian_weight >= 0:
            raise ValueError(f"jacobian_weight: expected a nonnegative number, got {self.jacobian_weight}")
        if not 0 <= self.cfg_dropout < 1:
            raise ValueError(f"cfg_dropout: expected a probability in [0, 1), got {self.cfg_dropout}")
        if not 0 <= self.ema_decay < 1:
            raise ValueError(f"ema_decay: expected a number in [0, 1), got {self.ema_decay}")
        if self.mixed_precision not in ("no", "fp16", "bf16"):
            raise ValueError(f"mixed_precision: expected no, fp16 or bf16, got {self.mixed_precision!r}")
        if not self.learning_rate > 0:
            raise ValueError(f"learning_rate: expected a positive number, got {self.learning_rate}")


def step_generator(seed: int, step: int, rank: int = 0) -> torch.Generator:
    """The generator of optimizer step ``step`` on process ``rank``."""
    state = np.random.SeedSequence([seed, step, rank]).generate_state(1, dtype=np.uint64)[0]
    return torch.Generator().manual_seed(int(state))


def flow_matching_loss(
    model: torch.nn.Module,
    images: torch.Tensor,
    labels: torch.Tensor,
    *,
    null_label: int,
    sigma_min: float,
    cfg_dropout: float,
    generator: torch.Generator,
    jacobian_weight: float = 0.0,
) -> torch.Tensor:
    """Mean squared velocity error on one batch, plus ``jacobian_weight`` times a Hutchinson
    estimate of ||dv/dx||_F^2 / d (Finlay et al., 2020), by a finite difference along a random
    direction: it flattens the field where it would turn stiff.

    Args:
        model: a ModalityUNets, possibly wrapped for distributed training.
        images: (B, C, H, W) data in [-1, 1]; labels: (B,) int64.
        null_label: the label that replaces a dropped one (classifier-free guidance).
    """
    b = images.shape[0]
    noise = torch.randn(images.shape, generator=generator)
    x_0 = torch.randn(images.shape, generator=generator)
    t = torch.rand(b, generator=generator)
    drop = torch.rand(b, generator=generator) < cfg_dropout
    device = images.device
    x_1 = images + sigma_min * noise.to(device)
    x_0, t = x_0.to(device), t.to(device)
    x_t = (1.0 - t.view(-1, 1, 1, 1)) * x_0 + t.view(-1, 1, 1, 1) * x_1
    labels = torch.where(drop.to(device), torch.full_like(labels, null_label), labels)
    velocity = model(x_t, t, labels)
    loss = torch.mean((velocity.float() - (x_1 - x_0)) ** 2)
    if jacobian_weight > 0:
        probe = torch.randn(images.shape, generator=generator).to(device)
        delta = 1e-2
        moved = model(x_t + delta * probe, t, labels)
        loss = loss + jacobian_weight * torch.mean(((moved.float() - velocity.float()) / delta) ** 2)
    return loss


def _latest_checkpoint(output_dir: Path) -> tuple[Path, int] | None:
    found = sorted((int(p.name.split("-")[1]), p) for p in (output_dir / CHECKPOINTS).glob("step-*") if p.is_dir())
    return (found[-1][1], found[-1][0]) if found else None


def _read_log(path: Path, upto: int) -> list[dict[str, str]]:
    if not path.exists():
        return []
    with path.open(newline="") as fh:
        return [row for row in csv.DictReader(fh) if int(row["step"]) <= upto]


def _write_log(path: Path, rows: list[dict[str, str]]) -> None:
    lines = ["step,loss,lr,seconds"] + [f"{r['step']},{r['loss']},{r['lr']},{r['seconds']}" for r in rows]
    atomic_write_text(path, "\n".join(lines) + "\n")


def build_model(cfg: TrainConfig, data: ImageSource) -> ModalityUNets:
    """A fresh ModalityUNets sized for ``data`` with ``cfg``'s architecture."""
    c, h, w = data.shape
    if h != w:
        raise ValueError(f"data: images must be square, got {h}x{w}; give --resolution")
    channels = list(cfg.block_out_channels)
    groups = min(8, *channels)
    return ModalityUNets(
        sample_size=h,
        in_channels=c,
        num_classes=len(data.class_names),
        per_class=cfg.per_class,
        class_names=data.class_names,
        cfg_null_label=cfg.cfg_dropout > 0,
        block_out_channels=channels,
        layers_per_block=cfg.layers_per_block,
        down_block_types=["DownBlock2D"] * (len(channels) - 1) + ["AttnDownBlock2D"],
        up_block_types=["AttnUpBlock2D"] + ["UpBlock2D"] * (len(channels) - 1),
        norm_num_groups=groups,
        attention_head_dim=min(8, channels[-1]),
        sigma_min=cfg.sigma_min,
    )


def train(cfg: TrainConfig, data: ImageSource | None = None) -> ModalityUNets:
    """Train, checkpoint and write ``cfg.output_dir``: ``unets/`` (EMA weights, safetensors),
    ``loss_log.csv``, ``training_args.json`` and ``checkpoints/``. Returns the EMA model."""
    from accelerate import Accelerator
    from diffusers.optimization import get_scheduler
    from diffusers.training_utils import EMAModel
    from tqdm.auto import tqdm

    output_dir = Path(cfg.output_dir)
    data = data if data is not None else load_image_source(
        cfg.data, split=cfg.split, resolution=cfg.resolution, channels=cfg.channels,
        image_column=cfg.image_column, label_column=cfg.label_column, max_samples=cfg.max_samples,
    )
    accelerator = Accelerator(gradient_accumulation_steps=cfg.gradient_accumulation_steps, mixed_precision=cfg.mixed_precision)
    torch.manual_seed(cfg.seed)
    model = build_model(cfg, data)
    ema = EMAModel(model.parameters(), decay=cfg.ema_decay)
    optimizer = torch.optim.AdamW(model.parameters(), lr=cfg.learning_rate, weight_decay=cfg.weight_decay)
    lr_schedule = get_scheduler("cosine", optimizer, num_warmup_steps=cfg.warmup_steps, num_training_steps=cfg.steps)
    model, optimizer, lr_schedule = accelerator.prepare(model, optimizer, lr_schedule)
    accelerator.register_for_checkpointing(ema)
    ema.to(accelerator.device)

    start = 0
    latest = _latest_checkpoint(output_dir) if cfg.resume else None
    if cfg.resume and latest is None:
        accelerator.print(f"resume: no checkpoint in {output_dir / CHECKPOINTS}; starting from step 0")
    if latest is not None:
        accelerator.load_state(str(latest[0]))
        start = latest[1]
    log_path = output_dir / LOSS_LOG
    output_dir.mkdir(parents=True, exist_ok=True)
    rows = _read_log(log_path, start) if start else []
    images, labels = data.images.to(accelerator.device), data.labels.to(accelerator.device)
    n = images.shape[0]
    unwrapped = accelerator.unwrap_model(model)
    bar = tqdm(total=cfg.steps, initial=start, desc="train", disable=not (cfg.progress and accelerator.is_main_process))
    began = time.perf_counter() - (float(rows[-1]["seconds"]) if rows else 0.0)  # seconds add up across resumes
    running: list[float] = []
    for step in range(start, cfg.steps):
        model.train()
        for micro in range(cfg.gradient_accumulation_steps):
            g = step_generator(cfg.seed, step * cfg.gradient_accumulation_steps + micro, accelerator.process_index)
            idx = torch.randint(n, (cfg.batch_size,), generator=g).to(accelerator.device)
            with accelerator.accumulate(model), accelerator.autocast():
                loss = flow_matching_loss(
                    model, images[idx], labels[idx], null_label=unwrapped.config.num_classes,
                    sigma_min=cfg.sigma_min, cfg_dropout=cfg.cfg_dropout, generator=g, jacobian_weight=cfg.jacobian_weight,
                )
                accelerator.backward(loss)
                if accelerator.sync_gradients:
                    accelerator.clip_grad_norm_(model.parameters(), 1.0)
                optimizer.step()
                lr_schedule.step()
                optimizer.zero_grad()
            running.append(float(loss.detach()))
        ema.step(unwrapped.parameters())
        done = step + 1
        if done % cfg.log_every == 0 or done == cfg.steps:
            mean_loss = float(np.mean(running))
            running = []
            rows.append({"step": str(done), "loss": f"{mean_loss:.6f}", "lr": f"{lr_schedule.get_last_lr()[0]:.3e}",
                         "seconds": f"{time.perf_counter() - began:.1f}"})
            if accelerator.is_main_process:
                _write_log(log_path, rows)
            bar.set_postfix(loss=f"{mean_loss:.4f}")
        bar.update(1)
        if done % cfg.checkpoint_every == 0 and done < cfg.steps:
            _save_checkpoint(accelerator, output_dir, done)
    bar.close()
    accelerator.wait_for_everyone()
    ema.copy_to(unwrapped.parameters())
    unwrapped.eval()
    if accelerator.is_main_process:
        unwrapped.save_pretrained(output_dir / "unets")
        args = {
            **asdict(cfg),
            "final_loss": float(rows[-1]["loss"]) if rows else None,
            "train_seconds": float(rows[-1]["seconds"]) if rows else None,
            "train_hardware": f"{accelerator.num_processes} x {accelerator.device.type} process(es), {torch.get_num_threads()} threads",
            "num_images": n,
            "class_names": data.class_names,
            "data_name": data.name,
            "parameters": sum(p.numel() for p in unwrapped.parameters()),
        }
        atomic_write_text(output_dir / "training_args.json", json.dumps(args, indent=2))
    return unwrapped


def _save_checkpoint(accelerator, output_dir: Path, step: int) -> None:
    """save_state into a temp folder, renamed into place; keeps the two newest checkpoints."""
    folder = output_dir / CHECKPOINTS
    final = folder / f"step-{step:07d}"
    tmp = folder / f".tmp-step-{step:07d}"
    if accelerator.is_main_process:
        shutil.rmtree(tmp, ignore_errors=True)
    accelerator.wait_for_everyone()
    accelerator.save_state(str(tmp))
    accelerator.wait_for_everyone()
    if accelerator.is_main_process:
        shutil.rmtree(final, ignore_errors=True)
        tmp.rename(final)
        for old in sorted(p for p in folder.glob("step-*") if p.is_dir())[:-2]:
            shutil.rmtree(old)
    accelerator.wait_for_everyone()
