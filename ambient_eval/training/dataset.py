"""Training data: images (or float observations) in model space, labels, per-sample sigma_tn.

Also the on-disk formats this area owns:
  corrupt output  OUT/ NNNNNN.png, dataset.json (EDM labels), corruption.jsonl (one record per
                  sample), corruption.json (settings), and for --kind noise observations.npz
                  ('observations' float32 NCHW in model space, 'labels'): the exact noisy data.
  annotations     JSONL; line 1 = header {"kind": "ambient-eval.annotations", dataset_fingerprint,
                  n, rule, ...}, then {"index", "name", "corrupted", "sigma_tn"} per sample, in order.
"""
from __future__ import annotations

import json
import os
from dataclasses import dataclass
from pathlib import Path

import numpy as np
import torch

from ambient_eval.errors import AmbientError

ANNOTATIONS_KIND = "ambient-eval.annotations"
CORRUPTION_META = "corruption.jsonl"
CORRUPTION_SETTINGS = "corruption.json"
OBSERVATIONS = "observations.npz"


@dataclass
class TrainData:
    """Everything the loop samples from. Arrays are indexed by dataset position."""

    description: str  # where the data came from
    fingerprint: str  # ImageSource fingerprint (or sha256 of observations.npz)
    images: torch.Tensor  # NCHW uint8 (3 ch), or NCHW float32 model-space observations (noise data)
    labels: np.ndarray | None  # int64 (N,) or None
    names: list[str]  # item names, for annotations and logs
    sigma_n: float | None = None  # observation noise recorded by `corrupt --kind noise`

    def __len__(self) -> int:
        return int(self.images.shape[0])

    @property
    def resolution(self) -> int:
        return int(self.images.shape[-1])

    @property
    def num_classes(self) -> int:
        return 0 if self.labels is None else int(self.labels.max()) + 1

    def batch(self, idx: torch.Tensor, device) -> torch.Tensor:
        """Positions => NCHW float32 model space on device."""
        x = self.images[idx]
        if x.dtype == torch.uint8:
            return x.to(device).to(torch.float32) / 127.5 - 1.0
        return x.to(device)


def load_train_data(spec: str | os.PathLike, resolution: int | None = None) -> TrainData:
    """DATA argument => TrainData (held in memory; uint8 unless the data are float observations)."""
    from ambient_eval.data import open_source
    from ambient_eval.files.hashing import sha256_file

    p = Path(spec)
    if p.is_dir() and (p / OBSERVATIONS).is_file():
        obs_path = p / OBSERVATIONS
        try:
            with np.load(obs_path, allow_pickle=False) as z:
                obs = np.asarray(z["observations"], dtype=np.float32)
                labels = np.asarray(z["labels"], dtype=np.int64) if "labels" in z.files else None
        except (OSError, ValueError, KeyError) as e:
            raise AmbientError(f"Cannot read '{obs_path}': {e}. Re-create it with `ambient-eval corrupt "
                               "--kind noise`.") from e
        if obs.ndim != 4 or not np.isfinite(obs).all():
            raise AmbientError(f"'{obs_path}' observations have shape {obs.shape} or non-finite values; "
                               "expected finite float32 NCHW. Re-create it.")
        if resolution is not None and resolution != obs.shape[-1]:
            raise AmbientError(f"--resolution {resolution} cannot resize float observations of size "
                               f"{obs.shape[-1]} in '{obs_path}'. Drop --resolution.")
        settings = _read_json(p / CORRUPTION_SETTINGS)
        sigma_n = settings.get("level") if settings.get("kind") == "noise" else None
        labels = labels if labels is not None and labels.size == len(obs) else None
        return TrainData(f"observations {obs_path}", sha256_file(obs_path), torch.from_numpy(obs), labels,
                         [f"{i:06d}.png" for i in range(len(obs))], sigma_n)
    src = open_source(spec, resize=resolution)
    chunks = [imgs for _, imgs in src.iter_batches(512)]
    images = torch.cat(chunks)                                           # NCHW uint8, 3 ch
    labels = src.labels()
    return TrainData(src.description, src.fingerprint(), images, labels, src.item_names())


def _read_json(path: Path) -> dict:
    try:
        return json.loads(path.read_text()) if path.is_file() else {}
    except (OSError, ValueError):
        return {}


def corruption_flags(spec: str | os.PathLike, n: int) -> np.ndarray | None:
    """bool (n,) 'corrupted' flags from OUT/corruption.jsonl written by `corrupt`, or None."""
    p = Path(spec) / CORRUPTION_META
    if not p.is_file():
        return None
    try:
        rows = [json.loads(line) for line in p.read_text().splitlines() if line.strip()]
        flags = np.array([bool(r["corrupted"]) for r in sorted(rows, key=lambda r: r["index"])])
    except (OSError, ValueError, KeyError, TypeError) as e:
        raise AmbientError(f"Cannot parse '{p}': {e}. Re-create the data with `ambient-eval corrupt`.") from e
    if len(flags) != n:
        raise AmbientError(f"'{p}' describes {len(flags)} samples but the folder holds {n} images. "
                           "Re-create the data with `ambient-eval corrupt` (do not edit the folder).")
    return flags


def annotations_text(header: dict, names: list[str], corrupted: np.ndarray, sigma_tn: np.ndarray) -> str:
    """The annotations JSONL content."""
    head = {"kind": ANNOTATIONS_KIND, "version": 1, "n": len(names), **header}
    lines = [json.dumps(head, sort_keys=True, allow_nan=False)]
    for i, (name, c, s) in enumerate(zip(names, corrupted, sigma_tn)):
        lines.append(json.dumps({"index": i, "name": name, "corrupted": bool(c), "sigma_tn": float(s)},
                                allow_nan=False))
    return "\n".join(lines) + "\n"


def read_annotations(path: str | os.PathLike, data: TrainData) -> tuple[np.ndarray, dict]:
    """Annotations file => (sigma_tn float32 (N,), header), verified against `data`."""
    p = Path(path)
    try:
        lines = [ln for ln in p.read_text().splitlines() if ln.strip()]
        header = json.loads(lines[0]) if lines else {}
        rows = [json.loads(ln) for ln in lines[1:]]
    except (OSError, ValueError, UnicodeDecodeError) as e:
        raise AmbientError(f"Cannot read annotations '{p}': {e}. Create them with `ambient-eval annotate`.") from e
    if not isinstance(header, dict) or header.get("kind") != ANNOTATIONS_KIND:
        raise AmbientError(f"'{p}' is not an ambient-eval annotations file (first line must be its header). "
                           "Create it with `ambient-eval annotate`.")
    if len(rows) != len(data) or header.get("n") != len(data):
        raise AmbientError(f"Annotations '{p}' describe {len(rows)} samples but the training data "
                           f"({data.description}) has {len(data)}. Annotate this dataset.")
    if header.get("dataset_fingerprint") != data.fingerprint:
        raise AmbientError(f"Annotations '{p}' were made for dataset fingerprint "
                           f"{str(header.get('dataset_fingerprint'))[:12]}... but the training data "
                           f"({data.description}) has {data.fingerprint[:12]}.... Annotate this dataset "
                           "(same files, same --resolution).")
    try:
        sigma = np.array([float(r["sigma_tn"]) for r in sorted(rows, key=lambda r: int(r["index"]))])
    except (KeyError, TypeError, ValueError) as e:
        raise AmbientError(f"Annotations '{p}' have a malformed record: {e}. Re-create them.") from e
    if not (np.isfinite(sigma).all() and (sigma >= 0).all()):
        raise AmbientError(f"Annotations '{p}' contain negative or non-finite sigma_tn. Re-create them.")
    return sigma.astype(np.float32), header


def read_sigma_max(path: str | os.PathLike, n: int) -> np.ndarray | None:
    """Locality branch: optional per-record "sigma_max" of an annotations file => float32 (n,) or None.

    An image with sigma_max > 0 is used as CLEAN at sigma_t < sigma_max (Ambient-Omni Sec. 4:
    small crops of an out-of-distribution image look like in-distribution data at low noise).
    Call after read_annotations (which validated the file)."""
    rows = [json.loads(ln) for ln in Path(path).read_text().splitlines()[1:] if ln.strip()]
    if not any("sigma_max" in r for r in rows):
        return None
    try:
        smax = np.array([float(r.get("sigma_max", 0.0)) for r in sorted(rows, key=lambda r: int(r["index"]))])
    except (TypeError, ValueError) as e:
        raise AmbientError(f"Annotations '{path}' have a malformed sigma_max: {e}. Re-create them.") from e
    if len(smax) != n or not (np.isfinite(smax).all() and (smax >= 0).all()):
        raise AmbientError(f"Annotations '{path}' contain negative or non-finite sigma_max. Re-create them.")
    return smax.astype(np.float32)
