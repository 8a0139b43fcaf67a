"""`ambient-eval gate` end to end: exit codes, refusal of incomparable results, output formats."""
from __future__ import annotations

import json
import xml.etree.ElementTree as ET

import numpy as np
import pytest

from tests.gate.conftest import make_results

CONFIG = """
[gate]
name = "test gate"
[[rule]]
metric = "fid"
max = 12.0
[[rule]]
check = "recall >= baseline - 0.02"
[[rule]]
metric = "fid"
regression = "significant"
alpha = 0.05
[[rule]]
metric = "memorization.frac_above_0.95"
max = 0.01
[[rule]]
metric = "reproducibility.rp[a|b]"
min = 0.5
"""


def err(r) -> str:
    """stderr with the CLI's paragraph wrapping undone."""
    return " ".join(r.stderr.split())


def _fid(tmp_path, name, fid_reps, recall, **settings):
    reps = [float(x) for x in fid_reps]
    return make_results(tmp_path / name, {"fid": float(np.mean(reps)), "recall": recall, "kid": 0.01},
                        repeats={"fid": reps}, settings=settings)


@pytest.fixture
def setup(tmp_path, write_config):
    rng = np.random.default_rng(0)
    base = _fid(tmp_path, "base", 10 + 0.3 * rng.standard_normal(5), 0.60)
    good = _fid(tmp_path, "good", 10.05 + 0.3 * rng.standard_normal(5), 0.595)
    bad = _fid(tmp_path, "bad", 11 + 0.3 * rng.standard_normal(5), 0.50)
    mem = make_results(tmp_path / "mem", {"frac_above_0.95": 0.002, "top1_mean": 0.4},
                       kind="memorization", ci={"frac_above_0.95": [0.0, 0.005]},
                       settings={"extractor": "dinov2"})
    rp = make_results(tmp_path / "rp", {"rp": 0.7, "rp[a|b]": 0.7}, kind="reproducibility")
    return {"config": write_config(CONFIG), "base": base, "good": good, "bad": bad, "mem": mem,
            "rp": rp, "tmp": tmp_path}


def test_pass(cli, setup):
    s, out = setup, setup["tmp"] / "out"
    r = cli(["gate", "--config", s["config"], "--baseline", s["base"], s["good"], s["mem"], s["rp"],
             "--out", out])
    assert r.exit_code == 0, r.output
    assert "Gate PASSED: 5 of 5" in r.stdout
    for col in ("rule", "baseline", "current", "bound", "status"):
        assert col in r.stdout.splitlines()[0]
    report = json.loads((out / "gate.json").read_text())
    assert report["passed"] and report["exit_code"] == 0 and len(report["rules"]) == 5
    assert report["rules"][2]["method"] == "welch" and report["rules"][2]["p_value"] > 0.05
    assert (out / "gate.md").is_file() and (out / "junit.xml").is_file()


def test_regression_outputs(cli, setup):
    s, tmp = setup, setup["tmp"]
    md, junit, js = tmp / "o" / "summary.md", tmp / "o" / "junit.xml", tmp / "o" / "gate.json"
    r = cli(["gate", "-c", s["config"], "-b", s["base"], s["bad"], s["mem"], s["rp"],
             "--markdown", md, "--junit", junit, "--json", js])
    assert r.exit_code == 1, r.output
    assert "Gate FAILED: 2 of 5 rules failed" in r.stdout
    # JUnit: testsuites > testsuite > 5 testcases, 2 with <failure>; counts agree.
    root = ET.parse(junit).getroot()
    assert root.tag == "testsuites" and root.get("tests") == "5" and root.get("failures") == "2"
    suite = root.find("testsuite")
    cases = suite.findall("testcase")
    assert len(cases) == 5 and suite.get("tests") == "5" and suite.get("failures") == "2"
    failed = [c.get("name") for c in cases if c.find("failure") is not None]
    assert failed == ["rule 2: recall >= baseline - 0.02", "rule 3: fid: no significant increase"]
    assert all(c.get("classname").startswith("ambient_eval.gate.") for c in cases)
    assert "one-sided p" in cases[2].find("failure").text
    # Markdown: a heading, then a table with header + separator + one row per rule, equal columns.
    lines = md.read_text().splitlines()
    table = [ln for ln in lines if ln.startswith("|")]
    assert len(table) == 2 + 5
    assert table[0].startswith("| # | rule | baseline | current | bound | status")
    assert set(table[1].replace("|", "")) == {"-"}
    ncols = [len([c for c in ln.replace("\\|", "").split("|")]) for ln in table]
    assert len(set(ncols)) == 1  # rp[a|b] is escaped, so it does not add a column
    assert "rp[a\\|b]" in md.read_text() and "❌" in lines[0]
    assert json.loads(js.read_text())["passed"] is False


@pytest.mark.parametrize("key, other", [
    ("extractor", "clip"), ("mode", "clean"), ("weights_sha256", "ee" * 32),
    ("n_generated", 5000), ("reference_fingerprint", "ff" * 32)])
def test_incomparable_results_refused(cli, setup, key, other):
    s, tmp = setup, setup["tmp"]
    cur = _fid(tmp, "other", [10, 10.1, 10.2], 0.6, **{key: other})
    out = tmp / "never"
    r = cli(["gate", "-c", s["config"], "-b", s["base"], cur, s["mem"], s["rp"], "--out", out])
    assert r.exit_code == 2
    assert f"setting '{key}'" in err(r) and repr(other) in err(r)
    assert "Traceback" not in r.output
    assert not out.exists() or not any(out.iterdir())  # no partial outputs


def test_missing_metric_lists_present(cli, setup, write_config):
    s = setup
    cfg = write_config('[[rule]]\nmetric = "density"\nmin = 0.5\n', "d.toml")
    r = cli(["gate", "-c", cfg, s["good"]])
    assert r.exit_code == 2
    assert "needs metric 'density'" in err(r) and "fid, kid, recall" in err(r)


def test_unknown_metric_cli(cli, setup, write_config):
    cfg = write_config('[[rule]]\nmetric = "recal"\nmin = 0.5\n', "u.toml")
    r = cli(["gate", "-c", cfg, setup["good"]])
    assert r.exit_code == 2 and "unknown metric 'recal'" in err(r) and "recall" in err(r)


def test_missing_baseline_and_kind(cli, setup, write_config):
    s = setup
    r = cli(["gate", "-c", s["config"], s["good"], s["mem"], s["rp"]])
    assert r.exit_code == 2 and "needs a 'fid' baseline" in err(r) and "--baseline" in err(r)
    r = cli(["gate", "-c", s["config"], "-b", s["base"], s["good"], s["rp"]])
    assert r.exit_code == 2 and "needs a 'memorization' result" in err(r)


def test_config_baseline_and_required_settings(cli, setup, write_config):
    s = setup
    cfg = write_config(f'[gate]\nbaseline = "{s["base"]}"\n[gate.settings.fid]\nextractor = "inception"\n'
                       '[[rule]]\ncheck = "fid <= baseline + 0.5"\n', "b.toml")
    assert cli(["gate", "-c", cfg, s["good"]]).exit_code == 0
    cur = _fid(s["tmp"], "clip", [10.0, 10.1], 0.6, extractor="clip")
    r = cli(["gate", "-c", cfg, "-b", cur, cur])  # comparable with itself, but not the required one
    assert r.exit_code == 2 and "requires setting extractor = 'inception'" in err(r)


def _range_results(tmp, name, fids, fingerprints=None):
    from ambient_eval.results.envelope import Results
    from tests.gate.conftest import SETTINGS

    paths = []
    for i, f in enumerate(fids):
        fp = (fingerprints or [f"{name}-{i}"] * len(fids))[i]
        res = Results(kind="fid", metrics={"fid": f, "recall": 0.6}, settings=dict(SETTINGS),
                      inputs={"generated": {"fingerprint": fp}}, versions={})
        paths.append(res.save(tmp / f"{name}{i}" / "results.json"))
    return paths


def test_as_repeats(cli, setup):
    s, tmp = setup, setup["tmp"]
    r = cli(["gate", "-c", s["config"], "-b", s["base"], s["good"], s["bad"]])
    assert r.exit_code == 2 and "Two current results of kind 'fid'" in err(r) and "--as-repeats" in err(r)
    cfg = tmp / "rep.toml"
    cfg.write_text('[[rule]]\nmetric = "fid"\nregression = "significant"\n')
    base = _range_results(tmp, "b", [10.0, 10.2, 10.1])
    worse = _range_results(tmp, "w", [11.0, 11.2, 11.1])
    same = _range_results(tmp, "s", [10.1, 10.0, 10.2])
    out = tmp / "rep.json"
    r = cli(["gate", "-c", cfg, "--as-repeats", *sum([["-b", p] for p in base], []), *worse, "--json", out])
    assert r.exit_code == 1, r.output
    rule = json.loads(out.read_text())["rules"][0]
    assert rule["current"]["repeats"] == [11.0, 11.2, 11.1] and rule["current"]["value"] == pytest.approx(11.1)
    assert rule["method"] == "welch" and rule["p_value"] < 0.001
    r = cli(["gate", "-c", cfg, "--as-repeats", *sum([["-b", p] for p in base], []), *same])
    assert r.exit_code == 0, r.output
    dup = _range_results(tmp, "d", [11.0, 11.2], fingerprints=["x", "x"])
    r = cli(["gate", "-c", cfg, "--as-repeats", *sum([["-b", p] for p in base], []), *dup])
    assert r.exit_code == 2 and "same generated images" in err(r)


def test_model_config_errors(cli, setup, write_config, monkeypatch):
    cfg = write_config('[[rule]]\nmetric = "fid"\nmax = 12\n', "m.toml")
    r = cli(["gate", "-c", cfg, "--model", "ckpt"])
    assert r.exit_code == 2 and "[evaluate] reference and exactly one of seeds / repeats" in err(r)
    cfg = write_config('[[rule]]\nmetric = "memorization.top1_mean"\nmax = 1\n'
                       '[evaluate]\nreference = "r.npz"\nseeds = "0-9"\n', "m2.toml")
    r = cli(["gate", "-c", cfg, "--model", "ckpt"])
    assert r.exit_code == 2 and "computes only kind fid" in err(r)
    cfg = write_config('[[rule]]\nmetric = "fid"\nmax = 12\n[evaluate]\nreference = "r.npz"\n'
                       'repeats = ["0-9"]\n', "m3.toml")
    r = cli(["gate", "-c", cfg, "--model", "ckpt"])
    assert r.exit_code == 2 and "at least two seed ranges" in err(r)
    # The Python API missing (a partial install): a clean error, not a traceback.
    from ambient_eval.metrics import fid_run   # what ambient_eval.api.fid is

    monkeypatch.delattr(fid_run, "fid")
    cfg = write_config('[[rule]]\nmetric = "fid"\nmax = 12\n[evaluate]\nreference = "r.npz"\n'
                       'seeds = "0-9"\n', "m4.toml")
    r = cli(["gate", "-c", cfg, "--model", "ckpt", "--out", setup["tmp"] / "mo"])
    assert r.exit_code == 2 and "ambient_eval.api.fid" in err(r) and "Traceback" not in r.output
    assert not (setup["tmp"] / "mo" / "gate.json").exists()


@pytest.mark.parametrize("args", [["gate", "--help"], ["history", "--help"],
                                  ["history", "record", "--help"]])
def test_help(cli, args):
    r = cli(args)
    assert r.exit_code == 0 and "Examples:" in r.stdout


def test_gate_records_history(cli, setup):
    from ambient_eval.results.history import query

    s, db = setup, setup["tmp"] / "h.sqlite"
    r = cli(["gate", "-c", s["config"], "-b", s["base"], s["bad"], s["mem"], s["rp"], "--history", db,
             "--run", "ci", "--step", 500, "--checkpoint", "ckpt-500"])
    assert r.exit_code == 1  # recorded even when the gate fails
    rows = query(db, metric="fid")
    assert [(x.run, x.step, x.checkpoint, x.repeats is not None) for x in rows] == [("ci", 500, "ckpt-500", True)]
    assert {x.kind for x in query(db)} == {"fid", "memorization", "reproducibility"}


def test_model_repeats_with_stand_in_api(cli, setup, write_config, monkeypatch):
    # ambient_eval.api.fid replaced by a stand-in: checks the wiring (arguments, repeats combined
    # into results.repeats, results.json written, Welch rule applied), not the metrics.
    from ambient_eval.metrics import fid_run as api   # what ambient_eval.api.fid is
    from ambient_eval.results.envelope import Results
    from tests.gate.conftest import SETTINGS

    calls = []

    def fake_fid(generated, reference, *, model, seeds, metrics, batch_size):
        calls.append((generated, reference, model, seeds, metrics, batch_size))
        fid = {"0-9": 10.5, "10-19": 10.7, "20-29": 10.6}[seeds]
        return Results(kind="fid", metrics={"fid": fid, "recall": 0.6}, settings=dict(SETTINGS), versions={})

    monkeypatch.setattr(api, "fid", fake_fid)
    cfg = write_config('[[rule]]\nmetric = "fid"\nregression = "significant"\n'
                       '[evaluate]\nreference = "ref.npz"\nrepeats = ["0-9", "10-19", "20-29"]\n'
                       'metrics = "fid,pr"\nbatch = 16\n', "model.toml")
    base = _fid(setup["tmp"], "mbase", [10.0, 10.1, 10.2, 9.9], 0.6)
    out = setup["tmp"] / "gate_out"
    r = cli(["gate", "-c", cfg, "--model", "ckpt-dir", "-b", base, "--out", out])
    assert r.exit_code == 1, r.output  # 10.6 +- 0.1 vs 10.05 +- 0.13: significant increase
    assert calls == [(None, str(cfg.parent / "ref.npz"), "ckpt-dir", s, ["fid", "pr"], 16)
                     for s in ("0-9", "10-19", "20-29")]
    from ambient_eval.results.envelope import load_results

    res = load_results(out / "results.json")
    assert res.repeats["fid"] == [10.5, 10.7, 10.6] and res.metrics["fid"] == pytest.approx(10.6)
    assert json.loads((out / "gate.json").read_text())["rules"][0]["method"] == "welch"


def test_model_end_to_end_with_real_api(cli, tmp_path, write_config):
    # The real path: tiny native U-Net, pixel features, two seed ranges as repeats.
    import torch

    from ambient_eval.models import UNetConfig, build_native_model, native_config, save_native

    torch.manual_seed(0)
    cfg = native_config(UNetConfig.tiny(8))
    ckpt = save_native(build_native_model(cfg).eval(), tmp_path / "ckpt", cfg, {})
    rng = np.random.default_rng(0)
    np.savez(tmp_path / "ref.npz", images=rng.integers(0, 256, (64, 8, 8, 3), dtype=np.uint8))
    gate_cfg = write_config('[[rule]]\nmetric = "fd_pixel_8"\nmax = 1e9\n[evaluate]\nreference = "ref.npz"\n'
                            'repeats = ["0-31", "32-63"]\nfeatures = "pixel-8"\nsteps = 4\nbatch = 32\n',
                            "e2e.toml")
    out = tmp_path / "e2e"
    r = cli(["gate", "-c", gate_cfg, "--model", ckpt, "--out", out])
    assert r.exit_code == 0, r.output
    from ambient_eval.results.envelope import load_results

    res = load_results(out / "results.json")
    assert len(res.repeats["fd_pixel_8"]) == 2 and res.settings["extractor"] == "pixel-8"
