"""Resume: an interrupted `ambient-eval sample` restarted gives the files of an uninterrupted run."""
from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest

from ambient_eval.sampling import writer as writer_mod

ARGS = ["--seeds", "0-9,1000-1004", "--steps", "3", "--batch", "4", "--device", "cpu"]


def _files(root: Path) -> dict[str, bytes]:
    return {str(p.relative_to(root)): p.read_bytes() for p in sorted(root.rglob("*")) if p.is_file()}


def _interrupt_after(monkeypatch, cls, n_calls):
    real = cls.write
    calls = {"n": 0}

    def flaky(self, seeds, images, labels):
        calls["n"] += 1
        if calls["n"] > n_calls:
            raise KeyboardInterrupt  # as if the user pressed Ctrl-C mid-run
        return real(self, seeds, images, labels)

    monkeypatch.setattr(cls, "write", flaky)


def test_png_resume_matches_uninterrupted(cli, tiny_ckpt, tmp_path, monkeypatch):
    full, resumed = tmp_path / "full", tmp_path / "resumed"
    assert cli(["sample", tiny_ckpt, "--out", full, *ARGS]).exit_code == 0
    with monkeypatch.context() as m:
        _interrupt_after(m, writer_mod.PngWriter, 2)
        r = cli(["sample", tiny_ckpt, "--out", resumed, *ARGS])
        assert r.exit_code == 130
    partial = _files(resumed)
    assert 0 < len([k for k in partial if k.endswith(".png")]) < 15
    (resumed / "000000" / ".000009.png.abc.tmp.png").write_bytes(b"half a png")  # a SIGKILLed write
    r = cli(["sample", tiny_ckpt, "--out", resumed, *ARGS])
    assert r.exit_code == 0 and "already there" in r.stdout
    assert _files(resumed) == _files(full)                   # same bytes, no temp files left
    assert sorted(k for k in _files(full) if k.endswith(".png"))[-1] == "001000/001004.png"


def test_npz_resume_matches_uninterrupted(cli, tiny_ckpt, tmp_path, monkeypatch):
    full, resumed = tmp_path / "full.npz", tmp_path / "resumed.npz"
    assert cli(["sample", tiny_ckpt, "--out", full, *ARGS]).exit_code == 0
    with monkeypatch.context() as m:
        _interrupt_after(m, writer_mod.NpzWriter, 2)
        assert cli(["sample", tiny_ckpt, "--out", resumed, *ARGS]).exit_code == 130
    assert not resumed.exists() and len(list(Path(f"{resumed}.partial").glob("shard-*.npz"))) == 2
    assert cli(["sample", tiny_ckpt, "--out", resumed, *ARGS]).exit_code == 0
    with np.load(full) as a, np.load(resumed) as b:
        assert a.files == b.files
        for k in a.files:
            assert np.array_equal(a[k], b[k]), k
        assert a["images"].shape == (15, 8, 8, 3) and a["seeds"][-1] == 1004
    assert not Path(f"{resumed}.partial").exists()


def test_resume_with_other_settings_is_refused(cli, tiny_ckpt, tmp_path):
    out = tmp_path / "s"
    assert cli(["sample", tiny_ckpt, "--out", out, *ARGS]).exit_code == 0
    r = cli(["sample", tiny_ckpt, "--out", out, *ARGS[:-4], "--batch", "4", "--device", "cpu",
             "--steps", "5"])
    assert r.exit_code == 2 and "different settings" in " ".join(r.stderr.split())


@pytest.mark.parametrize("args,message", [
    (["--seeds", "5-1"], "reversed"), (["--seeds", "1,1"], "duplicates"), (["--seeds", "x"], "Cannot parse"),
    (["--seeds", "0-3", "--class", "7"], "out of range"),
    (["--seeds", "0-3", "--autocast", "bf16"], "needs a CUDA device"),
    (["--seeds", "0-3", "--sampler", "ddim"], "discrete-time VP model"),
])
def test_bad_arguments_exit_2_without_output(cli, tiny_ckpt, tmp_path, args, message):
    out = tmp_path / "o.npz"
    r = cli(["sample", tiny_ckpt, "--out", out, "--steps", "2", "--device", "cpu", *args])
    assert r.exit_code == 2 and message in " ".join(r.stderr.split()), r.stderr
    assert not out.exists() and not Path(f"{out}.partial").exists()
