"""Benchmark: images/s of our U-Net under EDM Heun (18 steps, NFE 35), and the sampler's overhead.

Two overhead measures (target < 5%):
  overhead_pct         time(generate) / time(network alone) - 1, where "network alone" calls the
                       preconditioned denoiser NFE times on one batch, same shapes and chunking
                       (no noise generation, no float64 ODE updates, no uint8 conversion);
                       separate runs, so sensitive to load changes on a busy machine.
  inrun_overhead_pct   within one generate() run: (total - time inside network calls) / time
                       inside network calls; immune to load drift between runs.

  .venv/bin/python benchmarks/bench_sampler.py                  # small + cifar configs, CPU (+CUDA)
  .venv/bin/python benchmarks/bench_sampler.py --configs small --n 32 --batch 16 --devices cpu
Writes bench_out/bench_sampler.json.
"""
from __future__ import annotations

import argparse
import json
import time
from pathlib import Path

import torch

from ambient_eval.models import UNetConfig, build_native_model, native_config
import importlib

from ambient_eval.sampling.generate import NetCall, generate, resolve_net_batch
from ambient_eval.sampling.samplers import SamplerConfig, nfe

gen_mod = importlib.import_module("ambient_eval.sampling.generate")
CONFIGS = {"tiny": UNetConfig.tiny(32), "small": UNetConfig.small(), "cifar": UNetConfig.cifar()}


def _sync(dev):
    if dev.type == "cuda":
        torch.cuda.synchronize(dev)


class TimedNetCall(NetCall):
    """NetCall that accumulates the wall time spent inside the network calls."""

    total = 0.0

    def __call__(self, x, sigma, labels):
        _sync(x.device)
        t0 = time.perf_counter()
        out = super().__call__(x, sigma, labels)
        _sync(x.device)
        TimedNetCall.total += time.perf_counter() - t0
        return out


def bench(name: str, dev: torch.device, n: int, batch: int, steps: int, net_batch,
          reps: int = 3) -> dict:
    torch.manual_seed(0)
    model = build_native_model(native_config(CONFIGS[name])).to(dev).eval()
    cfg = SamplerConfig(steps=steps)
    seeds = list(range(n))
    nb = resolve_net_batch(net_batch, dev)
    list(generate(model, seeds[:batch], batch_size=batch, steps=2, device=dev, net_batch=net_batch))  # warm-up
    # Network alone: the same calls (same shapes, same chunking) without the sampler around them.
    D = NetCall(model, nb, None)
    x = torch.randn(batch, 3, model.img_resolution, model.img_resolution, device=dev)
    sigma = torch.full((batch,), 1.0, device=dev)
    calls = nfe(cfg) * (n // batch) + nfe(cfg) * (1 if n % batch else 0)
    t_gen = t_net = inrun = float("inf")
    for _ in range(reps):  # keep the fastest of each: robust to a busy machine
        gen_mod.NetCall, TimedNetCall.total = TimedNetCall, 0.0
        _sync(dev)
        t0 = time.perf_counter()
        for _ in generate(model, seeds, batch_size=batch, config=cfg, device=dev, net_batch=net_batch):
            pass
        _sync(dev)
        total = time.perf_counter() - t0        # (CUDA: includes one sync per network call)
        gen_mod.NetCall = NetCall
        t_gen = min(t_gen, total)
        inrun = min(inrun, 100 * (total - TimedNetCall.total) / TimedNetCall.total)
        _sync(dev)
        t0 = time.perf_counter()
        for _ in range(calls):
            D(x, sigma, None)
        _sync(dev)
        t_net = min(t_net, time.perf_counter() - t0)
    params = sum(p.numel() for p in model.parameters())
    return {"config": name, "device": str(dev), "params_M": round(params / 1e6, 2), "n": n,
            "batch": batch, "net_batch": nb, "reps": reps, "steps": steps, "nfe": nfe(cfg),
            "images_per_s": n / t_gen, "sampler_s": t_gen, "network_alone_s": t_net,
            "overhead_pct": 100 * (t_gen / t_net - 1), "inrun_overhead_pct": inrun}


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--configs", default="small,cifar", help="comma list of tiny,small,cifar")
    ap.add_argument("--devices", default="auto", help="cpu, cuda, or auto (cpu + cuda if present)")
    ap.add_argument("--n", type=int, default=16, help="images per CPU measurement (x16 on CUDA)")
    ap.add_argument("--batch", type=int, default=8, help="sampler batch on CPU (x32 on CUDA)")
    ap.add_argument("--steps", type=int, default=18)
    ap.add_argument("--net-batch", default="auto", help="auto | 0 (whole batch) | N")
    ap.add_argument("--reps", type=int, default=3, help="repetitions; the fastest is reported")
    ap.add_argument("--threads", type=int, default=0, help="torch CPU threads (0 = torch default)")
    ap.add_argument("--out", default="bench_out/bench_sampler.json")
    a = ap.parse_args()
    if a.threads:
        torch.set_num_threads(a.threads)
    devs = ["cpu", "cuda"] if a.devices == "auto" else a.devices.split(",")
    devs = [d for d in devs if d != "cuda" or torch.cuda.is_available()]
    nb = a.net_batch if a.net_batch == "auto" else int(a.net_batch)
    rows = []
    for d in devs:
        dev = torch.device(d)
        scale_n, scale_b = (16, 32) if dev.type == "cuda" else (1, 1)
        for name in a.configs.split(","):
            n, b = a.n * scale_n, a.batch * scale_b
            if dev.type == "cpu" and name == "cifar":
                n, b = min(n, 8), min(b, 8)   # ~61M parameters: keep CPU runs short
            r = bench(name, dev, n, b, a.steps, nb, a.reps)
            rows.append(r)
            print(f"{r['config']:6s} {r['device']:6s} {r['params_M']:6.2f}M  n={r['n']:5d} batch={r['batch']:4d}"
                  f"  {r['images_per_s']:9.2f} img/s  sampler {r['sampler_s']:7.2f}s  net alone "
                  f"{r['network_alone_s']:7.2f}s  overhead {r['overhead_pct']:+5.1f}%  in-run {r['inrun_overhead_pct']:4.1f}%", flush=True)
    out = Path(a.out)
    out.parent.mkdir(parents=True, exist_ok=True)
    out.write_text(json.dumps({"torch": torch.__version__, "threads": torch.get_num_threads(),
                               "rows": rows}, indent=2))
    print(f"wrote {out}")


if __name__ == "__main__":
    main()
