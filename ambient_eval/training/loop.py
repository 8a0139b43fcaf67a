"""The training loop: EDM training with the ambient loss, EMA, Adam warm-up, checkpoints, resume.

RUN_DIR layout
  run.json                 config, data/annotations fingerprints (written at the start)
  state.safetensors        resumable state (model, EMA, Adam), the atomic commit point
  loss.csv                 step, kimg, loss, loss_used, frac_used, lr, sec, consistency
Batches: --sigma-policy sigma-first (default, the official Ambient-Omni sampler) draws sigma_t first and
then an image eligible at it, by independent draws (--batch-order draw: training/batches.py) or the
official walk (--batch-order walk: training/walk.py); mask / truncate draw images first (ablations).
Loss target of ambient-omni: --ambient-target pixel-loop | ambient-loss (training/targets.py).
  checkpoints/step-NNNNNNN native checkpoint (EMA weights) every K steps
  final/                   native checkpoint (EMA weights) at the end
Step k draws all its randomness from generators seeded by (seed, k, rank): a resumed run on CPU
is bit-identical to an uninterrupted one.
"""
from __future__ import annotations

import copy
import csv
import io
import json
import logging
import math
import os
import shutil
import time
from dataclasses import replace
from pathlib import Path

import numpy as np
import torch

from ambient_eval import __version__
from ambient_eval.files import atomic
from ambient_eval.errors import AmbientError
from ambient_eval.runtime.progress import progress
from ambient_eval.training.batches import eligible, sample_batch
from ambient_eval.training.config import TrainConfig
from ambient_eval.training.consistency import consistency_loss, sample_sigma_below
from ambient_eval.training.dataset import TrainData
from ambient_eval.training.ema import ema_beta, ema_update
from ambient_eval.training.loss import ambient_loss
from ambient_eval.training.sigma import sample_sigma, sample_sigma_truncated, threshold
from ambient_eval.training.state import load_extra, load_state, read_state_info, save_state
from ambient_eval.training.targets import loss_inputs
from ambient_eval.training.walk import BatchWalk

log = logging.getLogger(__name__)
LOSS_COLUMNS = ("step", "kimg", "loss", "loss_used", "frac_used", "lr", "sec", "consistency")
RUN_FILES = ("run.json", "state.safetensors", "loss.csv", "checkpoints", "final")


def network_config(cfg: TrainConfig, resolution: int, label_dim: int):
    """UNetConfig preset for --arch at this resolution / number of classes."""
    from ambient_eval.models import UNetConfig

    preset = {"tiny": UNetConfig.tiny, "small": UNetConfig.small}.get(cfg.arch)
    net = preset(resolution, 3, label_dim) if preset else replace(UNetConfig.cifar(label_dim), img_resolution=resolution)
    return net if cfg.dropout is None else replace(net, dropout=float(cfg.dropout))


class TrainStep(torch.nn.Module):
    """D(x, sigma, labels) with the CEP perturbation applied inside forward (so DDP sees it).

    x NCHW float32, sigma (N,), labels NC one-hot | None, xi (N, d) | None => x0_hat NCHW float32."""

    def __init__(self, denoiser: torch.nn.Module) -> None:
        super().__init__()
        self.denoiser = denoiser

    def forward(self, x, sigma, labels=None, xi=None):
        if xi is None:
            return self.denoiser(x, sigma, labels)
        # CEP (Chen et al. 2024): e <- e + gamma * xi, training only; xi already scaled by the caller.
        e = self.denoiser.net.embed_labels(labels)
        return self.denoiser(x, sigma, labels, label_emb=e + xi.to(e.dtype))


def step_generator(seed: int, step: int, rank: int) -> tuple[torch.Generator, int]:
    """Generator for step k on this rank, and its integer seed (also seeds dropout)."""
    s = int(np.random.SeedSequence([int(seed), int(step), int(rank)]).generate_state(2, np.uint64)[0] >> 1)
    return torch.Generator().manual_seed(s), s


def prepare_run_dir(run_dir: Path, cfg: TrainConfig, run_info: dict, overwrite: bool) -> dict | None:
    """Validate RUN_DIR before any work: => resume info from state.safetensors, or None for a fresh run."""
    if run_dir.exists() and not run_dir.is_dir():
        raise AmbientError(f"Run directory '{run_dir}' is a file. Choose a directory with -o.")
    if overwrite and run_dir.is_dir():
        if any(run_dir.iterdir()) and not (run_dir / "run.json").is_file():
            raise AmbientError(f"'{run_dir}' is not empty and not a training run; --overwrite only replaces "
                               "runs written by `ambient-eval train`. Choose another -o.")
        for name in RUN_FILES:
            p = run_dir / name
            shutil.rmtree(p) if p.is_dir() else p.unlink(missing_ok=True)
    if run_dir.is_dir() and any(run_dir.iterdir()):
        if not (run_dir / "run.json").is_file():
            raise AmbientError(f"Output directory '{run_dir}' is not empty and holds no training run. "
                               "Choose an empty or new directory with -o.")
        old = json.loads((run_dir / "run.json").read_text())
        same = {k: old.get(k) for k in ("identity", "data_fingerprint", "annotations_fingerprint")}
        new = {k: run_info[k] for k in same}
        if same != new:
            diff = sorted(k for k in new if same[k] != new[k]) or ["identity"]
            keys = [k for k in new["identity"] if (same.get("identity") or {}).get(k) != new["identity"][k]]
            raise AmbientError(f"'{run_dir}' holds a run with different settings ({', '.join(diff)}"
                               f"{': ' + ', '.join(keys) if keys else ''}); it cannot be resumed with these. "
                               "Use another -o, the original settings, or --overwrite to start over.")
        state = run_dir / "state.safetensors"
        return read_state_info(state) if state.is_file() else None
    atomic.ensure_writable_dir(run_dir)
    return None


def _csv_text(rows: list[dict]) -> str:
    buf = io.StringIO()
    w = csv.DictWriter(buf, fieldnames=LOSS_COLUMNS, lineterminator="\n")
    w.writeheader()
    w.writerows(rows)
    return buf.getvalue()


def _read_csv(path: Path, upto: int) -> list[dict]:
    if not path.is_file():
        return []
    with open(path, newline="") as f:
        return [r for r in csv.DictReader(f) if int(r["step"]) <= upto]


def train(data: TrainData, cfg: TrainConfig, run_dir: str | os.PathLike, *, sigma_tn: np.ndarray | None = None,
          annotations_fingerprint: str | None = None, overwrite: bool = False,
          stop_after: int | None = None, sigma_max: np.ndarray | None = None) -> dict:
    """Train (or resume) a model; => summary dict. `stop_after` ends this invocation after that many
    steps (tests use it to simulate a kill right after a checkpoint). `sigma_max` (N,) is the
    locality branch: an image is used as clean at sigma_t < sigma_max (0 = never)."""
    from ambient_eval.runtime.device import resolve_device
    from ambient_eval.models import build_native_model, native_config, save_native
    from ambient_eval.models.base import one_hot

    cfg.validate()
    run_dir = Path(run_dir)
    N = len(data)
    label_dim = data.num_classes if cfg.cond else 0
    if cfg.cond and data.labels is None:
        raise AmbientError(f"--cond needs class labels, but {data.description} has none. Use --uncond, or "
                           "give labels (dataset.json, class subfolders, npz 'labels').")
    stn = np.zeros(N, np.float32) if sigma_tn is None else np.asarray(sigma_tn, np.float32)
    if cfg.method == "noisy":
        sigma_n = cfg.sigma_n if cfg.sigma_n is not None else data.sigma_n
        if sigma_n is None:
            raise AmbientError("--method noisy needs the observation noise: pass --sigma-n (model-space units) "
                               "or train on a folder written by `ambient-eval corrupt --kind noise`.")
        if data.sigma_n is not None and abs(sigma_n - data.sigma_n) > 1e-9:
            raise AmbientError(f"--sigma-n {sigma_n} differs from the noise level {data.sigma_n} recorded with "
                               f"the data ({data.description}). Drop --sigma-n or fix it.")
        stn = np.full(N, sigma_n, np.float32)
    labels = data.labels
    if cfg.label_flip > 0:
        from ambient_eval.data.corruptions import flip_labels

        labels, _ = flip_labels(labels, cfg.label_flip, label_dim, cfg.seed)
    net_cfg = network_config(cfg, data.resolution, label_dim)
    ncfg = native_config(net_cfg, precond="edm", sigma_data=cfg.sigma_data)
    run_info = {"identity": cfg.identity(), "data_fingerprint": data.fingerprint,
                "annotations_fingerprint": annotations_fingerprint, "data": data.description,
                "n_images": N, "n_corrupted": int((stn > 0).sum()), "network": net_cfg.to_dict(),
                "tool_version": __version__}
    # Distributed (torchrun): one process per GPU; rank 0 writes files. Checked before any file is written.
    world = int(os.environ.get("WORLD_SIZE", "1"))
    rank = int(os.environ.get("RANK", "0"))
    device = resolve_device(cfg.device)
    if cfg.batch % world:
        raise AmbientError(f"--batch {cfg.batch} is not divisible by the {world} processes. Pick a multiple.")
    local_batch = cfg.batch // world
    if world > 1:  # this rank's GPU is set before the group (the CLI already joined one: process_group)
        import torch.distributed as dist

        from ambient_eval.sampling.distributed import device_for_rank
        from ambient_eval.sampling.rank_layout import group_timeout

        device = device_for_rank(cfg.device)
        own_group = not dist.is_initialized()   # Python API without the CLI: created here, destroyed below
        if own_group:
            dist.init_process_group("nccl" if device.type == "cuda" else "gloo", timeout=group_timeout())
    resume = prepare_run_dir(run_dir, cfg, run_info, overwrite) if rank == 0 else None
    if resume is not None and int(resume["step"]) > cfg.steps:
        raise AmbientError(f"'{run_dir}' already holds {resume['step']} steps, more than --steps {cfg.steps}. "
                           "Pass at least that many steps, or use another -o.")
    if rank == 0:
        atomic.write_json(run_dir / "run.json", {**run_info, "config": cfg.to_dict()})
    if world > 1:  # other ranks read the state rank 0 validated
        torch.distributed.barrier()
        if rank != 0 and (run_dir / "state.safetensors").is_file():
            resume = read_state_info(run_dir / "state.safetensors")

    torch.manual_seed(cfg.seed)
    denoiser = build_native_model(ncfg).to(device).train()
    ema = copy.deepcopy(denoiser).eval().requires_grad_(False)
    opt = torch.optim.Adam(denoiser.parameters(), lr=cfg.lr, betas=(0.9, 0.999), eps=1e-8)
    start, rows = 0, []
    walk = BatchWalk(N, cfg.seed, cfg.P_mean, cfg.P_std) if cfg.batch_order == "walk" else None
    if resume is not None:
        load_state(run_dir / "state.safetensors", model=denoiser, ema=ema, opt=opt)
        start = int(resume["step"])
        if walk is not None:
            walk.load(load_extra(run_dir / "state.safetensors", "walk_order"), resume["walk"])
        rows = _read_csv(run_dir / "loss.csv", start)
        log.info("resuming %s at step %d", run_dir, start)
    module: torch.nn.Module = TrainStep(denoiser)
    cuda = device.type == "cuda"
    if cuda:
        module = module.to(memory_format=torch.channels_last)
    if cfg.compile:
        module = torch.compile(module)
    if world > 1:
        from torch.nn.parallel import DistributedDataParallel

        module = DistributedDataParallel(module, device_ids=[device.index] if cuda else None)

    data_imgs = data.images.to(device)
    stn_t = torch.from_numpy(stn)
    smax_t = None if sigma_max is None or not np.any(sigma_max) else torch.from_numpy(np.asarray(sigma_max, np.float32))
    corrupted_idx = torch.from_numpy(np.flatnonzero(stn > 0))
    thr_all = threshold(stn_t, cfg.s_max)
    smax_all = torch.zeros_like(stn_t) if smax_t is None else smax_t
    if cfg.consistency > 0 and len(corrupted_idx) == 0:
        raise AmbientError("--consistency needs samples with sigma_tn > 0 (corrupted or noisy); this data has none.")
    lab_t = None if labels is None or not cfg.cond else torch.from_numpy(np.asarray(labels, np.int64))
    emb_dim = net_cfg.model_channels
    cep_scale = cfg.cep_gamma / (math.sqrt(emb_dim) if cfg.cep_scale == "sqrt-dim" else 1.0)
    end = cfg.steps if stop_after is None else min(cfg.steps, start + stop_after)
    t0, seen, recent = time.time(), 0, []

    def checkpoint(step: int) -> None:
        if rank != 0:
            return
        meta = {"method": cfg.method, "ambient_target": cfg.ambient_target if cfg.method == "ambient-omni" else None,
                "batch_order": cfg.batch_order, "data_fingerprint": data.fingerprint,
                "annotations_fingerprint": annotations_fingerprint, "steps": step, "kimg": step * cfg.batch / 1e3,
                "seed": cfg.seed, "config": cfg.to_dict(), "tool": f"ambient-eval {__version__} train"}
        final = step == cfg.steps
        save_native(ema, run_dir / ("final" if final else f"checkpoints/step-{step:07d}"), ncfg, meta)
        atomic.write_text(run_dir / "loss.csv", _csv_text(rows))
        info = {"step": step, "identity": cfg.identity(), "data_fingerprint": data.fingerprint}
        extra = None
        if walk is not None:
            order, info["walk"] = walk.state()
            extra = {"walk_order": order}
        save_state(run_dir / "state.safetensors", model=denoiser, ema=ema, opt=opt, info=info, extra=extra)

    bar = progress(range(start, end), total=end - start, desc=f"train {cfg.method}", unit="step")
    for step in bar:
        g, s = step_generator(cfg.seed, step, rank)
        torch.manual_seed(s)  # dropout / label dropout use the global generator
        if walk is not None:  # the official walk: the global batch, this rank's slice
            idx, sigma_t = walk.next_batch(cfg.batch, thr_all, smax_all)
            idx, sigma_t = idx[rank * local_batch:(rank + 1) * local_batch], sigma_t[rank * local_batch:(rank + 1) * local_batch]
            s_tn = stn_t[idx]
        elif cfg.sigma_policy == "sigma-first":
            idx, sigma_t = sample_batch(local_batch, stn_t, g, sigma_max=smax_t, P_mean=cfg.P_mean, P_std=cfg.P_std,
                                        s_max=cfg.s_max)
            s_tn = stn_t[idx]
        else:
            idx = torch.randint(N, (local_batch,), generator=g)
            s_tn = stn_t[idx]
            sigma_t = (sample_sigma_truncated(s_tn, g, cfg.P_mean, cfg.P_std, cfg.s_max)
                       if cfg.sigma_policy == "truncate" else sample_sigma(local_batch, g, cfg.P_mean, cfg.P_std))
        s_max_i = None if smax_t is None else smax_t[idx]
        y = data_imgs[idx.to(device)]                                      # NCHW uint8 | float32
        y = y.to(torch.float32) / 127.5 - 1.0 if y.dtype == torch.uint8 else y  # => model space
        z_tn = torch.randn(y.shape, generator=g)
        n = torch.randn(y.shape, generator=g)
        onehot = one_hot(lab_t[idx], label_dim, device) if lab_t is not None else None
        xi = None
        if cfg.method == "cep":
            xi = (torch.rand((local_batch, emb_dim), generator=g) * 2 - 1 if cfg.cep_noise == "uniform"
                  else torch.randn((local_batch, emb_dim), generator=g)) * cep_scale
            xi = xi.to(device)
        # x_tn and the loss's sigma_tn, as the official pixel or latent loop makes them (training/targets.py)
        x_tn, s_tn = loss_inputs(cfg.method, cfg.ambient_target, y, z_tn.to(device), sigma_t, s_tn, s_max_i)
        s_tn, sigma_t, n = s_tn.to(device), sigma_t.to(device), n.to(device)

        def D(x, sig, lab):
            if cuda:
                x = x.contiguous(memory_format=torch.channels_last)
                with torch.autocast("cuda", dtype=torch.bfloat16):
                    return module(x, sig, lab, xi).float()
            return module(x, sig, lab, xi)

        loss, used = ambient_loss(D, x_tn, s_tn, sigma_t, n, onehot, cfg.sigma_data, cfg.s_max)
        # the annotation gates the noise levels in both loops (the sigma-first and walk batches hold only eligible
        # samples; the "mask" ablation zeroes the others), whatever sigma_tn the loss itself received
        ok = eligible(sigma_t.cpu(), thr_all[idx], smax_all[idx]).to(loss.device)
        loss, used = torch.where(ok, loss, torch.zeros_like(loss)), used & ok
        total = loss.mean()
        cons = None
        if cfg.consistency > 0:  # Tweedie consistency below sigma_tn on a quarter-batch of corrupted samples
            k = max(1, local_batch // 4)
            ci = corrupted_idx[torch.randint(len(corrupted_idx), (k,), generator=g)]
            yc = data_imgs[ci.to(device)]
            yc = yc.to(torch.float32) / 127.5 - 1.0 if yc.dtype == torch.uint8 else yc
            tc = stn_t[ci]
            sc = sample_sigma_below(tc, g, cfg.P_mean, cfg.P_std)
            zc, z1, z2 = (torch.randn(yc.shape, generator=g).to(device) for _ in range(3))
            xc = yc + tc.to(device).reshape(-1, 1, 1, 1) * zc if cfg.method == "ambient-omni" else yc
            lab_c = one_hot(lab_t[ci], label_dim, device) if lab_t is not None else None
            cons = consistency_loss(D, xc, tc.to(device), sc.to(device), z1, z2, lab_c, cfg.sigma_data).mean()
            total = total + cfg.consistency * cons
        lr = cfg.lr * min((step + 1) / cfg.warmup_steps, 1.0) if cfg.warmup_steps else cfg.lr
        for group in opt.param_groups:
            group["lr"] = lr
        opt.zero_grad(set_to_none=True)
        total.backward()
        for p in denoiser.parameters():
            if p.grad is not None:
                torch.nan_to_num(p.grad, nan=0, posinf=1e5, neginf=-1e5, out=p.grad)
        opt.step()
        ema_update(ema, denoiser, ema_beta((step + 1) * cfg.batch, cfg.batch, cfg.ema_halflife_kimg, cfg.ema_rampup))

        lv, nu = float(loss.detach().mean()), int(used.sum())
        rows.append({"step": step + 1, "kimg": (step + 1) * cfg.batch / 1e3, "loss": lv,
                     "loss_used": float(loss.detach().sum()) / max(nu, 1), "frac_used": nu / local_batch,
                     "lr": lr, "sec": round(time.time() - t0, 3),
                     "consistency": 0.0 if cons is None else float(cons.detach())})
        seen += cfg.batch
        recent.append(lv)
        if hasattr(bar, "set_postfix") and (step + 1) % 10 == 0:
            bar.set_postfix(loss=f"{np.mean(recent[-50:]):.4f}", img_s=f"{seen / max(time.time() - t0, 1e-9):.0f}")
        if (step + 1) % cfg.checkpoint_every == 0 or step + 1 == cfg.steps:
            checkpoint(step + 1)
    if world > 1:
        torch.distributed.barrier()
        if own_group:
            torch.distributed.destroy_process_group()
    elapsed = time.time() - t0
    return {"run_dir": str(run_dir), "start_step": start, "end_step": end, "finished": end == cfg.steps,
            "seconds": elapsed, "images_per_second": seen / max(elapsed, 1e-9),
            # Mean loss over the first and last w logged steps; the windows never overlap (w <= half).
            "final_loss": float(np.mean([float(r["loss"]) for r in rows[-_window(rows):]])) if rows else None,
            "first_loss": float(np.mean([float(r["loss"]) for r in rows[:_window(rows)]])) if len(rows) > 1 else None}


def _window(rows: list) -> int:
    """Loss rows averaged at each end: 50, or half the run when it logged under 100 steps."""
    return max(1, min(50, len(rows) // 2))
