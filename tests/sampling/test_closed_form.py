"""Sampler correctness against closed forms (no training): Gaussian data and K training points."""
from __future__ import annotations

import math

import numpy as np
import torch

from ambient_eval.sampling.generate import generate
from ambient_eval.sampling.noise import SeedNoise
from ambient_eval.sampling.samplers import SamplerConfig, edm_sigmas, nfe, sample
from tests.sampling.conftest import EmpiricalDenoiser, GaussianDenoiser

MU, S = 0.3, 0.5


def _run(cfg, D, seeds):
    noise = SeedNoise(seeds)
    latents = noise.randn([D.img_channels, D.img_resolution, D.img_resolution])
    return latents, sample(D, latents, None, cfg, noise, edm_sigmas(cfg, D))


def test_schedule_matches_spec():
    cfg = SamplerConfig()
    t = edm_sigmas(cfg, GaussianDenoiser(MU, S))
    assert t.dtype == torch.float64 and len(t) == 19 and t[-1] == 0 and nfe(cfg) == 35
    assert math.isclose(t[0].item(), 80.0, rel_tol=1e-12) and math.isclose(t[17].item(), 0.002, rel_tol=1e-12)
    i = 5  # Karras et al. 2022, Eq. 5
    ref = (80 ** (1 / 7) + i / 17 * (0.002 ** (1 / 7) - 80 ** (1 / 7))) ** 7
    assert math.isclose(t[i].item(), ref, rel_tol=1e-14)


def _reference_heun_map(N, mu=MU, s=S, T=80.0, s_min=0.002, rho=7.0):
    """Scalar float64 Algorithm 1 for the Gaussian denoiser; the ODE is linear, so the sampler is
    the affine map x0 = a + b * latent. Written independently of ambient_eval (brute force)."""
    t = [(T ** (1 / rho) + i / (N - 1) * (s_min ** (1 / rho) - T ** (1 / rho))) ** rho for i in range(N)] + [0.0]
    D = lambda x, sig: mu + s * s / (s * s + sig * sig) * (x - mu)  # noqa: E731

    def run(x):
        for i in range(N):
            d = (x - D(x, t[i])) / t[i]
            x_next = x + (t[i + 1] - t[i]) * d
            if i < N - 1:
                x_next = x + (t[i + 1] - t[i]) * (0.5 * d + 0.5 * (x_next - D(x_next, t[i + 1])) / t[i + 1])
            x = x_next
        return x

    a = run(0.0)
    return a, (run(T) - a)       # x(T) = T * latent


def test_gaussian_heun_matches_reference_and_moments():
    D = GaussianDenoiser(MU, S, res=8)
    seeds = list(range(256))
    latents, x0 = _run(SamplerConfig(), D, seeds)
    a, b = _reference_heun_map(18)
    assert (x0 - (a + b * latents.to(torch.float64))).abs().max() < 1e-5   # float32 network I/O
    # Exact ODE solution: x0 - mu = (T n - mu) s / sqrt(s^2 + T^2): std s * T / sqrt(s^2 + T^2).
    # 18 Heun steps overshoot the std by 5.5% on this Gaussian (b / s = 1.0552 from the
    # reference map above: discretization, not a bug; it shrinks as 1/N^2, next test), and move
    # the mean by |a - mu (1 - s/sqrt(s^2+T^2))| = 1e-4. Monte-Carlo error over M = 16384 values:
    # SE(mean) = s/sqrt(M) = 0.0039, relative SE(std) = 1/sqrt(2M) = 0.0055. Tolerance: 4 SE.
    M = x0.numel()
    assert abs(x0.mean().item() - MU) < 4 * S / math.sqrt(M) + 2e-3
    assert abs(x0.std().item() / b - 1) < 4 / math.sqrt(2 * M)     # std(a + b n) = b std(n)
    assert 0.05 < b / S - 1 < 0.06                                   # the 5.5% discretization


def test_gaussian_heun_converges_at_second_order():
    # Same latents, so the comparison with the exact ODE solution has no Monte-Carlo error.
    D = GaussianDenoiser(MU, S, res=4)
    seeds = list(range(16))
    errs = {}
    for N in (18, 64):
        latents, x0 = _run(SamplerConfig(steps=N), D, seeds)
        exact = MU + (80.0 * latents.to(torch.float64) - MU) * S / math.sqrt(S ** 2 + 80.0 ** 2)
        errs[N] = ((x0 - MU).std() / (exact - MU).std()).item() - 1
    order = math.log(errs[18] / errs[64]) / math.log(64 / 18)
    assert 1.8 < order < 2.3, errs                    # Heun is a 2nd-order method (EDM Sec. 3)
    assert errs[64] < 0.005


def test_gaussian_stochastic_churn_keeps_distribution():
    # Algorithm 2 with churn is a different (SDE) path to the same marginals. Its discretization
    # error is larger than the ODE's: the std overshoots by 13% / 2.8% / 0.9% at N = 18 / 64 / 256
    # (measured with this test's setup), so we check N = 64 with 3% + 4 Monte-Carlo SE.
    D = GaussianDenoiser(MU, S, res=8)
    cfg = SamplerConfig(steps=64, S_churn=40, S_min=0.05, S_max=50, S_noise=1.0)
    seeds = list(range(256))
    _, x_det = _run(SamplerConfig(steps=64), D, seeds)
    _, x0 = _run(cfg, D, seeds)
    assert (x0 - x_det).abs().max() > 0.05                     # churn noise was actually used
    M = x0.numel()
    assert abs(x0.mean().item() - MU) < 4 * S / math.sqrt(M) + 0.002
    assert abs(x0.std().item() / S - 1) < 4 / math.sqrt(2 * M) + 0.03
    _, again = _run(cfg, D, seeds[::-1])                       # churn noise is seed-determined
    assert torch.equal(again.flip(0), x0)


def test_empirical_optimal_denoiser_reproduces_training_points():
    # The optimal denoiser of K points collapses every trajectory onto one of them; training
    # points on the uint8 grid make the copies exact after quantization.
    g = np.random.default_rng(0)
    u = g.integers(0, 256, size=(6, 3, 4, 4), dtype=np.uint8)
    points = (torch.from_numpy(u).to(torch.float64) - 127.5) / 127.5
    D = EmpiricalDenoiser(points)
    seeds = list(range(48))
    images = torch.cat([x for _, x in generate(D, seeds, batch_size=16, device="cpu", net_batch=None)])
    train = torch.from_numpy(u)
    match = (images[:, None] == train[None]).flatten(2).all(dim=2)   # (N, K) exact copies
    assert match.any(dim=1).all(), "every sample must be an exact copy of a training point"
    assert match.any(dim=0).sum() >= 4                             # not all the same point
