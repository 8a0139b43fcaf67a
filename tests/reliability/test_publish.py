"""Issue 24, defects 2 and 3: a command publishes all its outputs or none, a killed run's hidden
files are removed by the next run, and two runs on one --out never mix their files."""
from __future__ import annotations

import errno
import fcntl
import json
import os
import subprocess
from pathlib import Path

import pytest

from ambient_eval.files import atomic
from ambient_eval.errors import AmbientError
from ambient_eval.results.envelope import Results

SETTINGS = {"extractor": "inception", "mode": "tf-compat", "weights_sha256": "ab" * 32,
            "n_generated": 10000, "reference_fingerprint": "cd" * 32}
FID = ["--features", "pixel-8", "--device", "cpu", "--no-cache"]


def _dead_pid() -> int:
    p = subprocess.Popen(["true"])
    p.wait()
    return p.pid


def _visible(folder: Path) -> list[str]:
    return sorted(str(p.relative_to(folder)) for p in folder.rglob("*")) if folder.exists() else []


def _disk_full(*a, **k):
    raise OSError(errno.ENOSPC, "No space left on device")


def test_publish_together_is_all_or_nothing(tmp_path):
    out = tmp_path / "out"
    atomic.write_text(out / "results.csv", "old\n")   # an earlier run's file stays if this one fails
    with pytest.raises(RuntimeError), atomic.publish_together(out):
        atomic.write_json(out / "results.json", {"a": 1})
        atomic.write_text(out / "sub" / "x.txt", "x")
        assert not (out / "results.json").exists()        # staged, not visible yet
        assert json.loads(atomic.staged(out / "results.json").read_text()) == {"a": 1}
        raise RuntimeError("late failure")
    assert [p.name for p in out.iterdir() if p.is_file()] == ["results.csv"]
    assert not any(p.name.startswith(".") for p in out.rglob("*"))
    with atomic.publish_together(out):
        atomic.write_json(out / "results.json", {"a": 2})
        atomic.write_text(out / "results.csv", "new\n")
    assert (out / "results.csv").read_text() == "new\n"
    assert json.loads((out / "results.json").read_text()) == {"a": 2}
    assert _visible(out) == ["results.csv", "results.json", "sub"]


def test_killed_runs_leftovers_are_removed(tmp_path):
    out = tmp_path / "out"
    out.mkdir()
    pid = _dead_pid()
    (out / f"{atomic.STAGING_PREFIX}{pid}.abc123").mkdir()
    (out / f"{atomic.STAGING_PREFIX}{pid}.abc123" / "results.json").write_text("{}")
    (out / f".samples.parquet.{pid}.ab_cd123.tmp.parquet").write_bytes(b"x")
    live = out / f".x.json.{os.getpid()}.zzzzzzzz.tmp.json"   # a live process's temp stays
    live.write_bytes(b"x")
    atomic.claim_output_dir(out)
    try:
        assert sorted(p.name for p in out.iterdir()) == [live.name]
    finally:
        atomic.release_output_dirs()


def test_second_run_on_a_locked_out_exits_2(cli, img_dirs, tmp_path):
    gen, ref = img_dirs
    out = tmp_path / "out"
    out.mkdir()
    fd = os.open(out, os.O_RDONLY)
    fcntl.flock(fd, fcntl.LOCK_EX | fcntl.LOCK_NB)      # another run holds the folder
    try:
        r = cli(["fid", gen, ref, *FID, "--out", out, "--no-report"])
        assert r.exit_code == 2 and "Another ambient-eval run is writing to" in r.output, r.output
        assert _visible(out) == []
        with pytest.raises(AmbientError):
            atomic.claim_output_dir(out)
    finally:
        os.close(fd)
    r = cli(["fid", gen, ref, *FID, "--out", out, "--no-report"])   # the lock went with its holder
    assert r.exit_code == 0, r.output
    assert _visible(out) == ["results.csv", "results.json"]


def test_fid_report_failure_publishes_nothing(cli, img_dirs, tmp_path, monkeypatch):
    import ambient_eval.reports.fid_report as fid_report

    gen, ref = img_dirs
    out = tmp_path / "out"
    monkeypatch.setattr(fid_report, "save_fid_report", _disk_full)
    r = cli(["fid", gen, ref, *FID, "--out", out])
    assert r.exit_code == 2, r.output
    assert _visible(out) == []


def test_memorization_write_failure_publishes_nothing(cli, img_dirs, tmp_path, monkeypatch):
    import pandas as pd

    gen, ref = img_dirs
    out = tmp_path / "audit"
    monkeypatch.setattr(pd.DataFrame, "to_csv", _disk_full)   # fails after parquet and the report
    r = cli(["memorization", gen, "--train", ref, "--embed", "pixel", "--out", out, "--no-cache",
             "--bootstrap", "10"])
    assert r.exit_code == 2, r.output
    assert _visible(out) == []


def test_gate_history_failure_publishes_nothing(cli, tmp_path):
    Results(kind="fid", metrics={"fid": 20.0}, settings=SETTINGS, versions={}).save(tmp_path / "cur")
    cfg = tmp_path / "gate.toml"
    cfg.write_text("[[rule]]\nmetric = \"fid\"\nmax = 12\n")
    bad_db = tmp_path / "h.sqlite"
    bad_db.write_bytes(b"not a database" * 100)
    out = tmp_path / "g"
    r = cli(["gate", "-c", cfg, tmp_path / "cur", "--out", out, "--history", bad_db])
    assert r.exit_code == 2, r.output
    assert _visible(out) == []
    r = cli(["gate", "-c", cfg, tmp_path / "cur", "--out", out])    # a failing gate still writes
    assert r.exit_code == 1 and _visible(out) == ["gate.json", "gate.md", "junit.xml"], r.output
