"""Writer process for the concurrency test (kept tiny so spawn starts fast)."""
from __future__ import annotations


def write_many(db: str, run: str, n: int, start_event) -> None:
    """Record n evaluations of run `run` (steps 0..n-1) as fast as possible."""
    from ambient_eval.results.history import record
    from ambient_eval.results.envelope import Results

    start_event.wait()
    for step in range(n):
        res = Results(kind="fid", metrics={"fid": 10.0 + step, "recall": 0.5},
                      ci={"fid": [9.0 + step, 11.0 + step]}, settings={"extractor": "pixel"},
                      versions={})
        record(res, db=db, run=run, step=step, checkpoint=f"{run}/{step}", commit=f"{run}-{step}")
