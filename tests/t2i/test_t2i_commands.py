"""fid --model, memorization --model and reproducibility on tiny DiT / SD / SDXL / LCM pipelines
see exactly diffusers' own images (the oracle's PNGs are the training set / the other model)."""
from __future__ import annotations

import json

import numpy as np
import pandas as pd
import pytest
from PIL import Image

from tests.t2i.conftest import PROMPTS
from tests.t2i.oracle import diffusers_images

SEEDS = [0, 1, 2]
STEPS = 2


@pytest.fixture(scope="module")
def oracle(pipes, tmp_path_factory):
    """kind => (folder of diffusers' PNGs named {seed:06d}.png, caption table naming them)."""
    out = {}
    for kind in ("dit", "sd", "sdxl", "lcm"):
        root = tmp_path_factory.mktemp(f"oracle-{kind}")
        imgs = diffusers_images(pipes[kind], kind, SEEDS, STEPS, prompts=PROMPTS, classes=[3] * 3)
        (root / "png").mkdir()
        for s, im in zip(SEEDS, imgs):
            Image.fromarray(im).save(root / "png" / f"{s:06d}.png")
        captions = root / "captions.csv"
        # captions in reverse seed order with explicit seeds: each row's image is its own generation
        pd.DataFrame({"prompt": PROMPTS[::-1], "seed": SEEDS[::-1],
                      "image": [f"{s:06d}.png" for s in SEEDS[::-1]]}).to_csv(captions, index=False)
        out[kind] = (root / "png", captions)
    return out


def _cond(kind, oracle, prompt_file):  # noqa: ARG001
    return ["--class", "3"] if kind == "dit" else ["--prompts", prompt_file]


@pytest.mark.parametrize("kind", ["sd", *(pytest.param(k, marks=pytest.mark.slow)
                                         for k in ("dit", "sdxl", "lcm"))])
def test_fid_memorization_reproducibility_see_diffusers_images(cli, pipes, oracle, prompt_file, tmp_path, kind):
    png, _ = oracle[kind]
    cond = _cond(kind, oracle, prompt_file)
    common = ["--steps", STEPS, "--device", "cpu"]
    # fid --model == fid of diffusers' PNGs (pixel features: any differing pixel changes the value)
    r = cli(["fid", "--model", pipes[kind], *cond, "--seeds", "0-2", png, "--features", "pixel-8",
             *common, "--out", tmp_path / "f", "--no-report", "--cache-dir", tmp_path / "c"])
    assert r.exit_code == 0, r.output
    fd = json.loads((tmp_path / "f" / "results.json").read_text())["metrics"]["fd_pixel_8"]
    assert fd == pytest.approx(0.0, abs=1e-6)
    # memorization --model: every generation's nearest training image is its diffusers twin, cosine 1
    r = cli(["memorization", "--model", pipes[kind], *cond, "--seeds", "0-2", "--train", png, "--embed",
             "pixel", "--k", "1", *common, "--out", tmp_path / "m",
             "--bootstrap", "10", "--no-cache"])
    assert r.exit_code == 0, r.output
    table = pd.read_csv(tmp_path / "m" / "samples.csv")
    assert table["top1_name"].tolist() == [f"{s:06d}.png" for s in SEEDS]
    assert np.allclose(table["top1_sim"], 1.0, atol=1e-6)
    # reproducibility: the pipeline vs diffusers' PNGs, same seeds => RP 1
    r = cli(["reproducibility", pipes[kind], png, *cond, "--seeds", "0-2", "--embed", "pixel",
             "--threshold", "0.9999", *common, "--out", tmp_path / "r", "--bootstrap", "10", "--no-cache"])
    assert r.exit_code == 0, r.output
    assert ": 1.0000" in r.output


def test_memorization_from_training_captions(cli, pipes, oracle, tmp_path):
    """--prompts captions.csv without --seeds: one generation per caption, matched to its own image."""
    png, captions = oracle["sd"]
    r = cli(["memorization", "--model", pipes["sd"], "--prompts", captions, "--train", png, "--embed",
             "pixel", "--k", "1", "--steps", STEPS, "--device", "cpu", "--out", tmp_path / "m",
             "--bootstrap", "10", "--no-cache"])
    assert r.exit_code == 0, r.output
    t = pd.read_csv(tmp_path / "m" / "samples.csv")
    assert t["sample"].tolist() == [2, 1, 0]                        # seed column order
    assert t["prompt"].tolist() == PROMPTS[::-1]
    assert t["caption_image"].tolist() == [f"{s:06d}.png" for s in (2, 1, 0)]
    assert np.allclose(t["caption_image_sim"], 1.0, atol=1e-6) and t["caption_image_is_top1"].all()
    html = (tmp_path / "m" / "report.html").read_text()
    assert "prompt | generation | match" in html and PROMPTS[0] in html
