"""Our U-Net, native checkpoints (safetensors + JSON) and load_model validation."""
from __future__ import annotations

import json

import pytest
import torch

from ambient_eval.errors import AmbientError
from ambient_eval.models import (EDMPrecond, UNet, UNetConfig, build_native_model, load_model,
                                 native_config, save_native)


def _model(label_dim=0, seed=0):
    torch.manual_seed(seed)
    cfg = native_config(UNetConfig.tiny(8, label_dim=label_dim))
    return build_native_model(cfg).eval(), cfg


def test_unet_config_roundtrip_and_unknown_key():
    c = UNetConfig.small(label_dim=10)
    assert UNetConfig.from_dict(json.loads(json.dumps(c.to_dict()))) == c
    with pytest.raises(ValueError, match="bogus"):
        UNetConfig.from_dict({"bogus": 1})


def test_unet_label_embedding_is_used_and_overridable():
    net = UNet(UNetConfig.tiny(8, label_dim=4)).eval()
    x, c_noise = torch.randn(4, 3, 8, 8), torch.randn(4)
    labels = torch.eye(4)
    y = net(x, c_noise, labels)
    assert not torch.allclose(y, net(x, c_noise, labels.roll(1, dims=0)))
    emb = net.embed_labels(labels)
    assert emb.shape == (4, 8)
    assert torch.equal(net(x, c_noise, label_emb=emb), y)           # CEP path: same as labels
    assert not torch.allclose(net(x, c_noise, label_emb=emb + 0.5 * torch.randn_like(emb)), y)


@pytest.mark.parametrize("name", ["ckpt", "ckpt.safetensors"])
def test_native_roundtrip(tmp_path, name):
    model, cfg = _model(label_dim=3)
    path = save_native(model, tmp_path / name, cfg, {"kimg": 12, "dataset": "digits"})
    loaded = load_model(path, device="cpu")
    assert isinstance(loaded, EDMPrecond) and loaded.label_dim == 3 and loaded.img_resolution == 8
    assert loaded.checkpoint_format == "native" and len(loaded.weights_sha256) == 64
    assert loaded.checkpoint_config["metadata"] == {"kimg": 12, "dataset": "digits"}
    x, sigma, lab = torch.randn(2, 3, 8, 8), torch.tensor([0.3, 7.0]), torch.eye(3)[:2]
    with torch.no_grad():
        assert torch.equal(loaded(x, sigma, lab), model(x, sigma, lab))
    assert not list(tmp_path.glob("**/.*tmp*"))                     # no temp files left


def test_edm_precond_matches_table1_at_extremes():
    # F = 0 => D = c_skip x; c_skip -> 1 as sigma -> 0, -> 0 as sigma -> inf (Karras Table 1).
    class Zero(torch.nn.Module):
        def forward(self, x, c_noise, labels=None):
            return torch.zeros_like(x)

    d = EDMPrecond(Zero(), img_resolution=4, img_channels=1, sigma_data=0.5)
    x = torch.ones(1, 1, 4, 4)
    assert torch.allclose(d(x, 1e-4), x, atol=1e-6)
    assert torch.allclose(d(x, 0.5), 0.5 * x)                       # sd^2/(sd^2+sd^2)
    assert d(x, 1e4).abs().max() < 1e-8


def _save_and_corrupt(tmp_path, mutate):
    model, cfg = _model()
    path = save_native(model, tmp_path / "ck", cfg, {})
    mutate(path, model)
    return path


def _drop_key(path, model):
    from safetensors.torch import load_file, save_file

    state = load_file(str(path / "model.safetensors"))
    state.pop("net.conv_out.bias")
    save_file(state, str(path / "model.safetensors"))


def _wrong_shape(path, model):
    cfg = json.loads((path / "config.json").read_text())
    cfg["network"]["model_channels"] = 16
    (path / "config.json").write_text(json.dumps(cfg))


def _unknown_arch(path, model):
    cfg = json.loads((path / "config.json").read_text())
    cfg["architecture"] = "dit"
    (path / "config.json").write_text(json.dumps(cfg))


def _truncate(path, model):
    data = (path / "model.safetensors").read_bytes()
    (path / "model.safetensors").write_bytes(data[: len(data) // 2])


@pytest.mark.parametrize("mutate,message", [
    (_drop_key, "missing key"), (_wrong_shape, "has shape"), (_unknown_arch, "Unknown architecture 'dit'"),
    (_truncate, "damaged"),
])
def test_native_malformed_raises_clear_error(tmp_path, mutate, message):
    path = _save_and_corrupt(tmp_path, mutate)
    with pytest.raises(AmbientError, match=message):
        load_model(path, device="cpu")


def test_unknown_checkpoint_kinds(tmp_path):
    with pytest.raises(AmbientError, match="does not exist"):
        load_model(tmp_path / "nope", device="cpu")
    (tmp_path / "w.pt").write_bytes(b"xx")
    with pytest.raises(AmbientError, match="Unrecognised checkpoint"):
        load_model(tmp_path / "w.pt", device="cpu")
    with pytest.raises(AmbientError, match="Unknown checkpoint format"):
        load_model(tmp_path / "w.pt", format="onnx", device="cpu")
