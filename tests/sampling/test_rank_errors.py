"""An error on any torchrun rank stops every rank with the same message (2 gloo ranks on CPU)."""
from __future__ import annotations

import os
import socket
import subprocess
import sys
import time
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[2]


def _free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


@pytest.mark.parametrize("fail_rank,kind,text", [
    (1, "value", "ValueError: boom in the network"),
    (0, "oom", "Ran out of GPU memory"),   # rank 0 hosts the store: the hardest case
])
def test_error_on_one_rank_stops_all_with_its_message(fail_rank, kind, text):
    port, procs, t0 = str(_free_port()), [], time.monotonic()
    for rank in range(2):
        env = dict(os.environ, RANK=str(rank), WORLD_SIZE="2", LOCAL_RANK=str(rank), LOCAL_WORLD_SIZE="2",
                   MASTER_ADDR="127.0.0.1", MASTER_PORT=port, PYTHONPATH=str(ROOT),
                   AMBIENT_EVAL_DIST_TIMEOUT="120", OMP_NUM_THREADS="1")
        procs.append(subprocess.Popen([sys.executable, "-m", "tests.sampling.rank_error_worker",
                                       str(fail_rank), kind], cwd=ROOT, env=env, text=True,
                                      stdout=subprocess.PIPE, stderr=subprocess.STDOUT))
    outs = [p.communicate(timeout=150)[0] for p in procs]
    assert time.monotonic() - t0 < 60, "a healthy rank waited for the group timeout"
    lines = [next((ln for ln in o.splitlines() if ln.startswith("ERROR ")), o) for o in outs]
    assert all(p.returncode != 0 for p in procs), outs
    assert text in lines[fail_rank]
    other = lines[1 - fail_rank]
    assert f"Stopped because rank {fail_rank}:" in other and text in other, outs
