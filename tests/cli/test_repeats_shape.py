"""`fid --model --repeats` and `gate --model` with [evaluate] repeats write the same results.json."""
from __future__ import annotations

import json

import numpy as np
import pytest

from ambient_eval.errors import AmbientError
from ambient_eval.metrics.repeats import combine_repeats
from ambient_eval.results.envelope import Results


@pytest.fixture(scope="module")
def tiny_ckpt(tmp_path_factory):
    import torch

    from ambient_eval.models import UNetConfig, build_native_model, native_config, save_native

    torch.manual_seed(0)
    cfg = native_config(UNetConfig.tiny(8))
    return save_native(build_native_model(cfg).eval(), tmp_path_factory.mktemp("ckpt") / "ckpt", cfg, {})


def _strip(obj: dict) -> dict:
    obj = dict(obj)
    obj.pop("created")
    obj["extra"] = {k: v for k, v in obj["extra"].items() if k != "timings"}
    return obj


def test_fid_repeats_and_gate_model_write_identical_results(cli, tmp_path, tiny_ckpt):
    rng = np.random.default_rng(0)
    np.savez(tmp_path / "ref.npz", images=rng.integers(0, 256, (24, 8, 8, 3), dtype=np.uint8))
    cache = tmp_path / "cache"
    r = cli(["fid", "--model", tiny_ckpt, "--seeds", "0-11", "--repeats", "2", tmp_path / "ref.npz",
             "--features", "pixel-8", "--steps", "3", "--batch", "12", "--device", "cpu", "--out",
             tmp_path / "fid", "--no-report", "--cache-dir", cache])
    assert r.exit_code == 0, r.output
    (tmp_path / "gate.toml").write_text(
        '[[rule]]\nmetric = "fd_pixel_8"\nmax = 1e9\n[evaluate]\nreference = "ref.npz"\n'
        'repeats = ["0-11", "12-23"]\nfeatures = "pixel-8"\nsteps = 3\nbatch = 12\ndevice = "cpu"\n')
    r = cli(["gate", "-c", tmp_path / "gate.toml", "--model", tiny_ckpt, "--out", tmp_path / "gate"])
    assert r.exit_code == 0, r.output
    a = json.loads((tmp_path / "fid" / "results.json").read_text())
    b = json.loads((tmp_path / "gate" / "results.json").read_text())
    assert a["ci"] and a["repeats"] and a["settings"]["repeats"] == 2
    assert a["extra"]["repeat_seeds"] == ["0-11", "12-23"]
    assert _strip(a)["inputs"] == _strip(b)["inputs"]
    assert _strip(a)["settings"] == _strip(b)["settings"]
    assert _strip(a) == _strip(b)


def _run(fid: float, kid: float, space: str, fp: str) -> Results:
    per = {"fid": {"extractor": "inception", "mode": "tf-compat", "feature": "pool3"},
           "kid": {"extractor": space, "mode": "pixel", "feature": "pixel"}}
    return Results(kind="fid", metrics={"fid": fid, "kid": kid},
                   settings={"extractor": "inception", "n_generated": 10, "reference_fingerprint": "r",
                             "per_metric": per}, inputs={"generated": {"fingerprint": fp}}, versions={})


def test_combiner_t_interval_and_refusals():
    res = combine_repeats([_run(10, 0.1, "pixel-8", "a"), _run(12, 0.3, "pixel-8", "b")], ["0-9", "10-19"])
    assert res.metrics["fid"] == 11 and res.repeats["fid"] == [10, 12]
    lo, hi = res.ci["fid"]  # mean +- t(0.975, 1) * s / sqrt(2), s = sqrt(2), t = 12.706
    assert (hi - lo) / 2 == pytest.approx(12.7062047, rel=1e-6)
    with pytest.raises(AmbientError, match="metric 'kid'.*pixel-8.*pixel-4"):
        combine_repeats([_run(10, 0.1, "pixel-8", "a"), _run(12, 0.3, "pixel-4", "b")], ["0-9", "10-19"])
    with pytest.raises(AmbientError, match="disjoint"):
        combine_repeats([_run(10, 0.1, "pixel-8", "a"), _run(12, 0.3, "pixel-8", "a")], ["0-9", "10-19"])
