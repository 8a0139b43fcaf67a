"""Smoke run of benchmarks/bench_t2i.py at tiny size (docs/sampling.md quotes its full-size number)."""
from __future__ import annotations

import importlib.util
from pathlib import Path


def test_bench_t2i_smoke(tmp_path):
    path = Path(__file__).resolve().parents[2] / "benchmarks" / "bench_t2i.py"
    spec = importlib.util.spec_from_file_location("bench_t2i", path)
    mod = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(mod)
    res = mod.main(["--n", "2", "--steps", "1", "--repeats", "1", "--out", str(tmp_path / "b.json")])
    assert res["identical"] and res["ratio"] > 0 and (tmp_path / "b.json").is_file()
