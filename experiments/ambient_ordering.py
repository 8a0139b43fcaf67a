"""Does the bundled trainer reproduce Ambient-Omni's ordering, across corruption splits? (Daras et al. 2025)

Per setting (experiments/ordering_data.py: `digits8` = 1000 8x8 digits, 6% clean, blur 0.8 px;
`cifar16` = 1000 CIFAR-10 train images at 16 px, 10% clean, blur 0.5 px), for every corruption split
s (which images are blurred, and that split's own annotation: a classifier trained on it) and every
training seed t, four models with the same budget:
    clean-only     EDM on the clean images only
    naive-all      EDM on all images (blurred ones treated as clean)
    ambient-pixel  ambient-omni, --ambient-target pixel-loop (the official pixel-diffusion loop)
    ambient-loss   ambient-omni, --ambient-target ambient-loss (the official latent-diffusion loop)
Metrics vs HELD-OUT images (never trained on): FD on (pooled) raw pixels -- NOT Inception FID, not
comparable with papers --, precision / recall (k = 3), and the memorised fraction (Pearson correlation
> 0.95 with a clean training image). Intervals: 95% Student-t over the SPLIT means (each the mean
over seeds), so they include the split-to-split variance (experiments/ordering_stats.py).

    make experiment                                     # both settings, 3 splits x 3 seeds
    python experiments/ambient_ordering.py --setting cifar16 --out DIR   # one setting (parallel)
    python experiments/ambient_ordering.py --aggregate-only              # tables + figure from cells
    python experiments/ambient_ordering.py --smoke --out /tmp/x --results /tmp/x   # seconds (tests)
Cells are cached as OUT/<setting>/cell-s{S}-t{T}.json (an interrupted run resumes); results go to
experiments/results/ambient_ordering.{md,csv,svg}.
"""
from __future__ import annotations

import argparse
import json
import os
import sys
import time
from dataclasses import asdict, replace
from pathlib import Path

import numpy as np

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))
MODELS = ("clean-only", "naive-all", "ambient-pixel", "ambient-loss")
COMMON = {"arch": "tiny", "lr": 2e-3, "ema": 2.0, "ann_grid": 16, "ann_draws": 2, "samples": 200,
          "sample_steps": 10, "mem_threshold": 0.95}


def annotated_split(st, pool, split: int, out: Path):
    """Split `split`: which images are blurred, the mixed pool, and sigma_tn from that split's own
    classifier (cached in out/annotation-s{split}.npz) => (corrupted bool (N,), NCHW uint8, sigma_tn (N,))."""
    import torch

    from ambient_eval.data.corruptions import gaussian_blur, select_corrupted
    from ambient_eval.training.annotate import AnnotateConfig, annotate

    corrupted = select_corrupted(len(pool), 1 - st.clean_fraction, split)
    cm = torch.from_numpy(corrupted)
    mixed = pool.clone()
    mixed[cm] = gaussian_blur(pool[cm], st.blur)
    cache = out / f"annotation-s{split}.npz"
    key = json.dumps([st.name, st.resolution, st.n, st.clean_fraction, st.blur, st.ann_steps, COMMON["ann_grid"],
                      COMMON["ann_draws"], split])
    if cache.is_file():
        with np.load(cache) as z:
            if str(z["key"]) == key:
                return corrupted, mixed, z["sigma_tn"]
    ci = np.flatnonzero(corrupted)
    ann = annotate(mixed[~cm], mixed[cm], ci, AnnotateConfig(steps=st.ann_steps, grid_size=COMMON["ann_grid"],
                                                              draws=COMMON["ann_draws"], seed=split))
    sigma_tn = np.zeros(len(pool), np.float32)
    sigma_tn[ci] = ann["sigma_tn"]
    np.savez(cache, key=key, sigma_tn=sigma_tn)
    return corrupted, mixed, sigma_tn


def clean_draw_share(sigma_tn: np.ndarray, P_mean: float = -1.2, P_std: float = 1.2, n: int = 4000) -> float:
    """Expected share of ambient's batch slots that hold a clean image (sigma-first draws)."""
    import torch

    from ambient_eval.training.batches import draw_probability

    stn = torch.from_numpy(sigma_tn)
    sig = np.exp(np.random.default_rng(0).standard_normal(n) * P_std + P_mean)
    return float(np.mean([float(draw_probability(float(s), stn)[stn == 0].sum()) for s in sig]))


def run_cell(st, split: int, seed: int, pool, ref, out: Path, runs_root: Path | None = None) -> dict:
    """Train and evaluate the four models of cell (split, seed) => row dict."""
    import torch

    from ambient_eval.files.hashing import sha256_json
    from ambient_eval.models import load_model
    from ambient_eval.sampling.generate import generate
    from ambient_eval.training.config import TrainConfig
    from ambient_eval.training.dataset import TrainData
    from ambient_eval.training.loop import train
    from experiments.ordering_data import features, metrics

    corrupted, mixed, sigma_tn = annotated_split(st, pool, split, out)
    cm = torch.from_numpy(corrupted)
    ref_f = features(ref, st)

    def data(imgs, desc):
        return TrainData(desc, sha256_json([desc, split, st.blur]), imgs, None, [str(i) for i in range(len(imgs))])

    runs = {"clean-only": (data(pool[~cm], "clean subset"), "baseline", None, "pixel-loop"),
            "naive-all": (data(mixed, "mixed"), "baseline", None, "pixel-loop"),
            "ambient-pixel": (data(mixed, "mixed"), "ambient-omni", sigma_tn, "pixel-loop"),
            "ambient-loss": (data(mixed, "mixed"), "ambient-omni", sigma_tn, "ambient-loss")}
    row: dict = {"setting": st.name, "split": split, "seed": seed}
    for name, (d, method, stn, target) in runs.items():
        t0 = time.time()
        cfg = TrainConfig(method=method, arch=COMMON["arch"], steps=st.steps, batch=st.batch, lr=COMMON["lr"],
                          warmup_steps=min(100, st.steps // 10), ema_halflife_kimg=COMMON["ema"], seed=seed,
                          ambient_target=target, checkpoint_every=st.steps, device="cpu")
        run_dir = (runs_root or out) / f"s{split}-t{seed}" / name
        train(d, cfg, run_dir, sigma_tn=stn, overwrite=True)
        model = load_model(run_dir / "final", device="cpu")
        seeds = list(range(10_000 * seed, 10_000 * seed + COMMON["samples"]))
        imgs = torch.cat([x for _, x in generate(model, seeds, batch_size=300, steps=COMMON["sample_steps"],
                                                 device="cpu")])
        m = metrics(imgs, ref_f, pool[~cm], st, COMMON["mem_threshold"])
        row.update({f"{name}.{k}": v for k, v in m.items()})
        print(f"  {st.name} s{split} t{seed} {name:<13} FD {m['fd']:7.3f}  recall {m['recall']:.3f}  "
              f"memorised {m['memorized']:.3f}  ({time.time() - t0:.0f} s)", flush=True)
    return row


def split_info(st, pool, split: int, out: Path, ref) -> dict:
    """Per split: sigma_tn distribution of the blurred images, clean draw share, data reference FDs."""
    import torch

    from ambient_eval.metrics.fid import fid_from_features
    from experiments.ordering_data import features

    corrupted, mixed, sigma_tn = annotated_split(st, pool, split, out)
    b = sigma_tn[corrupted]
    cm = torch.from_numpy(corrupted)
    ref_f = features(ref, st)
    q = np.quantile(b, [0.1, 0.5, 0.9])
    return {"setting": st.name, "split": split, "n_clean": int((~corrupted).sum()), "n_blurred": int(corrupted.sum()),
            "sigma_tn_q10": float(q[0]), "sigma_tn_median": float(q[1]), "sigma_tn_q90": float(q[2]),
            "sigma_tn_at_grid_max": float((b >= 10.0 - 1e-4).mean()), "sigma_tn_at_grid_min": float((b <= 0.0101).mean()),
            "clean_draw_share": clean_draw_share(sigma_tn),
            "clean_subset_fd": float(fid_from_features(features(pool[~cm], st), ref_f)),
            "blurred_fd": float(fid_from_features(features(mixed[cm], st), ref_f))}


def smoke(st):
    """A seconds-long version of a setting (tests)."""
    return replace(st, n=60, steps=4, batch=8, ann_steps=3)


def main(argv=None) -> int:
    from experiments.ordering_data import SETTINGS, load_setting

    p = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("--setting", choices=[*SETTINGS, "all"], default="all")
    p.add_argument("--splits", type=int, default=3, help="corruption splits 0..K-1 (each with its own annotation)")
    p.add_argument("--seeds", type=int, default=3, help="training seeds 0..K-1 per split")
    p.add_argument("--out", type=Path, default=ROOT / "experiments_out" / "ambient_ordering")
    p.add_argument("--results", type=Path, default=ROOT / "experiments" / "results")
    p.add_argument("--aggregate-only", action="store_true", help="rebuild the tables from the cached cells")
    p.add_argument("--no-aggregate", action="store_true", help="run cells only (one setting per process)")
    p.add_argument("--smoke", action="store_true", help="tiny sizes (seconds; digits8 only unless --setting)")
    p.add_argument("--threads", type=int, default=1, help="torch CPU threads")
    p.add_argument("--cells", default=None, help="only these cells, in this order: 'S:T,S:T,...' (extra processes; "
                   "their run directories go to OUT/<setting>/runs-<pid> so processes never share one)")
    a = p.parse_args(argv)
    import torch

    torch.set_num_threads(a.threads)
    saved = dict(COMMON)
    if a.smoke:
        COMMON.update(samples=24, sample_steps=3, ann_grid=6, ann_draws=1)
    try:
        return _run(a, t0=time.time())
    finally:
        COMMON.clear()
        COMMON.update(saved)


def _run(a, t0: float) -> int:
    from experiments.ordering_data import SETTINGS, load_setting
    from experiments.ordering_stats import write_results

    from experiments.ordering_data import CIFAR_TAR

    names = list(SETTINGS) if a.setting == "all" else [a.setting]
    if a.setting == "all" and not CIFAR_TAR.is_file():
        print(f"cifar16 skipped: {CIFAR_TAR} is missing (see ../shared/data/README.md)")
        names.remove("cifar16")
    if a.smoke and a.setting == "all":
        names = ["digits8"]
    for name in names if not a.aggregate_only else []:
        st = smoke(SETTINGS[name]) if a.smoke else SETTINGS[name]
        out = a.out / name
        out.mkdir(parents=True, exist_ok=True)
        settings = {**asdict(st), **COMMON}
        pool, ref = load_setting(st)
        from ambient_eval.files.atomic import write_json

        cells = ([tuple(map(int, c.split(":"))) for c in a.cells.split(",")] if a.cells
                 else [(s, t) for s in range(a.splits) for t in range(a.seeds)])
        runs = out / f"runs-{os.getpid()}" if a.cells else None
        for s, t in cells:
            f = out / f"split-s{s}.json"
            if not (f.is_file() and json.loads(f.read_text()).get("settings") == settings):
                write_json(f, {**split_info(st, pool, s, out, ref), "settings": settings})
            f = out / f"cell-s{s}-t{t}.json"
            if f.is_file() and json.loads(f.read_text()).get("settings") == settings:
                print(f"{name} s{s} t{t}: reusing {f}")
                continue
            write_json(f, {**run_cell(st, s, t, pool, ref, out, runs), "settings": settings})
    if a.no_aggregate:
        print(f"cells done ({time.time() - t0:.0f} s); run --aggregate-only when every setting is")
        return 0
    res = write_results(a.out, a.results, a.splits, a.seeds, MODELS)
    print(json.dumps(res, indent=1))
    print(f"-> {a.results / 'ambient_ordering.md'} ({time.time() - t0:.0f} s)")
    return 0


if __name__ == "__main__":
    sys.exit(main())
