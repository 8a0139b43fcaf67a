"""Issue 26, item 3: the Python API mirrors the commands.

For fid, stats, memorization, reproducibility and gate, the CLI command and the API function (then
`.save(dir)`) on the same small inputs write the same files; `.to_pandas()` rows equal what the files
hold; and no command writes anything outside its --out (each runs in a clean working directory).

Compared as written, except for what is a clock reading, never a result:
  * `created` (results.json, results.csv column, gate.json): the wall-clock time the envelope was made;
  * `extra.timings` (fid results.json): seconds each stage took on this machine;
  * ISO-8601 timestamps inside report.html (the report's "created" line).
Everything else (metrics, CIs, settings, inputs, versions, warnings, tables, reports) must be equal.
"""
from __future__ import annotations

import json
import os
import re
import shutil
import textwrap
import warnings
from pathlib import Path

import numpy as np
import pandas as pd
import pytest

from ambient_eval.errors import AmbientError
from tests.conftest import random_images, write_images

PIX = ["--device", "cpu", "--no-cache"]
GATE_TOML = ('[[rule]]\nmetric = "precision"\nmin = 0.0\n'
             '[[rule]]\ncheck = "recall >= baseline - 0.5"\n'
             '[[rule]]\nmetric = "fd_pixel_8"\nmax = 1.0\n')   # fails: a regression verdict is saved too
_STAMP = re.compile(r"\d{4}-\d\d-\d\dT\d\d:\d\d:\d\d(?:\.\d+)?(?:[+-]\d\d:\d\d|Z)?")


def _api_calls(w: Path) -> dict:
    """Command -> (CLI arguments, API call writing into a folder) on the same inputs."""
    import ambient_eval as ae

    fid_kw = dict(metrics=["fid", "kid", "pr"], features="pixel-8", kid_subset_size=6, device="cpu", cache=False)
    mem_kw = dict(embed="pixel", device="cpu", cache=False, bootstrap=20, k=3)
    rep_kw = dict(seeds="0-11", embed="pixel", device="cpu", bootstrap=20, cache=False, train=str(w / "ref"))
    return {
        "fid": (["fid", w / "gen", w / "ref", "--metrics", "fid,kid,pr", "--features", "pixel-8",
                 "--kid-subset-size", "6", *PIX, "--out", "{out}"],
                lambda out: ae.fid(str(w / "gen"), str(w / "ref"), **fid_kw).save(out)),
        "stats": (["stats", w / "ref", "-o", "{out}/ref.npz", "--features", "pixel-8", *PIX],
                  lambda out: ae.stats(str(w / "ref"), features="pixel-8", device="cpu", cache=False)
                  .save(Path(out) / "ref.npz")),
        "memorization": (["memorization", w / "gen", "--train", w / "ref", "--embed", "pixel", "--bootstrap", "20",
                          "--k", "3", *PIX, "--out", "{out}"],
                         lambda out: ae.memorization([str(w / "gen")], train=str(w / "ref"), **mem_kw).save(out)),
        "reproducibility": (["reproducibility", w / "gen", w / "ref", "--seeds", "0-11", "--embed", "pixel",
                             "--bootstrap", "20", "--train", w / "ref", "--device", "cpu", "--no-cache",
                             "--out", "{out}"],
                            lambda out: ae.reproducibility([str(w / "gen"), str(w / "ref")], **rep_kw).save(out)),
        "gate": (["gate", "-c", w / "gate.toml", "-b", w / "base", w / "cur", "--out", "{out}"],
                 lambda out: ae.gate([str(w / "cur")], config=str(w / "gate.toml"),
                                     baseline=[str(w / "base")]).save(out)),
    }


@pytest.fixture(scope="module")
def world(tmp_path_factory):
    """Inputs (12 8x8 images keyed by seed, twice), fid results to gate, and a gate config."""
    import ambient_eval as ae

    w = tmp_path_factory.mktemp("mirror")
    write_images(w / "gen", random_images(12, size=8, seed=1))
    write_images(w / "ref", random_images(12, size=8, seed=2))
    with pytest.warns(UserWarning):   # small N: the warning is recorded in the results too
        ae.fid(str(w / "gen"), str(w / "ref"), metrics=["fid", "pr"], features="pixel-8", device="cpu",
               cache=False).save(w / "cur", report=False)
    shutil.copytree(w / "cur", w / "base")
    (w / "gate.toml").write_text(GATE_TOML)
    return w


def _json(p: Path) -> dict:
    obj = json.loads(p.read_text())
    obj.pop("created", None)
    obj.get("extra", {}).pop("timings", None)
    return obj


def _same(a: Path, b: Path) -> None:
    """Two files written by the CLI and by the API hold the same content (clock readings aside)."""
    if a.suffix == ".json":
        assert _json(a) == _json(b), a.name
    elif a.suffix == ".csv" and "created" in a.read_text().splitlines()[0].split(","):
        assert pd.read_csv(a).drop(columns="created").equals(pd.read_csv(b).drop(columns="created")), a.name
    elif a.suffix == ".html":
        assert _STAMP.sub("<t>", a.read_text()) == _STAMP.sub("<t>", b.read_text()), a.name
    elif a.suffix == ".parquet":
        pd.testing.assert_frame_equal(pd.read_parquet(a), pd.read_parquet(b))
    elif a.suffix == ".npz":
        with np.load(a) as x, np.load(b) as y:
            assert sorted(x.files) == sorted(y.files)
            for k in x.files:
                np.testing.assert_array_equal(x[k], y[k])
    else:
        assert a.read_bytes() == b.read_bytes(), a.name


def _tree(root: Path) -> list[str]:
    return sorted(str(p.relative_to(root)) for p in root.rglob("*") if p.is_file())


@pytest.mark.parametrize("command", ["fid", "stats", "memorization", "reproducibility", "gate"])
def test_cli_and_api_write_the_same_files_and_nothing_outside_out(cli, world, tmp_path, monkeypatch, command):
    monkeypatch.setenv("AMBIENT_EVAL_PROGRESS", "0")
    monkeypatch.setenv("AMBIENT_EVAL_CACHE", str(tmp_path / "feature-cache"))   # never used: --no-cache
    args, api_call = _api_calls(world)[command]
    # The same folder name on both sides: fid labels its run in the report by the folder's name.
    clean_cli, clean_api = tmp_path / "cli", tmp_path / "api"
    for d in (clean_cli, clean_api):
        d.mkdir()
    monkeypatch.chdir(clean_cli)
    r = cli([str(a).replace("{out}", "out") for a in args])
    assert r.exit_code == (1 if command == "gate" else 0), r.output
    monkeypatch.chdir(clean_api)
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")   # small-N warnings: the CLI prints them, both record them
        api_call("out")
    files = _tree(clean_cli)
    # (d) Everything the command wrote is inside --out (and only there; the feature cache is off).
    assert files and all(f.startswith("out/") for f in files), files
    assert not (tmp_path / "feature-cache").exists()
    assert _tree(clean_api) == files
    expected = {"fid": ["results.csv", "results.json", "report.html"], "stats": ["ref.npz"],
                "memorization": ["report.html", "results.json", "samples.csv", "samples.parquet", "summary.json"],
                "reproducibility": ["per_seed.csv", "per_seed.parquet", "report.html", "results.json",
                                    "summary.json"],
                "gate": ["gate.json", "gate.md", "junit.xml"]}[command]
    assert sorted(Path(f).name for f in files) == sorted(expected)
    for f in files:
        _same(clean_cli / f, clean_api / f)


def test_fid_without_out_writes_one_folder_under_reports(cli, world, tmp_path, monkeypatch):
    monkeypatch.chdir(tmp_path)
    monkeypatch.delenv("AMBIENT_EVAL_REPORTS", raising=False)
    r = cli(["fid", world / "gen", world / "ref", "--features", "pixel-8", *PIX])
    assert r.exit_code == 0, r.output
    files = _tree(tmp_path)
    assert len({Path(f).parent for f in files}) == 1 and re.fullmatch(r"reports/fid-\d{8}-\d{6}", str(Path(files[0]).parent))
    assert sorted(Path(f).name for f in files) == ["report.html", "results.csv", "results.json"]
    # --no-report without --out: the table is printed, nothing is written
    r = cli(["fid", world / "gen", world / "ref", "--features", "pixel-8", *PIX, "--no-report"])
    assert r.exit_code == 0 and _tree(tmp_path) == files


def test_to_pandas_rows_equal_the_files(world, tmp_path):
    import ambient_eval as ae

    w = world
    with pytest.warns(UserWarning):
        q = ae.fid(str(w / "gen"), str(w / "ref"), metrics=["fid", "pr"], features="pixel-8", device="cpu",
                   cache=False)
    with pytest.raises(AmbientError, match="output folder"):   # the old `Results.save(file.json)` habit
        q.save(tmp_path / "results.json")
    q.results.ci["precision"] = [0.25, 0.75]   # one metric with an interval, one without
    q.save(tmp_path / "fid", report=False)
    res = json.loads((tmp_path / "fid" / "results.json").read_text())
    df = q.to_pandas()
    assert list(df.columns) == ["metric", "value", "ci_low", "ci_high"]
    assert dict(zip(df["metric"], df["value"])) == res["metrics"]
    assert {m: [lo, hi] for m, lo, hi in zip(df["metric"], df["ci_low"], df["ci_high"]) if m in res["ci"]} \
        == res["ci"] and df.set_index("metric").loc["fd_pixel_8", ["ci_low", "ci_high"]].isna().all()

    m = ae.memorization([str(w / "gen"), str(w / "ref")], train=str(w / "ref"), embed="pixel", device="cpu",
                        cache=False, bootstrap=20, k=2)
    m.save(tmp_path / "mem", report=False)
    pd.testing.assert_frame_equal(m.to_pandas(), pd.read_parquet(tmp_path / "mem" / "samples.parquet"))
    assert set(m.results) == set(m.metrics) == {"gen", "ref"}
    for name in ("gen", "ref"):
        assert json.loads((tmp_path / "mem" / name / "results.json").read_text())["metrics"] == m.metrics[name]

    r = ae.reproducibility([str(w / "gen"), str(w / "ref"), str(w / "gen")], names=["a", "b", "c"], seeds="0-11",
                           embed="pixel", device="cpu", bootstrap=20, cache=False)
    r.save(tmp_path / "rp", report=False)
    assert not (tmp_path / "rp" / "report.html").exists()
    pairs = json.loads((tmp_path / "rp" / "results.json").read_text())["extra"]["rp_matrix"]["pairs"]
    assert r.to_pandas().to_dict("records") == pairs and len(pairs) == 3
    assert r.to_pandas().set_index(["model A", "model B"]).loc[("a", "c"), "RP"] == 1.0   # same images

    g = ae.gate([str(w / "cur")], config=str(w / "gate.toml"), baseline=[str(w / "base")])
    g.save(tmp_path / "gate")
    rules = json.loads((tmp_path / "gate" / "gate.json").read_text())["rules"]
    rows = g.to_pandas().to_dict("records")
    assert len(rows) == len(rules) == 3 and [x["passed"] for x in rows] == [True, True, False]
    for row, rule in zip(rows, rules):   # None in gate.json is NaN in a numeric column
        flat = {**rule, "current": rule["current"]["value"], "baseline": (rule["baseline"] or {}).get("value")}
        assert row.keys() == flat.keys()
        assert all(row[k] == v or (v is None and pd.isna(row[k])) for k, v in flat.items()), (row, flat)
    assert (g.passed, g.exit_code) == (False, 1)

    with pytest.warns(UserWarning):
        st = ae.stats(str(w / "ref"), features="pixel-8", device="cpu", cache=False)
    with pytest.raises(TypeError, match="no rows"):
        st.to_pandas()
    assert st.stats.n == 12 and st.stats.mu.dtype == np.float64


def test_api_docstring_example_runs(world, tmp_path, monkeypatch):
    """The usage example in ambient_eval/api.py's docstring, executed on small stand-ins."""
    import ambient_eval.api as api

    code = textwrap.dedent(re.search(r"```python\n(.*?)```", api.__doc__, re.S).group(1))
    monkeypatch.chdir(tmp_path)
    (tmp_path / "data").mkdir()
    shutil.make_archive(str(tmp_path / "data" / "train"), "zip", world / "ref")
    for name, src in (("samples", "gen"), ("samplesA", "gen"), ("samplesB", "ref")):
        shutil.copytree(world / src, tmp_path / name)
    (tmp_path / "gate.toml").write_text('[[rule]]\nmetric = "fd_pixel_8"\nmax = 1e9\n')
    monkeypatch.setitem(api.fid.__kwdefaults__, "kid_subset_size", 6)   # 12 images, not 1000
    monkeypatch.setenv("AMBIENT_EVAL_CACHE", str(tmp_path / "cache"))
    monkeypatch.setenv("AMBIENT_EVAL_PROGRESS", "0")
    g: dict = {}
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        exec(compile(code, "ambient_eval/api.py", "exec"), g)   # noqa: S102 - our own documented example
    assert g["g"].passed and (tmp_path / "out" / "fid" / "report.html").is_file() and (tmp_path / "ref.npz").is_file()
    assert len(g["m"].to_pandas()) == 12 and g["r"].to_pandas()["RP"].between(0, 1).all()
    assert os.path.isdir(tmp_path / "out" / "fid")
