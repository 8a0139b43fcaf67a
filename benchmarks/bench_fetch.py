"""Benchmark: fetch on first use, against a loopback HTTP server (tests/fetch/loopback.py, 127.0.0.1).

1. Resume: a download of --mb MB is cut at 50%; the next run resumes with HTTP Range. Reported: bytes the
   server sent the second time, as a fraction of the file (target: the remaining half only, 0.50).
2. Cached-run overhead: resolving a weights file that sits in the download cache (lookups of today's
   places, then the download cache, hash check against the memo) vs today's path (the same file in
   $AMBIENT_EVAL_WEIGHTS), and what `ref:NAME` adds to loading the same statistics file given as a path
   (catalog lookup, cache lookup, hash check). Median of --repeats calls each, in microseconds
   (target: no measurable difference next to a warm run's ~0.6 s).

    .venv/bin/python benchmarks/bench_fetch.py               # 64 MB, 200 repeats
    .venv/bin/python benchmarks/bench_fetch.py --mb 1 --repeats 5 --out /tmp/b.json   # smoke

Writes bench_out/bench_fetch.json (or --out) and prints the numbers.
"""
from __future__ import annotations

import argparse
import hashlib
import json
import os
import statistics
import sys
import tempfile
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))


def _median_us(fn, repeats: int) -> float:
    times = []
    for _ in range(repeats):
        t = time.perf_counter()
        fn()
        times.append(time.perf_counter() - t)
    return statistics.median(times) * 1e6


def main(argv: list[str] | None = None) -> dict:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--mb", type=float, default=64, help="file size, MB")
    ap.add_argument("--repeats", type=int, default=200, help="calls per timing (median)")
    ap.add_argument("--dim", type=int, default=2048, help="feature dimension of the statistics file")
    ap.add_argument("--out", type=Path, default=ROOT / "bench_out" / "bench_fetch.json")
    args = ap.parse_args(argv)

    import numpy as np

    from tests.fetch.loopback import LoopbackServer

    tmp = Path(tempfile.mkdtemp(prefix="bench-fetch-"))
    env = {"AMBIENT_EVAL_DOWNLOADS": str(tmp / "dl"), "AMBIENT_EVAL_OFFLINE": "0", "NO_PROXY": "127.0.0.1",
           "AMBIENT_EVAL_PROGRESS": "0"}
    saved = {k: os.environ.get(k) for k in [*env, "CI", "AMBIENT_EVAL_WEIGHTS", "AMBIENT_EVAL_REFS_CATALOG"]}
    os.environ.update(env)
    os.environ.pop("CI", None)
    server = LoopbackServer()
    try:
        from ambient_eval.fetch import RemoteFile, ensure

        # 1. Resume after an interruption at 50%.
        size = int(args.mb * 2**20)
        body = np.random.default_rng(0).bytes(size)
        sha = hashlib.sha256(body).hexdigest()
        url = server.add("/w.bin", body, faults=[("cut", size // 2)])
        remote = RemoteFile(url=url, file_name="w.bin", subdir="weights", sha256=sha, what="benchmark file")
        try:
            ensure(remote, retries=0)
        except Exception:  # noqa: BLE001 - the cut is the point
            pass
        first = server.served["/w.bin"]
        t = time.perf_counter()
        path = ensure(remote, retries=0)
        resume_s = time.perf_counter() - t
        second = server.served["/w.bin"] - first
        assert path.read_bytes() == body

        # 2. Cached-run overhead: the same file found in $AMBIENT_EVAL_WEIGHTS (today) vs the download cache.
        from ambient_eval.features.weights import WeightsFile, resolve_weights

        spec = WeightsFile(file_name="w.bin", url=url, sha256=sha)
        (tmp / "wdir").mkdir()
        (tmp / "wdir" / "w.bin").write_bytes(body)
        os.environ["AMBIENT_EVAL_WEIGHTS"] = str(tmp / "wdir")
        resolve_weights("bench", [spec], None)                    # fill the hash memo
        today_us = _median_us(lambda: resolve_weights("bench", [spec], None), args.repeats)
        os.environ["AMBIENT_EVAL_WEIGHTS"] = str(tmp / "empty")
        resolve_weights("bench", [spec], None)
        cached_us = _median_us(lambda: resolve_weights("bench", [spec], None), args.repeats)

        # ... and ref:NAME vs the statistics file given as a path.
        from ambient_eval.refs.resolve import load_ref, ref_path
        from ambient_eval.metrics.stats import load_stats

        d = args.dim
        rng = np.random.default_rng(1)
        a = rng.normal(size=(d + 8, d))
        stats_file = tmp / "cifar10-32x32.npz"
        np.savez(stats_file, mu=a.mean(0), sigma=np.cov(a, rowvar=False))
        server.add("/ref.npz", stats_file.read_bytes())
        (tmp / "cat.toml").write_text(
            f'[bench]\nurl = "{server.url("/ref.npz")}"\nformat = "npz"\nextractor = "inception"\n'
            'mode = "tf-compat"\nfeature = "pool3"\nn = 1\nresolution = 32\nsplit = "train"\ndataset = "x"\n'
            'source = "x"\nfile_name = "cifar10-32x32.npz"\n')
        os.environ["AMBIENT_EVAL_REFS_CATALOG"] = str(tmp / "cat.toml")
        ref_path("bench")
        ref_us = _median_us(lambda: ref_path("bench"), args.repeats)   # what ref:NAME adds: lookup + hash check
        path_us = _median_us(lambda: load_stats(stats_file), 1)         # the load both share, once, for scale
        assert np.array_equal(load_ref("ref:bench").mu, load_stats(stats_file).mu)
    finally:
        server.close()
        for k, v in saved.items():
            if v is None:
                os.environ.pop(k, None)
            else:
                os.environ[k] = v
    out = {"file_bytes": size, "resume_bytes_second_run": second, "resume_fraction": second / size,
           "resume_s": resume_s, "weights_today_us": today_us, "weights_download_cache_us": cached_us,
           "stats_load_us": path_us, "ref_resolve_us": ref_us, "repeats": args.repeats}
    args.out.parent.mkdir(parents=True, exist_ok=True)
    args.out.write_text(json.dumps(out, indent=2))
    print(f"resume after a cut at 50% of {size / 2**20:.0f} MB: second run fetched {second} bytes "
          f"({100 * second / size:.1f}% of the file) in {resume_s:.2f} s")
    print(f"weights resolution, file already local: today ($AMBIENT_EVAL_WEIGHTS) {today_us:.0f} us, "
          f"download cache {cached_us:.0f} us (median of {args.repeats})")
    print(f"ref:NAME resolution (lookup + hash check) {ref_us:.0f} us, on top of the {d}-d statistics load "
          f"both share ({path_us / 1e3:.0f} ms)")
    return out


if __name__ == "__main__":
    main()
