"""Benchmark: feature extraction with the prefetching loader (decode overlapped with the network)
vs decoding on the calling thread, on CPU.

Writes N random PNGs, then times `extract_features` over the folder with a random-weight Inception
(torch-fidelity tf-compat path, the `fid` default) with AMBIENT_EVAL_PREFETCH=0 and =2, alternating
(median of --repeats runs each), and checks the features are identical.

    .venv/bin/python benchmarks/bench_prefetch.py                 # 512 PNGs of 64x64
    .venv/bin/python benchmarks/bench_prefetch.py --n 24 --size 32 --repeats 1 --extractor pixel-16  # smoke

On a 2-core CPU decode and network compete for the same cores (measured 0.82x under load), which
is why extraction on CPU does not prefetch unless AMBIENT_EVAL_PREFETCH asks for it. On a GPU the
network runs on the device while the thread decodes the next batches into pinned memory (the
design: ambient_eval/data/prefetch.py); that gain has not been measured here (no GPU).
"""
from __future__ import annotations

import argparse
import os
import statistics
import sys
import tempfile
import time
from pathlib import Path

import numpy as np

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))


def main(argv=None) -> int:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--n", type=int, default=512)
    ap.add_argument("--size", type=int, default=64)
    ap.add_argument("--batch", type=int, default=32)
    ap.add_argument("--repeats", type=int, default=3)
    ap.add_argument("--extractor", default="inception", help="inception (random weights) or pixel-N")
    ap.add_argument("--dir", default=None, help="scratch folder (default: a temporary one)")
    a = ap.parse_args(argv)

    from ambient_eval.data import open_source
    from ambient_eval.features import extract_features, get_extractor
    from ambient_eval.features.random_weights import random_inception_state_dict, save_state_dict
    from tests.conftest import random_images, write_images

    with tempfile.TemporaryDirectory(dir=a.dir) as tmp:
        tmp = Path(tmp)
        write_images(tmp / "imgs", random_images(a.n, size=a.size, seed=0))
        save_state_dict(random_inception_state_dict(seed=0), tmp / "inception.pth")
        import warnings

        with warnings.catch_warnings():
            warnings.simplefilter("ignore")
            ex = get_extractor(a.extractor, device="cpu",
                               weights=str(tmp / "inception.pth") if a.extractor == "inception" else None)
        times: dict[str, list[float]] = {"0": [], "2": []}
        feats = {}
        for _ in range(a.repeats):
            for depth in ("0", "2"):
                os.environ["AMBIENT_EVAL_PREFETCH"] = depth
                t0 = time.perf_counter()
                feats[depth] = extract_features(open_source(str(tmp / "imgs")), ex, batch_size=a.batch)
                times[depth].append(time.perf_counter() - t0)
    off, on = statistics.median(times["0"]), statistics.median(times["2"])
    same = all(np.array_equal(feats["0"][k], feats["2"][k]) for k in feats["0"])
    print(f"{a.n} PNGs {a.size}x{a.size}, batch {a.batch}, {a.extractor} (random weights), CPU, "
          f"median of {a.repeats}")
    print(f"decode on the calling thread: {off:.2f} s; prefetch (2 batches ahead): {on:.2f} s; "
          f"ratio (off / on) {off / on:.2f}x; features identical: {same}")
    return 0 if same else 1


if __name__ == "__main__":
    sys.exit(main())
