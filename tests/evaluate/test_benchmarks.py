"""The benchmark harness on a 2-config toy sweep (tiny generator), and Fig. 6 from the exact engine."""

from __future__ import annotations

import csv
import json
import math

import numpy as np
import pytest

from mmmi_hf.causal.model import CausalModel
from mmmi_hf.evaluate.benchmarks import decay_table, run_estimator_bench, run_regression_bench, summarize_estimates
from mmmi_hf.evaluate.sweep import bench_splits, expand_configs, load_split
from mmmi_hf.pipelines import MMMIPipeline
from tests.dense import dense_covariance, dense_mi

SWEEP = ["dag1-sweep-00", "dag1-sweep-09"]


def read_csv(path) -> list[dict]:
    with open(path, newline="") as fh:
        return list(csv.DictReader(fh))


def test_expand_configs_and_splits():
    assert expand_configs(["dag1-sweep-00..09"]) == [f"dag1-sweep-{i:02d}" for i in range(10)]
    assert expand_configs(["dag1", "dag1-sweep-08..9", "dag1"]) == ["dag1", "dag1-sweep-08", "dag1-sweep-09"]
    with pytest.raises(ValueError, match=r"configs: range 'dag1-sweep-09..00' runs backwards"):
        expand_configs(["dag1-sweep-09..00"])
    with pytest.raises(ValueError, match=r"configs: 'dag1-sweep-10' is neither a built-in configuration"):
        expand_configs(["dag1-sweep-05..10"])
    assert bench_splits(2000) == {"train": 1600, "test": 400}
    with pytest.raises(ValueError, match=r"num_samples: expected at least 10 \(to leave a held-out test split\), got 5"):
        bench_splits(5)


def test_estimator_bench_on_a_toy_sweep(model_dir, tmp_path):
    data, out = tmp_path / "mmmi", tmp_path / "est"
    kwargs = dict(out=out, data_dir=data, num_samples=60, estimators=["nwj", "infonce"], steps=15, batch_size=16, model=model_dir, progress=False)
    result = run_estimator_bench(SWEEP, **kwargs)
    exact = {c: CausalModel.from_spec(c).mutual_information("x1;x2") for c in SWEEP}
    assert exact["dag1-sweep-00"] == pytest.approx(0.02843, abs=5e-6) and exact["dag1-sweep-09"] == pytest.approx(1.3913, abs=5e-5)
    rows = read_csv(out / "estimates.csv")
    assert [(r["config"], r["estimator"]) for r in rows] == [(c, e) for c in SWEEP for e in ("nwj", "infonce")]
    for row, ret in zip(rows, result["rows"]):
        assert float(row["truth"]) == exact[row["config"]]  # the card's exact MI, exactly
        assert float(row["estimate"]) == ret["estimate"] and row["train_pairs"] == "48" and row["test_pairs"] == "12"
    summary = {r["estimator"]: r for r in read_csv(out / "summary.csv")}
    assert set(summary) == {"nwj", "infonce"} and float(summary["nwj"]["paper_rmse"]) == 0.0851
    assert float(summary["nwj"]["rmse"]) == pytest.approx(result["summary"]["nwj"]["rmse"], rel=1e-12)
    assert set(json.loads((out / "curves.json").read_text())) == {f"{c}/{e}" for c in SWEEP for e in ("nwj", "infonce")}
    assert (out / "fig3_estimates.png").read_bytes()[:4] == b"\x89PNG"
    # the datasets are cached in the Hub-layout folder: a rerun builds nothing and repeats every number
    shards = {p: p.stat().st_mtime_ns for p in data.rglob("*.parquet")}
    again = run_estimator_bench(SWEEP, **kwargs)
    assert {p: p.stat().st_mtime_ns for p in data.rglob("*.parquet")} == shards
    assert [r["estimate"] for r in again["rows"]] == [r["estimate"] for r in result["rows"]]
    # an interrupted cache is completed, not used half-made
    lost = data / "dag1-sweep-00" / "train-00000-of-00001.parquet"
    lost.unlink()
    run_estimator_bench(SWEEP[:1], **{**kwargs, "estimators": ["nwj"]})
    assert lost.exists() and lost.stat().st_mtime_ns > shards[lost]
    # the arrays are the generator's exact float32 outputs; the test split continues the stream
    pipe = MMMIPipeline.from_pretrained(model_dir)
    pipe.scheduler = pipe.scheduler.with_spec("dag1-sweep-09")
    test = load_split(data, "dag1-sweep-09", "test", ["x2", "theta"])
    ref = pipe(12, start=48)
    np.testing.assert_array_equal(test["x2"], ref.modalities["x2"].numpy())
    np.testing.assert_array_equal(test["theta"], ref.theta.numpy())
    with pytest.raises(ValueError, match=r"estimators: expected names from dv, js, .*, got kl"):
        run_estimator_bench(SWEEP, **{**kwargs, "estimators": ["kl"]})


def test_summary_statistics():
    rows = [{"estimator": "dv", "truth": t, "estimate": e} for t, e in ((0.0, 0.1), (1.0, 0.9), (2.0, 2.3))]
    s = summarize_estimates(rows)["dv"]
    assert s["rmse"] == pytest.approx(math.sqrt((0.01 + 0.01 + 0.09) / 3))
    assert s["correlation"] == pytest.approx(np.corrcoef([0, 1, 2], [0.1, 0.9, 2.3])[0, 1])
    assert s["slope"] == pytest.approx(1.1) and s["intercept"] == pytest.approx(0.0, abs=1e-12)


def test_regression_bench_on_a_toy_sweep(model_dir, tmp_path):
    out = tmp_path / "reg"
    rows = run_regression_bench(SWEEP, out=out, data_dir=tmp_path / "mmmi", num_samples=60, epochs=3, model=model_dir, progress=False)
    for row in rows:
        model = CausalModel.from_spec(row["config"])
        mi = model.mutual_information("theta;x1")
        assert row["mi_theta_x1"] == mi
        # exact floor: theta ~ N(0, eta.eta) and Var(theta | z1) = Var(theta) exp(-2 I); here eta = [1]
        assert row["bayes_rmse"] == pytest.approx(math.exp(-mi), rel=1e-12)
        assert 1 <= row["best_epoch"] <= 3 and row["test_samples"] == 12
    assert rows[0]["mi_theta_x1"] == pytest.approx(0.134, abs=1e-9) and rows[1]["mi_theta_x1"] == pytest.approx(1.73, abs=1e-9)
    assert [r["config"] for r in read_csv(out / "regression.csv")] == SWEEP
    assert (out / "fig4_regression.png").exists() and (out / "fig7_errors.png").exists()


def test_decay_table_matches_dense_log_determinants():
    from mmmi_hf.causal.templates import build_templates

    table = decay_table(["decay-a1.4-b1.2"])["decay-a1.4-b1.2"]
    spec = CausalModel.from_spec("decay-a1.4-b1.2").spec
    cov = dense_covariance(spec, build_templates(spec))  # 641 x 641: 10 modalities of d = 64
    for i in range(2, 11):
        assert table["x1"][i - 2] == pytest.approx(dense_mi(cov, spec.d, {1}, {i}), rel=1e-9)
    for i in range(1, 11):
        assert table["theta"][i - 1] == pytest.approx(dense_mi(cov, spec.d, {0}, {i}), rel=1e-9)
    assert all(a > b for a, b in zip(table["x1"], table["x1"][1:])) and all(a > b for a, b in zip(table["theta"], table["theta"][1:]))


def test_regressor_input_errors():
    from mmmi_hf.evaluate.regression import train_regressor

    x, theta = np.zeros((10, 1, 4, 4), np.float32), np.zeros(10, np.float32)
    with pytest.raises(ValueError, match=r"x, theta: expected images \(n, C, H, W\) with n targets, got \(10, 1, 4, 4\) with \(9,\)"):
        train_regressor(x, theta[:9], x, theta)
    with pytest.raises(ValueError, match=r"x: expected at least 3 training images, got 2"):
        train_regressor(x[:2], theta[:2], x, theta)
