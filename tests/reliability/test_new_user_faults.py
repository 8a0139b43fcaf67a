"""Issue 24, defects 4-7 and 11: faults a new user still found (stale hashes, foreign databases,
internal errors on bad input, silent wrong choices, misleading messages)."""
from __future__ import annotations

import os
import time
from pathlib import Path

import pytest


def test_weights_hash_sees_a_file_rewritten_with_same_size_and_mtime(tmp_path):
    """Defect 4: `cat w2 > s; touch -r w1 s` must not return w1's hash."""
    from ambient_eval.files.hashing import cached_sha256
    from ambient_eval.files.hashing import sha256_file

    w, cache = tmp_path / "s.pt", tmp_path / "cache"
    w.write_bytes(b"a" * 4096)
    st = w.stat()
    first = cached_sha256(w, cache)
    time.sleep(0.01)
    with open(w, "r+b") as f:          # in place: same inode, same size
        f.write(b"b" * 4096)
    os.utime(w, ns=(st.st_atime_ns, st.st_mtime_ns))   # touch -r
    assert w.stat().st_mtime_ns == st.st_mtime_ns and w.stat().st_size == st.st_size
    assert cached_sha256(w, cache) == sha256_file(w) != first


def _foreign_db(path: Path) -> Path:
    import sqlite3

    con = sqlite3.connect(path)
    con.execute("CREATE TABLE users (name TEXT)")
    con.execute("INSERT INTO users VALUES ('ada')")
    con.commit()
    con.close()
    return path


def _ours(tmp_path: Path) -> tuple[Path, Path]:
    from ambient_eval.results.envelope import Results

    res = Results(kind="fid", metrics={"fid": 2.0}, settings={"extractor": "inception"}, versions={})
    return res.save(tmp_path / "r"), tmp_path / "h.sqlite"


@pytest.mark.parametrize("args", [["history", "record", "{res}", "--db", "{db}"],
                                  ["history", "--db", "{db}", "--no-report"]])
def test_history_refuses_a_foreign_database_and_leaves_it_alone(cli, tmp_path, args):
    """Defect 5: never create our tables in another program's SQLite file (also when only reading)."""
    res, _ = _ours(tmp_path)
    db = _foreign_db(tmp_path / "app.sqlite")
    before = db.read_bytes()
    r = cli([a.format(res=res, db=db) for a in args])
    assert r.exit_code == 2 and "not an ambient-eval history database" in r.output, r.output
    assert db.read_bytes() == before


def test_history_queries_open_the_database_read_only(cli, tmp_path, monkeypatch):
    import sqlite3

    res, db = _ours(tmp_path)
    assert cli(["history", "record", res, "--db", db]).exit_code == 0
    seen = []
    real = sqlite3.connect
    monkeypatch.setattr(sqlite3, "connect", lambda target, *a, **k: seen.append(str(target)) or real(target, *a, **k))
    r = cli(["history", "--db", db, "--no-report"])
    assert r.exit_code == 0 and "2" in r.output, r.output
    assert seen and all(t.startswith("file:") and "mode=ro" in t for t in seen)


def test_history_damaged_database_is_exit_2(cli, tmp_path):
    """Defect 6: a damaged file is bad input (exit 2), not an internal error (exit 1)."""
    res, db = _ours(tmp_path)
    assert cli(["history", "record", res, "--db", db]).exit_code == 0
    raw = bytearray(db.read_bytes())
    raw[3 * 4096:4 * 4096] = b"\xff" * 4096   # the 4th page (a table's data): the schema still opens
    db.write_bytes(bytes(raw))
    for args in (["history", "--db", db, "--no-report"], ["history", "record", res, "--db", db]):
        r = cli(args)
        assert r.exit_code == 2 and "Internal error" not in r.output, r.output


def test_history_record_refuses_a_string_metric(cli, tmp_path):
    """Defect 7: "9.5" was silently dropped while `gate` refuses the same file."""
    import json

    res, db = _ours(tmp_path)
    obj = json.loads(res.read_text())
    obj["metrics"]["kid"] = "9.5"
    res.write_text(json.dumps(obj))
    r = cli(["history", "record", res, "--db", db])
    assert r.exit_code == 2 and "'kid' is '9.5', not a number" in r.output, r.output
    assert not db.exists()


@pytest.mark.parametrize("env,omp,expected", [("1", "3", 1), (None, "1", 1), (None, None, "default")])
def test_cli_cpu_thread_policy_is_applied_and_recorded(cli, tmp_path, monkeypatch, env, omp, expected):
    """Defect 9: threads are chosen (AMBIENT_EVAL_THREADS, else OMP_NUM_THREADS as torchrun sets it, else
    min(4, cores)) and recorded."""
    import json

    import torch

    from ambient_eval.models import UNetConfig, build_native_model, native_config, save_native
    from ambient_eval.runtime import threads
    from ambient_eval.runtime.threads import DEFAULTS, available_cores

    monkeypatch.setattr(threads, "_APPLIED", [None])   # a fresh process: the policy not yet applied

    torch.manual_seed(0)
    cfg = native_config(UNetConfig.tiny(8))
    save_native(build_native_model(cfg), tmp_path / "ckpt", cfg, {})
    if omp is None:
        monkeypatch.delenv("OMP_NUM_THREADS", raising=False)
    else:
        monkeypatch.setenv("OMP_NUM_THREADS", omp)
    if env is None:
        monkeypatch.delenv("AMBIENT_EVAL_THREADS", raising=False)
        if expected == "default":
            expected = min(DEFAULTS.cli_max, available_cores())
    else:
        monkeypatch.setenv("AMBIENT_EVAL_THREADS", env)
    before = torch.get_num_threads()
    try:
        r = cli(["sample", tmp_path / "ckpt", "--seeds", "0-1", "--steps", "2", "--out", tmp_path / "s",
                 "--device", "cpu"])
        assert r.exit_code == 0, r.output
        assert torch.get_num_threads() == expected
        assert json.loads((tmp_path / "s" / ".ambient-sample.json").read_text())["cpu_threads"] == expected
    finally:
        torch.set_num_threads(before)


def test_sample_resume_message_counts_what_it_wrote(cli, tmp_path):
    """Defect 11: resuming a finished run said 'Wrote 2 samples' having written none."""
    import torch

    from ambient_eval.models import UNetConfig, build_native_model, native_config, save_native

    torch.manual_seed(0)
    cfg = native_config(UNetConfig.tiny(8))
    save_native(build_native_model(cfg), tmp_path / "ckpt", cfg, {})
    args = ["sample", tmp_path / "ckpt", "--seeds", "0-1", "--steps", "2", "--out", tmp_path / "s", "--device", "cpu"]
    assert "Wrote 2 samples" in cli(args).output
    r = cli(args)
    assert r.exit_code == 0 and "Wrote 0 samples" in r.output and "(2 already there)" in r.output, r.output


def test_model_source_reports_progress_within_a_batch(tmp_path, monkeypatch, capsys):
    """Defect 11: `fid --model` printed nothing until a whole 64-image batch was sampled."""
    import torch

    from ambient_eval.models import UNetConfig, build_native_model, native_config, save_native
    from ambient_eval.sampling import model_source

    torch.manual_seed(0)
    cfg = native_config(UNetConfig.tiny(8))
    save_native(build_native_model(cfg), tmp_path / "ckpt", cfg, {})
    monkeypatch.setenv("AMBIENT_EVAL_PROGRESS", "lines")
    monkeypatch.setenv("AMBIENT_EVAL_PROGRESS_INTERVAL", "0")
    src = model_source(str(tmp_path / "ckpt"), [0, 1, 2, 3], batch_size=4, steps=2, device="cpu", net_batch=2)
    first = next(iter(src.iter_batches(4)))          # one batch: 3 network evaluations x 2 chunks
    assert len(first[0]) == 4
    err = capsys.readouterr().err
    assert "sampling" in err and "2/12" in err, err
