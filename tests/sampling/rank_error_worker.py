"""Run by tests/sampling/test_rank_errors.py as 2 gloo ranks: rank FAIL raises, the other waits."""
from __future__ import annotations

import sys


def main(fail_rank: int, kind: str) -> None:
    import torch

    from ambient_eval.cli.app import app  # noqa: F401 - the CLI's error mapping is what users see
    from ambient_eval.sampling import distributed as D

    dev = D.device_for_rank("cpu")
    with D.process_group(dev) as (rank, _):
        if rank == fail_rank:
            if kind == "oom":
                raise torch.OutOfMemoryError("CUDA out of memory. Tried to allocate 2.00 GiB")
            raise ValueError("boom in the network")
        D.barrier()  # the healthy rank waits for a collective its peer never joins


if __name__ == "__main__":
    from ambient_eval.cli.app import _as_user_error

    try:
        main(int(sys.argv[1]), sys.argv[2])
    except Exception as e:  # print as the CLI would: one line
        user = _as_user_error(e)
        print("ERROR " + " ".join(str(user if user is not None else f"{type(e).__name__}: {e}").split()))
        sys.exit(2 if user is not None else 1)
