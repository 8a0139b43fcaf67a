"""Benchmark: FID + KID + precision/recall, ambient-eval (cold and warm feature cache) vs torch-fidelity.

Same N CIFAR-10 JPEGs on both sides (generated = first N train images, reference = first N test images,
from ../shared/data/cifar10-jpeg.tar extracted to a temp dir), same random-weight Inception-v3 and VGG16
files. Each measurement runs in its own subprocess: wall time and peak RSS (ru_maxrss) of that process.
torch-fidelity needs two calls (it allows one extractor per call): fid+kid on Inception, prc on VGG16;
its own cache is off so it is measured cold. Ours runs cold once (filling the feature cache), then
warm --warm-runs times through the Python API (timed inside the process from before `import
ambient_eval`) and as many times through the CLI (`ambient-eval fid ... --no-report`, timed from
outside: interpreter start to exit); the medians are reported. A warm run imports no torch. A third
set of warm runs deletes the stored Frechet distances first (features cached, distance recomputed:
the case of new statistics against a cached reference costs at least this).

    .venv/bin/python benchmarks/bench_metrics.py --n 2000          # the issue's size (~1 h on 2 CPU cores)
    .venv/bin/python benchmarks/bench_metrics.py --n 250           # quick

Writes bench_out/bench_metrics.json and prints a table.
"""
from __future__ import annotations

import argparse
import json
import os
import shutil
import subprocess
import sys
import tarfile
import tempfile
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
DEFAULT_TAR = ROOT.parent / "shared" / "data" / "cifar10-jpeg.tar"


def _extract(tar_path: Path, split: str, n: int, dest: Path) -> None:
    """First n JPEGs of `split` (sorted member names) into a flat folder (torch-fidelity reads flat dirs)."""
    dest.mkdir(parents=True, exist_ok=True)
    with tarfile.open(tar_path) as tf:
        members = sorted((m for m in tf.getmembers() if m.isfile() and m.name.lstrip("./").startswith(f"{split}/")
                          and m.name.lower().endswith(".jpg")), key=lambda m: m.name)
        for i, m in enumerate(members[:n]):
            (dest / f"{i:06d}.jpg").write_bytes(tf.extractfile(m).read())


def _child(args: argparse.Namespace) -> None:
    """Run one measurement in this process and print a JSON line."""
    import resource
    import warnings

    warnings.simplefilter("ignore")
    if args.child == "weights":
        from ambient_eval.features.random_weights import (random_inception_state_dict, random_vgg16_state_dict,
                                                          save_state_dict)

        save_state_dict(random_inception_state_dict(seed=0), Path(args.inception))
        save_state_dict(random_vgg16_state_dict(seed=0), Path(args.vgg16))
        return
    t0 = time.perf_counter()
    if args.child == "torch-fidelity":
        import torch_fidelity

        common = dict(input1=args.gen, input2=args.ref, cuda=args.device != "cpu", cache=False, verbose=False,
                      batch_size=args.batch)
        m = torch_fidelity.calculate_metrics(fid=True, kid=True, kid_subset_size=args.kid_subset_size,
                                             feature_extractor="inception-v3-compat",
                                             feature_extractor_weights_path=args.inception, **common)
        m.update(torch_fidelity.calculate_metrics(prc=True, feature_extractor="vgg16",
                                                  feature_extractor_weights_path=args.vgg16, **common))
        metrics = {"fid": m["frechet_inception_distance"], "kid": m["kernel_inception_distance_mean"],
                   "precision": m["precision"], "recall": m["recall"]}
    else:
        from ambient_eval import api

        res = api.fid(args.gen, args.ref, metrics=("fid", "kid", "pr"), batch_size=args.batch, device=args.device,
                      weights=[f"inception={args.inception}", f"vgg16={args.vgg16}"], cache_dir=args.cache_dir,
                      kid_subset_size=args.kid_subset_size)
        metrics = {k: res.metrics[k] for k in ("fid", "kid", "precision", "recall")}
        from ambient_eval.features import FeatureExtractor

        metrics["networks_built"] = FeatureExtractor.network_builds   # lazy networks: 0 on a warm cache
        metrics["torch_imported"] = "torch" in sys.modules               # the warm path needs no torch
    wall = time.perf_counter() - t0
    rss_mb = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024
    print(json.dumps({"wall_s": wall, "peak_rss_mb": rss_mb, "metrics": metrics}))
    sys.stdout.flush()


def _measure(mode: str, common: list[str]) -> dict:
    cmd = [sys.executable, __file__, "--child", mode, *common]
    proc = subprocess.run(cmd, capture_output=True, text=True, env={**os.environ, "AMBIENT_EVAL_PROGRESS": "0"})
    if proc.returncode != 0:
        raise SystemExit(f"{mode} failed:\n{proc.stderr[-3000:]}")
    return json.loads(proc.stdout.strip().splitlines()[-1])


def _measure_cli(args: argparse.Namespace, out: Path) -> dict:
    """`ambient-eval fid` on the same inputs as a user runs it; wall time of the whole process."""
    cmd = [sys.executable, "-m", "ambient_eval", "fid", args.gen, args.ref, "--metrics", "fid,kid,pr",
           "--weights", f"inception={args.inception}", "--weights", f"vgg16={args.vgg16}",
           "--cache-dir", args.cache_dir, "--kid-subset-size", str(args.kid_subset_size), "--batch",
           str(args.batch), "--device", args.device, "--out", str(out), "--no-report"]
    log = out.with_suffix(".log")
    with open(log, "w") as f:
        t0 = time.perf_counter()
        proc = subprocess.Popen(cmd, stdout=f, stderr=subprocess.STDOUT,
                                env={**os.environ, "AMBIENT_EVAL_PROGRESS": "0"})
        _, status, usage = os.wait4(proc.pid, 0)   # this child's own peak RSS
        proc.returncode = os.waitstatus_to_exitcode(status)
        wall = time.perf_counter() - t0
    if proc.returncode != 0:
        raise SystemExit(f"ambient-eval fid failed:\n{log.read_text()[-3000:]}")
    m = json.loads((out / "results.json").read_text())["metrics"]
    return {"wall_s": wall, "peak_rss_mb": usage.ru_maxrss / 1024,
            "metrics": {k: m[k] for k in ("fid", "kid", "precision", "recall")}}


def _median_run(runs: list[dict]) -> dict:
    ordered = sorted(runs, key=lambda r: r["wall_s"])
    return {**ordered[len(ordered) // 2], "all_wall_s": [r["wall_s"] for r in runs]}


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--n", type=int, default=2000, help="images per set (default 2000)")
    ap.add_argument("--kid-subset-size", type=int, default=None, help="KID subset size (default min(1000, n))")
    ap.add_argument("--batch", type=int, default=64, help="batch size for both libraries")
    ap.add_argument("--device", default="cpu", help="cpu or cuda")
    ap.add_argument("--warm-runs", type=int, default=3, help="warm runs per interface (median reported)")
    ap.add_argument("--keep", type=Path, default=None, help="work in this folder and keep it (default: a temp dir)")
    ap.add_argument("--tar", type=Path, default=DEFAULT_TAR, help="cifar10-jpeg.tar")
    ap.add_argument("--out", type=Path, default=ROOT / "bench_out" / "bench_metrics.json")
    ap.add_argument("--child", default=None, help=argparse.SUPPRESS)
    for a in ("--gen", "--ref", "--inception", "--vgg16", "--cache-dir"):
        ap.add_argument(a, default=None, help=argparse.SUPPRESS)
    args = ap.parse_args()
    if args.kid_subset_size is None:
        args.kid_subset_size = min(1000, args.n)
    if args.child:
        return _child(args)
    if not args.tar.is_file():
        raise SystemExit(f"{args.tar} not found (the shared CIFAR-10 JPEGs are only on project machines).")

    with tempfile.TemporaryDirectory(prefix="bench-metrics-") as tmp:
        tmp = Path(tmp)
        if args.keep:   # keep images, weights and the feature cache there (to profile warm runs later)
            tmp = args.keep
            tmp.mkdir(parents=True, exist_ok=True)
        _extract(args.tar, "train", args.n, tmp / "gen")
        _extract(args.tar, "test", args.n, tmp / "ref")
        # Made in a child process: peak RSS (ru_maxrss) survives fork + exec on Linux, so this process
        # stays small (no torch) and each measured child reports its own peak.
        subprocess.run([sys.executable, __file__, "--child", "weights", "--inception", str(tmp / "inception.pth"),
                        "--vgg16", str(tmp / "vgg16.pth")], check=True)
        common = ["--n", str(args.n), "--kid-subset-size", str(args.kid_subset_size), "--batch", str(args.batch),
                  "--device", args.device, "--gen", str(tmp / "gen"), "--ref", str(tmp / "ref"),
                  "--inception", str(tmp / "inception.pth"), "--vgg16", str(tmp / "vgg16.pth"),
                  "--cache-dir", str(tmp / "cache")]
        rows = {"torch-fidelity": _measure("torch-fidelity", common)}
        rows["ambient-eval cold"] = _measure("ours", common)
        rows["ambient-eval warm"] = _median_run([_measure("ours", common) for _ in range(args.warm_runs)])
        ns = ap.parse_args(common)
        ns.kid_subset_size = args.kid_subset_size
        rows["ambient-eval warm CLI"] = _median_run([_measure_cli(ns, tmp / f"out{i}") for i in range(args.warm_runs)])
        recomputed = []
        for _ in range(args.warm_runs):   # features cached, the Frechet distance computed again
            shutil.rmtree(tmp / "cache" / "values", ignore_errors=True)
            recomputed.append(_measure("ours", common))
        rows["ambient-eval warm, FD recomputed"] = _median_run(recomputed)
    base = rows["torch-fidelity"]["wall_s"]
    print(f"N = {args.n} per set, KID {100} subsets of {args.kid_subset_size}, device {args.device}")
    print(f"{'run':<22} {'wall s':>8} {'peak RSS MB':>12} {'time / tf':>10}  fid        kid         P      R")
    for name, r in rows.items():
        r["ratio_vs_torch_fidelity"] = r["wall_s"] / base
        m = r["metrics"]
        rss = f"{r['peak_rss_mb']:12.0f}" if r["peak_rss_mb"] is not None else f"{'-':>12}"
        print(f"{name:<22} {r['wall_s']:8.2f} {rss} {r['ratio_vs_torch_fidelity']:10.4f}  "
              f"{m['fid']:<10.4f} {m['kid']:<11.6f} {m['precision']:.4f} {m['recall']:.4f}")
    speedup = base / rows["ambient-eval warm"]["wall_s"]
    speedup_cli = base / rows["ambient-eval warm CLI"]["wall_s"]
    speedup_fd = base / rows["ambient-eval warm, FD recomputed"]["wall_s"]
    warm = rows["ambient-eval warm"]["metrics"]
    print(f"cold: {rows['ambient-eval cold']['ratio_vs_torch_fidelity']:.2f}x torch-fidelity's time "
          f"(target <= 1.0x); warm: {speedup:.1f}x faster through the API, {speedup_cli:.1f}x through the CLI "
          f"(target >= 100x); {speedup_fd:.1f}x with the Frechet distance recomputed (features cached, "
          f"distance not); warm runs built {warm.get('networks_built')} networks, imported torch: "
          f"{warm.get('torch_imported')}")
    args.out.parent.mkdir(parents=True, exist_ok=True)
    args.out.write_text(json.dumps({"n": args.n, "kid_subset_size": args.kid_subset_size, "device": args.device,
                                    "runs": rows, "warm_speedup": speedup,
                                    "warm_speedup_cli": speedup_cli, "warm_speedup_fd_recomputed": speedup_fd}, indent=2) + "\n")
    print(f"wrote {args.out}")


if __name__ == "__main__":
    main()
