"""--batch-order walk: the official InfiniteSampler walk, against an independent statement of it."""
from __future__ import annotations

import numpy as np
import pytest
import torch
from scipy.stats import chi2_contingency

from ambient_eval.training.batches import sample_batch
from ambient_eval.training.sigma import threshold
from ambient_eval.training.walk import BatchWalk

N = 100
N_CLEAN = 5
# 5 clean of 100 (a case where the walk and independent draws differ), corrupted levels spread out
SIGMA_TN = torch.tensor([0.0] * N_CLEAN + np.geomspace(0.2, 2.0, N - N_CLEAN).tolist(), dtype=torch.float32)
STEPS = 2000  # x 64 draws: enough to see the 1-3 point difference in clean share at mid noise
THR = threshold(SIGMA_TN)
ZEROS = torch.zeros(N)
BINS = np.exp(-1.2 + 1.2 * np.array([-1.0, -0.5, 0.0, 0.5, 1.0]))  # 6 sigma bins by EDM log-normal quantiles


def oracle_walk(seed: int, n: int, window_size: float = 0.5):
    """The walk as the official sampler states it, with its own RandomState (not the implementation's streams)
    => (indices, sigmas, pass number of each yield)."""
    rnd = np.random.RandomState(seed)
    order = np.arange(N)
    rnd.shuffle(order)
    window = int(np.rint(N * window_size))
    thr = THR.numpy().astype(np.float64)
    sig = lambda: float(np.float32(np.exp(rnd.normal() * 1.2 - 1.2)))  # noqa: E731
    idx, out, sigmas, passes = 0, [], [], []
    sigma = sig()
    while len(out) < n:
        i = idx % N
        if sigma > thr[order[i]]:
            out.append(int(order[i]))
            sigmas.append(sigma)
            passes.append(idx // N)
            sigma = sig()
        j = (i - rnd.randint(window)) % N
        order[i], order[j] = order[j], order[i]
        idx += 1
    return np.array(out), np.array(sigmas), np.array(passes)


def run_walk(seed: int, steps: int, batch: int = 64):
    w = BatchWalk(N, seed, -1.2, 1.2)
    idx, sig, passes = [], [], []
    for _ in range(steps):
        before = w.idx
        i, s = w.next_batch(batch, THR, ZEROS)
        idx.append(i.numpy())
        sig.append(s.numpy())
        passes.append((before, w.idx))
    return np.concatenate(idx), np.concatenate(sig), w


def _tables(idx, sig):
    per_image = np.bincount(idx, minlength=N)
    b = np.digitize(sig, BINS)
    clean = (idx < N_CLEAN).astype(int)
    per_bin = np.array([[np.sum((b == k) & (clean == c)) for c in (0, 1)] for k in range(len(BINS) + 1)]).ravel()
    return per_image, per_bin


def _p(a, b) -> float:
    """Two-sample chi-square p-value of two count vectors (cells empty in both dropped)."""
    m = np.stack([a, b])
    return float(chi2_contingency(m[:, m.sum(0) > 0])[1])


def test_walk_frequencies_match_the_independent_statement():
    a_idx, a_sig, _ = run_walk(0, STEPS)
    o_idx, o_sig, _ = oracle_walk(1, len(a_idx))
    (ai, ab), (oi, ob) = _tables(a_idx, a_sig), _tables(o_idx, o_sig)
    assert _p(ai, oi) > 1e-3            # per image
    assert _p(ab, ob) > 1e-3            # per sigma bin x clean/corrupted
    c = a_idx >= N_CLEAN
    assert np.all(a_sig[c] > THR.numpy()[a_idx[c]])


@pytest.mark.slow
def test_the_frequency_test_tells_the_walk_from_independent_draws():
    """Power check: with 5 clean images of 100, independent draws use clean images more at mid noise."""
    o_idx, o_sig, _ = oracle_walk(2, 64 * STEPS)
    g = torch.Generator().manual_seed(0)
    d = [sample_batch(64, SIGMA_TN, g) for _ in range(STEPS)]
    d_idx, d_sig = torch.cat([x for x, _ in d]).numpy(), torch.cat([s for _, s in d]).numpy()
    assert _p(_tables(d_idx, d_sig)[1], _tables(o_idx, o_sig)[1]) < 1e-6


def test_an_image_is_visited_at_most_twice_per_pass():
    """The swap moves the visited image backwards; only in the first W positions of a pass does it wrap to the
    tail of the order, ahead of the cursor: so an image is yielded at most twice per pass (the official code too)."""
    w = BatchWalk(N, 3, -1.2, 1.2)
    count: dict[tuple[int, int], int] = {}
    for _ in range(3000):
        i, _ = w.next_batch(1, THR, ZEROS)
        key = ((w.idx - 1) // N, int(i))  # the yielded image sat at position idx - 1
        count[key] = count.get(key, 0) + 1
    assert max(count.values()) == 2 and len({p for p, _ in count}) > 10
    o_idx, _, o_pass = oracle_walk(3, 3000)
    o_count = np.unique(np.stack([o_pass, o_idx]), axis=1, return_counts=True)[1]
    assert o_count.max() == 2
    # repeats are the exception (wrapped images), not the rule as with independent draws
    assert sum(c - 1 for c in count.values()) / 3000 < 0.15


def test_walk_state_resumes_bit_exactly():
    a = BatchWalk(N, 5, -1.2, 1.2)
    for _ in range(7):
        a.next_batch(16, THR, ZEROS)
    order, info = a.state()
    b = BatchWalk(N, 5, -1.2, 1.2)
    b.load(order, info)
    for _ in range(5):
        (ia, sa), (ib, sb) = a.next_batch(16, THR, ZEROS), b.next_batch(16, THR, ZEROS)
        assert torch.equal(ia, ib) and torch.equal(sa, sb)
    with pytest.raises(ValueError):
        BatchWalk(N + 1, 5, -1.2, 1.2).load(order, info)


def test_walk_skips_levels_where_nothing_is_eligible():
    stn = torch.full((20,), 0.5)  # no clean image: sigma_t below 0.577 has no eligible image
    idx, sig = BatchWalk(20, 0, -1.2, 1.2).next_batch(200, threshold(stn), torch.zeros(20))
    assert len(idx) == 200 and bool((sig > threshold(stn)[idx]).all())
