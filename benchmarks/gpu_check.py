"""GPU check: every CUDA path once, each compared with the CPU, one PASS/FAIL table (see gpu_check.sh).

    python benchmarks/gpu_check.py                  # on a GPU machine: all steps on cuda
    python benchmarks/gpu_check.py --only env,sample
    python benchmarks/gpu_check.py --device cpu     # smoke run of the harness itself (not a GPU check)

It cannot pass without checking: no usable GPU is a FAIL (and when nvidia-smi lists a GPU that torch
cannot use, the table says which driver the installed torch needs); SKIP is allowed only for faiss
when no GPU faiss distribution is installed, for NCCL on one GPU, and for GPU-only rows of the CPU
smoke run. Each step runs in its own process under a time limit (a hang is a FAIL, not a stall).
Exit code: 0 when every row is PASS or an allowed SKIP, 1 otherwise. Writes bench_out/gpu_check.json.
Steps: benchmarks/gpu_check_steps.py.
"""
from __future__ import annotations

import argparse
import json
import os
import re
import shutil
import subprocess
import sys
import tempfile
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
MARK = "GPU_CHECK_ROWS "
# Minimum Linux driver per CUDA major.minor of the torch build (NVIDIA CUDA toolkit release notes,
# Table 3, "minor version compatibility" minimum for the major version).
MIN_DRIVER = {"11": "450.80.02", "12": "525.60.13", "13": "580.65.06"}


def nvidia_smi(timeout: float = 20) -> list[dict]:
    """GPUs nvidia-smi lists: [{'name', 'driver'}]; [] when it is absent or fails."""
    exe = shutil.which("nvidia-smi")
    if exe is None:
        return []
    try:
        out = subprocess.run([exe, "--query-gpu=name,driver_version", "--format=csv,noheader"],
                             capture_output=True, text=True, timeout=timeout)
    except (OSError, subprocess.TimeoutExpired):
        return []
    gpus = []
    for line in out.stdout.splitlines():
        parts = [p.strip() for p in line.split(",")]
        if len(parts) >= 2 and parts[0]:
            gpus.append({"name": parts[0], "driver": parts[1]})
    return gpus


def driver_needed(torch_cuda: str | None) -> str:
    """'>= 580.65.06 (CUDA 13.0)' for the CUDA version torch was built with."""
    if not torch_cuda:
        return "a CUDA build of torch (this one is CPU-only: torch.version.cuda is None)"
    major = torch_cuda.split(".")[0]
    return f">= {MIN_DRIVER.get(major, '?')} (CUDA {torch_cuda})"


def torch_info(timeout: float = 120) -> dict:
    """torch version, its CUDA version, whether CUDA is usable: in a child (a broken driver can hang)."""
    code = ("import json, torch; print(json.dumps({'torch': torch.__version__, 'cuda': torch.version.cuda, "
            "'available': torch.cuda.is_available(), 'count': torch.cuda.device_count()}))")
    try:
        p = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, timeout=timeout)
        return json.loads(p.stdout.strip().splitlines()[-1])
    except (subprocess.TimeoutExpired, IndexError, ValueError) as e:
        return {"torch": "?", "cuda": None, "available": False, "count": 0, "error": str(e)[:200]}


def preflight(device: str) -> list[tuple]:
    """Rows that decide whether there is anything to check; a FAIL here stops the run."""
    gpus = nvidia_smi()
    if device == "cpu":
        return [("preflight", None, f"SKIP: --device cpu smoke run: the harness only, NOT a GPU check "
                 f"(nvidia-smi lists {len(gpus)} GPU(s))")]
    info = torch_info()
    if info["available"]:
        names = ", ".join(g["name"] for g in gpus) or f"{info['count']} device(s)"
        return [("preflight", True, f"torch {info['torch']} (CUDA {info['cuda']}) sees {info['count']} GPU(s): {names}")]
    if gpus:
        drivers = ", ".join(sorted({g["driver"] for g in gpus}))
        return [("preflight", False,
                 f"nvidia-smi lists {len(gpus)} GPU(s) ({gpus[0]['name']}, driver {drivers}) but torch "
                 f"{info['torch']} cannot use them (torch.cuda.is_available() is False). This torch needs "
                 f"an NVIDIA driver {driver_needed(info['cuda'])}: update the driver, or install a torch "
                 "built for an older CUDA.")]
    return [("preflight", False, f"no CUDA device: nvidia-smi lists no GPU and torch {info['torch']} sees "
             "none. Nothing was checked; run this on a machine with an NVIDIA GPU (or --device cpu for "
             "the harness smoke run).")]


def run_step(name: str, device: str, limit: float, scale: float = 1.0) -> list[tuple]:
    """One step in a child process under `limit` seconds => rows; a crash or timeout is a FAIL row."""
    t0 = time.perf_counter()
    env = {**os.environ, "PYTHONPATH": str(ROOT), "AMBIENT_EVAL_PROGRESS": "0", "PYTHONWARNINGS": "ignore",
           "GPU_CHECK_TIME_SCALE": str(scale)}
    try:
        p = subprocess.run([sys.executable, __file__, "--step", name, "--device", device], env=env,
                           capture_output=True, text=True, timeout=limit)
    except subprocess.TimeoutExpired:
        return [(name, False, f"timed out after {limit:.0f} s", limit)]
    secs = time.perf_counter() - t0
    for line in reversed(p.stdout.splitlines()):
        if line.startswith(MARK):
            return [(*r, secs) for r in json.loads(line[len(MARK):])]
    tail = " ".join((p.stderr or p.stdout).split())[-300:]
    return [(name, False, f"crashed (exit {p.returncode}): {tail}", secs)]


def _child(name: str, device: str) -> None:
    sys.path.insert(0, str(ROOT / "benchmarks"))
    import gpu_check_steps as G

    with tempfile.TemporaryDirectory() as tmp:
        try:
            rows = G.STEPS[name][0](device, Path(tmp))
        except Exception as e:  # noqa: BLE001 - a broken path is a FAIL row, not a lost table
            rows = [(name, False, f"{type(e).__name__}: {' '.join(str(e).split())[:300]}")]
    print(MARK + json.dumps([list(r) for r in rows]), flush=True)


def allowed_skip(name: str, detail: str, device: str) -> bool:
    """SKIPs that do not fail the run: faiss without a GPU build, NCCL on one GPU, smoke-run rows."""
    return device == "cpu" or (name == "faiss-gpu" and "no GPU faiss distribution" in detail) or \
        (name.startswith("torchrun nccl") and "1 GPU" in detail)


def table(rows: list[tuple], device: str) -> tuple[str, bool]:
    """The one PASS/FAIL table and whether the run passed."""
    lines, ok = [f"{'status':<6} {'check':<32} {'seconds':>7}  detail"], True
    for name, res, detail, *secs in rows:
        status = "PASS" if res else ("SKIP" if res is None else "FAIL")
        if res is False or (res is None and not allowed_skip(name, detail, device)):
            ok, status = False, "FAIL" if res is False else "SKIP!"
        lines.append(f"{status:<6} {name:<32} {secs[0] if secs else 0:>7.1f}  {detail}")
    verdict = ("PASS" if ok else "FAIL") if device == "cuda" else \
        ("harness smoke run OK, NO GPU was checked" if ok else "harness smoke run FAILED")
    lines.append(f"gpu_check: {verdict} ({sum(r[1] is True for r in rows)} passed, "
                 f"{sum(r[1] is None for r in rows)} skipped, {sum(r[1] is False for r in rows)} failed)")
    return "\n".join(lines), ok


def main(argv=None) -> int:
    sys.path.insert(0, str(ROOT / "benchmarks"))
    import gpu_check_steps as G

    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--device", default="cuda", choices=("cuda", "cpu"))
    ap.add_argument("--only", default="", help="comma-separated steps: " + ",".join(G.STEPS))
    ap.add_argument("--time-scale", type=float, default=1.0, help="multiply every step's time limit")
    ap.add_argument("--step", help=argparse.SUPPRESS)
    ap.add_argument("--json", default=str(ROOT / "bench_out" / "gpu_check.json"))
    a = ap.parse_args(argv)
    if a.step:
        _child(a.step, a.device)
        return 0
    names = [n for n in re.split(r"[,\s]+", a.only) if n] or list(G.STEPS)
    unknown = [n for n in names if n not in G.STEPS]
    if unknown:
        ap.error(f"unknown step(s) {unknown}; steps: {', '.join(G.STEPS)}")
    rows = [(*r, 0.0) for r in preflight(a.device)]
    if rows[0][1] is not False:
        for n in names:
            rows += run_step(n, a.device, G.STEPS[n][1] * a.time_scale, a.time_scale)
            print(f"{rows[-1][0]}: {'PASS' if rows[-1][1] else 'SKIP' if rows[-1][1] is None else 'FAIL'}",
                  file=sys.stderr, flush=True)
    text, ok = table(rows, a.device)
    print(text)
    out = Path(a.json)
    out.parent.mkdir(parents=True, exist_ok=True)
    out.write_text(json.dumps({"device": a.device, "passed": ok, "rows": [
        {"check": r[0], "status": "PASS" if r[1] else "SKIP" if r[1] is None else "FAIL", "detail": r[2],
         "seconds": round(r[3], 1)} for r in rows]}, indent=2) + "\n")
    return 0 if ok else 1


if __name__ == "__main__":
    sys.exit(main())
