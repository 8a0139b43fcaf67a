"""One short run over every CUDA path, each compared with the CPU result (see gpu_check.sh).

Checks (random weights; nothing is downloaded):
  1. sampling: EDM Heun on a small U-Net in float32, TF32 and bf16 autocast vs CPU float32
  2. feature extraction: Inception (tf-compat) pool3 and pixel features on GPU vs CPU
  3. faiss-gpu: exact and IVF search on all GPUs vs faiss on CPU (skipped with a note on faiss-cpu)
  4. torchrun with nccl: `ambient-eval stats` on all GPUs (one rank each) vs one GPU process
  5. memorization --shards exact search with faiss sharded over the GPUs vs CPU

Prints one line per check (PASS / FAIL / SKIP with the measured difference and time) and writes
bench_out/gpu_check.json. Exit code: 0 when nothing failed (or no CUDA device: nothing to check), 1 otherwise.
"""
from __future__ import annotations

import json
import os
import subprocess
import sys
import tempfile
import time
import warnings
from pathlib import Path

import numpy as np

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))
RESULTS: dict[str, dict] = {}


def report(name: str, ok: bool | None, detail: str, t0: float) -> None:
    status = "SKIP" if ok is None else ("PASS" if ok else "FAIL")
    RESULTS[name] = {"status": status, "detail": detail, "seconds": round(time.perf_counter() - t0, 2)}
    print(f"{status:<5} {name:<28} {detail} ({RESULTS[name]['seconds']} s)", flush=True)


def check_sampling() -> None:
    import torch

    from ambient_eval.models import UNetConfig, build_native_model, native_config
    from ambient_eval.sampling.generate import generate

    torch.manual_seed(0)
    cfg = native_config(UNetConfig(img_resolution=32, img_channels=3, model_channels=16, channel_mult=(1, 2),
                                   num_blocks=2))
    model = build_native_model(cfg)
    seeds = list(range(8))

    def run(device, autocast=None):
        out = [x for _, x in generate(model, seeds, batch_size=8, steps=10, device=device, autocast=autocast)]
        return torch.cat(out).to(torch.int16)

    ref = run("cpu")
    for mode in (None, "tf32", "bf16"):
        t0 = time.perf_counter()
        diff = (run("cuda", mode) - ref).abs()
        # float32 on GPU: a few uint8 steps at most; TF32 / bf16: visibly close (mean under 2 levels)
        limit_max, limit_mean = (2, 0.05) if mode is None else (64, 2.0)
        ok = int(diff.max()) <= limit_max and float(diff.float().mean()) <= limit_mean
        report(f"sample {mode or 'float32'}", ok, f"uint8 max |diff| {int(diff.max())}, mean "
               f"{float(diff.float().mean()):.3f} vs CPU", t0)


def check_features() -> None:
    import torch

    from ambient_eval.features import get_extractor
    from ambient_eval.features.random_weights import random_inception_state_dict, save_state_dict
    from tests.conftest import random_images

    images = torch.from_numpy(random_images(16, size=32, seed=0)).permute(0, 3, 1, 2).contiguous()
    with tempfile.TemporaryDirectory() as tmp:
        w = Path(tmp) / "inception.pth"
        save_state_dict(random_inception_state_dict(seed=0), w)
        for name, weights in (("inception", str(w)), ("pixel", None)):
            t0 = time.perf_counter()
            with warnings.catch_warnings():
                warnings.simplefilter("ignore")
                cpu = get_extractor(name, weights=weights, device="cpu")(images)
                gpu = get_extractor(name, weights=weights, device="cuda")(images)
            key = next(iter(cpu))
            rel = float((gpu[key] - cpu[key]).norm() / cpu[key].norm().clamp_min(1e-12))
            report(f"features {name}", rel < 1e-3, f"relative L2 difference {rel:.2e} vs CPU", t0)


def check_faiss() -> None:
    import faiss

    from ambient_eval.audits import search as S

    t0 = time.perf_counter()
    ngpu = faiss.get_num_gpus() if hasattr(faiss, "get_num_gpus") else 0
    if ngpu == 0:
        report("faiss-gpu search", None, "faiss has no GPU support here (faiss-cpu build); install faiss-gpu", t0)
        return
    rng = np.random.default_rng(0)
    xb = rng.standard_normal((200_000, 512), dtype=np.float32)
    xq = xb[:2000] + 0.1 * rng.standard_normal((2000, 512), dtype=np.float32)
    xb /= np.linalg.norm(xb, axis=1, keepdims=True)
    xq /= np.linalg.norm(xq, axis=1, keepdims=True)
    for kind in ("flat", "ivf"):
        t0 = time.perf_counter()
        cpu = S.build_index(S.iter_blocks(xb), 512, kind, nb=len(xb), use_gpu=False,
                            train_x=S.train_sample(xb) if kind == "ivf" else None)
        gpu = S.build_index(S.iter_blocks(xb), 512, kind, nb=len(xb), use_gpu=True,
                            train_x=S.train_sample(xb) if kind == "ivf" else None)
        on_gpu = "Gpu" in type(gpu).__name__ or "Shards" in type(gpu).__name__ or "Replicas" in type(gpu).__name__
        (Dc, Ic), (Dg, Ig) = S.search(cpu, xq, 5), S.search(gpu, xq, 5)
        agree = float((Ic[:, 0] == Ig[:, 0]).mean())
        report(f"faiss-gpu {kind} ({ngpu} GPU)", on_gpu and agree >= 0.999,
               f"index {type(gpu).__name__}, top-1 agreement {agree:.4f}, max |dD| {float(abs(Dc - Dg).max()):.1e}", t0)


def check_torchrun_nccl() -> None:
    import torch

    from tests.conftest import random_images

    t0 = time.perf_counter()
    ngpu = torch.cuda.device_count()
    with tempfile.TemporaryDirectory() as tmp:
        tmp = Path(tmp)
        np.save(tmp / "images.npy", random_images(200, size=16, seed=0))
        base = ["stats", str(tmp / "images.npy"), "--features", "pixel-16", "--device", "cuda", "--no-cache",
                "--batch", "16"]
        env = {**os.environ, "PYTHONPATH": str(ROOT), "AMBIENT_EVAL_PROGRESS": "0"}
        one = subprocess.run([sys.executable, "-m", "ambient_eval", *base, "-o", str(tmp / "one.npz")], env=env,
                             capture_output=True, text=True)
        many = subprocess.run([sys.executable, "-m", "torch.distributed.run", "--standalone", "--nproc_per_node",
                               str(max(ngpu, 2)), "-m", "ambient_eval", *base, "-o", str(tmp / "many.npz")],
                              env=env, capture_output=True, text=True)
        if one.returncode or many.returncode:
            report("torchrun nccl stats", False, (one.stderr + many.stderr)[-500:], t0)
            return
        with np.load(tmp / "one.npz") as a, np.load(tmp / "many.npz") as b:
            same = bool(np.array_equal(a["mu"], b["mu"]) and np.array_equal(a["sigma"], b["sigma"]))
    note = "" if ngpu > 1 else " (1 GPU: both ranks share it)"
    report(f"torchrun nccl x{max(ngpu, 2)}", same, f"stats identical to one GPU process: {same}{note}", t0)


def check_shards_gpu() -> None:
    import faiss

    from ambient_eval.audits import search as S
    from ambient_eval.audits import shards as SH

    t0 = time.perf_counter()
    if not (hasattr(faiss, "get_num_gpus") and faiss.get_num_gpus() > 0):
        report("shards on GPUs", None, "faiss has no GPU support here (faiss-cpu build)", t0)
        return
    rng = np.random.default_rng(1)
    xb = rng.standard_normal((100_000, 256), dtype=np.float32)
    xb /= np.linalg.norm(xb, axis=1, keepdims=True)
    with tempfile.TemporaryDirectory() as tmp:
        files = []
        for i, s in enumerate(range(0, len(xb), 30_000)):
            SH._write_shard(Path(tmp), i, xb[s:s + 30_000], "k", s, min(s + 30_000, len(xb)))
            files.append(Path(tmp) / f"emb-{i:05d}.npy")
        arr = SH.ShardArray(files)
        gpu, cpu = SH.open_index(arr, "flat", tmp, {}, use_gpu=None), SH.open_index(arr, "flat", tmp, {}, use_gpu=False)
        (Dg, Ig), (Dc, Ic) = S.search(gpu, xb[:500], 5), S.search(cpu, xb[:500], 5)
    report("shards on GPUs", type(gpu).__name__ == "GpuShardedFlat" and bool((Ig[:, 0] == Ic[:, 0]).all()),
           f"{type(gpu).__name__}, top-1 identical {bool((Ig[:, 0] == Ic[:, 0]).all())}", t0)


def main() -> int:
    import torch

    if not torch.cuda.is_available():
        print("gpu_check: no CUDA device is visible to torch (torch.cuda.is_available() is False); "
              "nothing to check. Run this on a machine with an NVIDIA GPU.")
        return 0
    names = ", ".join(torch.cuda.get_device_name(i) for i in range(torch.cuda.device_count()))
    print(f"gpu_check: {torch.cuda.device_count()} GPU(s): {names}; torch {torch.__version__}", flush=True)
    for check in (check_sampling, check_features, check_faiss, check_torchrun_nccl, check_shards_gpu):
        t0 = time.perf_counter()
        try:
            check()
        except Exception as e:  # report and go on: one broken path must not hide the others
            report(check.__name__, False, f"{type(e).__name__}: {str(e)[:300]}", t0)
    out = ROOT / "bench_out" / "gpu_check.json"
    out.parent.mkdir(exist_ok=True)
    out.write_text(json.dumps(RESULTS, indent=2) + "\n")
    failed = [k for k, v in RESULTS.items() if v["status"] == "FAIL"]
    print(f"gpu_check: {len(RESULTS) - len(failed)} of {len(RESULTS)} checks passed or skipped; wrote {out}")
    return 1 if failed else 0


if __name__ == "__main__":
    sys.exit(main())
