"""Smoke run of benchmarks/bench_fetch.py (named in docs/weights.md) at a tiny size."""
from __future__ import annotations

import importlib.util
from pathlib import Path


def test_bench_fetch_smoke(tmp_path):
    path = Path(__file__).resolve().parents[2] / "benchmarks" / "bench_fetch.py"
    spec = importlib.util.spec_from_file_location("bench_fetch", path)
    mod = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(mod)
    out = mod.main(["--mb", "0.25", "--repeats", "3", "--dim", "16", "--out", str(tmp_path / "b.json")])
    assert out["resume_bytes_second_run"] == out["file_bytes"] // 2       # only the missing half again
    assert (tmp_path / "b.json").is_file()
