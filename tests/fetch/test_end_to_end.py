"""A first run on a "connected" machine (AMBIENT_EVAL_MIRROR = a loopback server): `ambient-eval fid
GEN ref:NAME --features sscd` needs no manual step; the weights and the statistics are fetched,
pinned, and a second run uses the cache without a request. Offline, the same command names both files."""
from __future__ import annotations

import json
import warnings

import numpy as np
import pytest

from tests.conftest import random_images, write_images

torch = pytest.importorskip("torch")


class TinyDescriptor(torch.nn.Module):
    """Stands in for SSCD's TorchScript model (which has no published hash: pinned): NCHW => N x 6."""

    def __init__(self):
        super().__init__()
        self.conv = torch.nn.Conv2d(3, 6, 7, stride=8)

    def forward(self, x):
        return self.conv(x).mean(dim=(2, 3))


def test_first_run_fetches_weights_and_reference(cli, server, online, tmp_path, monkeypatch):
    torch.manual_seed(0)
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", FutureWarning)
        scripted = torch.jit.script(TinyDescriptor().eval())
    scripted.save(str(tmp_path / "m.pt"))
    server.add("/mirror/dl.fbaipublicfiles.com/sscd-copy-detection/sscd_disc_mixup.torchscript.pt",
               (tmp_path / "m.pt").read_bytes())
    rng = np.random.default_rng(1)
    a = rng.normal(size=(50, 6))
    np.savez(tmp_path / "r.npz", mu=a.mean(0), sigma=np.cov(a, rowvar=False))
    server.add("/mirror/stats.example.org/r.npz", (tmp_path / "r.npz").read_bytes())
    (tmp_path / "cat.toml").write_text(
        '[toy-sscd]\nurl = "https://stats.example.org/r.npz"\nformat = "npz"\nextractor = "sscd"\n'
        'mode = "short-edge-288"\nfeature = "embedding"\nn = 50\nresolution = 32\nsplit = "train"\n'
        'dataset = "toy"\nsource = "test"\n')
    monkeypatch.setenv("AMBIENT_EVAL_REFS_CATALOG", str(tmp_path / "cat.toml"))
    monkeypatch.setenv("AMBIENT_EVAL_MIRROR", server.url("/mirror"))
    monkeypatch.setenv("AMBIENT_EVAL_WEIGHTS", str(tmp_path / "no-weights-here"))
    monkeypatch.setenv("TORCH_HOME", str(tmp_path / "torch-home"))
    write_images(tmp_path / "gen", random_images(12, 32, seed=3))
    args = ["fid", tmp_path / "gen", "ref:toy-sscd", "--features", "sscd", "--device", "cpu", "--no-report",
            "--no-cache", "--out", tmp_path / "out"]
    r = cli(args)
    assert r.exit_code == 0, r.output
    settings = json.loads((tmp_path / "out" / "results.json").read_text())["settings"]
    pins = json.loads((online / "sha256-pins.json").read_text())
    assert set(pins) == {"weights/sscd_disc_mixup.torchscript.pt", "refs/r.npz"}
    assert json.dumps(settings).count(pins["weights/sscd_disc_mixup.torchscript.pt"]["sha256"]) >= 1
    requests = dict(server.requests)
    assert cli(args).exit_code == 0 and dict(server.requests) == requests     # second run: all cached
    monkeypatch.setenv("AMBIENT_EVAL_DOWNLOADS", str(tmp_path / "empty-cache"))
    off = cli(["--offline", *args])
    assert off.exit_code == 2 and "offline mode" in off.stderr and "stats.example.org/r.npz" in off.stderr


def test_offline_option_lasts_one_invocation(cli, online, monkeypatch):
    import os

    r = cli(["--offline", "refs", "fetch", "edm-cifar10-32"])
    assert r.exit_code == 2 and "offline mode" in r.stderr
    assert "AMBIENT_EVAL_OFFLINE" not in os.environ
