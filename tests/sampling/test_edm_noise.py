"""Per-seed randomness exactly as EDM's generate.py draws it: latents, class, churn on every step.

The reference below is written in the test from Karras et al. 2022, Algorithm 2, in float64, one
image at a time, with EDM's per-seed draw order: a generator seeded with the seed draws the
latents (float32), then the class (randint(label_dim), conditional models only, also when a class
is forced), then one float64 normal per step (every step, also where gamma = 0).
"""
from __future__ import annotations

import math

import numpy as np
import pytest
import torch

from ambient_eval.models.base import Denoiser, sigma_column
from ambient_eval.sampling.generate import generate, resolve_labels, to_uint8

LABEL_MEANS = (-0.4, 0.1, 0.5)


class ClassGaussian(Denoiser):
    """Exact denoiser for class-conditional Gaussian data y | c ~ N(mu_c, s^2 I), elementwise."""

    def __init__(self, label_dim=3, s=0.5, res=4, channels=2):
        super().__init__(img_resolution=res, img_channels=channels, label_dim=label_dim)
        self.s = s

    def forward(self, x, sigma, class_labels=None):
        sig = sigma_column(sigma, x)
        mu = torch.zeros_like(sig) if class_labels is None else \
            (class_labels @ torch.tensor(LABEL_MEANS[:self.label_dim])).reshape(-1, 1, 1, 1)
        return mu + self.s ** 2 / (self.s ** 2 + sig ** 2) * (x - mu)


def reference(D, seed, *, steps, S_churn=0.0, S_min=0.0, S_max=math.inf, S_noise=1.0, cls=None,
              solver="heun", sigma_min=0.002, sigma_max=80.0, rho=7.0):
    """One image: (x0 float64 (C, H, W), class used) by EDM's Algorithm 2 and draw order."""
    shape = [D.img_channels, D.img_resolution, D.img_resolution]
    g = torch.Generator().manual_seed(seed)
    z = torch.randn(shape, generator=g)                                   # 1. latents, float32
    labels, used = None, None
    if D.label_dim:
        drawn = int(torch.randint(D.label_dim, size=[], generator=g))    # 2. class, always drawn
        used = drawn if cls is None else cls
        labels = torch.nn.functional.one_hot(torch.tensor([used]), D.label_dim).float()
    N = steps
    t = [(sigma_max ** (1 / rho) + i / (N - 1) * (sigma_min ** (1 / rho) - sigma_max ** (1 / rho))) ** rho
         for i in range(N)] + [0.0]
    t = torch.tensor(t, dtype=torch.float64)

    def den(x, s):
        return D(x[None].to(torch.float32), s.to(torch.float32).reshape(1), labels)[0].to(torch.float64)

    x = z.to(torch.float64) * t[0]
    for i in range(N):
        gamma = min(S_churn / N, math.sqrt(2) - 1) if S_min <= t[i] <= S_max else 0.0
        eps = torch.randn(shape, generator=g, dtype=torch.float64)        # 3. every step
        t_hat = t[i] + gamma * t[i]
        x_hat = x + (t_hat ** 2 - t[i] ** 2).sqrt() * S_noise * eps
        d = (x_hat - den(x_hat, t_hat)) / t_hat
        x_next = x_hat + (t[i + 1] - t_hat) * d
        if solver == "heun" and i < N - 1:
            d2 = (x_next - den(x_next, t[i + 1])) / t[i + 1]
            x_next = x_hat + (t[i + 1] - t_hat) * (0.5 * d + 0.5 * d2)
        x = x_next
    return x, used


def _ours(D, seeds, batch, **kw):
    from ambient_eval.sampling.samplers import SamplerConfig

    cls = kw.pop("cls", None)
    cfg = SamplerConfig(sampler=kw.pop("solver", "heun"), steps=kw.pop("steps"), **kw)
    out = {}
    for s, x in generate(D, seeds, batch_size=batch, config=cfg, device="cpu", class_labels=cls):
        out.update(zip(s, x))
    return out


CASES = [dict(steps=6, S_churn=10.0, S_min=0.05, S_max=20.0),       # gamma = 0 on some steps
         dict(steps=6, S_churn=40.0, S_noise=1.007),                 # gamma capped at sqrt 2 - 1
         dict(steps=5, S_churn=3.0, S_min=0.5, S_max=5.0, cls=2),    # forced class
         dict(steps=5, S_churn=5.0, solver="euler"),
         dict(steps=6)]                                              # deterministic


@pytest.mark.parametrize("case", CASES)
def test_stochastic_heun_matches_edm_per_seed(case):
    D = ClassGaussian()
    seeds = [0, 1, 5, 123456, 2 ** 32 - 1]
    ours = _ours(D, seeds, batch=2, **dict(case))
    for s in seeds:
        x, _ = reference(D, s, **case)
        assert torch.equal(ours[s], to_uint8(x[None])[0]), (case, s)
    stoch = dict(case, S_churn=0.0) if case.get("S_churn") else None
    if stoch:                                          # the churn noise really changes the images
        det = _ours(D, seeds, batch=5, **stoch)
        assert any(not torch.equal(det[s], ours[s]) for s in seeds)


def test_float64_paths_agree_closely():
    # Same comparison before quantisation: the reference and the sampler agree to rounding.
    from ambient_eval.sampling.generate import NetCall
    from ambient_eval.sampling.noise import SeedNoise
    from ambient_eval.sampling.samplers import SamplerConfig, edm_sigmas, sample

    D = ClassGaussian(label_dim=0)
    cfg = SamplerConfig(steps=7, S_churn=20.0, S_min=0.1, S_max=10.0)
    noise = SeedNoise([3, 4])
    x = sample(NetCall(D, 8, None), noise.randn([2, 4, 4]), None, cfg, noise, edm_sigmas(cfg, D))
    for row, s in zip(x, [3, 4]):
        ref, _ = reference(D, s, steps=7, S_churn=20.0, S_min=0.1, S_max=10.0)
        assert torch.allclose(row, ref, rtol=0, atol=1e-12)


def test_seed_labels_are_edm_randint_after_latents():
    D = ClassGaussian()
    seeds = list(range(40))
    labels = resolve_labels(D, seeds)
    assert labels.tolist() == [reference(D, s, steps=2)[1] for s in seeds]
    assert set(labels.tolist()) == {0, 1, 2}
    assert np.array_equal(resolve_labels(D, seeds, 1), np.ones(40, dtype=np.int64))
