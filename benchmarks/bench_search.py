"""Benchmark: nearest-training-image search for memorization audits.

Our FAISS path (ambient_eval.audits.search) vs brute-force torch matmul + topk in query chunks
(what DCR, Somepalli et al. 2023, does) vs scikit-learn NearestNeighbors(metric="cosine",
algorithm="brute"), on seeded random L2-normalized data. Each method runs in its own subprocess
so wall time and peak memory (ru_maxrss) are its own; top-1 results are checked against the
exact FAISS path (ties within 1e-5 tolerated). Approximate indexes report recall@1 instead.

    .venv/bin/python benchmarks/bench_search.py                      # 10k x 100k, d=512 (CPU)
    .venv/bin/python benchmarks/bench_search.py --nq 2000 --nb 20000  # quick
    .venv/bin/python benchmarks/bench_search.py --gpu                 # 50k x 1M exact on a GPU

Writes bench_out/bench_search.json and prints a table.
"""
from __future__ import annotations

import argparse
import json
import os
import resource
import subprocess
import sys
import tempfile
import time
from pathlib import Path

import numpy as np

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))
EXACT = ("faiss-flat", "torch", "sklearn")
APPROX = ("faiss-ivf", "faiss-hnsw")


def make_data(nq: int, nb: int, d: int, seed: int, kind: str = "gaussian") -> tuple[np.ndarray, np.ndarray]:
    """Seeded L2-normalized float32 (queries, database).

    gaussian: i.i.d. normal vectors (no structure: the hardest case for approximate indexes).
    clustered: 1000 clusters (within-cluster cosine ~0.5, like real embeddings of a class); half the
    queries are near copies of database points, half new points of the clusters.
    """
    rng = np.random.default_rng(seed)
    if kind == "gaussian":
        xb = rng.standard_normal((nb, d), dtype=np.float32)
        xq = rng.standard_normal((nq, d), dtype=np.float32)
    else:
        centers = rng.standard_normal((1000, d), dtype=np.float32)
        xb = centers[rng.integers(0, 1000, nb)] + rng.standard_normal((nb, d), dtype=np.float32)
        near = xb[rng.integers(0, nb, nq // 2)] + 0.2 * rng.standard_normal((nq // 2, d), dtype=np.float32)
        new = (centers[rng.integers(0, 1000, nq - nq // 2)]
               + rng.standard_normal((nq - nq // 2, d), dtype=np.float32))
        xq = np.concatenate([near, new])
    xb /= np.linalg.norm(xb, axis=1, keepdims=True)
    xq /= np.linalg.norm(xq, axis=1, keepdims=True)
    return xq, xb


def rss_mb() -> float:
    """Current resident memory of this process, MiB."""
    with open("/proc/self/statm") as f:
        return int(f.read().split()[1]) * os.sysconf("SC_PAGE_SIZE") / 2**20


def run_torch(xq, xb, k, device, chunk=1000):
    # DCR-style: similarity = q_chunk @ xb.T, then topk, one query chunk at a time
    import torch

    tb = torch.from_numpy(xb).to(device)
    D, I = [], []
    with torch.inference_mode():
        for i0 in range(0, len(xq), chunk):
            sims = torch.from_numpy(xq[i0:i0 + chunk]).to(device) @ tb.T
            v, j = sims.topk(k, dim=1)
            D.append(v.cpu().numpy())
            I.append(j.cpu().numpy())
    return np.concatenate(D), np.concatenate(I)


def run_sklearn(xq, xb, k):
    from sklearn.neighbors import NearestNeighbors

    nn = NearestNeighbors(n_neighbors=k, metric="cosine", algorithm="brute").fit(xb)
    dist, I = nn.kneighbors(xq)
    return (1 - dist).astype(np.float32), I


def run_faiss(xq, xb, k, kind, use_gpu):
    from ambient_eval.audits import search as S

    t0 = time.perf_counter()
    index = S.build_index(S.iter_blocks(xb), xb.shape[1], kind, nb=len(xb), use_gpu=use_gpu,
                          train_x=S.train_sample(xb) if kind.startswith("ivf") else None)
    build = time.perf_counter() - t0
    D, I = S.search(index, xq, k)
    return D, I, build


def worker(args) -> None:
    """Run one method; write D, I and timings to args.result."""
    xq, xb = make_data(args.nq, args.nb, args.d, args.seed, args.data)
    # import each method's libraries before the clock starts (imports are not search time)
    if args.method == "torch":
        import torch  # noqa: F401
    elif args.method == "sklearn":
        import sklearn.neighbors  # noqa: F401
    else:
        import ambient_eval.audits.search  # noqa: F401
        import ambient_eval.runtime.progress  # noqa: F401
        import tqdm.auto  # noqa: F401
    base = rss_mb()
    t0, build = time.perf_counter(), 0.0
    if args.method == "torch":
        D, I = run_torch(xq, xb, args.k, "cuda" if args.gpu else "cpu")
    elif args.method == "sklearn":
        D, I = run_sklearn(xq, xb, args.k)
    else:
        D, I, build = run_faiss(xq, xb, args.k, args.method.split("-")[1], None if args.gpu else False)
    wall = time.perf_counter() - t0  # index build (faiss) + search
    peak = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024  # KiB on Linux => MiB
    np.savez(args.result, D=D, I=I, wall=wall, build=build, peak=peak, base=base)


def spawn(method: str, args, tmp: Path) -> dict:
    out = tmp / f"{method}.npz"
    cmd = [sys.executable, __file__, "--worker", method, "--result", str(out), "--nq", str(args.nq),
           "--nb", str(args.nb), "--d", str(args.d), "--k", str(args.k), "--seed", str(args.seed),
           "--data", args.data]
    if args.gpu:
        cmd.append("--gpu")
    env = {**os.environ, "AMBIENT_EVAL_PROGRESS": "0"}
    subprocess.run(cmd, check=True, env=env)
    with np.load(out) as z:
        return {"D": z["D"], "I": z["I"], "wall_s": float(z["wall"]), "build_s": float(z["build"]), "peak_rss_mib": float(z["peak"]),
                "data_rss_mib": float(z["base"])}


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--nq", type=int, default=None, help="queries (default 10000; 50000 with --gpu)")
    ap.add_argument("--nb", type=int, default=None, help="database size (default 100000; 1000000 with --gpu)")
    ap.add_argument("--d", type=int, default=512, help="dimension")
    ap.add_argument("--k", type=int, default=5, help="neighbours")
    ap.add_argument("--seed", type=int, default=0, help="data seed")
    ap.add_argument("--data", choices=("gaussian", "clustered"), default="gaussian",
                    help="synthetic embedding distribution (see make_data)")
    ap.add_argument("--methods", default=None,
                    help=f"comma list from {','.join(EXACT + APPROX)} (default: all; sklearn off with --gpu)")
    ap.add_argument("--gpu", action="store_true", help="GPU mode: 50k x 1M, faiss GPU index and torch cuda")
    ap.add_argument("--out", default=str(ROOT / "bench_out" / "bench_search.json"), help="JSON output")
    ap.add_argument("--worker", default=None, help=argparse.SUPPRESS)
    ap.add_argument("--result", default=None, help=argparse.SUPPRESS)
    args = ap.parse_args()
    args.nq = args.nq or (50000 if args.gpu else 10000)
    args.nb = args.nb or (1000000 if args.gpu else 100000)
    if args.worker:
        args.method = args.worker
        return worker(args)
    # Probe in a subprocess: importing torch here would raise every child's ru_maxrss (Linux
    # children inherit the parent's high-water RSS at fork).
    if args.gpu:
        probe = subprocess.run([sys.executable, "-c", "import torch, faiss; print(int(torch.cuda.is_available()), "
                                "faiss.get_num_gpus())"], capture_output=True, text=True, check=True)
        cuda, faiss_gpus = map(int, probe.stdout.split())
        if not cuda:
            sys.exit("--gpu needs a CUDA GPU (torch.cuda.is_available() is False). Run without --gpu.")
        if not faiss_gpus:
            print("note: this faiss build sees no GPU (pip install faiss-gpu): faiss-flat runs on CPU")
    # default: the exact methods + IVF; HNSW on request (its build is slow on few cores, and
    # neither approximate index finds true neighbours well in unstructured Gaussian data)
    methods = (args.methods.split(",") if args.methods else
               [m for m in (*EXACT, "faiss-ivf") if not (args.gpu and m == "sklearn")])
    if "faiss-flat" not in methods:
        methods.insert(0, "faiss-flat")  # the reference for the top-1 check
    with tempfile.TemporaryDirectory() as tmp:
        runs = {m: spawn(m, args, Path(tmp)) for m in methods}
    ref = runs["faiss-flat"]
    rows = []
    for m, r in runs.items():
        same = r["I"][:, 0] == ref["I"][:, 0]
        tie = np.abs(r["D"][:, 0] - ref["D"][:, 0]) <= 1e-5
        rows.append({"method": m, "exact": m in EXACT, "wall_s": round(r["wall_s"], 3),
                     "build_s": round(r["build_s"], 3), "search_s": round(r["wall_s"] - r["build_s"], 3),
                     "peak_rss_mib": round(r["peak_rss_mib"], 1),
                     "search_extra_mib": round(r["peak_rss_mib"] - r["data_rss_mib"], 1),
                     "top1_identical": float(same.mean()), "top1_match_or_tie": float((same | tie).mean()),
                     "top1_max_abs_sim_diff": float(np.abs(r["D"][:, 0] - ref["D"][:, 0]).max()),
                     "speedup_vs_torch": (round(runs["torch"]["wall_s"] / r["wall_s"], 2) if "torch" in runs else None),
                     # index reused across checkpoints (--index-path): only the search counts
                     "search_speedup_vs_torch": (round(runs["torch"]["wall_s"] / max(r["wall_s"] - r["build_s"], 1e-9), 2)
                                                 if "torch" in runs else None)})
    import platform

    import faiss
    import torch

    meta = {"data": args.data, "nq": args.nq, "nb": args.nb, "d": args.d, "k": args.k, "seed": args.seed, "gpu_mode": args.gpu,
            "cpu_count": os.cpu_count(), "torch_threads": torch.get_num_threads(),
            "faiss_threads": faiss.omp_get_max_threads(), "faiss_gpus": faiss.get_num_gpus(), "faiss": faiss.__version__, "torch": torch.__version__,
            "machine": platform.processor() or platform.machine()}
    print(f"data={args.data} nq={args.nq} nb={args.nb} d={args.d} k={args.k} cpus={os.cpu_count()}")
    print(f"{'method':<12}{'wall s':>9}{'build s':>9}{'peak MiB':>10}{'extra MiB':>11}{'top1 same':>11}{'or tie':>8}{'x torch':>9}{'search x':>10}")
    for r in rows:
        print(f"{r['method']:<12}{r['wall_s']:>9.2f}{r['build_s']:>9.2f}{r['peak_rss_mib']:>10.0f}{r['search_extra_mib']:>11.0f}"
              f"{r['top1_identical']:>11.4f}{r['top1_match_or_tie']:>8.4f}{r['speedup_vs_torch'] or 0:>9.2f}"
              f"{r['search_speedup_vs_torch'] or 0:>10.2f}")
    out = Path(args.out)
    out.parent.mkdir(parents=True, exist_ok=True)
    out.write_text(json.dumps({"meta": meta, "results": rows}, indent=2) + "\n")
    print(f"wrote {out}")


if __name__ == "__main__":
    main()
