"""Smoke run of experiments/regimes_closed_form.py at a tiny size (docs/memorization.md names it)."""
from __future__ import annotations

import importlib.util
import json
import sys
from pathlib import Path

ROOT = Path(__file__).resolve().parents[2]


def test_regimes_closed_form_smoke(tmp_path, monkeypatch):
    spec = importlib.util.spec_from_file_location("regimes_cf", ROOT / "experiments" / "regimes_closed_form.py")
    mod = importlib.util.module_from_spec(spec)
    monkeypatch.setitem(sys.modules, "regimes_cf", mod)   # dataclasses look their module up
    spec.loader.exec_module(mod)
    assert mod.main(["--sizes", "8", "--seeds", "2", "--steps", "3", "--n-samples", "6", "--n-probe", "4",
                     "--sigmas", "0.1,1", "--out", str(tmp_path)]) == 0
    out = json.loads((tmp_path / "regimes_closed_form.json").read_text())
    (row,) = out["summary"]
    assert row["seeds"] == 2 and row["ms_empirical"][0] == 1.0 and row["rp_empirical"][0] == 0.0
    assert len(row["dist_empirical"]) == 2
    assert (tmp_path / "regimes_closed_form.svg").read_text().startswith("<svg")
    assert "| 8 |" in (tmp_path / "regimes_closed_form.md").read_text()
