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
