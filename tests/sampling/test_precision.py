"""Precision policy (exact float32 on GPU unless asked) and device/precision provenance of samples."""
from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path

import numpy as np
import pytest
import torch

from ambient_eval.runtime import precision as P
from ambient_eval.models.base import Denoiser
from ambient_eval.sampling.execution import EXECUTION_KEY
from ambient_eval.sampling.generate import NetCall

ROOT = Path(__file__).resolve().parents[2]
ARGS = ["--seeds", "0-5", "--steps", "2", "--batch", "3", "--device", "cpu"]


def test_cuda_device_turns_tf32_off_through_the_new_api_only():
    # A fresh process: torch's own defaults, then our policy; the legacy flags are never written, so
    # torch's "mixed legacy and new API" error cannot be raised by anything that reads the new API.
    code = """
import torch
from ambient_eval.runtime.device import with_policy
from ambient_eval.runtime import precision as P
before = torch.backends.cudnn.conv.fp32_precision
with_policy(torch.device('cuda'))
print(before, torch.backends.cuda.matmul.fp32_precision, torch.backends.cudnn.conv.fp32_precision,
      P.settings()['fp32_conv'], P.settings()['api'])
"""
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, cwd=ROOT,
                         env={"PYTHONPATH": str(ROOT), "PATH": ""}, timeout=120)
    assert out.returncode == 0, out.stderr
    before, matmul, conv, recorded, api = out.stdout.split()
    assert before == "tf32"  # torch's default for cuDNN convolutions: the defect this policy fixes
    assert (matmul, conv, recorded, api) == ("ieee", "ieee", "ieee", "fp32_precision")


def test_cpu_device_leaves_flags_alone_and_records_exact(monkeypatch):
    monkeypatch.setattr(P, "_applied", False)
    from ambient_eval.runtime.device import resolve_device

    resolve_device("cpu")
    assert P._applied is False
    assert P.settings()["fp32_matmul"] == P.settings()["fp32_conv"] == "ieee"


class _Probe(Denoiser):
    """Records the float32 precision torch is set to while the network runs."""

    def __init__(self):
        super().__init__(img_resolution=2, img_channels=1)
        self.seen = []

    def forward(self, x, sigma, class_labels=None):
        self.seen.append(P.read_fp32())
        return x


@pytest.mark.parametrize("autocast,expected", [(None, "ieee"), ("tf32", "tf32")])
def test_tf32_only_inside_autocast_tf32(monkeypatch, autocast, expected):
    monkeypatch.setattr(P, "_applied", False)
    P.ensure_exact()
    probe = _Probe()
    NetCall(probe, None, autocast)(torch.zeros(2, 1, 2, 2), torch.ones(2), None)
    assert probe.seen == [{"matmul": expected, "conv": expected}]
    assert P.read_fp32() == {"matmul": "ieee", "conv": "ieee"}  # restored after the call


def test_results_json_records_the_precision(tmp_path):
    from ambient_eval.results.envelope import Results

    p = Results(kind="fid", metrics={"fid": 1.0}, settings={"extractor": "pixel"}).save(tmp_path)
    rec = json.loads(p.read_text())["settings"][P.SETTINGS_KEY]
    assert rec["fp32_matmul"] == rec["fp32_conv"] == "ieee" and rec["autocast"] is None


def _settings_file(out: Path) -> Path:
    return out / ".ambient-sample.json"


def test_sample_settings_record_device_precision_and_net_batch(cli, tiny_ckpt, tmp_path):
    out = tmp_path / "s"
    assert cli(["sample", tiny_ckpt, "--out", out, *ARGS]).exit_code == 0
    e = json.loads(_settings_file(out).read_text())[EXECUTION_KEY]
    assert (e["device"], e["fp32_matmul"], e["fp32_conv"], e["autocast"], e["net_batch"]) == \
        ("cpu", "ieee", "ieee", None, 8)


@pytest.mark.parametrize("change,shown", [
    ({"device": "cuda (NVIDIA H100 80GB HBM3)"}, "NVIDIA H100"),
    ({"fp32_conv": "tf32"}, "conv tf32"),
    ({"autocast": "bf16"}, "autocast bf16"),
    ({"net_batch": 16}, "net batch 16"),
])
def test_resume_on_another_device_or_precision_is_refused(cli, tiny_ckpt, tmp_path, change, shown):
    out = tmp_path / "s"
    assert cli(["sample", tiny_ckpt, "--out", out, "--seeds", "0-2", *ARGS[2:]]).exit_code == 0
    f = _settings_file(out)
    s = json.loads(f.read_text())
    s[EXECUTION_KEY].update(change)  # as if the first part ran on a GPU / another precision
    f.write_text(json.dumps(s))
    r = cli(["sample", tiny_ckpt, "--out", out, *ARGS])
    msg = " ".join(r.stderr.split())
    assert r.exit_code == 2 and shown in msg and "this run is on cpu" in msg and "new --out" in msg, msg
    assert not (out / "000000" / "000005.png").exists()


def test_net_batch_changes_the_model_source_fingerprint(tiny_ckpt):
    from ambient_eval.models import load_model
    from ambient_eval.sampling.samplers import SamplerConfig
    from ambient_eval.sampling.source import ModelSource

    den = load_model(tiny_ckpt, device="cpu")
    fps = {nb: ModelSource(den, [0, 1], cfg=SamplerConfig(steps=2), device="cpu", net_batch=nb).fingerprint()
           for nb in ("auto", 8, 4, 0)}
    assert fps["auto"] == fps[8] and len({fps[8], fps[4], fps[0]}) == 3
    s = ModelSource(den, [0, 1], cfg=SamplerConfig(steps=2), device="cpu").settings()[EXECUTION_KEY]
    assert s["device"] == "cpu" and s["net_batch"] == 8 and np.isscalar(s["net_batch"])
