"""experiments/ambient_ordering.py: a seconds-long smoke run, and the split-level intervals."""
from __future__ import annotations

import json

import numpy as np
import pytest


@pytest.mark.slow  # ~8 s on a quiet machine, 27 s measured at load 16
def test_smoke_run_writes_tables_and_figure(tmp_path):
    from experiments.ambient_ordering import MODELS, main

    assert main(["--smoke", "--splits", "2", "--seeds", "1", "--out", str(tmp_path / "out"),
                 "--results", str(tmp_path)]) == 0
    md = (tmp_path / "ambient_ordering.md").read_text()
    assert "digits8" in md and all(m in md for m in MODELS) and "split means" in md
    assert "clean share of draws" in md and "sigma_tn q10 / median / q90" in md
    rows = [r.split(",") for r in (tmp_path / "ambient_ordering.csv").read_text().splitlines()]
    assert rows[0][:6] == ["setting", "model", "metric", "mean", "ci_low", "ci_high"] and len(rows[0]) == 6 + 2
    fd = {r[1]: r for r in rows[1:] if r[2] == "fd"}
    assert set(MODELS) <= set(fd) and "ambient-pixel-clean-only" in fd
    # the paired-difference row is the per-cell difference of the two model rows
    d = np.array(fd["ambient-pixel-clean-only"][6:], float)
    assert np.allclose(d, np.array(fd["ambient-pixel"][6:], float) - np.array(fd["clean-only"][6:], float), atol=2e-4)
    assert (tmp_path / "ambient_ordering.svg").read_text().startswith("<svg")
    cell = json.loads((tmp_path / "out" / "digits8" / "cell-s1-t0.json").read_text())
    assert cell["split"] == 1 and cell["seed"] == 0 and np.isfinite(cell["ambient-loss.fd"])


def test_split_interval_is_the_t_interval_of_split_means():
    from scipy.stats import t

    from experiments.ordering_stats import split_interval

    cells = [[1.0, 2.0, 3.0], [2.0, 2.0, 2.0], [5.0, 4.0, 6.0]]  # split means 2, 2, 5
    mean, lo, hi = split_interval(cells)
    half = t.ppf(0.975, 2) * np.std([2.0, 2.0, 5.0], ddof=1) / np.sqrt(3)
    assert mean == pytest.approx(3.0) and (lo, hi) == pytest.approx((3.0 - half, 3.0 + half))
    # the spread between splits widens the interval even when every split's seeds agree exactly
    assert split_interval([[1.0] * 3, [3.0] * 3, [2.0] * 3])[2] - 2.0 > 2.0
