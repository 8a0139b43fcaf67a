"""Text-to-image FID end to end (`fid --model SD --prompts FILE REF --resize R --metrics fd,clipscore`),
the `--resize` transform (center crop + PIL bicubic, against an independent PIL oracle), and the
COCO-30k / ImageNet protocols of docs/quality.md run at tiny size."""
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
    from ambient_eval.data.base import ArraySource
    from ambient_eval.data.inputs import open_input
    from ambient_eval.data.resized import ResizedSource

    imgs = [random_images(1, size=40, seed=k)[0][: 24 + 4 * k, : 40 - 6 * k] for k in range(3)]
    for k, im in enumerate(imgs):
        (tmp_path / "f").mkdir(exist_ok=True)
        Image.fromarray(np.ascontiguousarray(im)).save(tmp_path / "f" / f"{k}.png")
    src = open_input(str(tmp_path / "f"), max_images=None, subset_seed=0, skip_bad=False, what="x", resize=16)
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
    from ambient_eval.files.hashing import sha256_file
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


# ---- the two protocol commands of docs/quality.md, run at tiny size -------------------------------------------

def _readme_line(prefix: str) -> list[str]:
    import shlex

    from tests.reliability.test_readme import readme_commands

    line = next(c for c in readme_commands() if c.startswith(prefix))
    return shlex.split(line)[1:]


def _scaled(argv: list[str], swap: dict[str, str], extra: list) -> list:
    """The documented argv with paths/sizes swapped for tiny stand-ins and test-only options appended."""
    return [swap.get(a, a) for a in argv if a not in ("--out",) and not a.startswith("results/")] + extra


@pytest.fixture
def frechet(monkeypatch):
    """Record the statistics handed to the Frechet distance (a 2048-d sqrtm takes minutes on 2 cores)."""
    import ambient_eval.metrics as M

    calls = []

    def record(mu1, s1, mu2, s2, method="eig", n1=None, n2=None):
        calls.append(dict(mu1=np.asarray(mu1), mu2=np.asarray(mu2), s2=np.asarray(s2), method=method))
        return float(len(calls))

    monkeypatch.setattr(M, "fid_from_stats", record)
    return calls


def test_coco30k_protocol_tiny(cli, sd, clip, inception_weights, frechet, tmp_path):
    """COCO-30k: non-square photos of mixed sizes as REFERENCE, clean Inception at --resize; the reference
    statistics are those of the oracle-resized photos (independent PIL crop + resize, then Inception)."""
    from ambient_eval.data.base import ArraySource, select_subset
    from ambient_eval.features import POOL3, extract_features, get_extractor
    from tests.metrics.test_clip_score import TINY

    pipe, prompts, _, _ = sd
    photos = [np.ascontiguousarray(random_images(1, size=40, seed=20 + k)[0][: 20 + 3 * k, : 40 - 2 * k])
              for k in range(5)]
    write_images(tmp_path / "val2014", photos)
    argv = _scaled(_readme_line("ambient-eval fid --model sd-folder/ --prompts coco30k_captions.csv"),
                   {"sd-folder/": str(pipe), "coco30k_captions.csv": str(prompts),
                    "coco/val2014/": str(tmp_path / "val2014"), "30000": "4", "256": "12"},
                   ["--weights", str(inception_weights), "--clip-model", TINY, "--clip-weights", str(clip[0]),
                    "--steps", STEPS, "--device", "cpu", "--no-report", "--no-cache", "--out", tmp_path / "o"])
    r = cli(argv)
    assert r.exit_code == 0, r.output
    saved = json.loads((tmp_path / "o" / "results.json").read_text())
    assert set(saved["metrics"]) >= {"fid", "clipscore"} and saved["settings"]["resize"]["size"] == 12
    assert saved["settings"]["per_metric"]["fid"]["extractor"] == "inception-clean"
    assert saved["inputs"]["reference"]["n"] == 4 and saved["inputs"]["generated"]["n"] == 3   # each row once
    keep = select_subset(5, 4, 0, "x")
    want = np.stack([_oracle_resize(photos[i], 12) for i in keep])
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        ex = get_extractor("inception-clean", weights=str(inception_weights), device="cpu")
        acts = extract_features(ArraySource(want), ex, batch_size=8)[POOL3].astype(np.float64)
    np.testing.assert_allclose(frechet[0]["mu2"], acts.mean(0), rtol=1e-5, atol=1e-6)
    np.testing.assert_allclose(frechet[0]["s2"], np.cov(acts, rowvar=False), rtol=1e-4, atol=1e-6)


def _tiny_dit(folder, num_classes: int):
    """A DiT pipeline with `num_classes` classes (tiny_pipelines' DiT has ImageNet's 1000)."""
    import diffusers as d
    import torch

    from tests.t2i.tiny_pipelines import _vae

    torch.manual_seed(0)
    tr = d.DiTTransformer2DModel(sample_size=8, patch_size=2, in_channels=4, out_channels=8, num_layers=2,
                                 attention_head_dim=8, num_attention_heads=2, num_embeds_ada_norm=num_classes,
                                 norm_type="ada_norm_zero")
    d.DiTPipeline(transformer=tr, vae=_vae(), scheduler=d.DPMSolverMultistepScheduler(),
                  id2label={i: f"class{i}" for i in range(num_classes)}).save_pretrained(str(folder),
                                                                                        safe_serialization=True)
    return folder


def test_imagenet_protocol_tiny(cli, inception_weights, frechet, tmp_path):
    """ImageNet: --class balanced over 2 classes x 3 seeds against a tiny images-only ADM batch (a batch's
    precomputed mu/sigma are tested in tests/metrics/test_adm_pipeline.py; their 2048-d PSD check costs
    seconds here); the ADM table is printed and the labels are balanced."""
    from ambient_eval.data import open_source

    dit = _tiny_dit(tmp_path / "dit", 2)
    np.savez(tmp_path / "VIRTUAL_tiny.npz", arr_0=random_images(6, size=16, seed=5))
    argv = _scaled(_readme_line("ambient-eval fid --model dit-folder/ --class balanced"),
                   {"dit-folder/": str(dit), "0-49999": "0-5",
                    "VIRTUAL_imagenet256_labeled.npz": str(tmp_path / "VIRTUAL_tiny.npz")},
                   ["--weights", str(inception_weights), "--steps", STEPS, "--guidance", "1", "--device", "cpu",
                    "--no-report", "--no-cache", "--out", tmp_path / "o"])
    r = cli(argv)
    assert r.exit_code == 0, r.output
    saved = json.loads((tmp_path / "o" / "results.json").read_text())
    for key in ("fid", "sfid", "adm_is", "adm_precision", "adm_recall"):
        assert key in saved["metrics"] and key in r.output
    assert [(c["method"], len(c["mu2"])) for c in frechet] == [("sqrtm", 2048), ("sqrtm", 2023)]
    sampling, gen = saved["inputs"]["generated"]["sampling"], saved["inputs"]["generated"]
    assert sampling["class"] == "balanced" and gen["n"] == 6
    assert saved["inputs"]["reference"]["fingerprint"] == open_source(tmp_path / "VIRTUAL_tiny.npz").fingerprint()
