"""`corrupt(...)` -> CorruptResult: the `ambient-eval corrupt` command behind the API.

In memory by default (`.save(dir)` writes OUT/ as the command does); with `out=` the folder is
written while it is made (training/corrupt.py: corrupt_source) and the result describes it.
"""
from __future__ import annotations

import json
import os
import shutil
from dataclasses import dataclass
from pathlib import Path

import numpy as np

from ambient_eval.errors import AmbientError

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
        from ambient_eval.training.corrupt import check_output_dir, replace_dir, temp_dir, write_meta, write_pngs

        out = Path(dir)
        check_output_dir(out, overwrite)
        if self.images is None:       # written with out=: copy that folder
            tmp = temp_dir(out)
            try:
                shutil.copytree(self.out, tmp, dirs_exist_ok=True)
                replace_dir(tmp, out)
            except BaseException:
                shutil.rmtree(tmp, ignore_errors=True)
                raise
            return out
        tmp = temp_dir(out)
        try:
            write_pngs(tmp, range(len(self.images)), self.images)
            write_meta(tmp, self.records, self.labels, self.observations, self.summary)
            replace_dir(tmp, out)
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
        A [CorruptResult][ambient_eval.api.CorruptResult]: `.to_pandas()` one row per
        sample, `.save(dir)` the folder `train` and `annotate` read.

    Examples:
        >>> import ambient_eval as ae
        >>> res = ae.corrupt("builtin:digits", "blur", 1.0, fraction=0.5, max_images=20)
        >>> res.summary["n"], res.summary["n_corrupted"]
        (20, 10)
        >>> int(res.to_pandas()["corrupted"].sum())
        10
        >>> _ = res.save("blurred")     # blurred/000000.png ..., corruption.jsonl, corruption.json
    """
    from ambient_eval.data import corruptions as C
    from ambient_eval.data import open_source
    from ambient_eval.training.corrupt import check_output_dir, corrupt_batches, corrupt_source
    from ambient_eval.training.dataset import CORRUPTION_META

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
    for part in corrupt_batches(src, kind, level, fraction, seed, angle, batch_size):
        if isinstance(part, dict):
            summary, labels = part["summary"], part["labels"]
            continue
        _, p, recs, o = part
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
