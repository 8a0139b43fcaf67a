"""`ambient-eval demo --quick` end to end (in-process CLI), its files, and its report in a browser."""
from __future__ import annotations

import json
import math
import os
import shutil
import socket
from pathlib import Path

import numpy as np
import pytest

from ambient_eval.demo.settings import MODELS

ARTIFACTS_ENV = "AMBIENT_EVAL_ARTIFACTS"   # CI: where the demo report screenshot is copied


def _invoke(args):
    from typer.testing import CliRunner

    from ambient_eval.cli import app

    return CliRunner().invoke(app, [str(a) for a in args], catch_exceptions=False)


def _finite_metrics(path: Path) -> dict:
    doc = json.loads(path.read_text())
    assert doc["metrics"], path
    for k, v in doc["metrics"].items():
        assert isinstance(v, (int, float)) and math.isfinite(v), (path, k, v)
    for k, (lo, hi) in doc.get("ci", {}).items():
        assert math.isfinite(lo) and math.isfinite(hi) and lo <= hi, (path, k, lo, hi)
    return doc


def _check_outputs(out: Path, res) -> None:
    """Exit 0, summary ending with the report path, the report's sections, finite results files."""
    assert res.exit_code == 0, res.output
    lines = res.stdout.strip().splitlines()
    assert lines[-1].endswith(str(out / "report.html")) and "Report:" in lines[-1]
    for label, *_ in MODELS:
        assert any(line.startswith(label) for line in lines), label
    report = (out / "report.html").read_text()
    for heading in ("Results at a glance", "Samples by seed across models", "Training curves", "Memorization",
                    "Closest pairs: clean-A", "Reproducibility across models", "pixel-8"):
        assert heading in report, heading
    for label, *_ in MODELS:
        doc = _finite_metrics(out / "fid" / label / "pixel-8" / "results.json")
        assert doc["settings"]["extractor"] == "pixel-8"
        assert {"fd_pixel_8", "kid", "precision", "recall"} <= set(doc["metrics"])
        assert "fd_pixel_8" in doc["ci"]
        assert (out / "train" / label / "final" / "model.safetensors").is_file()
        with np.load(out / "samples" / f"{label}.npz") as z:
            assert z["seeds"].tolist() == list(range(32)) and z["images"].dtype == np.uint8
    for group, labels in (("clean-subset", ["clean-A", "clean-B"]), ("all-data", ["naive", "ambient"])):
        for label in labels:
            doc = _finite_metrics(out / "memorization" / group / label / "results.json")
            assert doc["kind"] == "memorization" and doc["settings"]["extractor"] == "pixel-16"
    rp = _finite_metrics(out / "reproducibility" / "results.json")
    assert "rp[clean-A|clean-B]" in rp["metrics"]
    summary = json.loads((out / "summary.json").read_text())
    assert set(summary["models"]) == {m[0] for m in MODELS}
    assert json.loads((out / "demo.json").read_text())["finished"] is True


def _check_in_browser(report: Path, shot: Path) -> None:
    """No JS errors, every figure rendered (wide and phone width), screenshot saved (CI artifact)."""
    from ambient_eval.reports import browser_check as bc

    check = bc.check_report(report, shot)
    assert check["ok"], check["problems"]
    assert check["js_errors"] == [] and check["external_resources"] == []
    # quality bars, training curves, memorization histogram, RP heatmap (+ sigma_tn when annotated)
    assert check["n_figures"] >= 4 and check["n_rendered"] == check["n_figures"]
    assert shot.is_file() and shot.stat().st_size > 10_000
    if os.environ.get(ARTIFACTS_ENV):
        dest = Path(os.environ[ARTIFACTS_ENV])
        dest.mkdir(parents=True, exist_ok=True)
        shutil.copy(shot, dest / "demo-report.png")


@pytest.mark.slow
def test_quick_demo_end_to_end_report_in_browser_and_rerun(tmp_path):
    """One `demo --quick` run (pixel features only: deterministic), checked three ways; a single
    test so that xdist never runs the demo twice."""
    from ambient_eval.reports import browser_check as bc

    out = tmp_path / "out"
    args = ["demo", "--quick", "--pixel-only", "--device", "cpu", "--out", out]
    res = _invoke(args)
    _check_outputs(out, res)

    if bc.find_chromium() is not None:
        _check_in_browser(out / "report.html", tmp_path / "demo-report.png")

    # A rerun reuses every trained model and sample file and reproduces the numbers.
    watched = [out / "train" / m[0] / "final" / "model.safetensors" for m in MODELS]
    watched += [out / "samples" / f"{m[0]}.npz" for m in MODELS]
    before = {p: p.stat().st_mtime_ns for p in watched}
    again = _invoke(args)
    assert again.exit_code == 0, again.output
    assert {p: p.stat().st_mtime_ns for p in watched} == before
    assert again.stdout.strip().splitlines()[:-1] == res.stdout.strip().splitlines()[:-1]  # same numbers
    if bc.find_chromium() is None:
        pytest.skip("Chromium is not installed (apt-get install -y --no-install-recommends chromium): "
                    "the browser check of the demo report was skipped")


def test_help_lists_options(cli):
    res = cli(["demo", "--help"])
    assert res.exit_code == 0
    for opt in ("--out", "--quick", "--device", "--seed", "--pixel-only", "Examples:"):
        assert opt in res.stdout


def test_out_is_a_file_is_refused_without_output(cli, tmp_path):
    target = tmp_path / "file.txt"
    target.write_text("x")
    res = cli(["demo", "--quick", "--out", target])
    assert res.exit_code == 2
    assert "is a file" in res.stderr and "Traceback" not in res.output
    assert target.read_text() == "x"


def test_non_demo_directory_is_refused_and_left_alone(cli, tmp_path):
    (tmp_path / "precious.txt").write_text("keep")
    res = cli(["demo", "--quick", "--out", tmp_path])
    assert res.exit_code == 2
    assert "not empty" in res.stderr and "demo.json" in res.stderr
    assert sorted(p.name for p in tmp_path.iterdir()) == ["precious.txt"]


def test_negative_seed_is_refused(cli, tmp_path):
    res = cli(["demo", "--quick", "--seed", "-1", "--out", tmp_path / "o"])
    assert res.exit_code == 2 and "--seed -1" in res.stderr
    assert not (tmp_path / "o").exists()


def test_fd_bootstrap_interval_covers_the_population_value():
    """Two Gaussians with a known Frechet distance (||mu||^2, equal covariances): the basic bootstrap
    interval covers it, while the raw bootstrap distribution sits above it (FD's small-N bias)."""
    from ambient_eval.demo.evaluate import fd_bootstrap

    rng = np.random.default_rng(0)
    d, n = 8, 300
    mu = np.full(d, 0.5)                       # population FD = ||mu||^2 = 2.0
    gen = rng.standard_normal((n, d)) + mu
    ref = rng.standard_normal((n, d))
    boot = fd_bootstrap(gen, ref, n_boot=200, seed=0)
    lo, hi = boot["ci"]
    assert lo < 2.0 < hi and hi - lo < 1.5
    assert lo <= boot["bias_corrected"] <= hi


def test_real_feature_probe_finds_nothing_without_local_weights(tmp_path, monkeypatch):
    """No weights in $AMBIENT_EVAL_WEIGHTS or the caches: pixel features only, and nothing downloaded."""
    from ambient_eval.demo.evaluate import probe_real_features
    from ambient_eval.demo.settings import DemoSettings

    monkeypatch.setenv("AMBIENT_EVAL_WEIGHTS", str(tmp_path / "weights"))
    monkeypatch.setenv("TORCH_HOME", str(tmp_path / "torch"))
    monkeypatch.setenv("HF_HOME", str(tmp_path / "hf"))
    monkeypatch.setenv("XDG_CACHE_HOME", str(tmp_path / "cache"))
    monkeypatch.setenv("AMBIENT_EVAL_DOWNLOADS", str(tmp_path / "downloads"))
    # As on a user's connected machine (the suite is offline by default): the demo must still not fetch.
    monkeypatch.delenv("AMBIENT_EVAL_OFFLINE", raising=False)
    monkeypatch.delenv("CI", raising=False)
    tried = []

    def no_connect(sock, address):
        tried.append(address)
        raise AssertionError(f"the demo opened a connection to {address}")

    monkeypatch.setattr(socket.socket, "connect", no_connect)
    monkeypatch.setattr(socket, "getaddrinfo", lambda host, *a, **k: no_connect(None, host))
    assert probe_real_features(DemoSettings(device="cpu")) == {"fid": None, "embed": None}
    assert tried == []
    assert probe_real_features(DemoSettings(real_features=False)) == {"fid": None, "embed": None}
    assert not [p for p in tmp_path.rglob("*") if p.is_file() and p.stat().st_size > 1_000_000]  # nothing fetched
