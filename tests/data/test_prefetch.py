"""Prefetching loader: same batches in the same order, errors re-raised, early close stops the thread,
features unchanged; the CPU benchmark's smoke run."""
from __future__ import annotations

import subprocess
import sys
import threading
import time
from pathlib import Path

import numpy as np
import pytest
import torch

from ambient_eval.data.prefetch import prefetch

ROOT = Path(__file__).resolve().parents[2]


def _batches(n=7, fail_at=None):
    for i in range(n):
        if i == fail_at:
            raise OSError(f"cannot decode batch {i}")
        yield np.arange(i, i + 1), torch.full((1, 3, 2, 2), i, dtype=torch.uint8)


@pytest.mark.parametrize("depth", [0, 1, 3])
def test_same_items_in_order(depth):
    got = [(int(i[0]), int(x[0, 0, 0, 0])) for i, x in prefetch(_batches(), depth=depth)]
    assert got == [(i, i) for i in range(7)]


def test_producer_error_is_reraised_with_its_type():
    seen = []
    with pytest.raises(OSError, match="cannot decode batch 4"):
        for i, _ in prefetch(_batches(fail_at=4), depth=2):
            seen.append(int(i[0]))
    assert seen == [0, 1, 2, 3]


def test_closing_early_stops_the_producer():
    before = threading.active_count()
    gen = prefetch(_batches(10_000), depth=2)
    next(gen)
    gen.close()
    time.sleep(0.2)
    assert threading.active_count() <= before
    assert not any(t.name == "ambient-eval-prefetch" for t in threading.enumerate())


def test_features_identical_with_and_without_prefetch(monkeypatch, tmp_path):
    from ambient_eval.data import open_source
    from ambient_eval.features import extract_features, get_extractor
    from tests.conftest import random_images, write_images

    write_images(tmp_path / "imgs", random_images(23, size=16, seed=3))
    ex = get_extractor("pixel-8", device="cpu")
    feats = {}
    for depth in ("0", "2"):
        monkeypatch.setenv("AMBIENT_EVAL_PREFETCH", depth)
        feats[depth] = extract_features(open_source(str(tmp_path / "imgs")), ex, batch_size=5)
    assert np.array_equal(feats["0"]["embedding"], feats["2"]["embedding"])


def test_benchmark_smoke(tmp_path):
    out = subprocess.run([sys.executable, "benchmarks/bench_prefetch.py", "--n", "24", "--size", "32",
                          "--repeats", "1", "--extractor", "pixel-16", "--dir", str(tmp_path)], cwd=ROOT, capture_output=True, text=True,
                         env={"PYTHONPATH": str(ROOT), "PATH": "/usr/bin:/bin", "AMBIENT_EVAL_PROGRESS": "0"},
                         timeout=300)
    assert out.returncode == 0, out.stderr
    assert "ratio" in out.stdout and "features identical: True" in out.stdout


@pytest.mark.parametrize("env,device,threaded", [(None, "cpu", False), ("2", "cpu", True), ("0", "cuda", False),
                                                 (None, "cuda", True)])
def test_default_is_prefetch_on_gpu_only(monkeypatch, env, device, threaded):
    from types import SimpleNamespace

    from ambient_eval.features.extract import _prefetched

    if env is None:
        monkeypatch.delenv("AMBIENT_EVAL_PREFETCH", raising=False)
    else:
        monkeypatch.setenv("AMBIENT_EVAL_PREFETCH", env)
    import ambient_eval.data.prefetch as P

    monkeypatch.setattr(P, "_pinned", lambda item: item)   # no CUDA here: pinning is a no-op stand-in
    seen = []
    for _ in _prefetched(_batches(3), SimpleNamespace(), SimpleNamespace(device=SimpleNamespace(type=device))):
        seen.append(any(t.name == "ambient-eval-prefetch" for t in threading.enumerate()))
    assert any(seen) is threaded
