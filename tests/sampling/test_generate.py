"""generate(): NFE per sampler, uint8 convention, grayscale models, labels."""
from __future__ import annotations

import pytest
import torch

from ambient_eval.models import UNetConfig, build_native_model, native_config
from ambient_eval.sampling.generate import generate, to_uint8
from ambient_eval.sampling.seeds import format_seeds, parse_seeds
from tests.sampling.conftest import GaussianDenoiser


class Counting(GaussianDenoiser):
    def __init__(self):
        super().__init__(0.0, 0.5, res=4)
        self.calls = 0
        self.labels_seen = []

    def forward(self, x, sigma, class_labels=None):
        self.calls += 1
        self.labels_seen.append(class_labels)
        return super().forward(x, sigma)


@pytest.mark.parametrize("sampler,steps,expected", [("heun", 18, 35), ("euler", 18, 18), ("heun", 5, 9)])
def test_network_evaluations(sampler, steps, expected):
    D = Counting()
    list(generate(D, [0, 1, 2], batch_size=3, steps=steps, sampler=sampler, device="cpu", net_batch=None))
    assert D.calls == expected


def test_to_uint8_is_edm_convention():
    x = torch.tensor([-1.5, -1.0, -0.999, 0.0, 0.5, 1.0, 2.0], dtype=torch.float64)
    # EDM: (x * 127.5 + 128).clip(0, 255).to(uint8) -- truncation, i.e. round(x*127.5 + 127.5).
    assert to_uint8(x).tolist() == [0, 0, 0, 128, 191, 255, 255]


def test_grayscale_conditional_model_and_fixed_class():
    torch.manual_seed(0)
    model = build_native_model(native_config(UNetConfig.tiny(8, img_channels=1, label_dim=5)))
    (seeds, x), = list(generate(model, [4, 9], steps=2, device="cpu", class_labels=3))
    assert seeds == [4, 9] and x.shape == (2, 1, 8, 8) and x.dtype == torch.uint8
    with pytest.raises(Exception, match="out of range"):
        list(generate(model, [4], steps=2, device="cpu", class_labels=5))


def test_parse_and_format_seeds():
    assert parse_seeds("0-3, 10,12-13") == [0, 1, 2, 3, 10, 12, 13]
    assert format_seeds(parse_seeds("0-3,10,12-13")) == "0-3,10,12-13"
    assert len(parse_seeds("0-49999")) == 50000
