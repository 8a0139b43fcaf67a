"""Corruption leakage: classifier file round trip, metric arithmetic, fid --metrics leakage, annotate."""
from __future__ import annotations

import json

import numpy as np
import pytest
import torch

from ambient_eval.results.comparability import feature_space
from ambient_eval.data.corruptions import gaussian_blur
from ambient_eval.errors import AmbientError
from ambient_eval.metrics import leakage as L
from ambient_eval.training.annotate import AnnotateConfig
from tests.conftest import write_images


@pytest.fixture(scope="module")
def digits_split():
    from ambient_eval.data.builtin import load_builtin

    imgs, _, _ = load_builtin("builtin:digits-16:train")
    x = torch.as_tensor(np.array(imgs[:240]))[:, None]                          # N1HW uint8
    return x[:120], gaussian_blur(x[120:], 1.5)                                  # clean, blurred


@pytest.fixture(scope="module")
def trained(digits_split, tmp_path_factory):
    clean, blurred = digits_split
    threads = torch.get_num_threads()
    torch.set_num_threads(1)   # a tiny net: a second thread only adds contention on a shared 2-core CPU
    try:
        clf = L.train_leakage_classifier(clean, blurred, AnnotateConfig(steps=100, width=8, seed=0))
    finally:
        torch.set_num_threads(threads)
    path = tmp_path_factory.mktemp("clf") / "clf.safetensors"
    L.save_classifier(clf, path)
    return clf, path


def test_classifier_separates_and_round_trips(trained, digits_split):
    clf, path = trained
    assert clf.rates["corrupted"] - clf.rates["clean"] > 0.5, clf.rates      # it learned the corruption
    loaded = L.load_classifier(path)
    assert loaded.rates == clf.rates and loaded.sigma == clf.sigma and loaded.sha256
    clean, _ = digits_split
    np.testing.assert_array_equal(L.corrupted_prob(loaded, clean[:9]), L.corrupted_prob(clf, clean[:9]))
    # one noise draw per image, keyed by position: batch size does not matter
    whole = L.corrupted_prob(clf, clean[:9])
    parts = np.concatenate([L.corrupted_prob(clf, clean[:4]), L.corrupted_prob(clf, clean[4:9], start=4)])
    np.testing.assert_array_equal(whole, parts)


def test_metrics_and_correction():
    clf = L.LeakageClassifier(torch.nn.Linear(1, 1), 0.01, 8, 1, 8, rates={"clean": 0.1, "corrupted": 0.9})
    p = np.array([0.9] * 30 + [0.2] * 70)
    m, ci, st = L.leakage_metrics(p, clf, n_boot=500, seed=1)
    assert m[L.LEAKAGE] == pytest.approx(0.3) and m[L.LEAKAGE_CORRECTED] == pytest.approx(0.25)
    assert ci[L.LEAKAGE][0] < 0.3 < ci[L.LEAKAGE][1] and st["n"] == 100
    assert L.corrected(0.05, clf.rates) == 0.0 and L.corrected(0.5, {"clean": 0.5, "corrupted": 0.5}) is None


def test_fid_leakage_cli_and_gate_name(cli, trained, digits_split, tmp_path):
    from ambient_eval.gate.catalog import CATALOG

    _, path = trained
    clean, blurred = digits_split
    write_images(tmp_path / "blurred", blurred[:40, 0].numpy())
    write_images(tmp_path / "clean", clean[:40, 0].numpy())
    vals = {}
    for name, metrics in (("blurred", "leakage"), ("clean", "fid,leakage")):
        r = cli(["fid", tmp_path / name, tmp_path / "clean", "--metrics", metrics, "--classifier", path,
                 "--features", "pixel-8", "--out", tmp_path / f"r_{name}", "--no-report"])
        assert r.exit_code == 0, r.output
        res = json.loads((tmp_path / f"r_{name}" / "results.json").read_text())
        vals[name] = res["metrics"]["leakage"]
        assert res["settings"]["leakage"]["classifier_sha256"] and "leakage" in res["ci"]
        space = feature_space(res["settings"], "leakage_corrected")
        assert space["extractor"] == "leakage-classifier" and space["weights_sha256"]
    assert vals["blurred"] > 0.8 and vals["clean"] < 0.2, vals
    assert "fd_pixel_8" in res["metrics"] and res["settings"]["per_metric"]["fid"]["extractor"] == "pixel-8"
    assert any(p.display == "leakage" for p in CATALOG)
    r = cli(["fid", tmp_path / "clean", tmp_path / "clean", "--metrics", "leakage"])
    assert r.exit_code == 2 and "--classifier" in r.output
    bad = tmp_path / "bad.safetensors"
    bad.write_bytes(b"not a file")
    with pytest.raises(AmbientError, match="not a readable safetensors"):
        L.load_classifier(bad)


def test_annotate_save_classifier(cli, tmp_path):
    r = cli(["corrupt", "builtin:digits-16:train", "-o", tmp_path / "data", "--kind", "blur", "--level", "1.5",
             "--fraction", "0.5", "--seed", "0", "--max-images", "40"])
    assert r.exit_code == 0, r.output
    r = cli(["annotate", tmp_path / "data", tmp_path / "data", "-o", tmp_path / "ann.jsonl", "--fixed-sigma", "0.5",
             "--steps", "5", "--no-report", "--save-classifier", tmp_path / "clf.safetensors"])
    assert r.exit_code == 0, r.output
    assert "Leakage classifier" in r.output
    clf = L.load_classifier(tmp_path / "clf.safetensors")
    assert clf.resolution == 16 and set(clf.rates) >= {"clean", "corrupted"}


def test_fid_leakage_samples_a_model_with_its_conditioning(trained, monkeypatch):
    """--metrics leakage with --model keeps --prompts/--class/--gnet (the conditioning) for sampling."""
    from ambient_eval import api
    from ambient_eval.metrics import fid_run
    from tests.features.conftest import array_source

    _, path = trained
    seen = {}

    def fake_model_input(model, seeds, **kw):
        seen.update(kw)
        return array_source(np.zeros((4, 16, 16, 3), np.uint8))

    monkeypatch.setattr(fid_run, "model_input", fake_model_input)
    cond = object()
    res = api.fid(model="some-model", seeds="0-3", metrics=["leakage"], classifier=path, conditioning=cond)
    assert seen["conditioning"] is cond and "leakage" in res.metrics
