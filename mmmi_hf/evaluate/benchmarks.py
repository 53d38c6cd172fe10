"""The paper's experiments as one call each (``mmmi bench estimators``, ``mmmi bench regression``,
``mmmi plot decay``): datasets built on demand and cached, fixed seeds, CSV + JSON + PNG out.

CPU defaults (this 2-core machine): 2,000 samples per config (1,600 train, of which 320 for
early stopping, / 400 test), separable critics with small CNN encoders, 3,000 steps of batch
128; the full table on dag1-sweep-00..09 takes about 30 minutes the first time (16 of them
building the datasets). The paper's scale is ``--num-samples 12500 --steps 20000`` (10,000
training pairs), best run on a GPU.
"""

from __future__ import annotations

import csv
import io
import json
import math
import os
from pathlib import Path

import numpy as np

from mmmi_hf.atomic import atomic_write_text
from mmmi_hf.evaluate.estimators import ESTIMATORS, estimate_mi
from mmmi_hf.evaluate.sweep import bench_splits, ensure_built, expand_configs, load_split

__all__ = ["decay_table", "run_estimator_bench", "run_regression_bench", "summarize_estimates", "write_csv"]

CRITIC_SIZES = {  # hidden units (channels for separable-conv), layers, embedding
    "separable-conv": {"hidden": 16, "layers": 2, "embed": 16},
    "separable": {"hidden": 256, "layers": 2, "embed": 32},
    "joint": {"hidden": 128, "layers": 2},
}
PAPER_TABLE_1 = {  # correlation, RMSE (nats) as printed in the paper (CIFAR-like images, 10k pairs)
    "dv": (0.995, 0.1094), "js": (0.993, 0.3049), "infonce": (0.991, 0.1981), "mine": (0.993, 0.0983),
    "nwj": (0.996, 0.0851), "smile-1": (0.998, 0.0935), "smile-5": (0.993, 0.0974), "smile-inf": (0.993, 0.0969),
}


def write_csv(path: str | os.PathLike[str], rows: list[dict]) -> None:
    """Rows (dicts with the same keys) to CSV, atomically."""
    buffer = io.StringIO()
    writer = csv.DictWriter(buffer, fieldnames=list(rows[0]))
    writer.writeheader()
    writer.writerows(rows)
    atomic_write_text(path, buffer.getvalue())


def summarize_estimates(rows: list[dict]) -> dict[str, dict]:
    """Table 1 per estimator: Pearson correlation of estimate with the exact MI, RMSE of estimate
    minus exact (nats), and the least-squares line estimate = slope * exact + intercept with its
    residual RMSE (the paper's caption can be read either way, so both are given)."""
    summary = {}
    for name in dict.fromkeys(r["estimator"] for r in rows):
        truth = np.array([r["truth"] for r in rows if r["estimator"] == name])
        est = np.array([r["estimate"] for r in rows if r["estimator"] == name])
        slope, intercept = np.polyfit(truth, est, 1) if len(truth) > 1 else (math.nan, math.nan)
        summary[name] = {
            "correlation": float(np.corrcoef(truth, est)[0, 1]) if len(truth) > 1 else math.nan,
            "rmse": float(np.sqrt(np.mean((est - truth) ** 2))),
            "slope": float(slope),
            "intercept": float(intercept),
            "fit_rmse": float(np.sqrt(np.mean((est - (slope * truth + intercept)) ** 2))) if len(truth) > 1 else math.nan,
        }
    return summary


def _bar(total: int, desc: str, progress: bool):
    from tqdm.auto import tqdm

    return tqdm(total=total, desc=desc, disable=not progress, smoothing=0.05)


def run_estimator_bench(
    configs: list[str],
    *,
    out: str | os.PathLike[str] = "mmmi-bench/estimators",
    data_dir: str | os.PathLike[str] = "mmmi",
    num_samples: int = 2000,
    estimators: list[str] | None = None,
    critic: str = "separable-conv",
    steps: int = 3000,
    batch_size: int = 128,
    learning_rate: float = 1e-3,
    val_fraction: float = 0.2,
    seed: int = 0,
    model: str = "mmmi-digits",
    progress: bool = True,
) -> dict:
    """Every estimator on I(x1;x2) of every config. Writes ``out``/estimates.csv (one row per
    run), summary.csv (Table 1), curves.json (test and validation bounds during training) and
    fig3_estimates.png. Returns {"rows", "summary"}."""
    estimators = list(estimators or ESTIMATORS)
    bad = [e for e in estimators if e not in ESTIMATORS]
    if bad:
        raise ValueError(f"estimators: expected names from {', '.join(ESTIMATORS)}, got {', '.join(bad)}")
    configs = expand_configs(configs)
    splits = bench_splits(num_samples)
    metas = ensure_built(configs, data_dir, splits, model=model, progress=progress)
    out = Path(out)
    out.mkdir(parents=True, exist_ok=True)
    rows, curves = [], {}
    bar = _bar(len(metas) * len(estimators) * steps, "estimators", progress)
    for name, meta in metas.items():
        train = load_split(data_dir, name, "train", ["x1", "x2"])
        test = load_split(data_dir, name, "test", ["x1", "x2"])
        truth = float(meta["mutual_information"]["x1;x2"])
        for estimator in estimators:
            bar.set_postfix_str(f"{name} {estimator}")
            result = estimate_mi(
                train["x1"], train["x2"], test["x1"], test["x2"], estimator=estimator, critic=critic, steps=steps,
                batch_size=batch_size, learning_rate=learning_rate, val_fraction=val_fraction, seed=seed,
                callback=lambda _: bar.update(), **CRITIC_SIZES[critic],
            )
            rows.append({"config": name, "estimator": estimator, "critic": critic, "truth": truth, "estimate": result.estimate,
                         "best_step": result.best_step, "train_final": float(np.mean(result.train_curve[-100:])), "steps": steps,
                         "train_pairs": splits["train"], "test_pairs": splits["test"], "seconds": round(result.seconds, 2)})
            curves[f"{name}/{estimator}"] = {"steps": result.eval_steps, "test": result.eval_curve, "validation": result.val_curve}
        write_csv(out / "estimates.csv", rows)  # after each config: partial results survive an interrupt
    bar.close()
    summary = summarize_estimates(rows)
    write_csv(out / "summary.csv", [{"estimator": k, **v, "paper_correlation": PAPER_TABLE_1[k][0], "paper_rmse": PAPER_TABLE_1[k][1]}
                                    for k, v in summary.items()])
    atomic_write_text(out / "curves.json", json.dumps(curves))
    from mmmi_hf.evaluate.plots import plot_estimates

    plot_estimates(rows, summary, out / "fig3_estimates.png")
    return {"rows": rows, "summary": summary}


def run_regression_bench(
    configs: list[str],
    *,
    out: str | os.PathLike[str] = "mmmi-bench/regression",
    data_dir: str | os.PathLike[str] = "mmmi",
    num_samples: int = 2000,
    epochs: int = 500,
    seed: int = 0,
    model: str = "mmmi-digits",
    progress: bool = True,
) -> list[dict]:
    """A shallow CNN regresses theta from x1 on every config. Writes ``out``/regression.csv,
    fig4_regression.png (best test RMSE against I(theta;x1), with the exact floor) and
    fig7_errors.png (theta - theta_hat for the lowest- and highest-MI configs). Returns the rows."""
    from mmmi_hf.evaluate.plots import plot_errors, plot_regression
    from mmmi_hf.evaluate.regression import bayes_rmse, train_regressor

    configs = expand_configs(configs)
    metas = ensure_built(configs, data_dir, bench_splits(num_samples), model=model, progress=progress)
    out = Path(out)
    out.mkdir(parents=True, exist_ok=True)
    rows, errors = [], {}
    bar = _bar(len(metas) * epochs, "regression", progress)
    for name, meta in metas.items():
        train = load_split(data_dir, name, "train", ["x1", "theta"])
        test = load_split(data_dir, name, "test", ["x1", "theta"])
        bar.set_postfix_str(name)
        result = train_regressor(train["x1"], train["theta"], test["x1"], test["theta"], epochs=epochs, seed=seed,
                                 callback=lambda _: bar.update())
        mi = float(meta["mutual_information"]["theta;x1"])
        theta_variance = float(np.sum(np.square(meta["spec"]["eta"])))  # theta = eta . u, u ~ N(0, I); solved eta in the card
        rows.append({"config": name, "mi_theta_x1": mi, "test_rmse": result.test_rmse, "bayes_rmse": bayes_rmse(theta_variance, mi),
                     "val_rmse": result.val_rmse, "best_epoch": result.best_epoch, "epochs": epochs,
                     "test_samples": len(test["theta"]), "seconds": round(result.seconds, 2)})
        errors[name] = result.errors
    bar.close()
    write_csv(out / "regression.csv", rows)
    plot_regression(rows, out / "fig4_regression.png")
    ends = sorted(rows, key=lambda r: r["mi_theta_x1"])
    shown = [ends[0], ends[-1]] if len(ends) > 1 else ends
    plot_errors({f"{r['config']}, I={r['mi_theta_x1']:.2f}": errors[r["config"]] for r in shown},
                {f"{r['config']}, I={r['mi_theta_x1']:.2f}": r["bayes_rmse"] for r in shown}, out / "fig7_errors.png")
    return rows


def decay_table(configs: list[str]) -> dict[str, dict[str, list[float]]]:
    """Exact I(x1;xi) (i = 2..N) and I(theta;xi) (i = 1..N) of each config, in nats (Fig. 6)."""
    from mmmi_hf.causal.model import CausalModel

    table = {}
    for config in expand_configs(configs):
        model = CausalModel.from_spec(config)
        n = model.spec.modalities
        table[model.spec.name] = {
            "x1": [model.mutual_information(f"x1;x{i}") for i in range(2, n + 1)],
            "theta": [model.mutual_information(f"theta;x{i}") for i in range(1, n + 1)],
        }
    return table
