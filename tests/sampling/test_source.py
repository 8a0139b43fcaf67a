"""model_source: streamed samples equal the PNGs `ambient-eval sample` writes; stable fingerprint."""
from __future__ import annotations

import numpy as np
import torch
from PIL import Image

from ambient_eval.sampling import model_source
from ambient_eval.sampling.noise import seed_labels
from ambient_eval.sampling.writer import png_path

SEEDS = [0, 1, 2, 3, 4, 1001]


def test_model_source_matches_saved_pngs(cli, tiny_ckpt, tmp_path):
    src = model_source(str(tiny_ckpt), SEEDS, batch_size=4, steps=3, device="cpu")
    assert len(src) == 6 and src.resolution == (8, 8) and src.item_names()[-1] == "1001"
    assert np.array_equal(src.labels(), seed_labels(SEEDS, 3, [3, 8, 8]))
    batches = list(src.iter_batches(4))
    assert [len(i) for i, _ in batches] == [4, 2] and batches[1][0].tolist() == [4, 5]
    streamed = torch.cat([x for _, x in batches])
    assert streamed.dtype == torch.uint8 and streamed.shape == (6, 3, 8, 8)
    assert torch.equal(src.read([5, 0]), streamed[[5, 0]])
    out = tmp_path / "png"
    assert cli(["sample", tiny_ckpt, "--seeds", "0-4,1001", "--steps", "3", "--out", out,
                "--device", "cpu"]).exit_code == 0
    saved = np.stack([np.asarray(Image.open(png_path(out, s))) for s in SEEDS])
    assert np.array_equal(saved, streamed.permute(0, 2, 3, 1).numpy())


def test_model_source_fingerprint(tiny_ckpt):
    fp = model_source(str(tiny_ckpt), SEEDS, steps=3, device="cpu").fingerprint()
    assert fp == model_source(str(tiny_ckpt), SEEDS, steps=3, batch_size=2, device="cpu").fingerprint()
    assert fp != model_source(str(tiny_ckpt), SEEDS, steps=4, device="cpu").fingerprint()
    assert fp != model_source(str(tiny_ckpt), SEEDS[:-1], steps=3, device="cpu").fingerprint()
    assert fp != model_source(str(tiny_ckpt), SEEDS, steps=3, class_label=1, device="cpu").fingerprint()


def test_results_inputs_record_noise_scheme_and_label_rule(tiny_ckpt):
    from ambient_eval.metrics.compute import input_info as _input_info

    info = _input_info(model_source(str(tiny_ckpt), SEEDS, steps=3, device="cpu"))
    s = info["sampling"]
    assert "EDM" in s["noise"] and "randint" in s["labels"] and s["vae"] is None
    fixed = _input_info(model_source(str(tiny_ckpt), SEEDS, steps=3, class_label=2, device="cpu"))
    assert fixed["sampling"]["labels"] == "class 2 for every seed"
