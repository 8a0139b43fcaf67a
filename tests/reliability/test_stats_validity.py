"""Item 1: invalid covariances are refused on load; no impossible distance is ever reported or saved."""
from __future__ import annotations

import json

import numpy as np
import pytest

from ambient_eval.errors import AmbientError
from ambient_eval.metrics.fid import fid_from_stats
from ambient_eval.results.envelope import Results
from ambient_eval.metrics.stats import load_stats
from tests.reliability.conftest import stats_npz

D = 8


def _good(seed=0):
    rng = np.random.default_rng(seed)
    x = rng.normal(size=(50, D))
    return x.mean(0), np.cov(x, rowvar=False)


@pytest.mark.parametrize("kind,needle", [
    ("asym", "not symmetric"), ("notpsd", "not positive semidefinite"), ("nan", "NaN"),
    ("negdiag", "negative variance"), ("shape", "expected (D,) and (D, D)"), ("int", "floating point"),
])
def test_bad_stats_file_refused(tmp_path, kind, needle):
    mu, s = _good()
    if kind == "asym":
        s = s.copy(); s[0, 1] += 1.0
    elif kind == "notpsd":
        s = np.eye(D); s[0, 1] = s[1, 0] = 2.0           # eigenvalues 3 and -1, positive diagonal
    elif kind == "nan":
        s = s.copy(); s[2, 2] = np.nan
    elif kind == "negdiag":
        s = s.copy(); s[3, 3] = -5.0
    elif kind == "shape":
        s = s[:4, :4]
    elif kind == "int":
        mu, s = mu.astype(np.int64), s.astype(np.int64)
    p = stats_npz(tmp_path / f"{kind}.npz", mu, s)
    with pytest.raises(AmbientError) as e:
        load_stats(p)
    assert needle in str(e.value) and str(p) in str(e.value)


def test_valid_stats_and_singular_accepted(tmp_path):
    mu, s = _good()
    assert load_stats(stats_npz(tmp_path / "ok.npz", mu, s)).mu.shape == (D,)
    x = np.random.default_rng(1).normal(size=(4, D))        # N < D: singular but PSD
    load_stats(stats_npz(tmp_path / "sing.npz", x.mean(0), np.cov(x, rowvar=False)))


def test_negative_distance_never_returned():
    mu, s = _good()
    bad = s - 2 * np.eye(D) * np.linalg.eigvalsh(s)[-1]      # negative definite: FD would be < 0
    for method in ("eig", "sqrtm"):
        with pytest.raises(AmbientError):
            fid_from_stats(mu, s, mu, bad, method=method)
    # Identical statistics: exactly 0 or tiny positive, never negative.
    for method in ("eig", "sqrtm"):
        assert fid_from_stats(mu, s, mu, s, method=method) >= 0


def test_cli_negative_fid_exit_2_no_results(cli, img_dirs, tmp_path):
    gen, _ = img_dirs
    rng = np.random.default_rng(0)
    ref = stats_npz(tmp_path / "ref_stats.npz", rng.normal(size=192), -np.eye(192))
    out = tmp_path / "out"
    r = cli(["fid", gen, ref, "--features", "pixel-8", "--device", "cpu", "--out", out, "--no-report",
             "--no-cache"])
    assert r.exit_code == 2, r.output
    assert "ref_stats.npz" in r.output and not (out / "results.json").exists()


@pytest.mark.parametrize("value", [float("nan"), float("inf"), -3.0])
def test_results_save_refuses_impossible(tmp_path, value):
    with pytest.raises(AmbientError):
        Results(kind="fid", metrics={"fid": value}).save(tmp_path / "r.json")
    assert not (tmp_path / "r.json").exists()
    Results(kind="fid", metrics={"fid": 1.5}).save(tmp_path / "ok.json")
    assert json.loads((tmp_path / "ok.json").read_text())["metrics"]["fid"] == 1.5
