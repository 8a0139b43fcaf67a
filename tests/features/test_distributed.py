"""torchrun feature extraction: 2 gloo ranks on CPU give exactly the one-process features and files."""
from __future__ import annotations

import os
import signal
import subprocess
import sys
from pathlib import Path

import numpy as np

from ambient_eval.features.distributed import batch_range
from tests.conftest import random_images

ROOT = Path(__file__).resolve().parents[2]
WORKER = Path(__file__).with_name("distributed_worker.py")


def _run(args: list[str], cwd: Path) -> None:
    env = {**os.environ, "PYTHONPATH": str(ROOT), "OMP_NUM_THREADS": "1", "AMBIENT_EVAL_PROGRESS": "0"}
    # own process group: on a timeout the launcher AND its worker ranks are killed (no orphans)
    proc = subprocess.Popen([sys.executable, *args], cwd=cwd, env=env, stdout=subprocess.PIPE,
                            stderr=subprocess.PIPE, text=True, start_new_session=True)
    try:
        out, err = proc.communicate(timeout=240)
    except subprocess.TimeoutExpired:
        os.killpg(proc.pid, signal.SIGKILL)
        out, err = proc.communicate()
    assert proc.returncode == 0, out[-3000:] + err[-3000:]


def test_batch_range_covers_rows_in_whole_batches():
    for n, bs, world in [(10, 3, 2), (1, 4, 3), (64, 64, 2), (100, 7, 4)]:
        ranges = [batch_range(n, bs, r, world) for r in range(world)]
        assert ranges[0][0] == 0 and ranges[-1][1] == n
        assert all(a[1] == b[0] for a, b in zip(ranges, ranges[1:]))
        assert all(start % bs == 0 for start, _ in ranges)


def test_two_gloo_ranks_equal_one_process(tmp_path):
    images = random_images(10, size=16, seed=7)          # 10 images in batches of 3: uneven shards
    np.save(tmp_path / "images.npy", images)
    one, two = tmp_path / "one", tmp_path / "two"
    one.mkdir()
    two.mkdir()
    _run([str(WORKER), str(tmp_path / "images.npy"), str(one)], ROOT)
    _run(["-m", "torch.distributed.run", "--standalone", "--nproc_per_node", "2", str(WORKER),
          str(tmp_path / "images.npy"), str(two)], ROOT)
    ref = np.load(one / "features_rank0.npy")
    assert ref.shape == (10, 3 * 8 * 8)
    for rank in (0, 1):   # every rank received all rows, in the original order, bit-identical
        np.testing.assert_array_equal(np.load(two / f"features_rank{rank}.npy"), ref)
    # the work was split by whole batches (4 batches of 3: ranks take 2 batches each = 6 + 4 images)
    assert [int((two / f"images_rank{r}.txt").read_text()) for r in (0, 1)] == [6, 4]
    assert int((one / "images_rank0.txt").read_text()) == 10
    # only rank 0 wrote the feature cache and the stats file; the stats equal the one-process ones
    assert len(list((two / "cache").rglob("*.npz"))) == 1
    assert (two / "stats_rank0.npz").is_file() and not (two / "stats_rank1.npz").exists()
    assert [(two / f"main_rank{r}.txt").read_text() for r in (0, 1)] == ["True", "False"]
    with np.load(one / "stats_rank0.npz") as a, np.load(two / "stats_rank0.npz") as b:
        for k in ("mu", "sigma"):
            np.testing.assert_array_equal(a[k], b[k])
