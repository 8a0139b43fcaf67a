"""Item 5: bounded memory. Bombs are refused from their headers (exit 2) before anything is decoded."""
from __future__ import annotations

import numpy as np
import pytest

from ambient_eval.data import open_source
from ambient_eval.data.limits import batch_rows
from ambient_eval.errors import AmbientError
from tests.conftest import random_images, write_images
from tests.reliability.bombs import png_bomb, zip_bomb

PIX = ["--features", "pixel-8", "--device", "cpu", "--no-report", "--no-cache"]


def test_png_bomb_refused_before_decode(tmp_path):
    d = tmp_path / "imgs"
    write_images(d, random_images(3))
    png_bomb(d / "bomb.png")
    with pytest.raises(AmbientError) as e:
        open_source(d)
    assert "8000x8000" in str(e.value) and "AMBIENT_EVAL_MAX_PIXELS" in str(e.value)


def test_png_bomb_skipped_with_skip_bad(tmp_path):
    d = tmp_path / "imgs"
    write_images(d, random_images(3))
    png_bomb(d / "bomb.png")
    src = open_source(d, skip_bad=True)
    assert len(src) == 3 and "pixels" in src.skipped[0][1]


def test_max_pixels_env(tmp_path, monkeypatch):
    d = tmp_path / "imgs"
    write_images(d, random_images(2, size=32))
    monkeypatch.setenv("AMBIENT_EVAL_MAX_PIXELS", "1000")
    with pytest.raises(AmbientError, match="32x32 = 1,024 pixels"):
        open_source(d)
    monkeypatch.setenv("AMBIENT_EVAL_MAX_PIXELS", "lots")
    with pytest.raises(AmbientError, match="not a number"):
        open_source(d)


def test_zip_bomb_refused_by_ratio(cli, tmp_path):
    z = zip_bomb(tmp_path / "bomb.zip")
    r = cli(["fid", z, z, *PIX])
    assert r.exit_code == 2 and "zip bomb" in r.output, r.output


def test_zip_member_size_cap(tmp_path, monkeypatch):
    z = zip_bomb(tmp_path / "big.zip", member_mb=2)
    monkeypatch.setenv("AMBIENT_EVAL_MAX_FILE_BYTES", str(2 ** 20))
    with pytest.raises(AmbientError, match="AMBIENT_EVAL_MAX_FILE_BYTES"):
        open_source(z)


def test_batch_bytes_cap(monkeypatch):
    monkeypatch.setenv("AMBIENT_EVAL_MAX_BATCH_BYTES", str(10 * 32 * 32 * 3))
    assert batch_rows(64, 32, 32) == 10 and batch_rows(4, 32, 32) == 4 and batch_rows(64, 4096, 4096) == 1
    from ambient_eval.data.base import ArraySource

    src = ArraySource(random_images(25))
    sizes = [len(i) for i, _ in src.iter_batches(64)]
    assert sizes == [10, 10, 5]


def test_absurd_seed_range():
    from ambient_eval.sampling.seeds import parse_seeds

    with pytest.raises(AmbientError, match="100,000,000,000 seeds"):
        parse_seeds("0-99999999999")


def test_huge_feature_dimension_explained(cli, tmp_path, monkeypatch):
    gen = tmp_path / "g"
    write_images(gen, random_images(6))
    monkeypatch.setenv("AMBIENT_EVAL_MAX_COV_BYTES", str(8 * 3072 ** 2 - 1))  # pixel-32 just too big
    r = cli(["fid", gen, gen, "--features", "pixel-32", "--device", "cpu", "--no-report", "--no-cache"])
    assert r.exit_code == 2 and "3,072 dimensions" in r.output and "batch" in r.output, r.output
    assert "Lower --batch" not in r.output
