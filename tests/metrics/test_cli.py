"""`ambient-eval fid` / `stats` through the CLI: outputs, the feature cache, and bad input."""
from __future__ import annotations

import json

import numpy as np
import pytest

from tests.conftest import random_images, write_images

PIX = ["--features", "pixel-8", "--device", "cpu"]   # 192-d raw pixels: no weights, fast


@pytest.fixture
def dirs(tmp_path):
    gen, ref = tmp_path / "gen", tmp_path / "ref"
    write_images(gen, random_images(20, seed=1))
    write_images(ref, random_images(20, seed=2))
    return gen, ref


def test_fid_help(cli):
    r = cli(["fid", "--help"])
    assert r.exit_code == 0
    for opt in ("--metrics", "--features", "--weights", "--out", "report.html", "--no-report", "--no-cache",
                "--kid-subset-size", "--model", "--compare", "Examples"):
        assert opt in r.output
    assert "always OUT/report.html" in " ".join(r.output.split())   # --report may only name it (issue 26)


def test_stats_help(cli):
    r = cli(["stats", "--help"])
    assert r.exit_code == 0 and "--output" in r.output and "--features" in r.output and "Examples" in r.output


def test_fid_writes_results_csv_and_report(cli, dirs, tmp_path):
    gen, ref = dirs
    out = tmp_path / "out"
    rep = out / "report.html"
    r = cli(["fid", gen, ref, *PIX, "--metrics", "fid,kid,pr,dc", "--kid-subset-size", "10", "--out", out,
             "--cache-dir", tmp_path / "cache"])
    assert r.exit_code == 0, r.output
    res = json.loads((out / "results.json").read_text())
    assert res["kind"] == "fid" and res["schema"] == "ambient-eval/results@1"
    assert set(res["metrics"]) == {"fd_pixel_8", "kid", "kid_std", "precision", "recall", "density", "coverage"}
    s = res["settings"]
    for k in ("extractor", "mode", "weights_sha256", "n_generated", "reference_fingerprint", "n_reference",
              "metrics_requested", "per_metric"):
        assert k in s
    assert s["n_generated"] == s["n_reference"] == 20 and s["per_metric"]["dc"]["extractor"] == "pixel-8"
    header, row = (out / "results.csv").read_text().splitlines()
    assert "fd_pixel_8" in header.split(",") and len(row.split(",")) == len(header.split(","))
    html = rep.read_text()
    assert "Precision / recall" in html and "Density / coverage" in html and html.count("ae-fig-") >= 2
    assert "fd_pixel_8" in r.output and "Warning:" in r.output  # N < 10,000 warning reaches the user
    # A comparison report from two results files.
    out2 = tmp_path / "out2"
    assert cli(["fid", gen, gen, *PIX, "--out", out2, "--no-report"]).exit_code == 0
    rep2 = tmp_path / "cmp" / "report.html"
    r = cli(["fid", "--compare", out / "results.json", "--compare", out2 / "results.json", "--out", rep2.parent])
    assert r.exit_code == 0, r.output
    assert "Comparability" in rep2.read_text() and "out2" in rep2.read_text()
    assert sorted(p.name for p in rep2.parent.iterdir()) == ["report.html"]   # a comparison: the report only


def test_fid_report_elsewhere_is_an_error_naming_the_new_place(cli, dirs, tmp_path):
    gen, ref = dirs
    r = cli(["fid", gen, ref, *PIX, "--out", tmp_path / "o", "--report", tmp_path / "r.html"])
    assert r.exit_code == 2 and "report.html" in r.stderr and "--out" in r.stderr
    assert not (tmp_path / "r.html").exists() and not (tmp_path / "o" / "results.json").exists()
    # --report naming OUT/report.html itself is accepted (older scripts), the report is written there
    r = cli(["fid", gen, ref, *PIX, "--out", tmp_path / "o", "--report", tmp_path / "o" / "report.html"])
    assert r.exit_code == 0 and (tmp_path / "o" / "report.html").is_file(), r.output


def test_stats_file_as_reference_equals_images(cli, dirs, tmp_path):
    gen, ref = dirs
    st = tmp_path / "reference_stats" / "ref.npz"
    r = cli(["stats", ref, "-o", st, "--features", "pixel-8", "--device", "cpu"])
    assert r.exit_code == 0, r.output
    a, b = tmp_path / "a", tmp_path / "b"
    assert cli(["fid", gen, ref, *PIX, "--out", a, "--no-report"]).exit_code == 0
    assert cli(["fid", gen, st, *PIX, "--out", b, "--no-report"]).exit_code == 0
    fa = json.loads((a / "results.json").read_text())
    fb = json.loads((b / "results.json").read_text())
    assert fb["metrics"]["fd_pixel_8"] == pytest.approx(fa["metrics"]["fd_pixel_8"], rel=1e-12)
    assert fb["settings"]["reference_fingerprint"] == fa["settings"]["reference_fingerprint"]
    # Stats against stats (no network, no images) through the Python API.
    import ambient_eval

    gst = tmp_path / "gen.npz"
    assert cli(["stats", gen, "-o", gst, "--features", "pixel-8"]).exit_code == 0
    res = ambient_eval.fid(str(gst), str(st))
    assert res.metrics["fd_pixel_8"] == pytest.approx(fa["metrics"]["fd_pixel_8"], rel=1e-12)
    assert res.settings["extractor"] == "pixel-8" and res.settings["n_generated"] == 20


def test_cache_second_run_extracts_nothing_and_one_changed_image_invalidates(cli, dirs, tmp_path, monkeypatch):
    from ambient_eval.features.base import FeatureExtractor

    seen = []
    original = FeatureExtractor.__call__
    monkeypatch.setattr(FeatureExtractor, "__call__", lambda self, x: seen.append(x.shape[0]) or original(self, x))
    gen, ref = dirs
    args = ["fid", gen, ref, *PIX, "--cache-dir", tmp_path / "cache", "--no-report"]
    outs = []
    for i in range(3):
        if i == 2:  # change one generated image
            write_images(gen, random_images(1, seed=99), start=5)
        seen.clear()
        r = cli([*args, "--out", tmp_path / f"o{i}"])
        assert r.exit_code == 0, r.output
        outs.append((sum(seen), json.loads((tmp_path / f"o{i}" / "results.json").read_text())["metrics"]))
    assert outs[0][0] == 40                      # both sets extracted
    assert outs[1][0] == 0 and outs[1][1] == outs[0][1]   # warm: no extraction, same numbers
    assert outs[2][0] == 20 and outs[2][1] != outs[0][1]  # only the changed set re-extracted


# ----------------------------------------------------------------- bad input: exit 2, no outputs
def _png_bytes(tmp_path):
    p = write_images(tmp_path / "one", random_images(1, seed=5))[0]
    return p.read_bytes()


def _case(name, tmp_path, gen, ref):
    """Returns (args, expected message fragment) for one bad-input case."""
    from PIL import Image

    if name == "corrupt_file":
        (gen / "bad.png").write_bytes(b"\x89PNG\r\n\x1a\n" + bytes(range(256)) * 4)
        return [gen, ref, *PIX], "bad.png"
    if name == "truncated_png":
        data = _png_bytes(tmp_path)
        (gen / "trunc.png").write_bytes(data[: len(data) // 2])
        return [gen, ref, *PIX], "trunc.png"
    if name == "empty_folder":
        (tmp_path / "empty").mkdir()
        return [tmp_path / "empty", ref, *PIX], "empty"
    if name == "mixed_sizes":
        write_images(gen, random_images(1, size=16, seed=3), start=100)
        return [gen, ref, *PIX], "000100.png"
    if name == "png16":
        Image.fromarray(np.full((32, 32), 40000, np.uint16)).save(gen / "deep.png")
        return [gen, ref, *PIX], "deep.png"
    if name == "non_image":
        (gen / "notes.jpg").write_text("this is a text file, not a JPEG\n")
        return [gen, ref, *PIX], "notes.jpg"
    if name == "float_npz":
        np.savez(tmp_path / "float.npz", images=np.random.default_rng(0).random((8, 32, 32, 3), np.float32))
        return [tmp_path / "float.npz", ref, *PIX], "float.npz"
    if name == "mismatched_stats":
        np.savez(tmp_path / "edm-ref.npz", mu=np.zeros(2048), sigma=np.eye(2048))
        np.savez(tmp_path / "cifar10_clean_train_32.npz", mu=np.zeros(2048), sigma=np.eye(2048))
        return [tmp_path / "edm-ref.npz", tmp_path / "cifar10_clean_train_32.npz"], \
            "mode: generated='tf-compat' vs reference='clean'"
    if name == "stats_vs_other_extractor":
        np.savez(tmp_path / "edm-ref.npz", mu=np.zeros(2048), sigma=np.eye(2048))
        return [gen, tmp_path / "edm-ref.npz", *PIX], "extractor"
    if name == "nan_stats":
        np.savez(tmp_path / "nan.npz", mu=np.full(192, np.nan), sigma=np.eye(192))
        return [gen, tmp_path / "nan.npz", *PIX], "NaN"
    if name == "missing_weights":
        return [gen, ref, "--features", "inception", "--device", "cpu"], "weights"
    if name == "missing_weights_file":
        return [gen, ref, "--features", "inception", "--weights", tmp_path / "nope.pth"], "nope.pth"
    if name == "kid_n_too_small":
        return [gen, ref, *PIX, "--metrics", "fid,kid"], "--kid-subset-size"
    if name == "unwritable_out":
        (tmp_path / "file.txt").write_text("x")
        return [gen, ref, *PIX, "--out", tmp_path / "file.txt" / "sub"], "file.txt"
    if name == "stats_for_raw_metric":
        np.savez(tmp_path / "edm-ref.npz", mu=np.zeros(2048), sigma=np.eye(2048))
        return [gen, tmp_path / "edm-ref.npz", "--metrics", "fid,pr"], "statistics file"
    if name == "unknown_metric":
        return [gen, ref, *PIX, "--metrics", "fid,lpips"], "lpips"
    if name == "missing_input":
        return [tmp_path / "nowhere", ref, *PIX], "nowhere"
    raise KeyError(name)


BAD = ["corrupt_file", "truncated_png", "empty_folder", "mixed_sizes", "png16", "non_image", "float_npz",
       "mismatched_stats", "stats_vs_other_extractor", "nan_stats", "missing_weights", "missing_weights_file",
       "kid_n_too_small", "unwritable_out", "stats_for_raw_metric", "unknown_metric", "missing_input"]


@pytest.mark.parametrize("name", BAD)
def test_bad_input_exit_2_one_paragraph_no_outputs(cli, dirs, tmp_path, monkeypatch, name):
    monkeypatch.delenv("AMBIENT_EVAL_WEIGHTS", raising=False)
    monkeypatch.setenv("TORCH_HOME", str(tmp_path / "torch-home"))  # no cached official weights
    gen, ref = dirs
    args, fragment = _case(name, tmp_path, gen, ref)
    out = tmp_path / "out"
    rep = out / "report.html"
    if "--out" not in args:
        args = [*args, "--out", out]
    r = cli(["fid", *args, "--cache-dir", tmp_path / "cache"])
    assert r.exit_code == 2, r.output
    err = r.stderr
    assert err.startswith("Error: ") and "Traceback" not in r.output
    assert fragment in err.replace("\n", " "), err
    assert len([ln for ln in err.strip().splitlines() if ln.startswith("Error")]) == 1
    assert not (out / "results.json").exists() and not (out / "results.csv").exists() and not rep.exists()


def test_stats_bad_output_name_and_missing_source(cli, dirs, tmp_path):
    gen, _ = dirs
    r = cli(["stats", gen, "-o", tmp_path / "ref.txt", *PIX])
    assert r.exit_code == 2 and ".npz" in r.stderr and not (tmp_path / "ref.txt").exists()
    r = cli(["stats", tmp_path / "nowhere", "-o", tmp_path / "ref.npz", *PIX])
    assert r.exit_code == 2 and "nowhere" in r.stderr and not (tmp_path / "ref.npz").exists()
