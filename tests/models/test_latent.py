"""EDM2 latent models: decoding with a (random-weight) diffusers AutoencoderKL, end to end."""
from __future__ import annotations

import json

import numpy as np
import pytest
import torch
from PIL import Image

from ambient_eval.errors import AmbientError
from ambient_eval.models import load_model
from ambient_eval.models import latent as L
from ambient_eval.sampling.generate import NetCall
from ambient_eval.sampling.noise import SeedNoise
from ambient_eval.sampling.samplers import SamplerConfig, edm_sigmas, sample
from ambient_eval.sampling.writer import png_path
from tests.models.edm_writer import write_snapshot

diffusers = pytest.importorskip("diffusers")

SEEDS = [0, 1, 2, 7]
VAE_NAME = "example/not-in-any-cache-vae"


def _save_vae(path):
    torch.manual_seed(0)
    vae = diffusers.AutoencoderKL(in_channels=3, out_channels=3, latent_channels=4,
                                  down_block_types=("DownEncoderBlock2D",) * 2,
                                  up_block_types=("UpDecoderBlock2D",) * 2,
                                  block_out_channels=(8, 8), layers_per_block=1, norm_num_groups=4,
                                  sample_size=8)
    vae.save_pretrained(path)
    return vae.eval()


def _edm2_whitening():
    # EDM2 (StabilityVAEEncoder): final = raw * scale + bias, scale = final_std / raw_std,
    # bias = final_mean - raw_mean * scale, in float32.
    raw_mean = np.float32([5.81, 3.25, 0.12, -2.15])
    raw_std = np.float32([4.17, 4.62, 3.71, 3.28])
    scale = np.float32(0.5) / raw_std
    return scale, np.float32(0) - raw_mean * scale


@pytest.fixture
def no_caches(monkeypatch, tmp_path):
    monkeypatch.delenv(L.VAE_ENV, raising=False)
    monkeypatch.setattr(L, "_cache_dirs", lambda: [str(tmp_path / "empty-cache")])


def test_latent_snapshot_decodes_like_diffusers(cli, tmp_path, no_caches):
    vae = _save_vae(tmp_path / "vae")
    p = tmp_path / "edm2-latent.pkl"
    write_snapshot(p, img_resolution=4, img_channels=4, encoder_vae=VAE_NAME)
    r = cli(["sample", p, "--trust-pickle", "--vae", tmp_path / "vae", "--seeds", "0-2,7", "--steps", "4",
             "--device", "cpu", "--out", tmp_path / "o"])
    assert r.exit_code == 0, r.stderr
    got = np.stack([np.asarray(Image.open(png_path(tmp_path / "o", s))) for s in SEEDS])
    assert got.shape == (4, 8, 8, 3) and got.dtype == np.uint8           # RGB pixels, not latents
    # Reference: the same latents, un-whitened as EDM2 does, decoded by diffusers directly.
    D = load_model(p, trust_pickle=True, device="cpu", vae=tmp_path / "vae")
    cfg = SamplerConfig(steps=4)
    noise = SeedNoise(SEEDS)
    x = sample(NetCall(D, 8, None), noise.randn([4, 4, 4]), None, cfg, noise, edm_sigmas(cfg, D))
    scale, bias = _edm2_whitening()
    col = lambda v: torch.from_numpy(v).reshape(1, -1, 1, 1)  # noqa: E731
    raw = (x.to(torch.float32) - col(bias)) / col(scale)
    with torch.no_grad():
        ref = vae.decode(raw).sample.clamp(0, 1).mul(255).to(torch.uint8)
    assert np.array_equal(got, ref.permute(0, 2, 3, 1).numpy())
    assert len(np.unique(got)) > 10                                        # not a constant image
    settings = json.loads((tmp_path / "o" / ".ambient-sample.json").read_text())
    assert settings["vae"]["name"] == VAE_NAME and len(settings["vae"]["sha256"]) == 64
    assert np.allclose(settings["vae"]["scale"], scale) and "EDM" in settings["noise"]


def test_latent_model_without_vae_exits_2_naming_the_file(cli, tmp_path, no_caches):
    p = tmp_path / "edm2-latent.pkl"
    write_snapshot(p, img_resolution=4, img_channels=4, encoder_vae=VAE_NAME)
    r = cli(["sample", p, "--trust-pickle", "--seeds", "0", "--device", "cpu", "--out", tmp_path / "o"])
    err = " ".join(r.stderr.split())
    assert r.exit_code == 2 and VAE_NAME in err and L.WEIGHTS in err and "--vae" in err, err
    assert not (tmp_path / "o").exists()
    (tmp_path / "novae").mkdir()
    with pytest.raises(AmbientError, match="holds no AutoencoderKL"):
        load_model(p, trust_pickle=True, device="cpu", vae=tmp_path / "novae")


def test_vae_found_through_environment_variable(tmp_path, no_caches, monkeypatch):
    _save_vae(tmp_path / "pipe" / "vae")                                  # an SD pipeline folder
    monkeypatch.setenv(L.VAE_ENV, str(tmp_path / "pipe"))
    p = tmp_path / "m.pkl"
    write_snapshot(p, img_resolution=4, img_channels=4)                    # no encoder record
    D = load_model(p, trust_pickle=True, device="cpu")
    assert D.decoder.upscale == 2 and D.decoder.vae_name == L.VAE_NAME     # EDM2's defaults
    assert np.allclose(D.decoder.scale.flatten().numpy(), _edm2_whitening()[0])


def test_unknown_encoder_class_is_refused(tmp_path, no_caches):
    p = tmp_path / "m.pkl"
    write_snapshot(p, img_resolution=4, img_channels=4, encoder_vae=VAE_NAME, encoder_class="DCAEEncoder")
    with pytest.raises(AmbientError, match="DCAEEncoder"):
        load_model(p, trust_pickle=True, device="cpu", vae=tmp_path)
