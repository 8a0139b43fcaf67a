"""Fixtures for the memorization tests: planted-copy data sets and a random-weight network."""
from __future__ import annotations

import numpy as np
import pytest

RANDCONV = "test-randconv"   # registry name of the random-weight network used in the tests


class RandomConvExtractor:
    """Factory of a seeded random-weight conv net (what a real embedding network looks like to the
    audit: uint8 images in, a 512-d float vector out), built without any downloaded weights."""

    def __call__(self, *, weights=None, device="auto"):
        import torch

        from ambient_eval.features.base import EMBEDDING, FeatureExtractor

        class RandConv(FeatureExtractor):
            def __init__(self):
                super().__init__("cpu")
                g = torch.Generator().manual_seed(0)
                self.name, self.mode = RANDCONV, "random-weights"
                self.outputs = {EMBEDDING: 512}
                self.weights_sha256, self.weights_official = "random-seed-0", False
                self.net = torch.nn.Sequential(
                    torch.nn.Conv2d(3, 16, 3, padding=1, bias=False), torch.nn.ReLU(),
                    torch.nn.Conv2d(16, 32, 3, stride=2, padding=1, bias=False), torch.nn.ReLU(),
                    torch.nn.Conv2d(32, 32, 3, stride=2, padding=1, bias=False), torch.nn.AdaptiveAvgPool2d(4),
                    torch.nn.Flatten())
                with torch.no_grad():
                    for p in self.net.parameters():
                        p.copy_(torch.randn(p.shape, generator=g) * 0.1)

            def _extract(self, images):
                # NCHW uint8 => N x 512 float32; per-image channel means removed so that
                # features of unrelated images are not dominated by a shared component
                x = images.float() / 255
                x = x - x.mean(dim=(2, 3), keepdim=True)
                return {EMBEDDING: self.net(x)}

        return RandConv()


@pytest.fixture(scope="session")
def randconv() -> str:
    """Register the random conv net once per session; returns its extractor name."""
    from ambient_eval.features import extractor_names, register_extractor

    if RANDCONV not in extractor_names():
        register_extractor(RANDCONV, RandomConvExtractor())
    return RANDCONV


@pytest.fixture(scope="module")
def planted():
    """(train NHWC, generated NHWC, truth) from tests/audits/planted.py."""
    from tests.audits.planted import planted_set

    return planted_set()


def truth_arrays(truth) -> tuple[np.ndarray, np.ndarray]:
    """(modification names, source training indices) as arrays."""
    return np.array([m for m, _ in truth]), np.array([s for _, s in truth])


@pytest.fixture(autouse=True, scope="session")
def _faiss_one_thread():
    """One OpenMP thread for faiss: on 2 shared cores, more threads only spin and wait."""
    import faiss

    before = faiss.omp_get_max_threads()
    faiss.omp_set_num_threads(1)
    yield
    faiss.omp_set_num_threads(before)
