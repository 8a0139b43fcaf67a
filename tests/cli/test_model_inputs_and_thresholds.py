"""One rule for 'a model or its samples' and one label rule; thresholds default per embedding."""
from __future__ import annotations

import json

import numpy as np

from ambient_eval.audits.memorization import COPY_THRESHOLD, DEFAULT_THRESHOLDS
from ambient_eval.data.model_inputs import is_checkpoint, kind_of, model_labels
from tests.conftest import random_images, write_images


def test_sample_folder_with_stray_config_json_is_samples(tmp_path):
    flat, nested, ckpt = tmp_path / "flat", tmp_path / "nested", tmp_path / "ckpt"
    write_images(flat, random_images(2, size=8))
    write_images(nested / "000000", random_images(2, size=8))
    ckpt.mkdir()
    for d in (flat, nested, ckpt):
        (d / "config.json").write_text("{}")
    assert kind_of(flat) == kind_of(nested) == "samples" and kind_of(ckpt) == "checkpoint"
    assert is_checkpoint(tmp_path / "x.pkl") and not is_checkpoint(tmp_path / "x.npz")


def test_one_label_rule():
    assert model_labels(["a/base", "b/base/", "c/base.npz", "x.pkl"]) == ["base", "base-2", "base-3", "x"]


def test_reproducibility_reads_sample_folders_with_config_json(cli, tmp_path):
    seeds = list(range(6))
    for name in ("A", "B"):
        write_images(tmp_path / "runs" / name, random_images(6, size=8, seed=1), start=0)
        (tmp_path / "runs" / name / "config.json").write_text('{"note": "sampler settings"}')
    write_images(tmp_path / "other" / "A", random_images(6, size=8, seed=2))
    out = tmp_path / "out"
    r = cli(["reproducibility", tmp_path / "runs" / "A", tmp_path / "runs" / "B", tmp_path / "other" / "A",
             "--seeds", f"0-{seeds[-1]}", "--embed", "pixel", "--no-cache", "--bootstrap", "10",
             "--out", out])
    assert r.exit_code == 0, r.output
    res = json.loads((out / "results.json").read_text())
    assert "rp[A|B]" in res["metrics"] and "rp[A|A-2]" in res["metrics"]   # one label rule: A-2
    s = res["settings"]
    assert s["sampler"] is None and s["steps"] is None   # sample sets: no sampler provenance
    # Defect: pixel embeddings used SSCD's 0.6. Now the pixel default, recorded as a default.
    assert s["threshold"] == COPY_THRESHOLD["pixel"] == 0.95 and s["threshold_default"] is True


def test_copy_thresholds_are_memorization_thresholds():
    assert COPY_THRESHOLD["sscd"] == 0.6 and DEFAULT_THRESHOLDS["sscd"] == (0.5, 0.6)
    for fam, t in COPY_THRESHOLD.items():
        assert t in DEFAULT_THRESHOLDS[fam]
    assert set(COPY_THRESHOLD) == set(DEFAULT_THRESHOLDS)


def test_user_threshold_is_recorded_as_such(cli, tmp_path):
    for name in ("A", "B"):
        write_images(tmp_path / name, random_images(4, size=8, seed=3))
    out = tmp_path / "out"
    r = cli(["reproducibility", tmp_path / "A", tmp_path / "B", "--seeds", "0-3", "--embed", "pixel",
             "--threshold", "0.5", "--no-cache", "--bootstrap", "10", "--out", out])
    assert r.exit_code == 0, r.output
    s = json.loads((out / "results.json").read_text())["settings"]
    assert s["threshold"] == 0.5 and s["threshold_default"] is False
    assert np.isfinite(s["threshold"])
