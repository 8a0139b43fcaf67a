"""`corrupt`: write a corrupted copy of an image source plus per-sample metadata (atomically).

OUT/ (a directory, created whole or not at all)
  NNNNNN.png          every sample (corrupted or not), in source order; noise samples quantised
  dataset.json        EDM-style labels {"labels": [["000000.png", label], ...]} (after flips)
  corruption.jsonl    per sample: index, name, source_name, corrupted, kind, params, label_before, label_after
  corruption.json     settings, source fingerprint, counts
  observations.npz    --kind noise only: 'observations' float32 NCHW model space [-1, 1] (exact, not
                      rounded; what `train --method noisy` reads) and 'labels'
"""
from __future__ import annotations

import json
import os
import shutil
import tempfile
from pathlib import Path

import numpy as np

from ambient_eval import __version__
from ambient_eval.files.atomic import ensure_writable_dir
from ambient_eval.data import corruptions as C
from ambient_eval.errors import AmbientError
from ambient_eval.runtime.progress import progress
from ambient_eval.sampling.generate import to_uint8
from ambient_eval.training.dataset import CORRUPTION_META, CORRUPTION_SETTINGS, OBSERVATIONS


def check_output_dir(out: Path, overwrite: bool) -> None:
    """AmbientError if OUT exists and is a file, or is a non-empty directory without --overwrite."""
    if out.exists() and not out.is_dir():
        raise AmbientError(f"Output '{out}' is a file. Choose a directory path with -o.")
    if out.is_dir() and any(out.iterdir()) and not overwrite:
        raise AmbientError(f"Output directory '{out}' is not empty. Choose a new directory or pass --overwrite.")
    ensure_writable_dir(out.parent if str(out.parent) else Path("."))


def corrupt_source(source, out: str | os.PathLike, kind: str, level: float, *, fraction: float = 0.9,
                   seed: int = 0, angle: float | None = None, overwrite: bool = False,
                   batch_size: int = 256) -> dict:
    """Corrupt `source` (ImageSource) into OUT; => summary (counts, paths)."""
    from PIL import Image

    out = Path(out)
    C.validate(kind, level, fraction)
    check_output_dir(out, overwrite)
    n = len(source)
    labels = source.labels()
    names = source.item_names()
    if kind == "label-flip":
        if labels is None:
            raise AmbientError(f"--kind label-flip needs class labels, but {source.description} has none. "
                               "Use a source with labels (dataset.json, class folders, npz 'labels').")
        new_labels, flagged = C.flip_labels(labels, level, int(labels.max()) + 1, seed)
    else:
        flagged = C.select_corrupted(n, fraction, seed)
        new_labels = labels
    tmp = Path(tempfile.mkdtemp(prefix=f".{out.name}.tmp-", dir=out.parent if str(out.parent) else "."))
    try:
        records, obs = [], []
        for idx, imgs in progress(source.iter_batches(batch_size), total=-(-n // batch_size),
                                  desc=f"corrupt {kind}", unit="batch"):
            sel = np.flatnonzero(flagged[idx])
            params: list[dict | None] = [None] * len(idx)
            if kind == "noise":
                x = C.to_model_space(imgs)                                   # NCHW float32
                if len(sel):
                    x[sel], p = C.corrupt_batch(imgs[sel], idx[sel].tolist(), kind, level, seed, angle)
                    for k, pk in zip(sel, p):
                        params[k] = pk
                obs.append(x.numpy())
                pix = to_uint8(x)  # EDM quantisation, as the sampler writes images
            else:
                pix = imgs.clone()
                if len(sel) and kind != "label-flip":
                    pix[sel], p = C.corrupt_batch(imgs[sel], idx[sel].tolist(), kind, level, seed, angle)
                    for k, pk in zip(sel, p):
                        params[k] = pk
            for k, i in enumerate(idx.tolist()):
                fname = f"{i:06d}.png"
                Image.fromarray(pix[k].permute(1, 2, 0).numpy()).save(tmp / fname)
                rec = {"index": i, "name": fname, "source_name": names[i], "corrupted": bool(flagged[i]),
                       "kind": kind if flagged[i] else None,
                       "params": params[k] if kind != "label-flip" else ({"rate": float(level)} if flagged[i] else None),
                       "label_before": None if labels is None else int(labels[i]),
                       "label_after": None if new_labels is None else int(new_labels[i])}
                records.append(rec)
        (tmp / CORRUPTION_META).write_text("".join(json.dumps(r) + "\n" for r in records))
        if new_labels is not None:
            (tmp / "dataset.json").write_text(json.dumps(
                {"labels": [[f"{i:06d}.png", int(v)] for i, v in enumerate(new_labels)]}))
        if kind == "noise":
            arrays = {"observations": np.concatenate(obs).astype(np.float32)}
            if new_labels is not None:
                arrays["labels"] = np.asarray(new_labels, np.int64)
            with open(tmp / OBSERVATIONS, "wb") as f:
                np.savez(f, **arrays)
        summary = {"kind": kind, "level": float(level), "fraction": float(fraction) if kind != "label-flip" else None,
                   "seed": int(seed), "angle": angle, "n": n, "n_corrupted": int(flagged.sum()),
                   "source": source.description, "source_fingerprint": source.fingerprint(),
                   "noise_unit": "model space [-1, 1]" if kind == "noise" else None,
                   "tool_version": __version__}
        (tmp / CORRUPTION_SETTINGS).write_text(json.dumps(summary, indent=2, sort_keys=True) + "\n")
        _replace_dir(tmp, out)
    except BaseException:
        shutil.rmtree(tmp, ignore_errors=True)
        raise
    return {**summary, "out": str(out)}


def _replace_dir(tmp: Path, out: Path) -> None:
    """Move the finished temp dir to OUT (an old OUT is moved aside first, deleted after)."""
    old = None
    if out.exists():
        old = out.with_name(f".{out.name}.old-{os.getpid()}")
        os.replace(out, old)
    os.replace(tmp, out)
    if old is not None:
        shutil.rmtree(old, ignore_errors=True)
