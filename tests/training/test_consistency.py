"""Tweedie consistency loss (Daras et al. 2024) on Gaussian data, where the optimal denoiser is known."""
from __future__ import annotations

import pytest
import torch

from ambient_eval.training.consistency import consistency_loss, posterior_sample, sample_sigma_below

C = 0.5  # data std: x0 ~ N(0, C^2 I)


def optimal(scale=1.0):
    # D*(x, s) = E[x0 | x0 + s n = x] = C^2 / (C^2 + s^2) x ; scale != 1 gives a wrong denoiser
    return lambda x, s, labels: scale * (C ** 2 / (C ** 2 + s.reshape(-1, 1, 1, 1) ** 2)) * x


def _batch(n=40_000, t=0.8, seed=0):
    g = torch.Generator().manual_seed(seed)
    x0 = C * torch.randn(n, 1, 2, 2, generator=g)
    tt = torch.full((n,), t)
    x_t = x0 + t * torch.randn(x0.shape, generator=g)
    s = sample_sigma_below(tt, g)
    z1, z2 = torch.randn(x0.shape, generator=g), torch.randn(x0.shape, generator=g)
    return x_t, tt, s, z1, z2


def test_consistency_loss_vanishes_for_the_optimal_denoiser():
    x_t, t, s, z1, z2 = _batch()
    loss = consistency_loss(optimal(), x_t, t, s, z1, z2)
    se = float(loss.std()) / len(loss) ** 0.5
    assert abs(float(loss.mean())) < 4 * se          # unbiased estimate of 0


@pytest.mark.parametrize("scale", [0.7, 1.3])
def test_consistency_loss_is_positive_for_a_wrong_denoiser(scale):
    x_t, t, s, z1, z2 = _batch(seed=1)
    loss = consistency_loss(optimal(scale), x_t, t, s, z1, z2)
    se = float(loss.std()) / len(loss) ** 0.5
    assert float(loss.mean()) > 10 * se


def test_consistency_gradient_flows_and_levels_are_below_sigma_tn():
    g = torch.Generator().manual_seed(2)
    stn = torch.tensor([0.05, 0.3, 1.0, 4.0]).repeat(2500)
    s = sample_sigma_below(stn, g)
    assert bool(((s > 0) & (s < stn)).all())
    w = torch.tensor(0.3, requires_grad=True)
    D = lambda x, sig, lab: w * x  # noqa: E731
    x_t, t, s, z1, z2 = _batch(n=64, seed=3)
    consistency_loss(D, x_t, t, s, z1, z2).mean().backward()
    assert w.grad is not None and torch.isfinite(w.grad)


def test_posterior_sample_mean_is_the_bridge_mean():
    x_t = torch.ones(1, 1, 1, 1)
    x0 = torch.zeros(1, 1, 1, 1)
    out = posterior_sample(x_t, torch.tensor([2.0]), x0, torch.tensor([1.0]), torch.zeros(1, 1, 1, 1))
    assert float(out) == pytest.approx(0.25)  # (s^2/t^2) x_t + (1 - s^2/t^2) x0


def test_trainer_logs_the_consistency_term(tmp_path):
    import csv

    import numpy as np

    from ambient_eval.errors import AmbientError
    from ambient_eval.training.config import TrainConfig
    from ambient_eval.training.dataset import TrainData
    from ambient_eval.training.loop import train

    imgs = torch.randint(0, 256, (12, 3, 8, 8), dtype=torch.uint8)
    data = TrainData("t", "fp", imgs, None, [str(i) for i in range(12)])
    stn = np.r_[np.zeros(2), np.full(10, 0.5)].astype(np.float32)
    cfg = TrainConfig(method="ambient-omni", arch="tiny", steps=3, batch=8, checkpoint_every=3, warmup_steps=0,
                      device="cpu", consistency=0.5)
    train(data, cfg, tmp_path / "r", sigma_tn=stn)
    with open(tmp_path / "r" / "loss.csv", newline="") as f:
        rows = list(csv.DictReader(f))
    assert len(rows) == 3 and all(float(r["consistency"]) != 0.0 for r in rows)
    with pytest.raises(AmbientError, match="--consistency"):
        TrainConfig(method="baseline", consistency=1.0).validate()
