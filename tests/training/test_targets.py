"""--ambient-target: each official Ambient-Omni loop, restated here as an independent oracle, on identical tensors.

The oracles follow the official training loops step by step (giannisdaras/ambient-omni @ 251c9ea):
pixel-diffusion/training/training_loop.py with training/loss.py `AmbientEDMLoss`, and
latent-diffusion/training/training_loop.py with its `EDM2Loss` (logvar = 0). They are written in float64
with their own algebra (the x_tn estimate as x_t - (1 - sigma_tn^2/sigma_t^2)(x_t - x0_pred)), so a shared
slip would have to be made twice.
"""
from __future__ import annotations

import json
import math

import numpy as np
import pytest
import torch

from ambient_eval.training.batches import eligible, sample_batch
from ambient_eval.training.loss import ambient_loss, edm_loss
from ambient_eval.training.sigma import threshold
from ambient_eval.training.targets import loss_inputs, loss_sigma_tn

SIGMA_DATA = 0.5
# classifier annotations (sigma_max 0), clean images, crop annotations (sigma_min huge, sigma_max > 0)
SIGMA_MIN = torch.tensor([0.0, 0.0, 0.0, 0.05, 0.2, 0.6, 1.5, 3.0, 300.0, 300.0])
SIGMA_MAX = torch.tensor([0.0, 0.0, 0.0, 0.0, 0.0, 0.0, 0.0, 0.0, 0.2, 1.0])


def _net(x, sigma, labels=None):
    """A fixed non-linear denoiser stand-in, x NCHW, sigma (N,) => NCHW."""
    s = sigma.reshape(-1, 1, 1, 1).to(x.dtype)
    return torch.tanh(0.7 * x + 0.1 / s) * (1 + 0.3 * torch.sin(x.flip(-1)))


def _official_pixel_loop(x0, noise_tn, z, ann_min, ann_max, sigma_t):
    """pixel-diffusion loop: sigma_tn = min(sigma_min, sigma_max), 0 where > sigma_t; x_tn = x0 + noise sigma_tn;
    AmbientEDMLoss summed over pixels."""
    x0, noise_tn, z, sigma_t = (a.double() for a in (x0, noise_tn, z, sigma_t))
    stn = torch.tensor([min(a, b) for a, b in zip(ann_min.tolist(), ann_max.tolist())], dtype=torch.float64)
    stn = torch.where(stn > sigma_t, torch.zeros_like(stn), stn)
    return _official_ambient_edm(x0 + noise_tn * stn[:, None, None, None], stn, sigma_t, z)


def _official_latent_loop(x0, noise_tn, z, ann_min, sigma_t):
    """latent-diffusion loop: sigma_tn = sigma_min, 0 where sigma_t <= sigma_tn; same loss (logvar 0)."""
    x0, noise_tn, z, sigma_t = (a.double() for a in (x0, noise_tn, z, sigma_t))
    stn = ann_min.double()
    stn = torch.where(sigma_t <= stn, torch.zeros_like(stn), stn)
    return _official_ambient_edm(x0 + noise_tn * stn[:, None, None, None], stn, sigma_t, z)


def _official_ambient_edm(x_tn, stn, st, z):
    s_t, s_tn = st[:, None, None, None], stn[:, None, None, None]
    x_t = x_tn + torch.sqrt(s_t ** 2 - s_tn ** 2) * z
    x0_pred = _net(x_t.float(), st.float()).double()
    x_tn_pred = x_t - (1 - s_tn ** 2 / s_t ** 2) * (x_t - x0_pred)
    w = (SIGMA_DATA ** 2 + s_t ** 2) / (s_t ** 2 * SIGMA_DATA ** 2) * s_t ** 4 / (s_t ** 2 - s_tn ** 2) ** 2
    return (w * (x_tn_pred - x_tn) ** 2).flatten(1).sum(1)


def _batch(seed: int, n: int = 256):
    """Official sigma-first draws: (index, sigma_t) pairs eligible under the annotations, and the tensors."""
    g = torch.Generator().manual_seed(seed)
    idx, sigma_t = sample_batch(n, SIGMA_MIN, g, sigma_max=SIGMA_MAX)
    y = torch.rand(len(SIGMA_MIN), 3, 4, 4, generator=g)[idx] * 2 - 1
    return idx, sigma_t, y, torch.randn(y.shape, generator=g), torch.randn(y.shape, generator=g)


def _ours(target, idx, sigma_t, y, z_tn, z):
    x_tn, s = loss_inputs("ambient-omni", target, y, z_tn, sigma_t, SIGMA_MIN[idx], SIGMA_MAX[idx])
    return ambient_loss(_net, x_tn, s, sigma_t, z, None, SIGMA_DATA, 4.0)


@pytest.mark.parametrize("seed", [0, 1])
@pytest.mark.parametrize("target", ["pixel-loop", "ambient-loss"])
def test_each_target_equals_its_official_loop(target, seed):
    idx, sigma_t, y, z_tn, z = _batch(seed)
    loss, used = _ours(target, idx, sigma_t, y, z_tn, z)
    ref = (_official_pixel_loop(y, z_tn, z, SIGMA_MIN[idx], SIGMA_MAX[idx], sigma_t) if target == "pixel-loop"
           else _official_latent_loop(y, z_tn, z, SIGMA_MIN[idx], sigma_t))
    assert bool(used.all())
    assert torch.allclose(loss.double(), ref, rtol=2e-5, atol=1e-6), (loss - ref).abs().max()
    # every kind of sample was drawn: clean, corrupted above its threshold, crops below their sigma_max
    kinds = {(float(SIGMA_MIN[i]) > 0, float(SIGMA_MAX[i]) > 0) for i in idx.tolist()}
    assert kinds == {(False, False), (True, False), (True, True)}


def test_pixel_loop_is_plain_edm_on_the_corrupted_image_above_its_threshold():
    idx, sigma_t, y, z_tn, z = _batch(3)
    loss, _ = _ours("pixel-loop", idx, sigma_t, y, z_tn, z)
    assert torch.allclose(loss, edm_loss(_net, y, sigma_t, z, None, SIGMA_DATA), rtol=1e-5, atol=1e-6)
    corrupted = SIGMA_MIN[idx] > 0
    assert bool((sigma_t[corrupted & (SIGMA_MAX[idx] == 0)] > threshold(SIGMA_MIN[idx])[corrupted & (SIGMA_MAX[idx] == 0)]).all())
    # ...while ambient-loss trains those samples towards x_tn = y + sigma_tn z' (a different loss)
    amb, _ = _ours("ambient-loss", idx, sigma_t, y, z_tn, z)
    assert not torch.allclose(amb[corrupted], loss[corrupted])


def test_loss_sigma_rules_pointwise():
    st = torch.tensor([0.1, 0.3, 0.3, 2.0, 0.5, 0.19])
    stn = torch.tensor([0.0, 0.2, 0.5, 1.0, 300.0, 0.2])
    smx = torch.tensor([0.0, 0.0, 0.0, 0.0, 1.0, 1.0])
    assert loss_sigma_tn("pixel-loop", st, stn, smx).tolist() == [0, 0, 0, 0, 0, 0]
    # latent: the annotation unless sigma_t <= it
    assert loss_sigma_tn("ambient-loss", st, stn, smx).tolist() == pytest.approx([0, 0.2, 0, 1.0, 0, 0])
    # pixel: min(sigma_min, sigma_max) when both are set and below sigma_t
    both = loss_sigma_tn("pixel-loop", torch.tensor([0.5]), torch.tensor([0.2]), torch.tensor([1.0]))
    assert both.tolist() == pytest.approx([0.2])
    with pytest.raises(ValueError):
        loss_sigma_tn("other", st, stn, smx)


@pytest.mark.parametrize("target", ["pixel-loop", "ambient-loss"])
def test_targets_in_the_loop_recorded_and_gated(tiny_folder, tmp_path, target):
    from ambient_eval.training.config import TrainConfig
    from ambient_eval.training.dataset import load_train_data
    from ambient_eval.training.loop import train

    data = load_train_data(tiny_folder)
    stn = np.where(np.arange(len(data)) % 2 == 0, 0.0, 0.4).astype(np.float32)
    cfg = TrainConfig(method="ambient-omni", arch="tiny", batch=8, steps=3, checkpoint_every=3, ambient_target=target,
                      sigma_policy="mask", warmup_steps=1)
    train(data, cfg, tmp_path / target, sigma_tn=stn)
    meta = json.loads((tmp_path / target / "final" / "config.json").read_text())["metadata"]
    assert meta["ambient_target"] == target and meta["batch_order"] == "draw" and meta["config"]["ambient_target"] == target
    # mask policy: samples below their threshold carry no loss in either loop (the annotation gates sigma_t)
    rows = (tmp_path / target / "loss.csv").read_text().splitlines()[1:]
    assert all(0 < float(r.split(",")[4]) < 1 for r in rows)  # frac_used: some masked, some used


def test_gate_matches_eligibility_for_mask_ablation():
    g = torch.Generator().manual_seed(0)
    sigma_t = torch.exp(torch.randn(500, generator=g) * 1.2 - 1.2)
    stn = torch.full((500,), 0.3)
    ok = eligible(sigma_t, threshold(stn), torch.zeros(500))
    assert bool((ok == (sigma_t > 0.3 * math.sqrt(4 / 3))).all())
