"""diffusers and EDM-pickle checkpoints, VP preconditioning, DDIM against diffusers, CLI."""
from __future__ import annotations

import json
import pickle
import sys
import textwrap

import pytest
import numpy as np
import torch

from ambient_eval.errors import AmbientError
from ambient_eval.models import VPPrecond, load_model
from ambient_eval.models.edm_pickle import edm_compat_modules
from ambient_eval.models.precond import ddpm_alphas_cumprod

import diffusers  # noqa: E402 - a dependency of the `test` extra (pyproject.toml): a missing one must fail


def _save_diffusers(path, prediction="epsilon", num_class_embeds=None, **sched_kw):
    torch.manual_seed(0)
    unet = diffusers.UNet2DModel(sample_size=8, in_channels=3, out_channels=3, layers_per_block=1,
                                 block_out_channels=(8, 16), norm_num_groups=4,
                                 down_block_types=("DownBlock2D", "DownBlock2D"),
                                 up_block_types=("UpBlock2D", "UpBlock2D"),
                                 num_class_embeds=num_class_embeds)
    unet.save_pretrained(path)
    sched = diffusers.DDPMScheduler(num_train_timesteps=100, prediction_type=prediction, **sched_kw)
    sched.save_pretrained(path)
    return unet.eval(), sched


def test_ddpm_schedules_match_diffusers():
    for kind in ("linear", "squaredcos_cap_v2", "scaled_linear"):
        ref = diffusers.DDPMScheduler(num_train_timesteps=50, beta_schedule=kind).alphas_cumprod
        assert torch.allclose(torch.as_tensor(ddpm_alphas_cumprod(50, beta_schedule=kind)), ref.double(),
                              rtol=1e-5)


@pytest.mark.parametrize("prediction", ["epsilon", "v_prediction"])
def test_vp_precond_recovers_clean_image_from_oracle(prediction):
    # An oracle network that outputs the true epsilon (or v) must give D(x; sigma) = y exactly.
    abar = torch.as_tensor(ddpm_alphas_cumprod(100))
    y, n = torch.rand(2, 1, 4, 4) * 2 - 1, torch.randn(2, 1, 4, 4)

    class Oracle(torch.nn.Module):
        def forward(self, x_in, t, labels=None):
            a = abar[t.round().long()].to(torch.float32).reshape(-1, 1, 1, 1)
            return n if prediction == "epsilon" else a.sqrt() * n - (1 - a).sqrt() * y

    D = VPPrecond(Oracle(), abar.numpy(), img_resolution=4, img_channels=1, prediction_type=prediction)
    sigma = D.sigmas[[10, 70]].to(torch.float32)
    x = y + sigma.reshape(-1, 1, 1, 1) * n
    assert torch.allclose(D(x, sigma), y, atol=1e-4)
    assert torch.allclose(D.sigma_to_t(D.sigmas[[0, 10, 99]]), torch.tensor([0.0, 10, 99], dtype=torch.float64))


def test_diffusers_load_matches_direct_unet_call(tmp_path):
    unet, sched = _save_diffusers(tmp_path / "m")
    D = load_model(tmp_path / "m", device="cpu")
    assert isinstance(D, VPPrecond) and D.checkpoint_format == "diffusers" and D.img_resolution == 8
    x = torch.randn(2, 3, 8, 8)
    t = torch.tensor([5, 80])
    abar = sched.alphas_cumprod[t].reshape(-1, 1, 1, 1)
    sigma = ((1 - abar) / abar).sqrt()
    with torch.no_grad():
        eps = unet(x / (1 + sigma ** 2).sqrt(), t).sample
    assert torch.allclose(D(x, sigma.flatten()), x - sigma * eps, atol=1e-5)


@pytest.mark.parametrize("clip_sample", [True, False])   # True: DDPMScheduler's default (issue 24)
def test_ddim_matches_diffusers_ddim_pipeline(tmp_path, clip_sample):
    """--sampler ddim = diffusers' DDIMPipeline on the scheduler config saved with the model."""
    from ambient_eval.sampling.noise import SeedNoise
    from ambient_eval.sampling.samplers import SamplerConfig, ddim_sigmas, sample

    unet, sched = _save_diffusers(tmp_path / "m", clip_sample=clip_sample)
    D = load_model(tmp_path / "m", device="cpu")
    cfg = SamplerConfig(sampler="ddim", steps=10)
    latents = torch.randn([4, 3, 8, 8], generator=torch.Generator().manual_seed(7))
    ours = sample(D, latents, None, cfg, SeedNoise([0, 1, 2, 3]), ddim_sigmas(cfg, D))
    pipe = diffusers.DDIMPipeline(unet, diffusers.DDIMScheduler.from_config(sched.config))
    with torch.no_grad():   # the pipeline draws the same latents from the same generator seed
        ref = pipe(batch_size=4, generator=torch.Generator().manual_seed(7), num_inference_steps=10,
                   output_type="np").images                    # NHWC float in [0, 1]
    ours01 = (ours.to(torch.float32) / 2 + 0.5).clamp(0, 1).permute(0, 2, 3, 1).numpy()
    assert np.abs(ours01 - ref).max() < 2e-4
    if clip_sample:   # the last step returns the clipped x0 estimate
        assert ours.abs().max() <= 1


def test_ddim_refuses_thresholding(tmp_path):
    from ambient_eval.sampling.samplers import SamplerConfig, ddim_sigmas

    _save_diffusers(tmp_path / "m", thresholding=True)
    D = load_model(tmp_path / "m", device="cpu")
    with pytest.raises(AmbientError, match="thresholding"):
        ddim_sigmas(SamplerConfig(sampler="ddim", steps=10), D)


NET_SRC = textwrap.dedent('''
    import torch
    from torch_utils import persistence

    @persistence.persistent_class
    class TinyEDMNet(torch.nn.Module):
        def __init__(self):
            super().__init__()
            self.img_resolution, self.img_channels, self.label_dim = 8, 3, 0
            self.sigma_min, self.sigma_max = 0.0, float("inf")
            self.scale = torch.nn.Parameter(torch.tensor(0.9))

        def forward(self, x, sigma, class_labels=None):
            return self.scale * x / (1 + sigma.reshape(-1, 1, 1, 1) ** 2)
''')


def _write_edm_pickle(path):
    """A pickle in EDM's persistence format: {'ema': <class source + state>}."""
    import types

    with edm_compat_modules():
        mod = types.ModuleType("_src")
        exec(NET_SRC, mod.__dict__)  # noqa: S102 - our own test source
        net = mod.TinyEDMNet()
        recon = sys.modules["torch_utils.persistence"]._reconstruct_persistent_obj
        meta = {"version": 6, "type": "class", "module_src": NET_SRC, "class_name": "TinyEDMNet",
                "state": dict(net.__dict__)}

        class Persistent:
            def __reduce__(self):
                return recon, (meta,)

        path.write_bytes(pickle.dumps({"ema": Persistent(), "augment_pipe": None}))
    assert b"torch_utils.persistence" in path.read_bytes()


def test_edm_pickle_needs_flag_then_loads(tmp_path):
    p = tmp_path / "network-snapshot-000100.pkl"
    _write_edm_pickle(p)
    with pytest.raises(AmbientError, match="--trust-pickle"):
        load_model(p, device="cpu")
    D = load_model(p, trust_pickle=True, device="cpu")
    assert D.checkpoint_format == "edm-pickle" and D.img_resolution == 8
    x = torch.randn(2, 3, 8, 8)
    assert torch.allclose(D(x, torch.tensor([1.0, 3.0])), 0.9 * x / torch.tensor([2.0, 10.0]).reshape(-1, 1, 1, 1))
    assert "torch_utils" not in sys.modules                   # stand-ins removed afterwards


class _Malicious:
    def __init__(self, marker):
        self.marker = str(marker)

    def __reduce__(self):
        return (open, (self.marker, "w"))   # would create the marker file when unpickled


def test_malicious_pickle_refused_and_nothing_runs(cli, tmp_path):
    marker = tmp_path / "PWNED"
    p = tmp_path / "network-snapshot-000000.pkl"
    p.write_bytes(pickle.dumps({"ema": _Malicious(marker)}))
    for fmt in ([], ["--format", "edm-pickle"]):
        r = cli(["sample", p, "--seeds", "0-1", "--out", tmp_path / "o", "--device", "cpu", *fmt])
        err = " ".join(r.stderr.split())
        assert r.exit_code == 2 and "--trust-pickle" in err and "executes code" in err
    assert not marker.exists() and not (tmp_path / "o").exists()
    # Control: the file really is malicious (so the refusal above is what protected us).
    pickle.loads(p.read_bytes())["ema"].close()
    assert marker.exists()


def test_cli_samples_each_format(cli, tmp_path):
    _save_diffusers(tmp_path / "diff", prediction="v_prediction")
    _write_edm_pickle(tmp_path / "net.pkl")
    common = ["--seeds", "0-2", "--steps", "3", "--device", "cpu"]
    r = cli(["sample", tmp_path / "diff", "--out", tmp_path / "a.npz", *common, "--sampler", "ddim"])
    assert r.exit_code == 0, r.stderr
    r = cli(["sample", tmp_path / "diff", "--out", tmp_path / "b", *common])
    assert r.exit_code == 0 and len(list((tmp_path / "b").rglob("*.png"))) == 3
    r = cli(["sample", tmp_path / "net.pkl", "--trust-pickle", "--out", tmp_path / "c", *common])
    assert r.exit_code == 0 and len(list((tmp_path / "c").rglob("*.png"))) == 3


def test_cli_malformed_checkpoints_exit_2(cli, tmp_path):
    _save_diffusers(tmp_path / "diff")
    cfg = json.loads((tmp_path / "diff" / "config.json").read_text())
    cfg["block_out_channels"] = [16, 32]
    (tmp_path / "diff" / "config.json").write_text(json.dumps(cfg))
    (tmp_path / "empty").mkdir()
    (tmp_path / "junk.pkl").write_bytes(b"not a pickle")
    cases = [([tmp_path / "diff"], "Cannot load the UNet2DModel"),
             ([tmp_path / "empty"], "Cannot tell the checkpoint format"),
             ([tmp_path / "junk.pkl", "--trust-pickle"], "Cannot unpickle"),
             ([tmp_path / "empty", "--format", "diffusers"], "no scheduler config")]
    for args, message in cases:
        r = cli(["sample", *args, "--seeds", "0", "--out", tmp_path / "o", "--device", "cpu"])
        assert r.exit_code == 2 and message in " ".join(r.stderr.split()), (args, r.stderr)
        assert not (tmp_path / "o").exists()


def test_sample_help(cli):
    r = cli(["sample", "--help"])
    assert r.exit_code == 0 and "--trust-pickle" in r.stdout and "Examples" in r.stdout
