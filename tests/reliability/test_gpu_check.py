"""benchmarks/gpu_check cannot pass without checking: a GPU that nvidia-smi lists but torch cannot use
is a FAIL naming the driver torch needs; no GPU is a FAIL; only the documented SKIPs are allowed."""
from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[2]
sys.path.insert(0, str(ROOT / "benchmarks"))
import gpu_check  # noqa: E402


def _run(tmp_path, fake_smi: str | None, *args):
    bindir = tmp_path / "bin"
    bindir.mkdir()
    if fake_smi is not None:
        smi = bindir / "nvidia-smi"
        smi.write_text(f"#!/bin/sh\necho '{fake_smi}'\n")
        smi.chmod(0o755)
    env = {**os.environ, "PATH": f"{bindir}:/usr/bin:/bin", "PY": sys.executable}
    return subprocess.run(["bash", "benchmarks/gpu_check.sh", "--json", str(tmp_path / "g.json"), *args],
                          cwd=ROOT, env=env, capture_output=True, text=True, timeout=300)


def test_listed_gpu_that_torch_cannot_use_fails_naming_the_driver(tmp_path):
    import torch

    if torch.cuda.is_available():
        pytest.skip("this machine has a usable GPU: the stand-in case does not apply")
    p = _run(tmp_path, "NVIDIA H100 80GB HBM3, 535.104.05")
    out = " ".join(p.stdout.split())
    assert p.returncode == 1, p.stdout + p.stderr
    assert "FAIL preflight" in out and "driver 535.104.05" in out
    assert gpu_check.driver_needed(torch.version.cuda) in out and "gpu_check: FAIL" in out


def test_no_gpu_at_all_is_a_failure_not_a_pass(tmp_path):
    import torch

    if torch.cuda.is_available():
        pytest.skip("this machine has a usable GPU")
    p = _run(tmp_path, None)
    assert p.returncode == 1 and "Nothing was checked" in p.stdout


def test_driver_table():
    assert gpu_check.driver_needed("13.0") == ">= 580.65.06 (CUDA 13.0)"
    assert gpu_check.driver_needed("12.8").startswith(">= 525.60.13")
    assert "CPU-only" in gpu_check.driver_needed(None)


@pytest.mark.parametrize("rows,passed", [
    ([("faiss-gpu", None, "SKIP: no GPU faiss distribution is installed (...)")], True),
    ([("faiss-gpu", None, "SKIP: something else")], False),
    ([("torchrun nccl stats", None, "SKIP: 1 GPU; NCCL needs one GPU per rank")], True),
    ([("sample float32", None, "SKIP")], False),
    ([("sample float32", True, "ok"), ("features dinov2", False, "diff")], False),
])
def test_only_documented_skips_pass(rows, passed):
    text, ok = gpu_check.table([(*r, 1.0) for r in rows], "cuda")
    assert ok is passed and ("gpu_check: PASS" in text) is passed


def test_cpu_smoke_run_of_the_harness(tmp_path):
    p = subprocess.run([sys.executable, "benchmarks/gpu_check.py", "--device", "cpu", "--only", "env,sample",
                        "--time-scale", "4", "--json", str(tmp_path / "g.json")], cwd=ROOT,
                       capture_output=True, text=True, timeout=600, env={**os.environ, "PYTHONPATH": str(ROOT)})
    assert p.returncode == 0, p.stdout + p.stderr
    assert "PASS   sample float32" in p.stdout and "NO GPU was checked" in p.stdout
