"""Official (sigma-first) batch sampling, locality branch, loss scale."""
from __future__ import annotations

import csv
import json
import math

import numpy as np
import pytest
import torch

from ambient_eval.training.batches import (draw_images, draw_probability, effective_sigma_tn, eligible,
                                           sample_batch)
from ambient_eval.training.sigma import threshold

# 3 clean, corrupted at several levels, one "locality" image (never usable at high noise: sigma_tn
# huge) that is clean below sigma_max = 0.4, and one corrupted image that also has a locality range.
SIGMA_TN = torch.tensor([0, 0, 0, 0.1, 0.3, 0.5, 1.0, 2.0, 300.0, 0.8])
SIGMA_MAX = torch.tensor([0, 0, 0, 0, 0, 0, 0, 0, 0.4, 0.2])


def test_every_batch_is_full_and_every_draw_eligible():
    g = torch.Generator().manual_seed(0)
    thr = threshold(SIGMA_TN)
    for _ in range(50):
        idx, sigma = sample_batch(64, SIGMA_TN, g, sigma_max=SIGMA_MAX)
        assert idx.shape == (64,) and sigma.shape == (64,) and idx.dtype == torch.int64
        assert bool(((idx >= 0) & (idx < len(SIGMA_TN))).all())
        assert bool(eligible(sigma, thr[idx], SIGMA_MAX[idx]).all())
        # a corrupted image below its threshold appears only through its locality range
        below = sigma <= thr[idx]
        assert bool((sigma[below] < SIGMA_MAX[idx][below]).all())


def test_full_batches_without_clean_images():
    g = torch.Generator().manual_seed(1)
    stn = torch.full((20,), 0.5)
    idx, sigma = sample_batch(128, stn, g)
    assert len(idx) == 128 and bool((sigma > threshold(stn)[idx]).all())  # levels redrawn above the threshold


@pytest.mark.parametrize("sigma", [0.05, 0.15, 0.35, 0.5, 0.9, 1.5, 3.0, 500.0])
def test_draw_probability_at_each_sigma_follows_the_rule(sigma):
    """Empirical frequencies of draw_images at a fixed sigma == 1{eligible}/#eligible (chi-square)."""
    from scipy.stats import chi2

    M = 20_000
    g = torch.Generator().manual_seed(int(sigma * 1000))
    idx = draw_images(torch.full((M,), sigma), threshold(SIGMA_TN), SIGMA_MAX, g)
    counts = np.bincount(idx.numpy(), minlength=len(SIGMA_TN))
    p = draw_probability(sigma, SIGMA_TN, SIGMA_MAX).numpy()
    assert np.all(counts[p == 0] == 0)                      # ineligible images are never drawn
    e = p[p > 0] * M
    stat = float(((counts[p > 0] - e) ** 2 / e).sum())
    assert stat < chi2.ppf(0.999, max(1, int((p > 0).sum()) - 1))
    # the rule itself, spelled out: clean always; corrupted above sigma_tn*sqrt(4/3); locality below sigma_max
    rule = [(s == 0) or (sigma > s * math.sqrt(4 / 3)) or (sigma < m) for s, m in zip(SIGMA_TN.tolist(), SIGMA_MAX.tolist())]
    assert np.array_equal(p > 0, np.array(rule))


def test_sigma_marginal_is_edm_lognormal_when_clean_images_exist():
    g = torch.Generator().manual_seed(2)
    _, sigma = sample_batch(100_000, SIGMA_TN, g)
    assert float(sigma.log().mean()) == pytest.approx(-1.2, abs=0.02)
    assert float(sigma.log().std()) == pytest.approx(1.2, abs=0.02)


def test_clean_images_dominate_low_noise_batches():
    """At low sigma only clean images are eligible: the batch is all clean (the point of the rule)."""
    g = torch.Generator().manual_seed(3)
    stn = torch.cat([torch.zeros(6), torch.full((94,), 0.6)])
    idx, sigma = sample_batch(20_000, stn, g)
    low = sigma < float(threshold(torch.tensor(0.6)))
    assert bool((idx[low] < 6).all()) and int(low.sum()) > 1000
    # above the threshold all 100 images are eligible: clean share ~ 6%
    assert float((idx[~low] < 6).float().mean()) == pytest.approx(0.06, abs=0.01)


def test_locality_masking_uses_image_as_clean_below_sigma_max():
    sigma_t = torch.tensor([0.1, 0.39, 0.41, 5.0])
    stn = torch.full((4,), 300.0)
    smax = torch.full((4,), 0.4)
    out = effective_sigma_tn(sigma_t, stn, smax)
    assert out.tolist() == [0.0, 0.0, 300.0, 300.0]
    assert torch.equal(effective_sigma_tn(sigma_t, stn, None), stn)
    # and such an image is never drawn above sigma_max (its sigma_tn is far above every level)
    g = torch.Generator().manual_seed(4)
    idx, sigma = sample_batch(5000, SIGMA_TN, g, sigma_max=SIGMA_MAX)
    assert float(sigma[idx == 8].max()) < 0.4


def test_locality_from_annotations_file(tmp_path):
    from ambient_eval.errors import AmbientError
    from ambient_eval.training.dataset import read_sigma_max

    p = tmp_path / "a.jsonl"
    rows = [{"kind": "ambient-eval.annotations"}, {"index": 1, "sigma_tn": 300.0, "sigma_max": 0.4},
            {"index": 0, "sigma_tn": 0.0}]
    p.write_text("\n".join(json.dumps(r) for r in rows) + "\n")
    assert read_sigma_max(p, 2).tolist() == pytest.approx([0.0, 0.4])
    p.write_text("\n".join(json.dumps(r) for r in rows[:2] + [{"index": 0, "sigma_tn": 0.0}]).replace("0.4", "-1"))
    with pytest.raises(AmbientError):
        read_sigma_max(p, 2)
    p.write_text(json.dumps(rows[0]) + "\n" + json.dumps({"index": 0, "sigma_tn": 0.0}) + "\n")
    assert read_sigma_max(p, 1) is None


def test_losses_are_summed_over_pixels():
    from ambient_eval.training.loss import ambient_loss, edm_loss, edm_weight

    y = torch.randn(3, 3, 4, 4)
    sigma = torch.tensor([0.2, 1.0, 3.0])
    zero = lambda x, s, l: torch.zeros_like(x)  # noqa: E731
    n = torch.zeros_like(y)
    expect = edm_weight(sigma) * (y ** 2).flatten(1).sum(1)
    torch.testing.assert_close(edm_loss(zero, y, sigma, n), expect)
    torch.testing.assert_close(ambient_loss(zero, y, torch.zeros(3), sigma, n)[0], expect)


def _loss_rows(run_dir):
    with open(run_dir / "loss.csv", newline="") as f:
        return list(csv.DictReader(f))


def test_trainer_sigma_first_batches_are_fully_used(tmp_path):
    """Ambient-omni with sigma-first: every sample of every batch carries a loss; mask: fewer."""
    from dataclasses import replace

    from ambient_eval.training.config import TrainConfig
    from ambient_eval.training.dataset import TrainData
    from ambient_eval.training.loop import train

    imgs = torch.randint(0, 256, (30, 3, 8, 8), dtype=torch.uint8)
    data = TrainData("t", "fp", imgs, None, [str(i) for i in range(30)])
    stn = np.r_[np.zeros(3), np.full(27, 1.0)].astype(np.float32)
    cfg = TrainConfig(method="ambient-omni", arch="tiny", steps=6, batch=16, checkpoint_every=6, warmup_steps=0,
                      device="cpu")
    train(data, cfg, tmp_path / "sf", sigma_tn=stn)
    assert all(float(r["frac_used"]) == 1.0 for r in _loss_rows(tmp_path / "sf"))
    train(data, replace(cfg, sigma_policy="mask"), tmp_path / "mask", sigma_tn=stn)
    assert np.mean([float(r["frac_used"]) for r in _loss_rows(tmp_path / "mask")]) < 0.9
