"""Rank-to-GPU mapping under torchrun (pure function, fake device counts) and the group timeout."""
from __future__ import annotations

import datetime as dt

import pytest

from ambient_eval.errors import AmbientError
from ambient_eval.sampling.rank_layout import DEFAULT_TIMEOUT_S, TIMEOUT_ENV, group_timeout, rank_gpu


@pytest.mark.parametrize("requested,local_rank,local_world,n_visible,env,expected", [
    (None, 3, 8, 8, None, 3),          # plain torchrun on an 8-GPU node
    (None, 1, 2, 4, "0,1,2,3", 1),     # fewer processes than GPUs
    (None, 5, 8, 1, "5", 0),           # SLURM --gpus-per-task=1: each rank sees only its own GPU
    (0, 2, 4, 1, "2", 0),              # --device cuda:0 with per-rank visible devices: its own GPU
    (None, 0, 1, 2, None, 0),          # one process per node
    (1, 0, 1, 2, None, 1),             # cuda:1 with one process on the node
])
def test_possible_layouts(requested, local_rank, local_world, n_visible, env, expected):
    assert rank_gpu(requested, local_rank, local_world, n_visible, env) == expected


@pytest.mark.parametrize("requested,local_rank,local_world,n_visible,env,shown", [
    (None, 1, 2, 1, None, "share that one GPU"),       # 2 ranks on a 1-GPU box
    (None, 3, 4, 2, None, "no GPU 3"),                 # 4 ranks, 2 GPUs
    (0, 1, 2, 2, None, "every process on GPU 0"),      # --device cuda:0 under torchrun
    (2, 0, 1, 2, None, "cuda:2 does not exist"),
    (None, 0, 2, 0, "", "no GPU for it"),
])
def test_impossible_layouts_are_refused_in_one_paragraph(requested, local_rank, local_world, n_visible,
                                                         env, shown):
    with pytest.raises(AmbientError) as e:
        rank_gpu(requested, local_rank, local_world, n_visible, env)
    msg = str(e.value)
    assert shown in msg and "\n" not in msg and f"LOCAL_RANK {local_rank}" in msg


def test_group_timeout():
    assert group_timeout({}) == dt.timedelta(seconds=DEFAULT_TIMEOUT_S)
    assert group_timeout({TIMEOUT_ENV: "7200"}) == dt.timedelta(hours=2)
    for bad in ("0", "-5", "soon"):
        with pytest.raises(AmbientError, match=TIMEOUT_ENV):
            group_timeout({TIMEOUT_ENV: bad})
