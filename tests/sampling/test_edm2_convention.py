"""EDM2 networks sample with EDM2's convention (generate_images.py), not EDM's.

The oracle below is written in the test from the EDM2 paper's sampler description, one image at a
time: Algorithm 2 evaluated in float32 (time steps included, no round_sigma), and a churn normal
drawn (float32, from the seed's generator, after the latents and the class) ONLY on steps that
churn: S_churn > 0 and S_min <= t_i <= S_max. EDM instead draws float64 noise on every step, so
with churn the two conventions give different images for the same seed.
"""
from __future__ import annotations

import math

import pytest
import torch

from ambient_eval.sampling.generate import generate, to_uint8
from ambient_eval.sampling.samplers import SamplerConfig
from tests.sampling.test_edm_noise import ClassGaussian


class EDM2Gaussian(ClassGaussian):
    sampler_convention = "edm2"


def edm2_reference(D, seed, *, steps, S_churn=0.0, S_min=0.0, S_max=math.inf, S_noise=1.0, cls=None,
                   solver="heun", sigma_min=0.002, sigma_max=80.0, rho=7.0):
    shape = [D.img_channels, D.img_resolution, D.img_resolution]
    g = torch.Generator().manual_seed(seed)
    z = torch.randn(shape, generator=g)
    labels = None
    if D.label_dim:
        drawn = int(torch.randint(D.label_dim, size=[], generator=g))
        used = torch.tensor([drawn if cls is None else cls])
        labels = torch.nn.functional.one_hot(used, D.label_dim).float()
    i = torch.arange(steps, dtype=torch.float32)
    t = (sigma_max ** (1 / rho) + i / (steps - 1) * (sigma_min ** (1 / rho) - sigma_max ** (1 / rho))) ** rho
    t = torch.cat([t, torch.zeros(1)])

    def den(x, s):
        return D(x[None], s.reshape(1), labels)[0].to(torch.float32)

    x = z * t[0]
    for k in range(steps):
        if S_churn > 0 and S_min <= t[k] <= S_max:
            t_hat = t[k] + min(S_churn / steps, math.sqrt(2) - 1) * t[k]
            x_hat = x + (t_hat ** 2 - t[k] ** 2).sqrt() * S_noise * torch.randn(shape, generator=g)
        else:
            t_hat, x_hat = t[k], x
        d = (x_hat - den(x_hat, t_hat)) / t_hat
        x_next = x_hat + (t[k + 1] - t_hat) * d
        if solver == "heun" and k < steps - 1:
            d2 = (x_next - den(x_next, t[k + 1])) / t[k + 1]
            x_next = x_hat + (t[k + 1] - t_hat) * (0.5 * d + 0.5 * d2)
        x = x_next
    return x


def _ours(D, seeds, batch, cls=None, **kw):
    cfg = SamplerConfig(sampler=kw.pop("solver", "heun"), steps=kw.pop("steps"), **kw)
    out = {}
    for s, x in generate(D, seeds, batch_size=batch, config=cfg, device="cpu", class_labels=cls):
        out.update(zip(s, x))
    return out


CASES = [dict(steps=6, S_churn=10.0, S_min=0.05, S_max=20.0),       # churn on some steps only
         dict(steps=6, S_churn=40.0, S_noise=1.007),
         dict(steps=5, S_churn=3.0, S_min=0.5, S_max=5.0, cls=2),
         dict(steps=5, S_churn=5.0, solver="euler"),
         dict(steps=6)]


@pytest.mark.parametrize("case", CASES)
def test_edm2_networks_sample_as_edm2_generate_images(case):
    D = EDM2Gaussian()
    seeds = [0, 1, 5, 123456]
    ours = _ours(D, seeds, batch=3, **dict(case))
    for s in seeds:
        assert torch.equal(ours[s], to_uint8(edm2_reference(D, s, **case)[None])[0]), (case, s)


def test_conventions_differ_with_churn():
    # Same seeds, same churn: an EDM network and an EDM2 network give different images (draw order).
    kw = dict(steps=6, S_churn=10.0, S_min=0.05, S_max=20.0)
    edm, edm2 = _ours(ClassGaussian(), [0, 1], 2, **kw), _ours(EDM2Gaussian(), [0, 1], 2, **kw)
    assert any(not torch.equal(edm[s], edm2[s]) for s in (0, 1))


def test_ddim_is_refused_for_edm2_networks():
    from ambient_eval.errors import AmbientError

    with pytest.raises(AmbientError, match="ddim"):
        next(iter(generate(EDM2Gaussian(), [0], config=SamplerConfig(sampler="ddim", steps=4), device="cpu")))
