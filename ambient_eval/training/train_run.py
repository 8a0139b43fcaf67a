"""`train(...)` -> TrainResult: the `ambient-eval train` command behind the API (validation, data, loop).

Training writes while it works: RUN_DIR (`out`) is the checkpoint/resume point (training/loop.py
documents its layout), so `train` takes `out` and returns a description of the run it wrote.
"""
from __future__ import annotations

import os
import shutil
import tempfile
from dataclasses import dataclass
from pathlib import Path

from ambient_eval.errors import AmbientError

DEFAULT_STEPS = 2000   # --steps when neither --steps nor --kimg is given


@dataclass(frozen=True)
class TrainResult:
    """What one `train` call did and where: RUN_DIR, the steps run and the loss summary.

    `summary` is training.loop.train's dict (start_step, end_step, finished, seconds,
    images_per_second, first_loss, final_loss, run_dir).
    """

    out: Path              # RUN_DIR: run.json, state.safetensors, loss.csv, checkpoints/, final/
    summary: dict          # training.loop.train's summary of this invocation
    config: dict           # TrainConfig.to_dict() of the run

    @property
    def final_checkpoint(self) -> Path:
        """The native checkpoint (EMA weights) that `sample` and `fid --model` load."""
        return self.out / "final"

    @property
    def already_complete(self) -> bool:
        """True when RUN_DIR held a finished run with these settings and no step was run."""
        return bool(self.summary["start_step"]) and self.summary["start_step"] == self.summary["end_step"]

    def to_pandas(self):
        """The loss log (RUN_DIR/loss.csv) as a DataFrame, one row per step, columns as written."""
        import pandas as pd

        from ambient_eval.training.loop import LOSS_COLUMNS

        path = self.out / "loss.csv"
        if not path.is_file():
            return pd.DataFrame(columns=list(LOSS_COLUMNS))
        return pd.read_csv(path)

    def save(self, dir: str | os.PathLike) -> Path:
        """Copy RUN_DIR to `dir` (new or empty), all or nothing: a temp copy renamed into place."""
        dest = Path(dir)
        if dest.resolve() == self.out.resolve():
            return dest
        if dest.exists() and (not dest.is_dir() or any(dest.iterdir())):
            raise AmbientError(f"'{dest}' exists and is not an empty directory. Choose a new directory to "
                               "copy the run into.")
        from ambient_eval.files.atomic import ensure_writable_dir

        ensure_writable_dir(dest.parent if str(dest.parent) else Path("."))
        tmp = Path(tempfile.mkdtemp(prefix=f".{dest.name}.tmp-", dir=dest.parent if str(dest.parent) else "."))
        try:
            shutil.copytree(self.out, tmp, dirs_exist_ok=True)
            if dest.is_dir():
                dest.rmdir()
            os.replace(tmp, dest)
        except BaseException:
            shutil.rmtree(tmp, ignore_errors=True)
            raise
        return dest


def train(data: str, out: str | os.PathLike, *, method: str = "baseline", annotations: str | os.PathLike | None = None,
          only_clean: bool = False, sigma_n: float | None = None, label_flip: float = 0.0, cep_gamma: float = 1.0,
          cep_noise: str = "uniform", cep_scale: str = "sqrt-dim", steps: int | None = None, kimg: float | None = None,
          batch: int = 64, lr: float = 1e-3, warmup: int = 100, ema: float = 10.0, arch: str = "small",
          resolution: int | None = None, cond: bool = False, sigma_policy: str = "sigma-first",
          ambient_target: str = "pixel-loop", batch_order: str = "draw", consistency: float = 0.0,
          checkpoint_every: int = 500, seed: int = 0, device: str = "auto", compile: bool = False,
          overwrite: bool = False) -> TrainResult:
    """Train (or resume) a diffusion model (EDM) on clean, corrupted or noisy data, as `ambient-eval train`.

    Writes while it works: `out` is the run directory (checkpoints, resumable state, loss.csv);
    calling again with the same settings resumes it, `overwrite=True` starts over. The arguments
    are the command's options (`--sigma-n` is `sigma_n`, ...); the number of steps is `steps`, or
    `kimg` thousands of images, or 2000. Under torchrun every process calls it (rank 0 writes).

    Returns:
        A [TrainResult][ambient_eval.api.TrainResult]: the run directory, the loss
        summary of this call, `.to_pandas()` the loss log, `.save(dir)` a copy of the run.

    Examples:
        >>> import ambient_eval as ae
        >>> run = ae.train("builtin:digits-16", out="runs/base", arch="tiny", steps=2, batch=4,
        ...                warmup=1, device="cpu")
        >>> run.summary["end_step"], list(run.to_pandas().columns)[:3]
        (2, ['step', 'kimg', 'loss'])
        >>> run.final_checkpoint.name
        'final'
    """
    import numpy as np

    from ambient_eval.training.config import TrainConfig
    from ambient_eval.training.dataset import load_train_data, read_annotations, read_sigma_max
    from ambient_eval.training.loop import train as train_loop

    if steps is not None and kimg is not None:
        raise AmbientError("Pass either --steps or --kimg, not both.")
    n_steps = steps if steps is not None else (max(1, round(kimg * 1000 / batch)) if kimg is not None else DEFAULT_STEPS)
    cfg = TrainConfig(method=method, arch=arch, resolution=resolution, cond=cond, steps=n_steps, batch=batch, lr=lr,
                      warmup_steps=warmup, ema_halflife_kimg=ema, sigma_policy=sigma_policy, consistency=consistency,
                      ambient_target=ambient_target, batch_order=batch_order, sigma_n=sigma_n,
                      label_flip=label_flip, cep_gamma=cep_gamma, cep_noise=cep_noise, cep_scale=cep_scale,
                      seed=seed, checkpoint_every=checkpoint_every, device=device, compile=compile)
    cfg.validate()
    if method == "ambient-omni" and annotations is None:
        raise AmbientError("--method ambient-omni needs --annotations (from `ambient-eval annotate`).")
    if annotations is not None and not (method == "ambient-omni" or only_clean):
        raise AmbientError(f"--annotations is used by --method ambient-omni (or with --only-clean); --method "
                           f"{method} would ignore it. Drop it or change the method.")
    if only_clean and annotations is None:
        raise AmbientError("--only-clean selects samples with sigma_tn = 0 from --annotations; pass --annotations.")
    if method != "noisy" and sigma_n is not None:
        raise AmbientError(f"--sigma-n is only used by --method noisy (got --method {method}).")
    tdata = load_train_data(data, resolution)
    sigma_tn, ann_fp, sigma_max = None, None, None
    if annotations is not None:
        from ambient_eval.files.hashing import sha256_file

        sigma_tn, _ = read_annotations(annotations, tdata)
        sigma_max = read_sigma_max(annotations, len(tdata))  # locality branch (optional "sigma_max" per record)
        ann_fp = sha256_file(annotations)
        if only_clean:
            keep = np.flatnonzero(sigma_tn == 0)
            if len(keep) == 0:
                raise AmbientError(f"--only-clean: no sample has sigma_tn = 0 in '{annotations}'.")
            tdata = subset(tdata, keep)
            sigma_tn, sigma_max = None, None
    from ambient_eval.runtime.oom import oom_guard
    from ambient_eval.sampling import distributed

    # torchrun: this rank's GPU set first, then the group (timeout, errors shared, destroyed at the end)
    oom = oom_guard(f"training with --batch {cfg.batch} (images per step, all processes together)",
                    "Lower --batch (checkpoints are kept: re-run to resume), or train with --device cpu.")
    with distributed.process_group(distributed.device_for_rank(cfg.device)), oom:
        summary = train_loop(tdata, cfg, out, sigma_tn=sigma_tn, annotations_fingerprint=ann_fp,
                             overwrite=overwrite, sigma_max=sigma_max)
    return TrainResult(out=Path(out), summary=summary, config=cfg.to_dict())


def subset(data, keep):
    """TrainData restricted to positions `keep` (fingerprint records the subset)."""
    import torch

    from ambient_eval.files.hashing import sha256_json
    from ambient_eval.training.dataset import TrainData

    return TrainData(f"{data.description} (clean subset, {len(keep)})",
                     sha256_json([data.fingerprint, [int(i) for i in keep]]), data.images[torch.from_numpy(keep)],
                     None if data.labels is None else data.labels[keep], [data.names[i] for i in keep], data.sigma_n)
