"""Decode the next batches while the network runs: a background thread and a bounded queue.

    for idx, images in prefetch(source.iter_batches(64), pin=True): ...

The producer thread runs the source's iterator (file reads, PNG/JPEG decode, resize: numpy and PIL
release the GIL for most of it) up to `depth` batches ahead; with `pin` the uint8 batch is copied to
page-locked memory there, so the consumer's `.to(cuda, non_blocking=True)` is a real asynchronous
copy. Batches come out in the same order with the same bytes, so features do not change. Errors in
the producer are re-raised in the consumer with their own type; closing the consumer early stops
the producer. Feature extraction uses it by default when the network runs on a GPU; on CPU, where
decode and network compete for the same cores, only when `AMBIENT_EVAL_PREFETCH=N` asks for it
(0 = off everywhere).
"""
from __future__ import annotations

import os
import queue
import threading
from typing import Iterator, TypeVar

T = TypeVar("T")
PREFETCH_ENV = "AMBIENT_EVAL_PREFETCH"
DEFAULT_DEPTH = 2  # batches decoded ahead of the network (memory: depth + 2 decoded batches)
_DONE = object()


def prefetch_depth(default: int = DEFAULT_DEPTH) -> int:
    """$AMBIENT_EVAL_PREFETCH (batches ahead; 0 = off) when set to an integer, else `default`."""
    raw = os.environ.get(PREFETCH_ENV, "")
    return int(raw) if raw.isdigit() else default


def _pinned(item):
    idx, images = item
    return idx, images.pin_memory()


def prefetch(batches: Iterator[T], depth: int | None = None, pin: bool = False) -> Iterator[T]:
    """Yield the items of `batches`, produced by a background thread up to `depth` ahead."""
    depth = prefetch_depth() if depth is None else depth
    if depth < 1:
        yield from batches
        return
    q: queue.Queue = queue.Queue(maxsize=depth)
    stop = threading.Event()

    def produce() -> None:
        try:
            for item in batches:
                item = _pinned(item) if pin else item
                while not stop.is_set():
                    try:
                        q.put((item, None), timeout=0.1)
                        break
                    except queue.Full:
                        continue
                if stop.is_set():
                    return
            q.put((_DONE, None))
        except BaseException as e:  # noqa: BLE001 - handed to the consumer, which re-raises it
            q.put((_DONE, e))

    worker = threading.Thread(target=produce, name="ambient-eval-prefetch", daemon=True)
    worker.start()
    try:
        while True:
            item, error = q.get()
            if item is _DONE:
                if error is not None:
                    raise error
                return
            yield item
    finally:
        stop.set()
        while worker.is_alive():  # unblock a producer waiting on a full queue
            try:
                q.get_nowait()
            except queue.Empty:
                worker.join(timeout=0.05)
