"""Item 4: progress lines (stage, count, rate, ETA) when stderr is not a terminal."""
from __future__ import annotations

import re

import pytest

from ambient_eval.runtime import progress as P
@pytest.mark.parametrize("env,tty,mode", [("0", False, "off"), ("off", True, "off"), ("bar", False, "bar"),
                                          ("1", False, "bar"), ("lines", True, "lines"), (None, False, "lines")])
def test_mode(monkeypatch, env, tty, mode):
    if env is None:
        monkeypatch.delenv("AMBIENT_EVAL_PROGRESS", raising=False)
    else:
        monkeypatch.setenv("AMBIENT_EVAL_PROGRESS", env)
    monkeypatch.setattr(P.sys.stderr, "isatty", lambda: tty, raising=False)
    assert P.progress_mode() == mode


def test_lines_have_stage_count_rate_eta(monkeypatch, capsys):
    monkeypatch.setenv("AMBIENT_EVAL_PROGRESS", "lines")
    monkeypatch.setenv("AMBIENT_EVAL_PROGRESS_INTERVAL", "0")
    bar = P.progress(total=100, desc="inception features", unit="img")
    for _ in range(4):
        bar.update(25)
    bar.close()
    err = capsys.readouterr().err.splitlines()
    assert len(err) >= 4
    assert re.search(r"\[ambient-eval\] inception features: 50/100 img \(50%\), [\d.e+]+ img/s, elapsed \d+s, "
                     r"ETA \d+s", err[1]), err
    assert err[-1].endswith("done")


def test_iterable_and_interval(monkeypatch, capsys):
    monkeypatch.setenv("AMBIENT_EVAL_PROGRESS", "lines")
    monkeypatch.setenv("AMBIENT_EVAL_PROGRESS_INTERVAL", "3600")
    assert list(P.progress(range(5), desc="x", unit="step")) == list(range(5))
    assert capsys.readouterr().err == ""          # fast loop, long interval: silent


def test_off_is_silent(monkeypatch, capsys):
    monkeypatch.setenv("AMBIENT_EVAL_PROGRESS", "0")
    monkeypatch.setenv("AMBIENT_EVAL_PROGRESS_INTERVAL", "0")
    bar = P.progress(total=3, desc="x")
    bar.update(3), bar.close()
    with P.stage("y"):
        pass
    assert capsys.readouterr().err == ""


def test_fid_cli_logs_lines_without_tty(cli, img_dirs, tmp_path, monkeypatch):
    """Feature extraction and a large pixel-feature distance report progress in a log (CliRunner is no TTY)."""
    monkeypatch.setenv("AMBIENT_EVAL_PROGRESS", "lines")
    monkeypatch.setenv("AMBIENT_EVAL_PROGRESS_INTERVAL", "0")
    gen, ref = img_dirs
    r = cli(["fid", gen, ref, "--features", "pixel-16", "--device", "cpu", "--no-report", "--no-cache"])
    assert r.exit_code == 0, r.output
    assert "[ambient-eval] pixel-16 features:" in r.stderr
    assert "[ambient-eval] Frechet distance (768-d" in r.stderr


def test_long_loops_use_progress():
    """train, annotate, sampling, features and search all go through ambient_eval.runtime.progress."""
    from pathlib import Path

    root = Path(P.__file__).parents[1]  # the package folder
    for rel in ("training/loop.py", "training/annotate.py", "features/extract.py", "sampling/run.py",
                "audits/search.py", "audits/reproducibility_run.py", "training/corrupt.py"):
        assert "progress(" in (root / rel).read_text(), rel
    assert (root / "training/annotate.py").read_text().count("progress(") >= 3


@pytest.mark.slow
def test_train_logs_lines_without_tty(cli, tmp_path, monkeypatch):
    monkeypatch.setenv("AMBIENT_EVAL_PROGRESS", "lines")
    monkeypatch.setenv("AMBIENT_EVAL_PROGRESS_INTERVAL", "0")
    r = cli(["train", "builtin:digits-16", "-o", tmp_path / "run", "--arch", "tiny", "--steps", "3", "--batch", "8",
             "--device", "cpu"])
    assert r.exit_code == 0, r.output
    assert re.search(r"\[ambient-eval\] train baseline: 2/3 step \(67%\), [\d.]+ step/s", r.stderr), r.stderr
