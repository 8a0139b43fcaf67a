"""Experiment: recall of the memorization audit per copy modification, on real CIFAR-10 images.

Training set = the first N of ../shared/data/cifar10-test-first1000.npz; generated set = the
remaining images (novel) + exact, flipped, shifted (1, 2 px), JPEG-75 and noisy copies of
training images. Recall = fraction of a modification's copies flagged above t AND matched to
their source image.

    .venv/bin/python benchmarks/memorization_planted.py [--embed pixel] [--n-train 900] [--per-mod 50]

Writes bench_out/memorization_planted.json and prints a table.
"""
from __future__ import annotations

import argparse
import json
import sys
from pathlib import Path

import numpy as np

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))
DATA = ROOT.parent / "shared" / "data" / "cifar10-test-first1000.npz"


def main() -> None:
    from ambient_eval.audits.memorization_run import MemorizationConfig, run_memorization
    from ambient_eval.data import ArraySource
    from tests.audits.planted import MODS, modify

    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--embed", default="pixel", help="--embed name (default pixel: needs no weights)")
    ap.add_argument("--weights", default=None, help="weights file of the embedding network")
    ap.add_argument("--n-train", type=int, default=900, help="training images (rest are novel samples)")
    ap.add_argument("--per-mod", type=int, default=50, help="planted copies per modification")
    ap.add_argument("--seed", type=int, default=0)
    ap.add_argument("--out", default=str(ROOT / "bench_out" / "memorization_planted.json"))
    args = ap.parse_args()
    if not DATA.is_file():
        sys.exit(f"{DATA} not found (real data lives only on project machines).")
    images = np.load(DATA)["images"]
    train, novel = images[:args.n_train], images[args.n_train:]
    rng = np.random.default_rng(args.seed)
    src = rng.choice(len(train), len(MODS) * args.per_mod, replace=False)
    gen, mods, srcs = list(novel), ["novel"] * len(novel), [-1] * len(novel)
    for j, mod in enumerate(MODS):
        for i in src[j * args.per_mod:(j + 1) * args.per_mod]:
            gen.append(modify(train[i], mod, rng))
            mods.append(mod)
            srcs.append(int(i))
    cfg = MemorizationConfig(embed=args.embed, weights=args.weights, n_boot=0, device="cpu")
    audit = run_memorization({"planted": ArraySource(np.stack(gen))}, ArraySource(train), cfg)
    t = audit.models[0].table
    mods, srcs = np.array(mods), np.array(srcs)
    rows = []
    for mod in ("novel", *MODS):
        sel = mods == mod
        sims = t["top1_sim"].to_numpy()[sel]
        match = t["top1_index"].to_numpy()[sel] == srcs[sel]
        row = {"modification": mod, "n": int(sel.sum()), "median_top1": float(np.median(sims))}
        for th in audit.thresholds:
            flagged = sims > th
            row[f"recall@{th:g}" if mod != "novel" else f"false_pos@{th:g}"] = float(
                (flagged & match).mean() if mod != "novel" else flagged.mean())
        rows.append(row)
    print(f"embed={args.embed} train={len(train)} generated={len(gen)} thresholds={audit.thresholds}")
    for r in rows:
        print("  ".join(f"{k}={v:.3f}" if isinstance(v, float) else f"{k}={v}" for k, v in r.items()))
    out = Path(args.out)
    out.parent.mkdir(parents=True, exist_ok=True)
    out.write_text(json.dumps({"embed": args.embed, "thresholds": list(audit.thresholds), "rows": rows},
                              indent=2) + "\n")
    print(f"wrote {out}")


if __name__ == "__main__":
    main()
