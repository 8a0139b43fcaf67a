"""Items 2 and 3: files are written before anything is printed (a closed stdout loses nothing and
keeps a failing gate failing), and written files get the mode a plain open() would give."""
from __future__ import annotations

import json
import os
import stat
import subprocess
import sys
from pathlib import Path

import numpy as np
import pytest

from ambient_eval.files.atomic import write_json, write_text
from ambient_eval.results.envelope import Results

ROOT = Path(__file__).resolve().parents[2]
SETTINGS = {"extractor": "inception", "mode": "tf-compat", "weights_sha256": "ab" * 32,
            "n_generated": 10000, "reference_fingerprint": "cd" * 32}


def _run_closed_stdout(args, cwd):
    """Run the CLI with stdout a pipe that is closed before anything is printed (like `| true`)."""
    env = dict(os.environ, PYTHONPATH=str(ROOT), AMBIENT_EVAL_PROGRESS="0")
    r, w = os.pipe()
    os.close(r)                                   # reader gone: any write to stdout raises EPIPE
    try:
        p = subprocess.run([sys.executable, "-m", "ambient_eval", *map(str, args)], stdout=w,
                           stderr=subprocess.PIPE, cwd=cwd, env=env, timeout=120)
    finally:
        os.close(w)
    return p


def _gate_inputs(tmp_path):
    Results(kind="fid", metrics={"fid": 20.0}, settings=SETTINGS, versions={}).save(tmp_path / "cur")
    cfg = tmp_path / "gate.toml"
    cfg.write_text("[[rule]]\nmetric = \"fid\"\nmax = 12\n")
    return cfg


def test_failing_gate_with_closed_stdout_exits_1_and_writes_files(tmp_path):
    cfg = _gate_inputs(tmp_path)
    out = tmp_path / "gate_out"
    p = _run_closed_stdout(["gate", "-c", cfg, tmp_path / "cur", "--out", out], tmp_path)
    assert p.returncode == 1, p.stderr.decode()
    assert json.loads((out / "gate.json").read_text())["passed"] is False
    assert (out / "junit.xml").exists() and (out / "gate.md").exists()


def test_gate_under_pipefail_true(tmp_path):
    cfg = _gate_inputs(tmp_path)
    env = dict(os.environ, PYTHONPATH=str(ROOT), AMBIENT_EVAL_PROGRESS="0")
    cmd = (f"set -o pipefail; {sys.executable} -m ambient_eval gate -c {cfg} {tmp_path / 'cur'} "
           f"--json {tmp_path / 'g.json'} | true")
    p = subprocess.run(["bash", "-c", cmd], env=env, capture_output=True, timeout=120)
    assert p.returncode == 1 and (tmp_path / "g.json").exists(), p.stderr.decode()


def test_fid_with_closed_stdout_keeps_results(tmp_path, img_dirs):
    gen, ref = img_dirs
    out = tmp_path / "out"
    p = _run_closed_stdout(["fid", gen, ref, "--features", "pixel-8", "--device", "cpu", "--out", out,
                            "--no-cache"], tmp_path)
    assert p.returncode == 0, p.stderr.decode()
    assert json.loads((out / "results.json").read_text())["metrics"]["fd_pixel_8"] >= 0
    assert (out / "results.csv").exists() and (out / "report.html").exists()


@pytest.fixture
def umask022():
    old = os.umask(0o022)
    yield
    os.umask(old)


def test_atomic_files_respect_umask(tmp_path, umask022):
    write_text(tmp_path / "a.txt", "x")
    write_json(tmp_path / "b.json", {"a": 1})
    Results(kind="fid", metrics={"fid": 1.0}).save(tmp_path / "r")
    for p in (tmp_path / "a.txt", tmp_path / "b.json", tmp_path / "r" / "results.json"):
        assert stat.S_IMODE(p.stat().st_mode) == 0o644, p
    os.umask(0o077)
    write_text(tmp_path / "c.txt", "x")
    assert stat.S_IMODE((tmp_path / "c.txt").stat().st_mode) == 0o600


def test_cli_outputs_respect_umask(cli, img_dirs, tmp_path, umask022):
    gen, ref = img_dirs
    out = tmp_path / "out"
    rep = out / "report.html"
    r = cli(["fid", gen, ref, "--features", "pixel-8", "--device", "cpu", "--out", out,
             "--cache-dir", tmp_path / "cache"])
    assert r.exit_code == 0, r.output
    files = [out / "results.json", out / "results.csv", rep] + [p for p in (tmp_path / "cache").rglob("*")
                                                                 if p.is_file()]
    assert len(files) > 3
    for p in files:
        assert stat.S_IMODE(p.stat().st_mode) == 0o644, p


def test_disk_full_names_the_real_path(cli, tmp_path, monkeypatch):
    import errno

    import ambient_eval.files.atomic as atomic

    def full(self, data):
        raise OSError(errno.ENOSPC, "No space left on device")
    monkeypatch.setattr(Path, "write_bytes", full)
    with pytest.raises(OSError) as e:
        atomic.write_text(tmp_path / "x.json", "{}")
    assert e.value.filename == str(tmp_path / "x.json") and e.value.errno == errno.ENOSPC
    assert list(tmp_path.iterdir()) == []
    from ambient_eval.cli.app import _as_user_error
    assert "x.json" in str(_as_user_error(e.value)) and "None" not in str(_as_user_error(e.value))


def test_checkpoint_files_respect_umask(tmp_path, umask022):
    """safetensors replaces the temporary file it is given; the final file still gets 0644."""
    import torch
    from safetensors.torch import save_file

    from ambient_eval.files.atomic import atomic_path

    with atomic_path(tmp_path / "m.safetensors") as tmp:
        save_file({"w": torch.zeros(2)}, str(tmp))
    assert stat.S_IMODE((tmp_path / "m.safetensors").stat().st_mode) == 0o644


def test_history_record_validates_all_before_writing(cli, tmp_path):
    ok = Results(kind="fid", metrics={"fid": 2.0}, settings=SETTINGS, versions={}).save(tmp_path / "a")
    bad = tmp_path / "b" / "results.json"
    bad.parent.mkdir()
    bad.write_text(ok.read_text().replace('"fid": 2.0', '"fid": NaN'))
    db = tmp_path / "h.sqlite"
    r = cli(["history", "record", ok, bad, "--db", db])
    assert r.exit_code == 2 and "nan" in r.output.lower()
    assert not db.exists()
