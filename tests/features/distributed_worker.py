"""Run by tests/features/test_distributed.py under torchrun (2 gloo ranks) or alone (1 process).

    python -m torch.distributed.run --nproc_per_node 2 tests/features/distributed_worker.py IMAGES.npy OUT/
"""
from __future__ import annotations

import sys
from pathlib import Path

import numpy as np


def main(images_path: str, out: str) -> None:
    from ambient_eval.cli.app import app
    from ambient_eval.data import ArraySource
    from ambient_eval.features import FeatureCache, extract_features, get_extractor
    from ambient_eval.features.distributed import feature_group, is_main
    from tests.features.conftest import CountingExtractor

    out_dir = Path(out)
    images = np.load(images_path)
    with feature_group("cpu") as (rank, world):
        ex = CountingExtractor(get_extractor("pixel-8", device="cpu"))
        feats = extract_features(ArraySource(images), ex, batch_size=3, cache=FeatureCache(out_dir / "cache"))
        (out_dir / f"images_rank{rank}.txt").write_text(str(ex.images))
        np.save(out_dir / f"features_rank{rank}.npy", feats["embedding"])   # every rank has all rows
        # the stats command joins the same group; only rank 0 may write (each rank names its own file)
        app(["stats", images_path, "-o", str(out_dir / f"stats_rank{rank}.npz"), "--features", "pixel-8",
             "--device", "cpu", "--batch", "3", "--no-cache"], standalone_mode=False)
        (out_dir / f"main_rank{rank}.txt").write_text(str(is_main()))


if __name__ == "__main__":
    main(sys.argv[1], sys.argv[2])
