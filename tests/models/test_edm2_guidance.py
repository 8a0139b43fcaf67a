"""EDM2 guidance (--gnet PKL --guidance W) against an oracle written here.

Oracle: EDM2's guided sampler as the EDM2 paper / autoguidance paper describe it, evaluated on the
networks built directly by the snapshot writer (not loaded through ambient-eval): per-seed
generators (latents, then the class), Heun in float32 with float32 time steps, and the guided
denoiser D_w = D_0 + w (D_1 - D_0) evaluated as torch's lerp on float32 outputs (as EDM2 does; the
written form rounds differently), the guiding net D_0 called with the main net's labels. All 8
seeds go through the nets as one batch of 8 (the chunk size ambient-eval uses on CPU).
"""
from __future__ import annotations

import json

import numpy as np
import pytest
import torch
from PIL import Image
from typer.testing import CliRunner

from ambient_eval.cli.app import app
from ambient_eval.sampling.generate import to_uint8
from tests.models.edm_writer import write_snapshot

SEEDS = list(range(8))
STEPS = 5
RGB = dict(encoder_vae="rgb", encoder_class="StandardRGBEncoder")    # EDM2 pixel snapshot


@pytest.fixture(scope="module")
def nets(tmp_path_factory):
    root = tmp_path_factory.mktemp("guid")
    built = {}
    for name, kw, seed in (("cond", dict(label_dim=4), 0), ("uncond", {}, 1), ("xs", dict(label_dim=4), 2)):
        built[name] = (root / f"{name}.pkl", write_snapshot(root / f"{name}.pkl", seed=seed, **RGB, **kw))
    return built


def oracle(net, gnet, w, cls=None):
    """Seeds 0-7 => NCHW uint8, EDM2's guided Heun (deterministic) written from the papers."""
    gens = [torch.Generator().manual_seed(s) for s in SEEDS]
    shape = [net.img_channels, net.img_resolution, net.img_resolution]
    z = torch.stack([torch.randn(shape, generator=g) for g in gens])
    labels = None
    if net.label_dim:
        drawn = torch.stack([torch.randint(net.label_dim, size=[], generator=g) for g in gens])
        labels = torch.eye(net.label_dim)[drawn if cls is None else torch.full_like(drawn, cls)]
    i = torch.arange(STEPS, dtype=torch.float32)
    t = (80 ** (1 / 7) + i / (STEPS - 1) * (0.002 ** (1 / 7) - 80 ** (1 / 7))) ** 7
    t = torch.cat([t, torch.zeros(1)])

    def D(x, s):   # Karras et al. 2024 (autoguidance) Eq. 1: D_0 + w (D_1 - D_0), as lerp
        with torch.no_grad():
            D_1 = net(x, s.reshape(1), labels).to(torch.float32)
            if w == 1:
                return D_1
            return gnet(x, s.reshape(1), labels).to(torch.float32).lerp(D_1, w)

    x = z * t[0]
    for k in range(STEPS):
        d = (x - D(x, t[k])) / t[k]
        x_next = x + (t[k + 1] - t[k]) * d
        if k < STEPS - 1:
            d2 = (x_next - D(x_next, t[k + 1])) / t[k + 1]
            x_next = x + (t[k + 1] - t[k]) * (0.5 * d + 0.5 * d2)
        x = x_next
    return to_uint8(x)


def _sample(main, out, *extra):
    r = CliRunner().invoke(app, ["sample", str(main), "--trust-pickle", "--seeds", "0-7", "--steps", str(STEPS),
                                 "--device", "cpu", "--out", str(out), *map(str, extra)])
    assert r.exit_code == 0, r.output
    ims = np.stack([np.asarray(Image.open(out / "000000" / f"{s:06d}.png")) for s in SEEDS])
    return torch.from_numpy(ims).permute(0, 3, 1, 2), json.loads(next(out.glob("*.json")).read_text())


@pytest.mark.parametrize("gname,w,batch,cls", [("uncond", 1.4, 8, None),    # classifier-free guidance
                                               ("xs", 2.1, 3, 2)])          # autoguidance, other batch
def test_guided_sampling_equals_oracle(nets, tmp_path, gname, w, batch, cls):
    (main, net), (gpath, gnet) = nets["cond"], nets[gname]
    extra = ["--gnet", gpath, "--guidance", w, "--batch", batch] + (["--class", cls] if cls is not None else [])
    ours, settings = _sample(main, tmp_path / "o", *extra)
    expect = oracle(net, gnet, w, cls)
    assert torch.equal(ours, expect), int((ours.int() - expect.int()).abs().max())
    assert not torch.equal(ours, oracle(net, gnet, 1.0, cls))          # guidance changed the images
    from ambient_eval.files.hashing import sha256_file

    assert settings["guidance"] == w and settings["gnet_sha256"] == sha256_file(gpath), settings


def test_w1_is_unguided_and_guidance_is_in_the_settings(nets, tmp_path):
    main, gpath = nets["cond"][0], nets["uncond"][0]
    plain, s0 = _sample(main, tmp_path / "a")
    same, s1 = _sample(main, tmp_path / "b", "--gnet", gpath, "--guidance", 1)
    same2, s2 = _sample(main, tmp_path / "b2", "--guidance", 1)           # W = 1 needs no gnet
    assert torch.equal(plain, same) and torch.equal(plain, same2) and "guidance" not in s1
    drop = {"cpu_threads"}
    assert all({k: v for k, v in s0.items() if k not in drop} == {k: v for k, v in s.items() if k not in drop}
               for s in (s1, s2))
    _sample(main, tmp_path / "c", "--gnet", gpath, "--guidance", 1.4)
    r = CliRunner().invoke(app, ["sample", str(main), "--trust-pickle", "--seeds", "0-7", "--steps", str(STEPS),
                                 "--device", "cpu", "--out", str(tmp_path / "c"), "--gnet", str(gpath),
                                 "--guidance", "2"])
    assert r.exit_code == 2 and "guidance" in r.output, r.output      # resume with another W: refused


def test_model_source_fingerprint_covers_gnet_and_w(nets):
    from ambient_eval.models import load_model
    from ambient_eval.sampling.conditioning import Conditioning
    from ambient_eval.sampling.samplers import SamplerConfig
    from ambient_eval.sampling.source import ModelSource

    main = nets["cond"][0]

    def fp(**kw):
        m = load_model(main, trust_pickle=True, device="cpu", conditioning=Conditioning(**kw))
        src = ModelSource(m, SEEDS, cfg=SamplerConfig(steps=STEPS), device="cpu")
        assert ("guidance" in src.description) == (kw.get("guidance", 1) != 1), src.description
        return src.fingerprint()

    fps = [fp(), fp(gnet=str(nets["uncond"][0]), guidance=1.4), fp(gnet=str(nets["uncond"][0]), guidance=2.0),
           fp(gnet=str(nets["xs"][0]), guidance=1.4), fp(gnet=str(nets["xs"][0]), guidance=1.0)]
    assert len(set(fps[:4])) == 4 and fps[4] == fps[0]


def test_lerp_is_the_guidance_formula():
    g = torch.Generator().manual_seed(0)
    D_0, D_1 = torch.randn(1000, generator=g), torch.randn(1000, generator=g)
    for w in (0.3, 1.4, 2.85):
        exact = D_0.double() + w * (D_1.double() - D_0.double())
        assert torch.allclose(D_0.lerp(D_1, w).double(), exact, rtol=0, atol=1e-5)
