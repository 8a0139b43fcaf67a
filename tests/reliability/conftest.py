"""Fixtures for reliability tests: small image folders, stats files and gate inputs."""
from __future__ import annotations

import numpy as np
import pytest

from tests.conftest import random_images, write_images


@pytest.fixture
def img_dirs(tmp_path):
    """Two folders of 12 random 32x32 PNGs."""
    gen, ref = tmp_path / "gen", tmp_path / "ref"
    write_images(gen, random_images(12, seed=1))
    write_images(ref, random_images(12, seed=2))
    return gen, ref


def stats_npz(path, mu, sigma):
    """Write a foreign-style stats file (mu, sigma only)."""
    np.savez(path, mu=np.asarray(mu), sigma=np.asarray(sigma))
    return path


@pytest.fixture(autouse=True)
def _builtin_extractors_only(builtin_extractors_only):
    """The generated fault table must not depend on which tests ran first in this worker."""
