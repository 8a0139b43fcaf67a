"""diffusers pipeline folders (model_index.json + unet/ + scheduler/): supported ones load and
sample; unsupported pipelines and schedulers are refused with exit 2 and no output."""
from __future__ import annotations

import json

import pytest
import torch

from ambient_eval.models import load_model

diffusers = pytest.importorskip("diffusers")


def _unet():
    torch.manual_seed(0)
    return diffusers.UNet2DModel(sample_size=8, in_channels=3, out_channels=3, layers_per_block=1,
                                 block_out_channels=(8, 16), norm_num_groups=4,
                                 down_block_types=("DownBlock2D", "DownBlock2D"),
                                 up_block_types=("UpBlock2D", "UpBlock2D")).eval()


@pytest.mark.parametrize("pipeline, scheduler", [("DDPMPipeline", "DDPMScheduler"),
                                                 ("DDIMPipeline", "DDIMScheduler")])
def test_pipeline_folder_loads_and_samples(cli, tmp_path, pipeline, scheduler):
    unet = _unet()
    sched = getattr(diffusers, scheduler)(num_train_timesteps=100, beta_schedule="squaredcos_cap_v2")
    getattr(diffusers, pipeline)(unet=unet, scheduler=sched).save_pretrained(tmp_path / "p")
    assert (tmp_path / "p" / "model_index.json").is_file()
    D = load_model(tmp_path / "p", device="cpu")
    assert D.checkpoint_format == "diffusers" and D.img_resolution == 8
    assert torch.allclose(D.sigmas, ((1 - sched.alphas_cumprod) / sched.alphas_cumprod).sqrt().double())
    x, t = torch.randn(2, 3, 8, 8), torch.tensor([5, 60])
    sigma = D.sigmas[t].to(torch.float32).reshape(-1, 1, 1, 1)
    with torch.no_grad():
        eps = unet(x / (1 + sigma ** 2).sqrt(), t).sample
    assert torch.allclose(D(x, sigma.flatten()), x - sigma * eps, atol=1e-5)
    r = cli(["sample", tmp_path / "p", "--seeds", "0-1", "--steps", "3", "--device", "cpu",
             "--sampler", "ddim", "--out", tmp_path / "o.npz"])
    assert r.exit_code == 0, r.stderr


def test_unsupported_pipeline_and_scheduler_exit_2(cli, tmp_path):
    unet = _unet()
    diffusers.DDPMPipeline(unet=unet, scheduler=diffusers.DDPMScheduler(num_train_timesteps=50)) \
        .save_pretrained(tmp_path / "p")
    index = tmp_path / "p" / "model_index.json"
    sched_cfg = tmp_path / "p" / "scheduler" / "scheduler_config.json"
    good_index, good_sched = index.read_text(), sched_cfg.read_text()
    cases = [(lambda: index.write_text(json.dumps({**json.loads(good_index), "_class_name": "LDMPipeline"})),
              "supported pipelines are DDPMPipeline"),
             (lambda: sched_cfg.write_text(json.dumps({"_class_name": "ScoreSdeVeScheduler", "sigma_max": 50})),
              "ScoreSdeVeScheduler, whose noise schedule"),
             (lambda: sched_cfg.write_text(json.dumps({**json.loads(good_sched), "rescale_betas_zero_snr": True})),
              "rescale_betas_zero_snr")]
    for break_it, message in cases:
        index.write_text(good_index)
        sched_cfg.write_text(good_sched)
        break_it()
        r = cli(["sample", tmp_path / "p", "--seeds", "0", "--device", "cpu", "--out", tmp_path / "o"])
        assert r.exit_code == 2 and message in " ".join(r.stderr.split()), (message, r.stderr)
        assert not (tmp_path / "o").exists()
