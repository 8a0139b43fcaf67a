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


def corrupt_batches(source, kind: str, level: float, fraction: float, seed: int, angle, batch_size: int):
    """Yield (idx, pixels NCHW uint8, records, observations | None) per batch, then {'summary', 'labels'}."""
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
    for idx, imgs in progress(source.iter_batches(batch_size), total=-(-n // batch_size),
                              desc=f"corrupt {kind}", unit="batch"):
        sel = np.flatnonzero(flagged[idx])
        params: list[dict | None] = [None] * len(idx)
        x = None
        if kind == "noise":
            x = C.to_model_space(imgs)                                   # NCHW float32
            if len(sel):
                x[sel], p = C.corrupt_batch(imgs[sel], idx[sel].tolist(), kind, level, seed, angle)
                for k, pk in zip(sel, p):
                    params[k] = pk
            pix = to_uint8(x)  # EDM quantisation, as the sampler writes images
        else:
            pix = imgs.clone()
            if len(sel) and kind != "label-flip":
                pix[sel], p = C.corrupt_batch(imgs[sel], idx[sel].tolist(), kind, level, seed, angle)
                for k, pk in zip(sel, p):
                    params[k] = pk
        records = [{"index": i, "name": f"{i:06d}.png", "source_name": names[i], "corrupted": bool(flagged[i]),
                    "kind": kind if flagged[i] else None,
                    "params": params[k] if kind != "label-flip" else ({"rate": float(level)} if flagged[i] else None),
                    "label_before": None if labels is None else int(labels[i]),
                    "label_after": None if new_labels is None else int(new_labels[i])}
                   for k, i in enumerate(idx.tolist())]
        yield idx, pix, records, None if x is None else x.numpy()
    summary = {"kind": kind, "level": float(level), "fraction": float(fraction) if kind != "label-flip" else None,
               "seed": int(seed), "angle": angle, "n": n, "n_corrupted": int(flagged.sum()),
               "source": source.description, "source_fingerprint": source.fingerprint(),
               "noise_unit": "model space [-1, 1]" if kind == "noise" else None,
               "tool_version": __version__}
    yield {"summary": summary, "labels": None if new_labels is None else np.asarray(new_labels, np.int64)}


def write_pngs(folder: Path, idx, pix) -> None:
    # NCHW uint8 => folder/NNNNNN.png
    from PIL import Image

    for k, i in enumerate(idx):
        img = pix[k]
        arr = img.permute(1, 2, 0).numpy() if hasattr(img, "permute") else np.transpose(img, (1, 2, 0))
        Image.fromarray(arr).save(folder / f"{int(i):06d}.png")


def write_meta(folder: Path, records: list, labels, obs, summary: dict) -> None:
    """corruption.jsonl, dataset.json (labels), observations.npz (noise) and corruption.json."""
    (folder / CORRUPTION_META).write_text("".join(json.dumps(r) + "\n" for r in records))
    if labels is not None:
        (folder / "dataset.json").write_text(json.dumps(
            {"labels": [[f"{i:06d}.png", int(v)] for i, v in enumerate(labels)]}))
    if obs is not None:
        arrays = {"observations": np.asarray(obs, np.float32)}
        if labels is not None:
            arrays["labels"] = np.asarray(labels, np.int64)
        with open(folder / OBSERVATIONS, "wb") as f:
            np.savez(f, **arrays)
    (folder / CORRUPTION_SETTINGS).write_text(json.dumps(summary, indent=2, sort_keys=True) + "\n")


def temp_dir(out: Path) -> Path:
    return Path(tempfile.mkdtemp(prefix=f".{out.name}.tmp-", dir=out.parent if str(out.parent) else "."))


def corrupt_source(source, out: str | os.PathLike, kind: str, level: float, *, fraction: float = 0.9,
                   seed: int = 0, angle: float | None = None, overwrite: bool = False,
                   batch_size: int = 256) -> dict:
    """Corrupt `source` (ImageSource) into OUT, writing each batch as it is made; => summary (counts, paths)."""
    out = Path(out)
    C.validate(kind, level, fraction)
    check_output_dir(out, overwrite)
    tmp = temp_dir(out)
    try:
        records, obs, summary, labels = [], [], None, None
        for part in corrupt_batches(source, kind, level, fraction, seed, angle, batch_size):
            if isinstance(part, dict):
                summary, labels = part["summary"], part["labels"]
                continue
            idx, pix, recs, o = part
            write_pngs(tmp, idx.tolist(), pix)
            records += recs
            if o is not None:
                obs.append(o)
        write_meta(tmp, records, labels, np.concatenate(obs) if obs else None, summary)
        replace_dir(tmp, out)
    except BaseException:
        shutil.rmtree(tmp, ignore_errors=True)
        raise
    return {**summary, "out": str(out)}


def replace_dir(tmp: Path, out: Path) -> None:
    """Move the finished temp dir to OUT (an old OUT is moved aside first, deleted after)."""
    old = None
    if out.exists():
        old = out.with_name(f".{out.name}.old-{os.getpid()}")
        os.replace(out, old)
    os.replace(tmp, out)
    if old is not None:
        shutil.rmtree(old, ignore_errors=True)
