"""CEP (Chen et al. 2024): the condition embedding is perturbed, e <- e + xi, during training only."""
from __future__ import annotations

import torch

from ambient_eval.training.config import TrainConfig
from ambient_eval.training.loop import TrainStep, network_config


def _model():
    from ambient_eval.models import build_native_model, native_config

    torch.manual_seed(0)
    cfg = TrainConfig(method="cep", arch="tiny", cond=True)
    return build_native_model(native_config(network_config(cfg, 8, 4), precond="edm", sigma_data=0.5)).eval()


def test_cep_adds_xi_to_the_class_embedding_and_nothing_else():
    den = _model()
    step = TrainStep(den)
    x, sigma = torch.randn(3, 3, 8, 8), torch.tensor([0.1, 1.0, 5.0])
    labels = torch.nn.functional.one_hot(torch.tensor([0, 2, 3]), 4).float()
    d = den.net.embed_labels(labels).shape[1]
    xi = 0.3 * torch.randn(3, d)
    with torch.no_grad():
        plain = den(x, sigma, labels)
        torch.testing.assert_close(step(x, sigma, labels), plain)                 # no xi: the plain model
        torch.testing.assert_close(step(x, sigma, labels, torch.zeros(3, d)), plain)
        pert = step(x, sigma, labels, xi)
        ref = den(x, sigma, labels, label_emb=den.net.embed_labels(labels) + xi)  # e + xi exactly
        torch.testing.assert_close(pert, ref)
        assert float((pert - plain).abs().max()) > 1e-4                           # and it does change D
