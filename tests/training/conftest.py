"""Training-area fixtures: tiny image folders with labels."""
from __future__ import annotations

import json

import numpy as np
import pytest

from tests.conftest import random_images, write_images


def make_labeled_folder(folder, n=40, size=8, seed=0, classes=4):
    """n random RGB images + EDM dataset.json labels; => (images NHWC, labels)."""
    imgs = random_images(n, size=size, seed=seed)
    paths = write_images(folder, imgs)
    labels = np.arange(n) % classes
    (folder / "dataset.json").write_text(json.dumps({"labels": [[p.name, int(v)] for p, v in zip(paths, labels)]}))
    return imgs, labels


@pytest.fixture
def tiny_folder(tmp_path):
    folder = tmp_path / "data"
    make_labeled_folder(folder)
    return folder


@pytest.fixture(autouse=True)
def _one_torch_thread():
    """Tiny CPU models: one thread avoids OpenMP oversubscription on the shared 2 cores."""
    import torch

    n = torch.get_num_threads()
    torch.set_num_threads(1)
    yield
    torch.set_num_threads(n)
