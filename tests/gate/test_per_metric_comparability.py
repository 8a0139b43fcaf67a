"""Comparability is per metric: KID on pixel-8 is not KID on pixel-4, even when both FIDs used Inception."""
from __future__ import annotations


from ambient_eval.results.envelope import Results

PER = {"fid": {"extractor": "inception", "mode": "tf-compat", "feature": "pool3", "weights_sha256": "ab" * 32}}


def _res(path, kid_space: str, fid: float = 10.0, kid: float = 0.01):
    per = {**PER, "kid": {"extractor": kid_space, "mode": "pixel", "feature": "pixel", "weights_sha256": None}}
    settings = {"extractor": "inception", "mode": "tf-compat", "weights_sha256": "ab" * 32, "n_generated": 100,
                "reference_fingerprint": "cd" * 32, "per_metric": per}
    return Results(kind="fid", metrics={"fid": fid, "kid": kid}, settings=settings, versions={}).save(path)


def _msg(r) -> str:
    return " ".join(r.output.split())


def test_gate_refuses_kid_across_feature_spaces(cli, tmp_path):
    base, cur = _res(tmp_path / "base", "pixel-8"), _res(tmp_path / "cur", "pixel-4")
    cfg = tmp_path / "gate.toml"
    cfg.write_text('[[rule]]\ncheck = "kid <= baseline + 0.01"\n')
    r = cli(["gate", "-c", cfg, "-b", base, cur, "--out", tmp_path / "out"])
    assert r.exit_code == 2, r.output
    msg = _msg(r)
    assert "metric 'kid'" in msg and "pixel-8" in msg and "pixel-4" in msg
    assert not (tmp_path / "out").exists() or not any((tmp_path / "out").iterdir())
    # The same pair passes when the rule compares only FID (same feature space).
    cfg.write_text('[[rule]]\ncheck = "fid <= baseline + 1"\n')
    assert cli(["gate", "-c", cfg, "-b", base, cur]).exit_code == 0


def test_fid_compare_refuses_kid_across_feature_spaces(cli, tmp_path):
    a, b = _res(tmp_path / "a", "pixel-8"), _res(tmp_path / "b", "pixel-4")
    r = cli(["fid", "--compare", a, "--compare", b, "--out", tmp_path / "cmp"])
    assert r.exit_code == 2, r.output
    assert "metric 'kid'" in _msg(r) and "pixel-4" in _msg(r)
    assert not (tmp_path / "cmp" / "report.html").exists()


def test_history_splits_and_names_the_metric(cli, tmp_path):
    db = tmp_path / "h.sqlite"
    for step, space in ((1, "pixel-8"), (2, "pixel-4")):
        p = _res(tmp_path / f"s{step}", space)
        assert cli(["history", "record", p, "--run", "r", "--step", step, "--db", db]).exit_code == 0
    rep = tmp_path / "h.html"
    r = cli(["history", "--db", db, "--report", rep])
    assert r.exit_code == 0, r.output
    notes = [ln for ln in r.stderr.splitlines() if ln.startswith("Note:")]
    assert len(notes) == 1 and "kid" in notes[0] and "pixel-8" in notes[0] and "pixel-4" in notes[0]
    from ambient_eval.results.history import query
    from ambient_eval.reports.history_report import series_by_run

    assert len(series_by_run(query(db, metric="kid"))) == 2   # two lines for kid
    assert len(series_by_run(query(db, metric="fid"))) == 1   # one for fid


def test_unknown_feature_on_one_side_is_not_a_mismatch():
    from ambient_eval.results.comparability import problem

    new = {"n_generated": 1, "reference_fingerprint": "r",
           "per_metric": {"fid": {"extractor": "inception", "mode": "tf-compat", "feature": "pool3"}}}
    old = {"n_generated": 1, "reference_fingerprint": "r", "extractor": "inception", "mode": "tf-compat"}
    assert problem(old, new, ["fid"]) is None
    other = {**old, "mode": "clean"}
    assert "metric 'fid'" in problem(other, new, ["fid"])
