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
from dataclasses import dataclass
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


@dataclass(frozen=True)
class CorruptResult:
    """A corrupted copy of a dataset: its pixels, per-sample records and settings (what OUT/ holds).

    `records` are corruption.jsonl's rows (index, name, source_name, corrupted, kind, params,
    label_before, label_after); `summary` is corruption.json. `images` (NCHW uint8, what the
    PNGs hold) and `observations` (--kind noise: NCHW float32 model space) are None when the
    result was written with `out=` (they are in OUT).
    """

    summary: dict                        # corruption.json: settings, source fingerprint, counts
    records: list                        # corruption.jsonl rows, one per sample in source order
    labels: np.ndarray | None            # (N,) int64 labels after any flip (dataset.json), or None
    images: np.ndarray | None = None     # NCHW uint8 pixels; None when written with out=
    observations: np.ndarray | None = None  # --kind noise: NCHW float32 [-1, 1]; None otherwise / out=
    out: Path | None = None              # OUT when written with out=

    def to_pandas(self):
        """One row per sample: corruption.jsonl's fields (params as a dict column)."""
        import pandas as pd

        return pd.DataFrame(self.records, columns=list(RECORD_KEYS))

    def save(self, dir: str | os.PathLike, *, overwrite: bool = False) -> Path:
        """Write OUT/ as `ambient-eval corrupt -o DIR` does, all or nothing (temp dir renamed into place)."""
        out = Path(dir)
        check_output_dir(out, overwrite)
        if self.images is None:       # written with out=: copy that folder
            tmp = _temp_dir(out)
            try:
                shutil.copytree(self.out, tmp, dirs_exist_ok=True)
                _replace_dir(tmp, out)
            except BaseException:
                shutil.rmtree(tmp, ignore_errors=True)
                raise
            return out
        tmp = _temp_dir(out)
        try:
            _write_pngs(tmp, range(len(self.images)), self.images)
            _write_meta(tmp, self.records, self.labels, self.observations, self.summary)
            _replace_dir(tmp, out)
        except BaseException:
            shutil.rmtree(tmp, ignore_errors=True)
            raise
        return out


RECORD_KEYS = ("index", "name", "source_name", "corrupted", "kind", "params", "label_before", "label_after")


def corrupt(source, kind: str, level: float, *, fraction: float = 0.9, seed: int = 0, angle: float | None = None,
            resolution: int | None = None, max_images: int | None = None, out: str | os.PathLike | None = None,
            overwrite: bool = False, batch_size: int = 256) -> CorruptResult:
    """Corrupt a dataset deterministically (given `seed`), as `ambient-eval corrupt`.

    `source` is any image source the toolkit reads (a path, `builtin:digits`, ... or an opened
    ImageSource); `kind` is blur, jpeg, motion-blur, noise or label-flip and `level` its strength
    (blur: sigma_B pixels; jpeg: quality; motion-blur: kernel length; noise: sigma_n in model
    space; label-flip: flip rate); `fraction` of the images is corrupted (image kinds).
    Without `out` the corrupted copy is kept in memory (`.save(dir)` writes it); with `out` it is
    written while it is made (for datasets too large for memory) and the result describes it.

    Returns:
        A [CorruptResult][ambient_eval.training.corrupt.CorruptResult]: `.to_pandas()` one row per
        sample, `.save(dir)` the folder `train` and `annotate` read.

    Examples:
        >>> import ambient_eval as ae
        >>> res = ae.corrupt("builtin:digits", "blur", 1.0, fraction=0.5, max_images=20)
        >>> res.summary["n"], res.summary["n_corrupted"]
        (20, 10)
        >>> res.to_pandas()["corrupted"].sum()
        10
        >>> _ = res.save("blurred")     # blurred/000000.png ..., corruption.jsonl, corruption.json
    """
    from ambient_eval.data import open_source

    C.validate(kind, level, fraction)
    if out is not None:
        check_output_dir(Path(out), overwrite)
        _check_outside_source(source, Path(out))
    src = open_source(source, resize=resolution, max_images=max_images)
    if out is not None:
        res = corrupt_source(src, out, kind, level, fraction=fraction, seed=seed, angle=angle, overwrite=overwrite,
                             batch_size=batch_size)
        out = Path(out)
        records = [json.loads(line) for line in (out / CORRUPTION_META).read_text().splitlines()]
        labels = _labels_after(records)
        return CorruptResult(summary={k: v for k, v in res.items() if k != "out"}, records=records,
                             labels=labels, out=out)
    pix, records, obs, labels, summary = [], [], [], None, None
    for part in _corrupt_batches(src, kind, level, fraction, seed, angle, batch_size):
        if isinstance(part, dict):
            summary, labels = part["summary"], part["labels"]
            continue
        idx, p, recs, o = part
        pix.append(p.numpy())
        records += recs
        if o is not None:
            obs.append(o)
    images = np.concatenate(pix) if pix else np.zeros((0, 3, 1, 1), np.uint8)
    return CorruptResult(summary=summary, records=records, labels=labels, images=images,
                         observations=np.concatenate(obs).astype(np.float32) if obs else None)


def _check_outside_source(source, out: Path) -> None:
    if not isinstance(source, (str, os.PathLike)):
        return
    head = Path(str(source).split("#")[0])
    if head.is_dir() and (out.resolve() == head.resolve() or head.resolve() in out.resolve().parents):
        raise AmbientError(f"-o '{out}' is inside the source folder '{source}': the corrupted copy would be "
                           "written into (and later read as part of) its own source. Choose -o outside it.")


def _labels_after(records: list) -> np.ndarray | None:
    if not records or records[0]["label_after"] is None:
        return None
    return np.asarray([r["label_after"] for r in records], np.int64)


def _corrupt_batches(source, kind: str, level: float, fraction: float, seed: int, angle, batch_size: int):
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


def _write_pngs(folder: Path, idx, pix) -> None:
    # NCHW uint8 => folder/NNNNNN.png
    from PIL import Image

    for k, i in enumerate(idx):
        img = pix[k]
        arr = img.permute(1, 2, 0).numpy() if hasattr(img, "permute") else np.transpose(img, (1, 2, 0))
        Image.fromarray(arr).save(folder / f"{int(i):06d}.png")


def _write_meta(folder: Path, records: list, labels, obs, summary: dict) -> None:
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


def _temp_dir(out: Path) -> Path:
    return Path(tempfile.mkdtemp(prefix=f".{out.name}.tmp-", dir=out.parent if str(out.parent) else "."))


def corrupt_source(source, out: str | os.PathLike, kind: str, level: float, *, fraction: float = 0.9,
                   seed: int = 0, angle: float | None = None, overwrite: bool = False,
                   batch_size: int = 256) -> dict:
    """Corrupt `source` (ImageSource) into OUT, writing each batch as it is made; => summary (counts, paths)."""
    out = Path(out)
    C.validate(kind, level, fraction)
    check_output_dir(out, overwrite)
    tmp = _temp_dir(out)
    try:
        records, obs, summary, labels = [], [], None, None
        for part in _corrupt_batches(source, kind, level, fraction, seed, angle, batch_size):
            if isinstance(part, dict):
                summary, labels = part["summary"], part["labels"]
                continue
            idx, pix, recs, o = part
            _write_pngs(tmp, idx.tolist(), pix)
            records += recs
            if o is not None:
                obs.append(o)
        _write_meta(tmp, records, labels, np.concatenate(obs) if obs else None, summary)
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
