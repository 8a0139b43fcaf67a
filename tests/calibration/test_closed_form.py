"""Closed-form reference denoisers against independent closed forms, and through the sampler."""
from __future__ import annotations

import numpy as np
import pytest
import torch

from ambient_eval.data.base import ArraySource
from ambient_eval.errors import AmbientError
from ambient_eval.models.closed_form import EmpiricalDenoiser, GaussianDenoiser, closed_form_model, parse_spec


def _two_point_oracle(x, y1, y2, s):
    # D = y1 + (y2 - y1) * P(y2 | x), P(y2 | x) = sigmoid((|x - y1|^2 - |x - y2|^2) / 2 s^2)
    a = ((x - y1) ** 2).sum(1) - ((x - y2) ** 2).sum(1)
    from scipy.special import expit

    p2 = expit(a / (2 * s ** 2))
    return y1[None] + p2[:, None] * (y2 - y1)[None]


@pytest.mark.parametrize("block", [1, 4096])
@pytest.mark.parametrize("sigma", [0.05, 0.3, 1.0, 10.0])
def test_empirical_two_points(block, sigma):
    rng = np.random.default_rng(0)
    y = rng.uniform(-1, 1, (2, 3 * 2 * 2))
    den = EmpiricalDenoiser(y.astype(np.float32), 2, block=block)
    y32 = y.astype(np.float32).astype(np.float64)
    x = y32[rng.integers(0, 2, 16)] + sigma * rng.standard_normal((16, 12)) * 0.3
    got = den.denoise(torch.as_tensor(x), torch.full((16,), sigma, dtype=torch.float64)).numpy()
    np.testing.assert_allclose(got, _two_point_oracle(x, y32[0], y32[1], sigma), atol=1e-10)


def test_empirical_blocks_agree_and_small_sigma_is_nearest():
    rng = np.random.default_rng(1)
    y = rng.uniform(-1, 1, (37, 48)).astype(np.float32)
    x = torch.as_tensor(rng.standard_normal((5, 48)))
    s = torch.full((5,), 0.7, dtype=torch.float64)
    a = EmpiricalDenoiser(y, 4, block=5).denoise(x, s)
    b = EmpiricalDenoiser(y, 4).denoise(x, s)
    torch.testing.assert_close(a, b, rtol=0, atol=1e-12)
    # at sigma 0.002 the softmax is a hard argmin of the distance
    near = y[((x.numpy()[:, None] - y[None]) ** 2).sum(-1).argmin(1)]
    got = EmpiricalDenoiser(y, 4).denoise(x, torch.full((5,), 0.002, dtype=torch.float64))
    np.testing.assert_allclose(got.numpy(), near, atol=1e-6)


@pytest.mark.parametrize("sigma", [0.01, 0.5, 3.0])
def test_gaussian_diagonal(sigma):
    # Rows of a Hadamard matrix: zero-mean, orthogonal columns => covariance exactly diagonal.
    H = np.array([[1]])
    for _ in range(3):
        H = np.block([[H, H], [H, -H]])                       # 8 x 8
    lam = np.array([0.04, 0.25, 0.01])
    mu = np.array([0.1, -0.2, 0.3])
    y = mu + H[:, 1:4] * np.sqrt(lam)                          # (8, 3): 1x1 RGB images
    den = GaussianDenoiser(y, 1)
    x = np.random.default_rng(2).standard_normal((6, 3))
    got = den.denoise(torch.as_tensor(x), torch.full((6,), sigma, dtype=torch.float64)).numpy()
    want = mu + lam / (lam + sigma ** 2) * (x - mu)            # per-coordinate Wiener filter
    np.testing.assert_allclose(got, want, atol=1e-12)


def test_gaussian_full_covariance_matches_solve():
    rng = np.random.default_rng(3)
    y = rng.standard_normal((50, 12)) @ rng.standard_normal((12, 12)) * 0.2
    den = GaussianDenoiser(y, 2)
    S = np.cov(y.T, bias=True)
    x = rng.standard_normal((4, 12))
    got = den.denoise(torch.as_tensor(x), torch.full((4,), 0.4, dtype=torch.float64)).numpy()
    mu = y.mean(0)
    want = mu + (S @ np.linalg.solve(S + 0.16 * np.eye(12), (x - mu).T)).T
    np.testing.assert_allclose(got, want, atol=1e-10)


def _tiny_set(n=6, r=8, seed=4):
    rng = np.random.default_rng(seed)
    return rng.integers(0, 256, (n, r, r, 3), dtype=np.uint8)


def test_empirical_samples_reproduce_training_images():
    from ambient_eval.sampling.generate import generate

    imgs = _tiny_set()
    den = closed_form_model("empirical", ArraySource(imgs))
    out = torch.cat([x for _, x in generate(den, list(range(8)), batch_size=3, device="cpu")])
    train = torch.as_tensor(imgs).permute(0, 3, 1, 2).to(torch.int16)
    err = (out.to(torch.int16)[:, None] - train[None]).abs().amax(dim=(2, 3, 4))   # (8, 6)
    assert (err.min(1).values <= 1).all(), err.min(1).values   # every sample is a training image


def test_gaussian_samples_are_not_copies():
    from ambient_eval.sampling.generate import generate

    imgs = _tiny_set(n=40)
    den = closed_form_model("gaussian", ArraySource(imgs))
    out = torch.cat([x for _, x in generate(den, list(range(8)), batch_size=8, device="cpu")])
    train = torch.as_tensor(imgs).permute(0, 3, 1, 2).to(torch.int16)
    err = (out.to(torch.int16)[:, None] - train[None]).abs().amax(dim=(2, 3, 4))
    assert (err.min(1).values > 20).all()


def test_load_model_spec_and_errors():
    from ambient_eval.data.model_inputs import kind_of
    from ambient_eval.models import load_model

    den = load_model("closed-form:gaussian:builtin:digits-16:test", device="cpu")
    assert den.img_resolution == 16 and den.checkpoint_format == "closed-form"
    assert den.weights_sha256 and den.n_train == 1797 - 1500
    assert kind_of("closed-form:empirical:x.zip") == "checkpoint"
    from ambient_eval.data.model_inputs import model_labels

    assert model_labels(["closed-form:empirical:d/train.zip", "closed-form:gaussian:d/train.zip"]) == [
        "empirical-train", "gaussian-train"]
    assert parse_spec("closed-form:empirical:builtin:digits") == ("empirical", "builtin:digits")
    for bad in ("closed-form:median:builtin:digits", "closed-form:empirical:"):
        with pytest.raises(AmbientError, match="closed-form:empirical:DATA"):
            load_model(bad, device="cpu")


def test_cli_reproducibility_and_memorization_accept_closed_form(cli, tmp_path):
    import json

    emp, gau = ("closed-form:empirical:builtin:digits-16:test", "closed-form:gaussian:builtin:digits-16:test")
    r = cli(["reproducibility", emp, gau, "--seeds", "0-5", "--embed", "pixel", "--train",
             "builtin:digits-16:test", "-o", tmp_path / "r", "--bootstrap", "10"])
    assert r.exit_code == 0, r.output
    r = cli(["memorization", "--model", emp, "--model", gau, "--seeds", "0-5", "--embed", "pixel",
             "--train", "builtin:digits-16:test", "--out", tmp_path / "m", "--bootstrap", "0", "--no-cache"])
    assert r.exit_code == 0, r.output
    models = json.loads((tmp_path / "m" / "summary.json").read_text())["models"]
    fracs = [m["metrics"]["frac_above_0.99"] for m in models.values()]
    assert fracs == [1.0, 0.0]   # the memorizer copies every sample, the Gaussian none
    r = cli(["fid", "--model", gau, "--seeds", "0-5", "builtin:digits-16:test", "--features", "pixel-8",
             "--metrics", "fid", "--no-report", "--no-cache", "--out", tmp_path / "f"])
    assert r.exit_code == 0, r.output
    res = json.loads((tmp_path / "f" / "results.json").read_text())
    assert res["metrics"]["fd_pixel_8"] > 0


def test_gaussian_low_rank_path_matches_full():
    # n < d takes the Gram-matrix path; n >= d the full eigendecomposition: same denoiser.
    rng = np.random.default_rng(5)
    y = rng.standard_normal((7, 12))
    x = torch.as_tensor(rng.standard_normal((3, 12)))
    s = torch.full((3,), 0.3, dtype=torch.float64)
    low = GaussianDenoiser(y, 2).denoise(x, s).numpy()
    S = np.cov(y.T, bias=True)
    mu = y.mean(0)
    want = mu + (S @ np.linalg.solve(S + 0.09 * np.eye(12), (x.numpy() - mu).T)).T
    np.testing.assert_allclose(low, want, atol=1e-10)
