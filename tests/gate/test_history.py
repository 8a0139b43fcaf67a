"""Results history: round trip, concurrent writers lose no rows, CLI table + HTML trend report."""
from __future__ import annotations

import multiprocessing as mp
import sqlite3

import pytest

from ambient_eval.errors import AmbientError
from ambient_eval.results.history import count_evaluations, git_commit, query, record
from ambient_eval.results.envelope import Results
from tests.gate.conftest import make_results
from tests.gate.history_worker import write_many


def test_round_trip(tmp_path):
    db = tmp_path / "h.sqlite"
    res = Results(kind="memorization", metrics={"frac_above_0.95": 0.01, "top1_mean": 0.5},
                  ci={"frac_above_0.95": [0.0, 0.02]}, repeats={"top1_mean": [0.4, 0.6]},
                  settings={"extractor": "dinov2", "n_generated": 100}, versions={})
    eid = record(res, db=db, run="amb", step=100, checkpoint="c.safetensors", commit=None)
    rows = query(db, metric="memorization.frac_above_0.95")
    assert len(rows) == 1
    r = rows[0]
    assert (r.evaluation_id, r.run, r.step, r.checkpoint, r.kind, r.value, r.ci_lo, r.ci_hi) == \
        (eid, "amb", 100, "c.safetensors", "memorization", 0.01, 0.0, 0.02)
    assert r.settings == {"extractor": "dinov2", "n_generated": 100} and r.git_commit is None
    assert query(db, metric="memorization.top1_mean")[0].repeats == [0.4, 0.6]
    assert query(db, metric="fid") == [] and len(query(db)) == 2
    assert query(db, run="other") == []


def test_record_from_path_and_git_commit(tmp_path, monkeypatch):
    path = make_results(tmp_path / "r", {"fid": 3.0})
    db = tmp_path / "h.sqlite"
    monkeypatch.chdir(tmp_path)  # not a git repository
    assert git_commit() is None
    record(path, db=db, run="x", step=1)
    row = query(db, metric="fid")[0]
    assert row.git_commit is None and row.value == 3.0


def test_env_default_path_and_missing_db(tmp_path, monkeypatch):
    monkeypatch.setenv("AMBIENT_EVAL_HISTORY", str(tmp_path / "env.sqlite"))
    with pytest.raises(AmbientError, match="No history database"):
        query()
    assert not (tmp_path / "env.sqlite").exists()  # reading never creates a database
    record(Results(kind="fid", metrics={"fid": 1.0}, versions={}), commit=None)
    assert (tmp_path / "env.sqlite").is_file() and len(query(metric="fid")) == 1


def test_bad_step_and_bad_file(tmp_path):
    with pytest.raises(AmbientError, match="non-negative integer"):
        record(Results(kind="fid", metrics={"fid": 1.0}, versions={}), db=tmp_path / "h.sqlite", step=-1)
    junk = tmp_path / "junk.sqlite"
    junk.write_bytes(b"this is not sqlite" * 100)
    with pytest.raises(AmbientError, match="not a usable ambient-eval history database"):
        record(Results(kind="fid", metrics={"fid": 1.0}, versions={}), db=junk, commit=None)


def test_two_concurrent_writers_lose_no_rows(tmp_path):
    n = 200
    db = str(tmp_path / "shared.sqlite")
    ctx = mp.get_context("spawn")
    start = ctx.Event()
    procs = [ctx.Process(target=write_many, args=(db, run, n, start)) for run in ("job-a", "job-b")]
    for p in procs:
        p.start()
    start.set()  # both begin writing at the same moment
    for p in procs:
        p.join(timeout=120)
    assert [p.exitcode for p in procs] == [0, 0]
    assert count_evaluations(db) == 2 * n
    rows = query(db)
    assert len(rows) == 2 * n * 2  # two metrics per evaluation, none half-written
    for run in ("job-a", "job-b"):
        steps = sorted(r.step for r in rows if r.run == run and r.metric == "fid")
        assert steps == list(range(n))
    con = sqlite3.connect(db)
    assert con.execute("PRAGMA integrity_check").fetchone()[0] == "ok"
    assert con.execute("PRAGMA journal_mode").fetchone()[0] == "wal"
    con.close()


def _fill(db, tmp_path):
    for run, offset in (("baseline", 0.0), ("ambient", -1.0)):
        for step in (1000, 2000, 3000):
            p = make_results(tmp_path / f"{run}{step}", {"fid": 20.0 - step / 1000 + offset, "recall": 0.5},
                             ci={"fid": [19.0 - step / 1000 + offset, 21.0 - step / 1000 + offset]})
            record(p, db=db, run=run, step=step, checkpoint=f"{run}-{step}", commit="abc123")


def test_history_cli_table_and_report(cli, tmp_path):
    db, html = tmp_path / "h.sqlite", tmp_path / "rep" / "history.html"
    path = make_results(tmp_path / "r0", {"fid": 21.0, "recall": 0.4})
    r = cli(["history", "record", path, "--run", "ambient", "--step", 0, "--db", db])
    assert r.exit_code == 0, r.output
    _fill(db, tmp_path)
    r = cli(["history", "--metric", "fid", "--db", db, "--report", html])
    assert r.exit_code == 0, r.output
    lines = r.stdout.splitlines()
    assert lines[0].split() == ["id", "recorded", "run", "step", "checkpoint", "metric", "value", "ci", "commit"]
    assert len(lines) == 1 + 7 and all(" fid " in ln for ln in lines[1:])
    text = html.read_text()
    assert text.count('class="plotly-graph-div ae-figure"') == 1
    assert "ambient-3000" in text and '"fill":"toself"' in text.replace(" ", "")  # CI band
    r = cli(["history", "--db", db, "--run", "baseline", "--no-report"])
    assert r.exit_code == 0 and len(r.stdout.splitlines()) == 1 + 6  # fid + recall x 3 steps


def test_history_cli_errors(cli, tmp_path):
    db = tmp_path / "none.sqlite"
    r = cli(["history", "--db", db])
    assert r.exit_code == 2 and "No history database" in r.stderr and not db.exists()
    _fill(db, tmp_path)
    r = cli(["history", "--db", db, "--metric", "kid", "--no-report"])
    assert r.exit_code == 2 and "No recorded values of 'kid'" in r.stderr
    r = cli(["history", "record", tmp_path / "missing.json", "--db", db])
    assert r.exit_code == 2 and "does not exist" in " ".join(r.stderr.split())
