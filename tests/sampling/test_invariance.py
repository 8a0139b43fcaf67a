"""Shared noise: a seed's image does not depend on batch size, composition or process count."""
from __future__ import annotations

import os
import socket
import subprocess
import sys
from pathlib import Path

import numpy as np
import pytest
import torch

from ambient_eval.models import load_model
from ambient_eval.sampling.generate import generate
from ambient_eval.sampling.noise import SeedNoise, seed_labels

SEEDS = list(range(64))
STEPS = 4   # NFE 7: enough to exercise every sampler stage, cheap on CPU


def _images(model, seeds, batch):
    out = {}
    for s, x in generate(model, seeds, batch_size=batch, steps=STEPS, device="cpu"):
        out.update(zip(s, x))
    return out


def test_noise_and_labels_depend_only_on_seed():
    a = SeedNoise([3, 5, 7]).randn([2, 4])
    b = SeedNoise([7, 3]).randn([2, 4])
    assert torch.equal(a[0], b[1]) and torch.equal(a[2], b[0])
    assert torch.equal(a[0], torch.randn([2, 4], generator=torch.Generator().manual_seed(3)))
    assert np.array_equal(seed_labels([3, 5, 7], 10, [2, 4])[[0, 2]], seed_labels([7, 3], 10, [2, 4])[::-1])
    assert len(set(seed_labels(range(200), 10, [2, 4]).tolist())) == 10


def test_batch_sizes_give_identical_bits(tiny_ckpt):
    model = load_model(tiny_ckpt, device="cpu")
    ref = _images(model, SEEDS, 64)
    for batch in (1, 7):
        got = _images(model, SEEDS, batch)
        assert all(torch.equal(got[s], ref[s]) for s in SEEDS), f"batch {batch} differs"
    shuffled = _images(model, SEEDS[::-1][:20], 9)            # other order / companions
    assert all(torch.equal(shuffled[s], ref[s]) for s in shuffled)
    stack = torch.stack([ref[s] for s in SEEDS])
    assert stack.float().std() > 20                           # images are not trivial


def _free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


@pytest.mark.slow
def test_two_processes_gloo_match_single_process(tiny_ckpt, tmp_path):
    # Two ranks as torchrun would start them (env://, gloo); output = the single-process bits.
    out = tmp_path / "s.npz"
    port = str(_free_port())
    procs = []
    for rank in range(2):
        env = dict(os.environ, RANK=str(rank), WORLD_SIZE="2", LOCAL_RANK=str(rank),
                   MASTER_ADDR="127.0.0.1", MASTER_PORT=port, OMP_NUM_THREADS="1",
                   AMBIENT_EVAL_THREADS="1", AMBIENT_EVAL_PROGRESS="0")
        cmd = [sys.executable, "-m", "ambient_eval", "sample", str(tiny_ckpt), "--seeds", "0-63",
               "--out", str(out), "--steps", str(STEPS), "--batch", "7", "--device", "cpu"]
        procs.append(subprocess.Popen(cmd, env=env, stdout=subprocess.PIPE, stderr=subprocess.STDOUT))
    logs = [p.communicate(timeout=240)[0].decode() for p in procs]
    assert all(p.returncode == 0 for p in procs), logs
    with np.load(out) as z:
        images, seeds, labels = z["images"], z["seeds"], z["labels"]
    assert seeds.tolist() == SEEDS and not Path(str(out) + ".partial").exists()
    model = load_model(tiny_ckpt, device="cpu")
    threads = torch.get_num_threads()
    torch.set_num_threads(1)     # the promise: identical bits at the same CPU thread count (docs/sampling.md)
    try:
        ref = _images(model, SEEDS, 64)
    finally:
        torch.set_num_threads(threads)
    assert np.array_equal(images, torch.stack([ref[s] for s in SEEDS]).permute(0, 2, 3, 1).numpy())
    shape = [model.img_channels, model.img_resolution, model.img_resolution]
    assert np.array_equal(labels, seed_labels(SEEDS, 3, shape))
