"""sigma_tn annotation: the rule, monotonicity in blur strength, the CLI and its file format."""
from __future__ import annotations

import json

import numpy as np
import pytest
import torch

from ambient_eval.data.corruptions import gaussian_blur
from ambient_eval.training.annotate import (AnnotateConfig, annotate, sigma_grid, sigma_tn_from_curves,
                                            smooth_curves)


def test_rule_smallest_grid_sigma_below_half_plus_epsilon():
    cfg = AnnotateConfig(grid_min=0.1, grid_max=10.0, grid_size=3)  # grid 0.1, 1, 10
    p = np.array([[0.9, 0.54, 0.3],    # first below 0.55 at sigma 1
                  [0.5, 0.9, 0.9],     # already indistinguishable at the smallest sigma
                  [0.9, 0.56, 0.6]])   # never below: the largest grid sigma
    np.testing.assert_allclose(sigma_tn_from_curves(p, cfg), [1.0, 0.1, 10.0])
    np.testing.assert_allclose(smooth_curves(np.array([[0.0, 3.0, 0.0, 3.0]]), 3), [[1.0, 1.0, 2.0, 2.0]])
    np.testing.assert_allclose(sigma_grid(cfg), [0.1, 1.0, 10.0])


@pytest.mark.slow
def test_mean_sigma_tn_increases_with_blur_strength():
    from sklearn.datasets import load_digits

    torch.manual_seed(0)
    raw = torch.from_numpy(np.rint(load_digits().images * 255 / 16).astype(np.uint8))[:, None].repeat(1, 3, 1, 1)
    x = torch.nn.functional.interpolate(raw.float(), size=16, mode="bilinear", align_corners=False)
    x = x.round().clamp(0, 255).to(torch.uint8)
    clean = x[:200]
    levels = [0.5, 1.0, 2.0]
    cor = torch.cat([gaussian_blur(x[200 + 60 * i:260 + 60 * i], s) for i, s in enumerate(levels)])
    cfg = AnnotateConfig(steps=250, batch=64, width=16, grid_size=16, draws=2)
    out = annotate(clean, cor, list(range(200, 380)), cfg)
    means = [out["sigma_tn"][60 * i:60 * (i + 1)].mean() for i in range(3)]
    assert means[0] < means[1] < means[2], means
    acc = [r["balanced_accuracy"] for r in out["accuracy"]]
    assert acc[0] > 0.8 and acc[-1] < 0.65  # informative at low noise, chance at high noise


def test_annotate_cli_on_corrupt_output_and_fixed_sigma(cli, tiny_folder, tmp_path, monkeypatch):
    monkeypatch.chdir(tmp_path)   # nothing may land in the working directory (e.g. reports/)
    blurred = tmp_path / "blurred"
    assert cli(["corrupt", tiny_folder, "-o", blurred, "--kind", "blur", "--level", "1.5", "--fraction", "0.5"]).exit_code == 0
    flags = [json.loads(line)["corrupted"] for line in (blurred / "corruption.jsonl").read_text().splitlines()]
    ann, rep = tmp_path / "ann.jsonl", tmp_path / "ann.html"
    r = cli(["annotate", blurred, blurred, "-o", ann, "--steps", "20", "--grid", "0.01,10,8", "--draws", "1",
             "--report", rep])
    assert r.exit_code == 0, r.output
    lines = [json.loads(line) for line in ann.read_text().splitlines()]
    head, rows = lines[0], lines[1:]
    from ambient_eval.data import open_source

    assert head["kind"] == "ambient-eval.annotations" and head["dataset_fingerprint"] == open_source(blurred).fingerprint()
    assert len(rows) == 40 and [r["corrupted"] for r in rows] == flags
    assert all(r["sigma_tn"] == 0 for r in rows if not r["corrupted"])
    assert all(r["sigma_tn"] > 0 for r in rows if r["corrupted"])
    html = rep.read_text()
    assert "sigma_tn" in html and html.count('class="plotly-graph-div ae-figure"') == 2

    ann2 = tmp_path / "fixed.jsonl"
    r = cli(["annotate", blurred, blurred, "-o", ann2, "--fixed-sigma", "0.3"])
    assert r.exit_code == 0, r.output
    # the default report sits beside the annotations (issue 26: everything where the user pointed -o)
    assert (tmp_path / "fixed.html").stat().st_size > 0
    assert not (tmp_path / "reports").exists()
    rows = [json.loads(line) for line in ann2.read_text().splitlines()[1:]]
    assert [r["sigma_tn"] for r in rows] == [0.3 if f else 0.0 for f in flags]
    # existing output is not overwritten without --overwrite
    r = cli(["annotate", blurred, blurred, "-o", ann2, "--fixed-sigma", "0.5", "--no-report"])
    assert r.exit_code == 2 and "already exists" in " ".join(r.output.split())


def test_annotate_cli_same_source_without_metadata_fails(cli, tiny_folder, tmp_path):
    out = tmp_path / "a.jsonl"
    r = cli(["annotate", tiny_folder, tiny_folder, "-o", out, "--no-report"])
    assert r.exit_code == 2 and "corruption.jsonl" in r.output and not out.exists()


def test_calibrated_chance_uses_the_clean_curve():
    """A classifier whose prior settled at 0.6: the fixed 0.5 + eps rule never fires (grid maximum),
    the calibrated rule fires where the corrupted curve meets the clean curve."""
    cfg = AnnotateConfig(grid_min=0.01, grid_max=10.0, grid_size=4)     # grid 0.01, 0.1, 1, 10
    clean = np.array([0.05, 0.2, 0.6, 0.6])
    corrupted = np.array([[0.99, 0.9, 0.62, 0.61], [0.99, 0.63, 0.61, 0.6]])
    np.testing.assert_allclose(sigma_tn_from_curves(corrupted, cfg, 0.5), [10.0, 10.0])
    np.testing.assert_allclose(sigma_tn_from_curves(corrupted, cfg, clean), [1.0, 1.0])
    assert AnnotateConfig().chance == "calibrated"
