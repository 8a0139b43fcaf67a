"""`ambient-eval memorization` end to end: planted copies, outputs, index reuse, bad input (exit 2)."""
from __future__ import annotations

import json
import re

import numpy as np
import pandas as pd
import pytest

from ambient_eval.results.envelope import load_results
from tests.audits.conftest import truth_arrays
from tests.audits.planted import MODS

CAPTION = re.compile(r"#(\d+) (\S+) \| train (\S+) \(#(\d+)\) \| cos ([0-9.]+)")


@pytest.fixture
def files(tmp_path, planted, monkeypatch):
    """train.npy / gen.npy on disk, feature cache in tmp."""
    monkeypatch.setenv("AMBIENT_EVAL_CACHE", str(tmp_path / "cache"))
    train, gen, truth = planted
    np.save(tmp_path / "train.npy", train)
    np.save(tmp_path / "gen.npy", gen)
    return tmp_path, truth


def recall_per_mod(table: pd.DataFrame, truth, threshold: float) -> dict[str, float]:
    """Fraction of each modification's copies flagged at `threshold` AND matched to their source."""
    mods, src = truth_arrays(truth)
    hit = (table["top1_sim"].to_numpy() > threshold) & (table["top1_index"].to_numpy() == src)
    return {m: float(hit[mods == m].mean()) for m in ("novel", *MODS)}


def test_help(cli):
    r = cli(["memorization", "--help"])
    assert r.exit_code == 0 and "Examples" in r.stdout and "--train" in r.stdout


def test_planted_copies_pixel(cli, files):
    tmp, truth = files
    out = tmp / "out"
    rep = out / "report.html"   # the report lives in --out (issue 26)
    r = cli(["memorization", tmp / "gen.npy", "--train", tmp / "train.npy", "--embed", "pixel", "--out", out,
             "--top-n", "48", "--bootstrap", "200", "--carlini"])
    assert r.exit_code == 0, r.stdout + r.stderr
    table = pd.read_parquet(out / "samples.parquet")
    text_cols = {c: str for c in table.columns if pd.api.types.is_string_dtype(table[c])}
    pd.testing.assert_frame_equal(table, pd.read_csv(out / "samples.csv", dtype=text_cols), check_dtype=False)
    mods, src = truth_arrays(truth)
    # every exact copy flagged at every default threshold, matched to its source; no novel image flagged
    for t in (0.95, 0.98, 0.99):
        flags = table[f"above_{t!r}"].to_numpy()
        assert flags[mods == "exact"].all() and not flags[mods == "novel"].any()
    assert (table["top1_index"].to_numpy()[mods == "exact"] == src[mods == "exact"]).all()
    assert table["carlini_flag"].to_numpy()[mods == "exact"].all()
    assert not table["carlini_flag"].to_numpy()[mods == "novel"].any()
    rec = recall_per_mod(table, truth, 0.95)
    print("pixel recall@0.95 per modification:", rec)
    assert rec["exact"] == rec["noise"] == rec["jpeg75"] == 1.0 and rec["novel"] == 0.0

    res = load_results(out)
    assert res.kind == "memorization"
    assert res.metrics["n"] == len(truth)
    n_flag = int((table["top1_sim"] > 0.95).sum())
    assert res.metrics["frac_above_0.95"] == pytest.approx(n_flag / len(truth))
    assert res.ci["frac_above_0.95"][0] <= res.metrics["frac_above_0.95"] <= res.ci["frac_above_0.95"][1]
    for key in ("extractor", "weights_sha256", "train_fingerprint", "n_generated", "k"):
        assert key in res.settings
    assert res.settings["n_generated"] == len(truth) and res.settings["k"] == 5
    summary = json.loads((out / "summary.json").read_text())
    assert summary["models"]["gen"]["metrics"] == res.metrics

    # gallery: exact copies first, then every other detectable planted copy, before any novel image
    html = rep.read_text()
    assert 'class="plotly-graph-div' in html and "data:image/png;base64," in html
    cards = [(int(s), int(i), float(c)) for _, s, _, i, c in CAPTION.findall(html)]
    assert len(cards) == 48
    first = [mods[s] for s, _, _ in cards]
    assert first[:8] == ["exact"] * 8
    assert set(first[:32]) == {"exact", "noise", "jpeg75", "shift1"}
    assert all(i == src[s] for s, i, _ in cards[:40])  # each card pairs the sample with its source


def test_planted_copies_random_network_and_two_models(cli, files, randconv):
    tmp, truth = files
    gen = np.load(tmp / "gen.npy")
    mods, src = truth_arrays(truth)
    np.save(tmp / "ambient.npy", gen[mods == "novel"])  # a model that copies nothing
    out = tmp / "out2"
    r = cli(["memorization", tmp / "gen.npy", tmp / "ambient.npy", "--train", tmp / "train.npy",
             "--embed", randconv, "--threshold", "0.9", "--threshold", "0.97", "--out", out,
             "--bootstrap", "100", "--k", "3"])
    assert r.exit_code == 0, r.stdout + r.stderr
    table = pd.read_parquet(out / "samples.parquet")
    assert set(table["model"]) == {"gen", "ambient"} and "sim_3" in table and "sim_4" not in table
    g = table[table["model"] == "gen"].reset_index(drop=True)
    assert g["above_0.97"].to_numpy()[mods == "exact"].all()
    assert not g["above_0.9"].to_numpy()[mods == "novel"].any()
    print("random-net recall@0.9 per modification:", recall_per_mod(g, truth, 0.9))
    a, b = load_results(out / "gen"), load_results(out / "ambient")
    assert a.metrics["frac_above_0.97"] > 0 and b.metrics["frac_above_0.9"] == 0
    assert a.settings["weights_sha256"] == "random-seed-0" and a.settings["extractor"] == randconv
    assert not (out / "results.json").exists()
    assert set(json.loads((out / "summary.json").read_text())["models"]) == {"gen", "ambient"}
    assert "ambient" in r.stdout and "frac" not in r.stderr


def test_index_saved_reused_and_refused(cli, files):
    tmp, _ = files
    idx = tmp / "train.index"
    base = ["memorization", tmp / "gen.npy", "--train", tmp / "train.npy", "--index-path", idx,
            "--bootstrap", "0"]
    assert cli([*base, "--embed", "pixel", "--out", tmp / "a"]).exit_code == 0
    assert idx.exists() and json.loads((tmp / "train.index.json").read_text())["d"] == 3072
    assert cli([*base, "--embed", "pixel", "--out", tmp / "b"]).exit_code == 0
    assert json.loads((tmp / "b" / "summary.json").read_text())["index"]["reused"] is True
    pd.testing.assert_frame_equal(pd.read_parquet(tmp / "a" / "samples.parquet"),
                                  pd.read_parquet(tmp / "b" / "samples.parquet"))
    # another extractor (other dimension) => refused before any work, no output
    r = cli([*base, "--embed", "pixel-16", "--out", tmp / "c"])
    assert r.exit_code == 2 and "dimension 3072" in r.stderr and "768" in r.stderr
    assert not (tmp / "c" / "samples.parquet").exists()
    # same extractor, another training set => refused
    np.save(tmp / "train2.npy", np.load(tmp / "train.npy")[:100])
    r = cli([*base[:3], tmp / "train2.npy", *base[4:], "--embed", "pixel", "--out", tmp / "d"])
    assert r.exit_code == 2 and "train_fingerprint" in r.stderr


def test_approximate_index_recall_is_reported(cli, files):
    tmp, _ = files
    r = cli(["memorization", tmp / "gen.npy", "--train", tmp / "train.npy", "--embed", "pixel", "--index",
             "hnsw", "--out", tmp / "o", "--bootstrap", "0"])
    assert r.exit_code == 0, r.stderr
    assert "recall@1" in r.stdout
    index = json.loads((tmp / "o" / "summary.json").read_text())["index"]
    assert index["kind"] == "hnsw" and index["recall_at_1"] >= 0.95 and index["n_queries"] == 88


@pytest.mark.parametrize("case,message", [
    ("empty", "no images"),
    ("small", "fewer than"),
    ("model_no_seeds", "--seeds"),
    ("no_samples", "No generated samples"),
    ("bad_index", "Unknown --index"),
    ("bad_threshold", "[-1, 1]"),
])
def test_bad_input_exit_2_without_output(cli, files, case, message):
    tmp, _ = files
    (tmp / "empty").mkdir()
    np.save(tmp / "small.npy", np.load(tmp / "train.npy")[:3])
    out = tmp / "bad"
    args = {"empty": [tmp / "gen.npy", "--train", tmp / "empty"],
            "small": [tmp / "gen.npy", "--train", tmp / "small.npy", "--k", "5"],
            "model_no_seeds": ["--model", tmp / "ckpt", "--train", tmp / "train.npy"],
            "no_samples": ["--train", tmp / "train.npy"],
            "bad_index": [tmp / "gen.npy", "--train", tmp / "train.npy", "--index", "lsh"],
            "bad_threshold": [tmp / "gen.npy", "--train", tmp / "train.npy", "--threshold", "1.5"]}[case]
    r = cli(["memorization", *args, "--embed", "pixel", "--out", out])
    assert r.exit_code == 2, r.stdout + r.stderr
    assert message.lower() in r.stderr.lower() and "Traceback" not in r.stderr
    assert not (out / "samples.parquet").exists() and not (out / "report.html").exists()


def test_model_checkpoint_that_memorized(cli, tmp_path, monkeypatch):
    """--model CKPT --seeds: samples of seeds 0-1 are in the training set, seeds 2-3 are not."""
    import torch

    from ambient_eval.models import UNetConfig, build_native_model, native_config, save_native
    from ambient_eval.sampling import model_source

    monkeypatch.setenv("AMBIENT_EVAL_CACHE", str(tmp_path / "cache"))
    torch.manual_seed(0)
    cfg = native_config(UNetConfig(img_resolution=8, img_channels=3, model_channels=8, channel_mult=(1, 2),
                                   num_blocks=1, attn_resolutions=(), dropout=0.0))
    model = build_native_model(cfg)
    with torch.no_grad():
        model.net.conv_out.weight.mul_(4.0)  # random init barely moves pixels; make samples vary
    save_native(model, tmp_path / "ckpt", cfg, {})
    samples = model_source(str(tmp_path / "ckpt"), [0, 1], steps=2, device="cpu").read([0, 1])
    others = np.random.default_rng(0).integers(0, 256, (20, 3, 8, 8), dtype=np.uint8)
    np.save(tmp_path / "train.npy", np.concatenate([others, samples.numpy()]))
    out = tmp_path / "out"
    r = cli(["memorization", "--model", tmp_path / "ckpt", "--seeds", "0-3", "--steps", "2", "--train",
             tmp_path / "train.npy", "--embed", "pixel", "--device", "cpu", "--out", out,
             "--bootstrap", "50", "--top-n", "1"])
    assert r.exit_code == 0, r.stdout + r.stderr
    t = pd.read_parquet(out / "samples.parquet")
    assert t["sample"].tolist() == ["0", "1", "2", "3"]
    assert t["above_0.99"].tolist() == [True, True, False, False]
    assert t["top1_index"].tolist()[:2] == [20, 21]
    assert load_results(out).metrics["frac_above_0.99"] == 0.5
