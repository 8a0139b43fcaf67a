"""Regimes against closed-form references: where does a trained denoiser sit between memorizer and generalizer?

For each training-set size n and data seed s:
  - set A = n images, set B = n other images (disjoint), from one seeded permutation of the pool;
  - references: the empirical denoiser of A (copies A by construction) and the Gaussian denoiser of
    A (mean and covariance of A; never copies);
  - two models trained with the bundled trainer (tiny U-Net), one on A and one on B;
  - Li, Dai and Qu (2024): mean squared distance per pixel between the trained denoiser's output and
    each reference's output, at noisy held-out inputs x = y + sigma z over a sigma grid;
  - the copy threshold calibrated on A (planted augmented copies vs held-out images, FPR 1%), then
    MS = fraction of samples whose nearest image of A is above it, GL = 1 - MS, and RP = fraction of
    seeds whose samples from the A- and B-models are above it (Zhang et al. 2023, disjoint halves);
    the same for the references (the empirical pair should give RP 0, the Gaussian pair RP -> 1).
Results: a JSON + Markdown table (mean over data seeds with a 95% t-interval) and an SVG figure.

    nice -n 10 .venv/bin/python experiments/regimes_closed_form.py            # 18 tiny models, ~15 CPU-min
    .venv/bin/python experiments/regimes_closed_form.py --sizes 16,32,64,128,256,512 --steps 4000   # fuller
    .venv/bin/python experiments/regimes_closed_form.py --sizes 8,16 --seeds 1 --steps 5 --n-samples 8 --out /tmp/x
"""
from __future__ import annotations

import argparse
import json
import math
import sys
import time
from dataclasses import dataclass, fields
from pathlib import Path

import numpy as np

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))


@dataclass(frozen=True)
class ClosedFormRegimesDefaults:
    data: str = "builtin:digits-16"          # pool of 1797 digits (train split for A/B, test split for held-out)
    resolution: int = 8                      # side in pixels (digits are 8x8 natively)
    sizes: str = "16,64,256"                 # training-set sizes n (2^4 .. 2^8: the CPU budget; 2 x 2^10 exceeds the pool)
    seeds: int = 3                           # data seeds (permutation + training seed)
    steps: int = 400                         # optimiser steps per model (far from converged: CPU budget)
    batch: int = 32                          # images per step
    lr: float = 2e-3                         # Adam learning rate
    arch: str = "tiny"                       # trainer U-Net preset
    n_samples: int = 64                      # sampling seeds per model (shared noise)
    sample_steps: int = 18                   # EDM Heun steps
    sigmas: str = "0.02,0.05,0.1,0.2,0.5,1,2,5"  # noise levels of the denoiser distances (model space)
    n_probe: int = 128                       # held-out images the distances are averaged over
    embed: str = "pixel-8"                   # embedding of MS / GL / RP
    fpr: float = 0.01                        # calibration target false-positive rate
    threads: int = 1                         # torch CPU threads (the machine is shared)


def t95(values) -> tuple[float, float, float]:
    """Mean and two-sided 95% t-interval over seeds (Student t, n - 1 dof)."""
    from scipy.stats import t as student

    v = np.asarray(values, dtype=np.float64)
    m = float(v.mean())
    if len(v) < 2:
        return m, m, m
    h = float(student.ppf(0.975, len(v) - 1) * v.std(ddof=1) / math.sqrt(len(v)))
    return m, m - h, m + h


def pool(spec: str, resolution: int) -> tuple[np.ndarray, np.ndarray]:
    """(train-split NHWC uint8, test-split NHWC uint8) at resolution x resolution."""
    from ambient_eval.data import open_source

    def read(s):
        src = open_source(s, resize=resolution)
        return src.read(np.arange(len(src))).permute(0, 2, 3, 1).numpy()

    return read(spec + ":train"), read(spec + ":test")


def train_model(images: np.ndarray, run_dir: Path, args, seed: int):
    """Bundled trainer (baseline EDM loss) on NHWC uint8 images => Denoiser (reuses a finished run)."""
    from ambient_eval.models import load_model
    from ambient_eval.training.config import TrainConfig
    from ambient_eval.training.dataset import load_train_data
    from ambient_eval.training.loop import train

    final = run_dir / "final"
    if not final.exists():
        run_dir.parent.mkdir(parents=True, exist_ok=True)
        npz = run_dir.parent / f"{run_dir.name}.npz"
        np.savez(npz, images=images)
        cfg = TrainConfig(method="baseline", arch=args.arch, steps=args.steps, batch=args.batch, lr=args.lr,
                          warmup_steps=min(100, max(1, args.steps // 10)), seed=seed, checkpoint_every=args.steps,
                          device="cpu")
        train(load_train_data(npz), cfg, run_dir, overwrite=True)
    return load_model(final, device="cpu")


def to_model_space(images: np.ndarray):
    import torch

    return torch.as_tensor(images).permute(0, 3, 1, 2).to(torch.float32) / 127.5 - 1   # NHWC u8 => NCHW


def denoiser_distances(den, refs: dict, probe: np.ndarray, sigmas: list[float], seed: int) -> dict:
    """Li, Dai and Qu (2024): E |D(x; s) - D_ref(x; s)|^2 / d at x = y + s z, per reference and sigma."""
    import torch

    y = to_model_space(probe)
    out = {name: [] for name in refs}
    with torch.no_grad():
        for j, s in enumerate(sigmas):
            g = torch.Generator().manual_seed(seed * 1000 + j)
            x = y + s * torch.randn(y.shape, generator=g)
            sig = torch.full((len(x),), s)
            d = den(x, sig).to(torch.float64)
            for name, ref in refs.items():
                out[name].append(float(((d - ref(x, sig).to(torch.float64)) ** 2).mean()))
    return out


def samples(den, n: int, steps: int) -> np.ndarray:
    """Seeds 0..n-1 with the EDM Heun sampler => NHWC uint8, 3 channels."""
    import torch

    from ambient_eval.sampling.generate import generate

    x = torch.cat([b for _, b in generate(den, list(range(n)), batch_size=64, steps=steps, device="cpu")])
    return (x.repeat(1, 3, 1, 1) if x.shape[1] == 1 else x).permute(0, 2, 3, 1).numpy()


def run_seed(n: int, s: int, train_pool, test_pool, args, work: Path, sigmas) -> dict:
    """All measurements for one (size, data seed)."""
    from ambient_eval.audits.calibration import calibrate
    from ambient_eval.audits.embed import embed_source, extractor_for
    from ambient_eval.data.base import ArraySource
    from ambient_eval.models.closed_form import closed_form_model

    perm = np.random.default_rng(s).permutation(len(train_pool))
    A, B = train_pool[perm[:n]], train_pool[perm[n:2 * n]]
    held = test_pool
    cal = calibrate(ArraySource(A), ArraySource(held), embed=args.embed, fpr=args.fpr,
                    n_per_aug=min(n, 64), check_seeds=0, seed=s)
    t = cal.threshold
    ext = extractor_for(args.embed)

    def emb(imgs):
        return embed_source(ArraySource(imgs), ext, embed=args.embed)

    eA = emb(A)
    dens = {"model": (train_model(A, work / f"n{n}_s{s}_A", args, seed=s),
                      train_model(B, work / f"n{n}_s{s}_B", args, seed=s + 100)),
            "empirical": (closed_form_model("empirical", ArraySource(A)), closed_form_model("empirical", ArraySource(B))),
            "gaussian": (closed_form_model("gaussian", ArraySource(A)), closed_form_model("gaussian", ArraySource(B)))}
    row = {"n": n, "seed": s, "threshold": t, "cal_tpr": cal.tpr, "cal_fpr": cal.fpr}
    for name, (dA, dB) in dens.items():
        xa, xb = emb(samples(dA, args.n_samples, args.sample_steps)), emb(samples(dB, args.n_samples, args.sample_steps))
        top1 = (xa @ eA.T).max(1)
        row[f"ms_{name}"] = float((top1 > t).mean())
        row[f"rp_{name}"] = float(((xa * xb).sum(1) > t).mean())
    refs = {"empirical": dens["empirical"][0], "gaussian": dens["gaussian"][0]}
    probe = held[np.random.default_rng(s).permutation(len(held))[:args.n_probe]]
    dist = denoiser_distances(dens["model"][0], refs, probe, sigmas, s)
    row["dist_empirical"], row["dist_gaussian"] = dist["empirical"], dist["gaussian"]
    return row


def summarize(rows: list[dict], sizes: list[int], sigmas: list[float]) -> list[dict]:
    """Per size: mean [95% t-interval] over seeds of every scalar; distances per sigma (mean only)."""
    out = []
    for n in sizes:
        rs = [r for r in rows if r["n"] == n]
        row = {"n": n, "seeds": len(rs)}
        for k in rs[0]:
            if k in ("n", "seed"):
                continue
            if isinstance(rs[0][k], list):
                row[k] = np.mean([r[k] for r in rs], axis=0).tolist()
            else:
                m, lo, hi = t95([r[k] for r in rs])
                # fractions: the t-interval is clipped to [0, 1] (it can overshoot with 3 seeds)
                row[k] = (m, max(lo, 0.0), min(hi, 1.0)) if k.startswith(("ms_", "rp_", "cal_")) else (m, lo, hi)
        # closer to the empirical than to the Gaussian denoiser: fraction of sigmas, per seed
        m, lo, hi = t95([np.mean(np.array(r["dist_empirical"]) < np.array(r["dist_gaussian"])) for r in rs])
        row["frac_sigma_nearer_empirical"] = (m, max(lo, 0.0), min(hi, 1.0))
        out.append(row)
    return out


def markdown(summary: list[dict], sigmas: list[float], settings: dict) -> str:
    """The committed table."""
    f = lambda v: f"{v[0]:.2f} [{v[1]:.2f}, {v[2]:.2f}]"  # noqa: E731
    i = min(range(len(sigmas)), key=lambda j: abs(math.log(sigmas[j] / 0.2)))
    lines = ["| n | threshold | MS model | GL model | RP model (disjoint A/B) | MS empirical | MS Gaussian | "
             f"RP empirical | RP Gaussian | MSE to empirical (s={sigmas[i]:g}) | MSE to Gaussian (s={sigmas[i]:g}) | "
             "sigmas nearer empirical |", "|" + "---|" * 12]
    for r in summary:
        lines.append(f"| {r['n']} | {f(r['threshold'])} | {f(r['ms_model'])} | "
                     f"{f(tuple(1 - v for v in (r['ms_model'][0], r['ms_model'][2], r['ms_model'][1])))} | "
                     f"{f(r['rp_model'])} | {f(r['ms_empirical'])} | {f(r['ms_gaussian'])} | {f(r['rp_empirical'])} | "
                     f"{f(r['rp_gaussian'])} | {r['dist_empirical'][i]:.4f} | {r['dist_gaussian'][i]:.4f} | "
                     f"{f(r['frac_sigma_nearer_empirical'])} |")
    return "\n".join([f"Settings: {settings}", "", "Mean over data seeds [95% t-interval, fractions clipped to "
                                                   "[0, 1]]. GL = 1 - MS.", "", *lines, ""])


def svg(summary: list[dict]) -> str:
    """Two panels, no plotting library: MS / RP vs n, and the nearer-to-empirical fraction of sigmas."""
    W, H, pad = 820, 340, 55
    series = [("ms_model", "MS model", "#d62728"), ("rp_model", "RP model A/B", "#2ca02c"),
              ("rp_gaussian", "RP Gaussian A/B", "#9467bd"), ("frac_sigma_nearer_empirical",
                                                             "sigmas nearer empirical", "#1f77b4")]
    xs = [math.log2(r["n"]) for r in summary]
    pw = W - 2 * pad - 170
    X = lambda v: pad + (v - min(xs)) / max(max(xs) - min(xs), 1) * pw  # noqa: E731
    Y = lambda v: H - pad - v * (H - 2 * pad)  # noqa: E731
    out = [f'<svg xmlns="http://www.w3.org/2000/svg" width="{W}" height="{H}" font-family="sans-serif" '
           'font-size="12"><rect width="100%" height="100%" fill="white"/>',
           f'<text x="{pad}" y="25" font-weight="bold">Trained denoisers between memorizer and generalizer '
           '(mean, 95% t-interval over data seeds)</text>']
    for k in range(6):
        v = k / 5
        out.append(f'<line x1="{pad}" x2="{pad + pw}" y1="{Y(v):.1f}" y2="{Y(v):.1f}" stroke="#ddd"/>'
                   f'<text x="{pad - 6}" y="{Y(v) + 4:.1f}" text-anchor="end">{v:.1f}</text>')
    for r, x in zip(summary, xs):
        out.append(f'<text x="{X(x):.1f}" y="{H - pad + 18}" text-anchor="middle">{r["n"]}</text>')
    out.append(f'<text x="{pad + pw / 2}" y="{H - 12}" text-anchor="middle">training images n</text>')
    for li, (key, name, c) in enumerate(series):
        pts = " ".join(f"{X(x):.1f},{Y(r[key][0]):.1f}" for r, x in zip(summary, xs))
        out.append(f'<polyline points="{pts}" fill="none" stroke="{c}" stroke-width="2"/>')
        for r, x in zip(summary, xs):
            m, lo, hi = r[key]
            out.append(f'<line x1="{X(x):.1f}" x2="{X(x):.1f}" y1="{Y(max(lo, 0)):.1f}" y2="{Y(min(hi, 1)):.1f}" '
                       f'stroke="{c}"/><circle cx="{X(x):.1f}" cy="{Y(m):.1f}" r="3" fill="{c}"/>')
        out.append(f'<rect x="{pad + pw + 15}" y="{60 + 20 * li}" width="12" height="3" fill="{c}"/>'
                   f'<text x="{pad + pw + 32}" y="{65 + 20 * li}">{name}</text>')
    return "\n".join(out + ["</svg>"])


def main(argv=None) -> int:
    p = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    for f in fields(ClosedFormRegimesDefaults):
        p.add_argument("--" + f.name.replace("_", "-"), type=type(f.default), default=f.default)
    p.add_argument("--out", type=Path, default=ROOT / "experiments" / "results" / "regimes_closed_form")
    p.add_argument("--work", type=Path, default=None, help="trained models and finished rows [default: OUT/work]")
    args = p.parse_args(argv)
    import torch

    from ambient_eval.files.atomic import write_json, write_text

    torch.set_num_threads(args.threads)
    t0 = time.time()
    sizes = [int(v) for v in args.sizes.split(",")]
    sigmas = [float(v) for v in args.sigmas.split(",")]
    train_pool, test_pool = pool(args.data, args.resolution)
    if 2 * max(sizes) > len(train_pool):
        raise SystemExit(f"2 x {max(sizes)} disjoint images exceed the pool of {len(train_pool)}.")
    work = args.work or args.out / "work"
    rows = []
    for n in sizes:
        for s in range(args.seeds):
            cached = work / f"row_n{n}_s{s}.json"   # finished (size, seed) rows are reused on a rerun
            if cached.is_file():
                rows.append(json.loads(cached.read_text()))
                continue
            r = run_seed(n, s, train_pool, test_pool, args, work, sigmas)
            write_json(cached, r)
            rows.append(r)
            print(f"n={n:4d} seed={s} t={r['threshold']:.3f} MS={r['ms_model']:.2f} RP={r['rp_model']:.2f} "
                  f"MS_emp={r['ms_empirical']:.2f} MS_gau={r['ms_gaussian']:.2f} RP_gau={r['rp_gaussian']:.2f} "
                  f"({time.time() - t0:.0f} s)", flush=True)
    summary = summarize(rows, sizes, sigmas)
    settings = {k: v for k, v in vars(args).items() if k not in ("out", "work")}
    write_json(args.out / "regimes_closed_form.json", {"settings": settings, "sigmas": sigmas, "rows": rows,
                                                       "summary": summary, "seconds": round(time.time() - t0, 1),
                                                       "cpu_seconds": round(time.process_time(), 1)})
    write_text(args.out / "regimes_closed_form.md", markdown(summary, sigmas, settings))
    write_text(args.out / "regimes_closed_form.svg", svg(summary))
    print(markdown(summary, sigmas, settings))
    print(f"wrote {args.out}; {time.time() - t0:.0f} s wall, {time.process_time():.0f} s CPU")
    return 0


if __name__ == "__main__":
    sys.exit(main())
