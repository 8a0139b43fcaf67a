"""Smaller defects: option hints, empty folders after a failure, ivfpq on tiny sets, --carlini-delta,
and the memorization gallery reusing the scored images."""
from __future__ import annotations

import numpy as np
import pytest

from ambient_eval.audits.kept_images import KeptImages
from ambient_eval.data.base import ArraySource
from tests.conftest import random_images, write_images


def _msg(r) -> str:
    return " ".join(r.output.split())


@pytest.fixture
def small(tmp_path):
    write_images(tmp_path / "gen", random_images(3, size=8, seed=1))
    write_images(tmp_path / "train", random_images(1, size=8, seed=2))
    return tmp_path


def test_ivfpq_with_too_few_training_images_is_exit_2(cli, small):
    r = cli(["memorization", small / "gen", "--train", small / "train", "--embed", "pixel", "--k", "1",
             "--index", "ivfpq", "--out", small / "out"])
    assert r.exit_code == 2, r.output
    assert "--index flat" in _msg(r) and "Internal error" not in r.output
    assert not (small / "out").exists()


@pytest.mark.parametrize("delta", ["0", "-0.5", "nan"])
def test_carlini_delta_is_validated(cli, small, delta):
    r = cli(["memorization", small / "gen", "--train", small / "train", "--embed", "pixel", "--k", "1",
             "--carlini-delta", delta, "--out", small / "out"])
    assert r.exit_code == 2, r.output
    assert "--carlini-delta" in _msg(r)


def test_failed_run_leaves_no_empty_default_folders(cli, small, monkeypatch):
    monkeypatch.chdir(small)
    (small / "gen" / "000009.png").write_text("not an image")
    r = cli(["memorization", "gen", "--train", "train", "--embed", "pixel", "--k", "1"])
    assert r.exit_code == 2, r.output
    assert not (small / "results").exists() and not (small / "reports").exists()
    # The hint names no option memorization lacks (it has no --skip-bad).
    assert "--skip-bad" not in r.output and "Remove or replace the file" in _msg(r)


def test_fid_still_suggests_its_own_skip_bad(cli, small):
    (small / "gen" / "000009.png").write_text("not an image")
    r = cli(["fid", small / "gen", small / "gen", "--features", "pixel-8", "--no-report"])
    assert r.exit_code == 2 and "--skip-bad" in _msg(r)


class _Counting(ArraySource):
    reads = 0

    def read(self, indices):
        type(self).reads += len(list(indices))
        return super().read(indices)


def test_kept_images_are_read_from_the_base_once():
    base = _Counting(random_images(10, size=8))
    kept = KeptImages(base)
    first = [b for _, b in kept.iter_batches(4)]
    assert _Counting.reads == 10
    again = kept.read([9, 0, 3])
    assert _Counting.reads == 10
    assert np.array_equal(again.numpy(), base.read([9, 0, 3]).numpy())
    assert kept.fingerprint() == base.fingerprint() and kept.item_names() == base.item_names()
    assert len(first) == 3
