"""Fixtures for metric tests: two small PNG folders shared by the whole module (features are slow)."""
from __future__ import annotations

import numpy as np
import pytest

from tests.conftest import random_images, write_images


@pytest.fixture(scope="module")
def image_dirs(tmp_path_factory):
    """Two folders of 16 32x32 PNGs with different statistics (generated, reference)."""
    root = tmp_path_factory.mktemp("metric-images")
    gen = random_images(16, seed=1)
    ref = np.clip(random_images(16, seed=2).astype(np.int16) + 30, 0, 255).astype(np.uint8)
    write_images(root / "gen", gen)
    write_images(root / "ref", ref)
    return root / "gen", root / "ref"


@pytest.fixture
def memo_linalg(monkeypatch):
    """Memoize np.linalg.eigvals and scipy.linalg.sqrtm by the exact bytes of their input.

    Comparing our FID with a library's means running the same 2048x2048 eigen-decomposition or
    matrix square root twice (~17 s for sqrtm on 2 cores). Both are deterministic, so a cache hit
    can only happen when both sides built bit-identical matrices; any difference misses the cache
    and is computed for real, so the comparison stays exact.
    """
    import hashlib

    import scipy.linalg

    calls = {"hits": 0, "misses": 0}

    def memo(fn):
        store = {}

        def wrapper(a, *args, **kw):
            arr = np.ascontiguousarray(a)
            key = (hashlib.sha256(arr.tobytes()).hexdigest(), arr.shape, str(arr.dtype), args,
                   tuple(sorted(kw.items())))
            if key in store:
                calls["hits"] += 1
            else:
                calls["misses"] += 1
                store[key] = fn(a, *args, **kw)
            out = store[key]
            return tuple(x.copy() if hasattr(x, "copy") else x for x in out) if isinstance(out, tuple) else out.copy()
        return wrapper

    monkeypatch.setattr(np.linalg, "eigvals", memo(np.linalg.eigvals))
    monkeypatch.setattr(scipy.linalg, "sqrtm", memo(scipy.linalg.sqrtm))
    return calls
