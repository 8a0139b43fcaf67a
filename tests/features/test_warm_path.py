"""A warm-cache `fid` run (API and CLI) imports no torch and builds no network, with identical numbers.

torch costs ~2.5 s to import on the 2-core development machine, which is most of a warm run; this
test fails as soon as any module on that path imports it again.
"""
from __future__ import annotations

import json
import os
import subprocess
import sys
import warnings

import pytest

from ambient_eval import api
from tests.conftest import random_images, write_images

FEATURES = "fid=inception,kid=inception,pr=pixel-8,dc=pixel-8"
METRICS = ("fid", "kid", "pr", "dc")

_API_CHILD = """
import json, sys, warnings
warnings.simplefilter("ignore")
from ambient_eval import api
from ambient_eval.features import FeatureExtractor
r = api.fid(sys.argv[1], sys.argv[2], metrics=("fid", "kid", "pr", "dc"), features=sys.argv[3],
            weights=sys.argv[4], cache_dir=sys.argv[5], kid_subsets=5, kid_subset_size=6)
print(json.dumps({"torch": "torch" in sys.modules, "builds": FeatureExtractor.network_builds,
                  "metrics": r.metrics}))
"""

_CLI_CHILD = """
import sys
from ambient_eval.cli.app import main
sys.argv = ["ambient-eval", *sys.argv[1:]]
try:
    main()
except SystemExit as e:
    print("TORCH_IMPORTED" if "torch" in sys.modules else "NO_TORCH", "exit", e.code)
"""


def _child(code, *args):
    env = {**os.environ, "AMBIENT_EVAL_PROGRESS": "0", "PYTHONWARNINGS": "ignore"}
    proc = subprocess.run([sys.executable, "-c", code, *map(str, args)], capture_output=True, text=True, env=env,
                          timeout=300)
    assert proc.returncode == 0, proc.stderr[-3000:]
    return proc.stdout.strip().splitlines()[-1]


@pytest.mark.slow
def test_warm_fid_imports_no_torch_and_builds_no_network(tmp_path, inception_weights):
    gen, ref, cache = tmp_path / "gen", tmp_path / "ref", tmp_path / "cache"
    write_images(gen, random_images(8, seed=1))
    write_images(ref, random_images(8, seed=2))
    weights = f"inception={inception_weights}"
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        cold = api.fid(str(gen), str(ref), metrics=METRICS, features=FEATURES, weights=weights, cache_dir=cache,
                       kid_subsets=5, kid_subset_size=6, device="cpu")
    warm = json.loads(_child(_API_CHILD, gen, ref, FEATURES, weights, cache))
    assert warm["torch"] is False and warm["builds"] == 0
    assert warm["metrics"] == pytest.approx(cold.metrics, rel=1e-12)
    out = _child(_CLI_CHILD, "fid", gen, ref, "--metrics", ",".join(METRICS), "--features", FEATURES,
                 "--weights", weights, "--cache-dir", cache, "--kid-subsets", 5, "--kid-subset-size", 6,
                 "--out", tmp_path / "out")
    assert out == "NO_TORCH exit 0"
    written = json.loads((tmp_path / "out" / "results.json").read_text())["metrics"]
    assert written == pytest.approx(cold.metrics, rel=1e-12)
    assert (tmp_path / "out" / "report.html").stat().st_size > 0


def test_frechet_distance_is_stored_and_reused_only_for_identical_statistics(tmp_path, monkeypatch, caplog):
    import ambient_eval.metrics as M

    gen, ref, other, cache = tmp_path / "gen", tmp_path / "ref", tmp_path / "other", tmp_path / "cache"
    write_images(gen, random_images(12, seed=1))
    write_images(ref, random_images(12, seed=2))
    write_images(other, random_images(12, seed=3))

    def run(a, b, **kw):
        with warnings.catch_warnings():
            warnings.simplefilter("ignore")
            return api.fid(str(a), str(b), features="pixel-8", device="cpu", cache_dir=cache, **kw).metrics["fd_pixel_8"]

    calls = []
    real = M.fid_from_stats
    monkeypatch.setattr(M, "fid_from_stats", lambda *a, **k: calls.append(1) or real(*a, **k))
    first = run(gen, ref)
    stored = list((cache / "values").rglob("*.json"))
    assert len(calls) == 1 and len(stored) == 1
    assert run(gen, ref) == first and len(calls) == 1                 # identical statistics: reused
    assert run(gen, other) != first and len(calls) == 2               # other statistics: computed
    run(gen, ref, fid_method="sqrtm")
    assert len(calls) == 3                                            # the method is part of the key
    stored[0].write_text("{not json")                                 # a corrupt entry is recomputed
    assert run(gen, ref) == first and len(calls) == 4
    assert "Ignoring unreadable value cache" in caplog.text
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        api.fid(str(gen), str(other), features="pixel-8", device="cpu", cache=False)
    assert len(calls) == 5                                            # no cache: always computed
