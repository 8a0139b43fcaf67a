"""EDM / ambient losses: exactness, unbiasedness (closed form), zero gradient below the threshold."""
from __future__ import annotations

import math

import pytest
import torch

from ambient_eval.training.loss import ambient_loss, edm_loss, edm_weight
from ambient_eval.training.sigma import sample_sigma, sample_sigma_truncated, threshold, usable


def _linear(a: float):
    return lambda x, sigma, labels: a * x


def _quadratic_argmin(loss_of_a) -> float:
    """The loss is exactly quadratic in a for fixed samples: fit from 3 evaluations."""
    L0, L1, L2 = (float(loss_of_a(a)) for a in (0.0, 1.0, 2.0))
    A = (L2 - 2 * L1 + L0) / 2
    B = L1 - L0 - A
    return -B / (2 * A)


@pytest.mark.parametrize("sigma_t", [0.7, 1.0, 2.0])
def test_ambient_loss_is_unbiased_on_noisy_gaussian_data(sigma_t):
    # x ~ N(0, s^2), observed y = x + sigma_n z; clean optimal denoiser at sigma_t: s^2/(s^2+sigma_t^2) x.
    s, sigma_n, N = 1.0, 0.5, 400_000
    g = torch.Generator().manual_seed(0)
    x = torch.randn(N, 1, 1, 1, generator=g) * s
    y = x + sigma_n * torch.randn(N, 1, 1, 1, generator=g)
    n = torch.randn(N, 1, 1, 1, generator=g)
    st = torch.full((N,), sigma_t)
    stn = torch.full((N,), sigma_n)
    assert bool(usable(st, stn).all())

    a_amb = _quadratic_argmin(lambda a: ambient_loss(_linear(a), y, stn, st, n)[0].mean())
    a_naive = _quadratic_argmin(lambda a: edm_loss(_linear(a), y, st, n).mean())
    a_clean = s ** 2 / (s ** 2 + sigma_t ** 2)
    a_naive_theory = (s ** 2 + sigma_n ** 2) / (s ** 2 + sigma_n ** 2 + sigma_t ** 2)
    assert a_amb == pytest.approx(a_clean, abs=4e-3)
    assert a_naive == pytest.approx(a_naive_theory, abs=4e-3)
    assert abs(a_naive - a_clean) > 0.02  # the naive loss is measurably biased


def test_ambient_loss_with_zero_sigma_tn_is_edm_loss():
    g = torch.Generator().manual_seed(1)
    y = torch.randn(8, 3, 4, 4, generator=g)
    n = torch.randn(8, 3, 4, 4, generator=g)
    sigma = sample_sigma(8, g)
    D = lambda x, s, l: torch.tanh(x) * 0.7  # noqa: E731
    amb, used = ambient_loss(D, y, torch.zeros(8), sigma, n)
    assert bool(used.all())
    torch.testing.assert_close(amb, edm_loss(D, y, sigma, n), rtol=1e-6, atol=0)
    assert float(edm_weight(torch.tensor(0.5))) == pytest.approx((0.25 + 0.25) / (0.25 * 0.25))


def test_samples_below_threshold_contribute_exactly_zero_gradient():
    torch.manual_seed(0)
    net = torch.nn.Conv2d(3, 3, 3, padding=1)
    D = lambda x, s, l: net(x) / (1 + s.reshape(-1, 1, 1, 1))  # noqa: E731
    g = torch.Generator().manual_seed(2)
    y = torch.randn(6, 3, 8, 8, generator=g)
    n = torch.randn(6, 3, 8, 8, generator=g)
    sigma_tn = torch.tensor([0.0, 0.5, 0.5, 1.0, 1.0, 2.0])
    thr = threshold(sigma_tn)
    # below: just under the threshold, equal to sigma_tn, and even smaller than sigma_tn (sqrt(<0) risk)
    sigma_t = torch.tensor([0.3, float(thr[1]) * 0.999, 0.5, 0.2, 1.5, 2.0])
    used_expected = torch.tensor([True, False, False, False, True, False])
    loss, used = ambient_loss(D, y, sigma_tn, sigma_t, n)
    assert used.tolist() == used_expected.tolist()
    assert torch.isfinite(loss).all() and bool((loss[~used] == 0).all())

    # Only-below-threshold batch: every gradient is exactly zero (not NaN, not tiny).
    net.zero_grad()
    ambient_loss(D, y[~used], sigma_tn[~used], sigma_t[~used], n[~used])[0].sum().backward()
    assert all(bool((p.grad == 0).all()) for p in net.parameters())

    # Full batch gradient == gradient of the usable samples alone.
    net.zero_grad()
    loss.sum().backward()
    g_full = [p.grad.clone() for p in net.parameters()]
    net.zero_grad()
    ambient_loss(D, y[used], sigma_tn[used], sigma_t[used], n[used])[0].sum().backward()
    for a, b in zip(g_full, (p.grad for p in net.parameters())):
        torch.testing.assert_close(a, b, rtol=1e-5, atol=1e-7)


def test_ambient_weight_bounded_by_s_max_squared():
    sigma_tn = torch.full((5,), 1.0)
    sigma_t = threshold(sigma_tn) * torch.tensor([1.0001, 1.01, 1.5, 3.0, 100.0])
    D = lambda x, s, l: torch.zeros_like(x)  # noqa: E731
    x_tn = torch.ones(5, 1, 1, 1)
    loss, used = ambient_loss(D, x_tn, sigma_tn, sigma_t, torch.zeros(5, 1, 1, 1))
    assert bool(used.all())
    # with D = 0 and n = 0: x_tn_hat = r x_tn, err = (1 - r)^2 -> loss = lambda * factor * (1-r)^2 = lambda
    r = sigma_tn ** 2 / sigma_t ** 2
    factor = loss / (edm_weight(sigma_t) * (1 - r) ** 2)
    assert bool((factor <= 16.0 + 1e-3).all())
    torch.testing.assert_close(factor, 1 / (1 - r) ** 2, rtol=1e-4, atol=0)


def test_truncated_sigma_matches_rejection_sampling():
    g = torch.Generator().manual_seed(3)
    sigma_tn = torch.full((200_000,), 0.8)
    s = sample_sigma_truncated(sigma_tn, g)
    assert bool((s > threshold(sigma_tn)).all())
    ref = sample_sigma(2_000_000, g)
    ref = ref[ref > float(threshold(torch.tensor(0.8)))]
    assert float(s.log().mean()) == pytest.approx(float(ref.log().mean()), abs=0.01)
    clean = sample_sigma_truncated(torch.zeros(200_000), g)
    assert float(clean.log().mean()) == pytest.approx(-1.2, abs=0.01)
    assert float(clean.log().std()) == pytest.approx(1.2, abs=0.01)
    assert math.isfinite(float(s.max()))
