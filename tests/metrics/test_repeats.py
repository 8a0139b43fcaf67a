"""`fid --model CKPT --seeds RANGE --repeats R`: disjoint seed ranges, mean / std / min / interval."""
from __future__ import annotations

import json
import warnings

import numpy as np
import pytest

from tests.conftest import random_images, write_images


@pytest.fixture(scope="module")
def tiny_model(tmp_path_factory):
    """Tiny unconditional 8 px U-Net with random weights, saved natively."""
    import torch

    from ambient_eval.models import UNetConfig, build_native_model, native_config, save_native

    torch.manual_seed(7)
    cfg = native_config(UNetConfig.tiny(8))
    model = build_native_model(cfg)
    return save_native(model, tmp_path_factory.mktemp("ckpt") / "tiny", cfg, {"test": True})


def test_repeats_use_disjoint_seed_ranges_and_summarise(cli, tiny_model, tmp_path):
    from ambient_eval import api

    ref = tmp_path / "ref"
    write_images(ref, random_images(16, size=8, seed=3))
    kw = dict(metrics=("fid", "pr"), features="pixel-8", device="cpu", cache_dir=tmp_path / "cache",
              steps=4)
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        res = api.fid(None, str(ref), model=str(tiny_model), seeds="0-11", repeats=2, **kw)
        second = api.fid(None, str(ref), model=str(tiny_model), seeds="12-23", **kw)
    assert res.settings["repeats"] == 2 and res.extra["repeat_seeds"] == ["0-11", "12-23"]
    vals = res.repeats["fd_pixel_8"]
    assert len(vals) == 2 and vals[1] == pytest.approx(second.metrics["fd_pixel_8"], rel=1e-12)
    assert vals[0] != vals[1]
    s = res.extra["repeat_summary"]["fd_pixel_8"]
    assert res.metrics["fd_pixel_8"] == pytest.approx(np.mean(vals)) and s["min"] == min(vals)
    assert s["std"] == pytest.approx(np.std(vals, ddof=1))
    lo, hi = res.ci["fd_pixel_8"]
    assert lo < res.metrics["fd_pixel_8"] < hi
    # Through the CLI: REFERENCE as the only positional, results.json carries the repeats.
    out = tmp_path / "out"
    r = cli(["fid", "--model", tiny_model, "--seeds", "0-11", "--repeats", "2", ref, "--features", "pixel-8",
             "--steps", "4", "--device", "cpu", "--out", out, "--no-report", "--cache-dir", tmp_path / "cache"])
    assert r.exit_code == 0, r.output
    assert "over 2 seed ranges" in r.output
    saved = json.loads((out / "results.json").read_text())
    assert saved["repeats"]["fd_pixel_8"] == pytest.approx(vals, rel=1e-12)


def test_repeats_without_model_is_an_error(cli, tmp_path):
    write_images(tmp_path / "a", random_images(4, size=8))
    r = cli(["fid", tmp_path / "a", tmp_path / "a", "--features", "pixel-8", "--repeats", "3", "--no-report"])
    assert r.exit_code == 2 and "--model" in r.stderr
