"""Text-to-image FID end to end (`fid --model SD --prompts FILE REF --resize R --metrics fd,clipscore`),
the `--resize` transform (center crop + PIL bicubic, against an independent PIL oracle), and the
COCO-30k / ImageNet protocols of the README run at tiny size."""
from __future__ import annotations

import json
import warnings

import numpy as np
import pytest
from PIL import Image

from tests.conftest import random_images, write_images
from tests.t2i.conftest import PROMPTS
from tests.t2i.oracle import diffusers_images

SEEDS = list(range(2, 7))       # beyond the 3 prompt rows and not from 0: seed s uses row s mod 3
STEPS = 2
R = 12                          # --resize: the tiny SD pipeline makes 16x16 images


def _oracle_resize(img: np.ndarray, size: int) -> np.ndarray:
    """Independent oracle: center square crop of the short side, then PIL bicubic."""
    h, w = img.shape[:2]
    s = min(h, w)
    box = ((w - s) // 2, (h - s) // 2, (w - s) // 2 + s, (h - s) // 2 + s)
    return np.asarray(Image.fromarray(img).crop(box).resize((size, size), Image.BICUBIC))


@pytest.fixture(scope="module")
def sd(tmp_path_factory):
    """(pipeline folder, prompt file, folder of diffusers' own PNGs for SEEDS, in seed order)."""
    from tests.t2i.tiny_pipelines import build

    root = tmp_path_factory.mktemp("t2ifid")
    pipe = build("sd", root / "sd")
    prompts = root / "captions.csv"
    prompts.write_text("prompt\n" + "\n".join(PROMPTS) + "\n")
    imgs = diffusers_images(pipe, "sd", SEEDS, STEPS, prompts=[PROMPTS[s % 3] for s in SEEDS])
    write_images(root / "png", imgs)
    return pipe, prompts, root / "png", imgs


@pytest.fixture(scope="module")
def clip(tmp_path_factory):
    from tests.metrics.test_clip_score import tiny_clip

    return tiny_clip.__wrapped__(tmp_path_factory)


def test_resize_is_center_crop_then_pil_bicubic(tmp_path):
    """Mixed-size, non-square folder opens under --resize; equals the PIL oracle; fingerprints differ."""
    from ambient_eval import api
    from ambient_eval.data.base import ArraySource
    from ambient_eval.data.resized import ResizedSource

    imgs = [random_images(1, size=40, seed=k)[0][: 24 + 4 * k, : 40 - 6 * k] for k in range(3)]
    for k, im in enumerate(imgs):
        (tmp_path / "f").mkdir(exist_ok=True)
        Image.fromarray(np.ascontiguousarray(im)).save(tmp_path / "f" / f"{k}.png")
    src = api._open_input(str(tmp_path / "f"), max_images=None, subset_seed=0, skip_bad=False, what="x", resize=16)
    got = src.read([0, 1, 2]).permute(0, 2, 3, 1).numpy()
    want = np.stack([_oracle_resize(np.ascontiguousarray(im), 16) for im in imgs])
    np.testing.assert_array_equal(got, want)
    # an opened source (model samples, arrays) wrapped: same pixels; resize is in every fingerprint
    arr = random_images(4, size=32, seed=3)
    base = ArraySource(arr)
    wrapped = ResizedSource(base, 16)
    np.testing.assert_array_equal(wrapped.read([0, 1, 2, 3]).permute(0, 2, 3, 1).numpy(),
                                  np.stack([_oracle_resize(a, 16) for a in arr]))
    prints = {base.fingerprint(), wrapped.fingerprint(), ResizedSource(base, 20).fingerprint(),
              ArraySource(arr, resize=16).fingerprint(), ArraySource(arr, resize=16, crop=True).fingerprint()}
    assert len(prints) == 5


def test_t2i_fid_pairs_each_image_with_its_prompt(cli, sd, clip, tmp_path):
    """FD = 0 against diffusers' own images resized alike; clipscore = the image-i/prompt-i score of
    those images with the prompt of each seed (row s mod 3); results record prompts hash, pipeline, resize."""
    from ambient_eval import api
    from ambient_eval.hashing import sha256_file
    from tests.metrics.test_clip_score import TINY

    pipe, prompts, png, _ = sd
    clip_path = clip[0]
    r = cli(["fid", "--model", pipe, "--prompts", prompts, "--seeds", "2-6", png, "--metrics", "fid,clipscore",
             "--features", "fid=pixel-8", "--resize", R, "--clip-model", TINY, "--clip-weights", clip_path,
             "--steps", STEPS, "--device", "cpu", "--out", tmp_path / "o", "--no-report", "--cache-dir",
             tmp_path / "c"])
    assert r.exit_code == 0, r.output
    saved = json.loads((tmp_path / "o" / "results.json").read_text())
    m, s = saved["metrics"], saved["settings"]
    assert m["fd_pixel_8"] == pytest.approx(0.0, abs=1e-6)
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        paired = [api.fid(png, metrics=["clipscore"], prompts=[PROMPTS[(s + k) % 3] for s in SEEDS],
                          clip_model=TINY, clip_weights=str(clip_path), device="cpu", cache=False,
                          resize=R).metrics["clipscore"] for k in range(3)]
    assert m["clipscore"] == pytest.approx(paired[0], rel=1e-6)
    assert abs(paired[1] - paired[0]) > 1e-4 and abs(paired[2] - paired[0]) > 1e-4   # pairing matters
    assert s["resize"] == {"size": R, "method": "center crop to a square (short side), PIL bicubic to RxR, uint8"}
    sampling = saved["inputs"]["generated"]["sampling"]
    assert sampling["pipeline"] == "StableDiffusionPipeline"
    assert sampling["prompts"]["sha256"] == sha256_file(prompts) and sampling["prompts"]["rows"] == 3
    assert "resized to 12x12" in saved["inputs"]["generated"]["description"]


def test_resize_refuses_statistics(cli, tmp_path):
    np.savez(tmp_path / "st.npz", mu=np.zeros(3), sigma=np.eye(3))
    write_images(tmp_path / "g", random_images(4, size=16))
    r = cli(["fid", tmp_path / "g", tmp_path / "st.npz", "--resize", "16", "--no-report"])
    assert r.exit_code == 2
    assert "statistics" in r.output
