"""Write samples to {seed:06d}.png (EDM layout: subfolders of 1000) or one .npz; resumable.

PNG: every image is written atomically; existing seeds are skipped on restart.
NPZ: batches go to atomic shard files in FILE.npz.partial/ (resume = skip seeds found there);
when all seeds are done rank 0 merges them into FILE.npz (keys images NHWC uint8, seeds int64,
labels int64 for conditional models, settings JSON) and removes the partial directory.
A hidden settings file refuses resuming with a different model or sampler.
"""
from __future__ import annotations

import json
import shutil
from pathlib import Path
from typing import Sequence

import numpy as np
import torch

from ambient_eval.files import atomic
from ambient_eval.errors import AmbientError
from ambient_eval.sampling.execution import EXECUTION_KEY, describe

SETTINGS_NAME = ".ambient-sample.json"
RECORDED_ONLY = ("cpu_threads",)   # settings kept for provenance, not required to match on resume


def settings_diff(old: dict, new: dict) -> list[str]:
    """Keys whose values differ between two sample settings (RECORDED_ONLY keys ignored)."""
    return sorted(k for k in set(old) | set(new) if k not in RECORDED_ONLY and old.get(k) != new.get(k))


def png_path(out_dir: Path, seed: int) -> Path:
    """EDM layout: out/000000/000123.png, out/001000/001234.png, ..."""
    return out_dir / f"{seed - seed % 1000:06d}" / f"{seed:06d}.png"


def _remove_stale_temps(folder: Path) -> None:
    # Temp files of a killed run (atomic_path names them .<name>.<random>.tmp<suffix>).
    for p in folder.rglob(".*.tmp*"):
        if p.is_file():
            p.unlink(missing_ok=True)


def _check_settings(folder: Path, settings: dict, what: str) -> None:
    path = folder / SETTINGS_NAME
    if path.is_file():
        old = json.loads(path.read_text())
        diff = settings_diff(old, settings)
        if diff == [EXECUTION_KEY]:
            raise AmbientError(
                f"{what} already holds samples made on {describe(old.get(EXECUTION_KEY))}; this run "
                f"is on {describe(settings.get(EXECUTION_KEY))}. The pixels depend on the device and "
                "precision, so resuming would mix two kinds of samples in one set. Resume with the "
                "same --device, --autocast and --net-batch (on the same GPU model), or use a new --out.")
        if diff:
            raise AmbientError(
                f"{what} already holds samples made with different settings ({', '.join(diff)}: "
                f"{[old.get(k) for k in diff]} vs {[settings.get(k) for k in diff]}). Use a new --out, "
                "or delete it to start over.")
    else:
        atomic.write_json(path, settings)


class PngWriter:
    def __init__(self, out_dir: Path) -> None:
        self.out = Path(out_dir)

    def prepare(self, settings: dict, clean: bool = True) -> None:
        if self.out.exists() and not self.out.is_dir():
            raise AmbientError(f"--out '{self.out}' exists and is not a directory. Give a directory or a .npz.")
        atomic.ensure_writable_dir(self.out)
        if clean:
            _remove_stale_temps(self.out)
        if not (self.out / SETTINGS_NAME).is_file():   # not our earlier run: refuse to mix in
            other = next((p for p in sorted(self.out.iterdir()) if not p.name.startswith(".")), None)
            if other is not None:
                raise AmbientError(
                    f"Output directory '{self.out}' already holds files that `sample` did not write "
                    f"(e.g. '{other.name}'); new samples would be mixed with them. Use a new or empty --out.")
        _check_settings(self.out, settings, f"Output directory '{self.out}'")

    def done(self, seeds: Sequence[int]) -> set[int]:
        return {s for s in seeds if png_path(self.out, s).is_file()}

    def write(self, seeds: Sequence[int], images: torch.Tensor, labels) -> None:
        # NCHW uint8 (1 or 3 ch) => one PNG per seed.
        from PIL import Image

        arr = images.permute(0, 2, 3, 1).numpy()
        for seed, img in zip(seeds, arr):
            dest = png_path(self.out, seed)
            dest.parent.mkdir(parents=True, exist_ok=True)
            with atomic.atomic_path(dest) as tmp:
                Image.fromarray(img[:, :, 0] if img.shape[2] == 1 else img).save(tmp, format="PNG")

    def finalize(self, seeds, labels, settings) -> None:
        return None


class NpzWriter:
    def __init__(self, out_file: Path) -> None:
        self.out = Path(out_file)
        self.partial = self.out.with_name(self.out.name + ".partial")

    def prepare(self, settings: dict, clean: bool = True) -> None:
        if self.out.exists():
            raise AmbientError(f"'{self.out}' already exists. Choose another --out or delete it first "
                               "(an interrupted run resumes from its .partial directory instead).")
        atomic.ensure_writable_dir(self.partial)
        if clean:
            _remove_stale_temps(self.partial)
        _check_settings(self.partial, settings, f"Partial output '{self.partial}'")

    def _shards(self) -> list[Path]:
        return sorted(self.partial.glob("shard-*.npz"))

    def done(self, seeds: Sequence[int]) -> set[int]:
        have: set[int] = set()
        for p in self._shards():
            with np.load(p, allow_pickle=False) as z:
                have.update(int(s) for s in z["seeds"])
        return have & set(int(s) for s in seeds)

    def write(self, seeds: Sequence[int], images: torch.Tensor, labels) -> None:
        name = f"shard-{seeds[0]:012d}-{len(seeds)}.npz"
        arrays = {"images": images.permute(0, 2, 3, 1).contiguous().numpy(),
                  "seeds": np.asarray(seeds, dtype=np.int64)}
        atomic.save_npz(self.partial / name, **arrays)

    def finalize(self, seeds: Sequence[int], labels: np.ndarray | None, settings: dict) -> None:
        """Merge shards into the final .npz in the requested seed order; drop the partial dir."""
        pos = {int(s): i for i, s in enumerate(seeds)}
        images = None
        filled = np.zeros(len(seeds), dtype=bool)
        for p in self._shards():
            with np.load(p, allow_pickle=False) as z:
                sh_seeds, sh_images = z["seeds"], z["images"]
            if images is None:
                images = np.empty((len(seeds),) + sh_images.shape[1:], dtype=np.uint8)
            for s, img in zip(sh_seeds, sh_images):
                if int(s) in pos:
                    images[pos[int(s)]] = img
                    filled[pos[int(s)]] = True
        if images is None or not filled.all():
            missing = [int(s) for s, f in zip(seeds, filled) if not f][:5]
            raise AmbientError(f"Cannot assemble '{self.out}': seeds {missing} are missing from "
                               f"'{self.partial}'. Run the same command again to finish them.")
        arrays = {"images": images, "seeds": np.asarray(seeds, dtype=np.int64),
                  "settings": np.array(json.dumps(settings, sort_keys=True))}
        if labels is not None:
            arrays["labels"] = np.asarray(labels, dtype=np.int64)
        atomic.save_npz(self.out, **arrays)
        shutil.rmtree(self.partial, ignore_errors=True)


def make_writer(out: str | Path) -> PngWriter | NpzWriter:
    out = Path(out)
    return NpzWriter(out) if out.suffix.lower() == ".npz" else PngWriter(out)
