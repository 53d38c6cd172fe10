"""Each variational bound on Gaussian data with a closed-form MI, and on fixed score matrices."""

from __future__ import annotations

import math

import numpy as np
import pytest
import torch

from mmmi_hf.evaluate.estimators import (
    ESTIMATORS,
    JointCritic,
    bound,
    dv_bound,
    estimate_mi,
    infonce_bound,
    logmeanexp_offdiag,
    make_critic,
    nwj_bound,
    smile_bound,
)

DIM, MI = 5, 1.0
RHO = math.sqrt(1 - math.exp(-2 * MI / DIM))  # per-dimension correlation: I = -d/2 log(1 - rho^2) = 1 nat


def gaussian_pairs(n: int, seed: int) -> tuple[np.ndarray, np.ndarray]:
    rng = np.random.default_rng(seed)
    x = rng.standard_normal((n, DIM))
    y = RHO * x + math.sqrt(1 - RHO**2) * rng.standard_normal((n, DIM))
    return x.astype(np.float32), y.astype(np.float32)


def test_bounds_on_fixed_score_matrices():
    scores = torch.tensor([[2.0, 0.0, 1.0], [0.5, 1.0, -1.0], [0.0, 3.0, 0.0]])
    off = [0.0, 1.0, 0.5, -1.0, 0.0, 3.0]
    assert float(logmeanexp_offdiag(scores)) == pytest.approx(math.log(np.mean(np.exp(off))), rel=1e-6)
    assert float(dv_bound(scores)) == pytest.approx(1.0 - math.log(np.mean(np.exp(off))), rel=1e-6)
    assert float(nwj_bound(scores)) == pytest.approx(1.0 - np.mean(np.exp(off)) / math.e, rel=1e-6)
    rows = [2.0 - math.log(math.exp(2) + 1 + math.e), 1.0 - math.log(math.exp(0.5) + math.e + math.exp(-1)), -math.log(2 + math.exp(3))]
    assert float(infonce_bound(scores)) == pytest.approx(np.mean(rows) + math.log(3), rel=1e-6)
    clipped = np.clip(off, -1.0, 1.0)
    assert float(smile_bound(scores, 1.0)) == pytest.approx(1.0 - math.log(np.mean(np.exp(clipped))), rel=1e-6)
    assert float(bound("smile-inf", scores)) == float(dv_bound(scores))
    assert float(bound("js", scores)) == pytest.approx(2.0 - np.mean(np.exp(off)), rel=1e-6)  # NWJ at f + 1
    # a constant critic carries no information: every bound reads 0 (NWJ at its optimum c = 1, JS at c = 0)
    for name in ESTIMATORS:
        c = 1.0 if name == "nwj" else 0.0
        assert float(bound(name, torch.full((4, 4), c))) == pytest.approx(0.0, abs=1e-6), name


@pytest.mark.parametrize("estimator", ESTIMATORS)
def test_each_estimator_recovers_gaussian_mi(estimator):
    x, y = gaussian_pairs(20000, seed=1)
    x_test, y_test = gaussian_pairs(4000, seed=2)
    result = estimate_mi(x, y, x_test, y_test, estimator=estimator, steps=600, batch_size=128, learning_rate=1e-3, hidden=64, embed=16)
    # lower bounds: close below the truth, never far above it; SMILE's clipped partition term is no
    # longer a bound, and at tau = 1 it reads 1.07 here
    high = 0.2 if estimator == "smile-1" else 0.1
    assert MI - 0.2 < result.estimate < MI + high, result.estimate
    assert len(result.train_curve) == 600 and result.eval_steps[-1] == 600 and result.estimate == result.eval_curve[-1]


def test_joint_critic_scores_every_pair_and_learns():
    critic = make_critic("joint", (3,), (2,), hidden=8, layers=1)
    assert isinstance(critic, JointCritic)
    x, y = torch.randn(4, 3), torch.randn(4, 2)
    scores = critic(x, y)
    assert scores.shape == (4, 4)
    with torch.no_grad():
        assert float(scores[1, 2]) == pytest.approx(float(critic.net(torch.cat([x[1], y[2]]))), rel=1e-6)
    x_train, y_train = gaussian_pairs(5000, seed=3)
    x_test, y_test = gaussian_pairs(2000, seed=4)
    result = estimate_mi(x_train, y_train, x_test, y_test, estimator="nwj", critic="joint", steps=300, batch_size=64, learning_rate=1e-3, hidden=64)
    assert MI - 0.3 < result.estimate < MI + 0.1


def test_runs_are_reproducible_and_inputs_are_checked():
    x, y = gaussian_pairs(300, seed=5)
    a = estimate_mi(x, y, x, y, estimator="dv", steps=5, batch_size=32, hidden=8)
    b = estimate_mi(x, y, x, y, estimator="dv", steps=5, batch_size=32, hidden=8)
    assert a.train_curve == b.train_curve and a.estimate == b.estimate
    with pytest.raises(ValueError, match=r"estimator: expected one of dv, js, infonce, mine, nwj, smile-1, smile-5, smile-inf, got 'kl'"):
        estimate_mi(x, y, x, y, estimator="kl")
    with pytest.raises(ValueError, match=r"critic: expected one of separable, separable-conv, joint, got 'bilinear'"):
        make_critic("bilinear", (2,), (2,))
    with pytest.raises(ValueError, match=r"critic: separable-conv needs \(C, H, W\) images, got samples of shape \(5,\) and \(5,\)"):
        estimate_mi(x, y, x, y, critic="separable-conv")
    with pytest.raises(ValueError, match=r"x, y: expected paired samples, got 300 x with 299 y"):
        estimate_mi(x, y[:-1], x, y)
    with pytest.raises(ValueError, match=r"batch_size: expected 2..300 \(the training pairs\), got 512"):
        estimate_mi(x, y, x, y, batch_size=512)
    with pytest.raises(ValueError, match=r"steps: expected a positive integer, got 0"):
        estimate_mi(x, y, x, y, steps=0)
    with pytest.raises(ValueError, match=r"val_fraction: 0.9 of 300 pairs leaves 270 for validation and 30 for training; expected >= 2 and >= batch_size \(128\)"):
        estimate_mi(x, y, x, y, val_fraction=0.9)


def test_conv_critic_on_images_sharing_a_global_shift():
    # x = s 1 + e, y = s 1 + e' on 1x4x4 images (noise variance 4 per pixel): the pixel means are
    # sufficient, with correlation 1 / (1 + 4/16) = 0.8, so I(x;y) = -1/2 log(1 - 0.64) = 0.5108 nats
    rng = np.random.default_rng(7)

    def images(n):
        s = rng.standard_normal((n, 1, 1, 1))
        return (s + 2 * rng.standard_normal((n, 1, 4, 4))).astype(np.float32), (s + 2 * rng.standard_normal((n, 1, 4, 4))).astype(np.float32)

    (x, y), (x_test, y_test) = images(8000), images(2000)
    result = estimate_mi(x, y, x_test, y_test, estimator="infonce", critic="separable-conv", steps=500, hidden=8, embed=4,
                         learning_rate=2e-3, val_fraction=0.2)
    truth = -0.5 * math.log(1 - 0.8**2)
    assert truth - 0.1 < result.estimate < truth + 0.05, result.estimate
    # early stopping: the reported estimate is the test bound where the validation bound peaked
    best = int(np.argmax(result.val_curve))
    assert result.best_step == result.eval_steps[best] and result.estimate == result.eval_curve[best]
