"""The checks of benchmarks/gpu_check.py, one function per CUDA path (random weights, nothing downloaded).

Each step takes the device under test (`cuda`, or `cpu` for the harness smoke run) and a scratch
folder, and returns rows (name, ok, detail); ok None = SKIP, allowed only where the step says why.
Results on the device are compared with the CPU: float32 is exact-by-default (TF32 off), so uint8
samples may differ by a few levels from kernel rounding, features by a small relative difference.
"""
from __future__ import annotations

import json
import os
import subprocess
import sys
import warnings
from pathlib import Path

import numpy as np

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))
Row = tuple  # (name, ok: bool | None, detail)
UINT8_MAX_DIFF, UINT8_MEAN_DIFF = 2, 0.05      # float32 device vs CPU, per pixel level
FEATURE_REL = 1e-3                             # float32 features: relative L2 difference
SCALE = float(os.environ.get("GPU_CHECK_TIME_SCALE", "1"))  # gpu_check.py --time-scale


def _cli(args: list, timeout: float = 300) -> subprocess.CompletedProcess:
    env = {**os.environ, "PYTHONPATH": str(ROOT), "AMBIENT_EVAL_PROGRESS": "0"}
    return subprocess.run([sys.executable, "-m", "ambient_eval", *map(str, args)], env=env,
                          capture_output=True, text=True, timeout=timeout * SCALE)


def _fail_text(p: subprocess.CompletedProcess) -> str:
    return f"exit {p.returncode}: {' '.join((p.stderr or p.stdout).split())[-300:]}"


def _uint8_row(name: str, got, ref) -> Row:
    import torch

    diff = (torch.as_tensor(got).to(torch.int16) - torch.as_tensor(ref).to(torch.int16)).abs()
    mx, mean = int(diff.max()), float(diff.float().mean())
    return (name, mx <= UINT8_MAX_DIFF and mean <= UINT8_MEAN_DIFF,
            f"uint8 max |diff| {mx}, mean {mean:.3f} vs CPU")


def _samples(model, dev, seeds=range(8), autocast=None, steps=6):
    import torch

    from ambient_eval.sampling.generate import generate

    return torch.cat([x for _, x in generate(model, list(seeds), batch_size=8, steps=steps, device=dev,
                                             autocast=autocast, net_batch=8)])


def step_env(dev: str, tmp: Path) -> list[Row]:
    """torch sees the device; the exact float32 policy is in force (TF32 off) through the new API."""
    import torch

    from ambient_eval.runtime import precision as P
    from ambient_eval.runtime.device import resolve_device

    d = resolve_device(dev)
    state = P.settings()
    name = torch.cuda.get_device_name(d) if d.type == "cuda" else "cpu"
    ok = d.type == dev and (dev == "cpu" or (state["fp32_matmul"], state["fp32_conv"]) == ("ieee", "ieee"))
    return [("env: device + precision", ok, f"{name}; torch {torch.__version__} (CUDA {torch.version.cuda}); "
             f"fp32 matmul {state['fp32_matmul']}, conv {state['fp32_conv']} via {state['api']}")]


def _tiny_native():
    import torch

    from ambient_eval.models import UNetConfig, build_native_model, native_config

    torch.manual_seed(0)
    model = build_native_model(native_config(UNetConfig.tiny(16, label_dim=0)))
    with torch.no_grad():
        model.net.conv_out.weight.mul_(4.0)
    return model


def step_sample(dev: str, tmp: Path) -> list[Row]:
    """EDM Heun on a small U-Net: float32 (exact policy), then --autocast tf32 and bf16 (GPU only)."""
    model = _tiny_native()
    ref = _samples(model, "cpu")
    rows = [_uint8_row("sample float32", _samples(model, dev), ref)]
    for mode in ("tf32", "bf16"):
        if dev == "cpu":
            continue  # autocast is GPU-only (refused on CPU)
        got = _samples(model, dev, autocast=mode)
        import torch

        diff = (got.to(torch.int16) - ref.to(torch.int16)).abs().float()
        rows.append((f"sample --autocast {mode}", float(diff.mean()) <= 2.0,
                     f"uint8 mean |diff| {float(diff.mean()):.3f} vs CPU float32 (close, not exact)"))
    return rows


def _feature_weights(tmp: Path) -> dict[str, tuple]:
    """{extractor: (weights path, extra kwargs)} for every built-in extractor, random weights."""
    import torch

    from ambient_eval.features import random_weights as RW

    out = {}
    for name, sd in (("inception", RW.random_inception_state_dict), ("vgg16", RW.random_vgg16_state_dict),
                     ("dinov2", RW.random_dinov2_state_dict)):
        p = tmp / f"{name}.pth"
        RW.save_state_dict(sd(seed=0) if name != "dinov2" else sd(), p)
        out[name] = (p, {})
    out["inception-clean"] = out["inception"]
    import open_clip
    from safetensors.torch import save_file

    tiny = "ViT-tiny-gpu-check"
    from tests.features.conftest import TINY_CLIP_CONFIG

    (tmp / f"{tiny}.json").write_text(json.dumps(TINY_CLIP_CONFIG))
    open_clip.add_model_config(tmp / f"{tiny}.json")
    torch.manual_seed(0)
    m = open_clip.create_model(tiny, pretrained=None, force_quick_gelu=True, pretrained_text=False)
    save_file({k: v.contiguous() for k, v in m.state_dict().items()}, str(tmp / "clip.safetensors"))
    out["clip"] = (tmp / "clip.safetensors", {"model_name": tiny})
    conv = torch.nn.Sequential(torch.nn.Conv2d(3, 24, 7, stride=4), torch.nn.AdaptiveAvgPool2d(1),
                               torch.nn.Flatten())
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        torch.jit.script(conv.eval()).save(str(tmp / "sscd.torchscript.pt"))
    out["sscd"] = (tmp / "sscd.torchscript.pt", {})
    return out


def step_features(dev: str, tmp: Path) -> list[Row]:
    """Inception (tf-compat and clean), VGG16, DINOv2, CLIP, SSCD, pixel: device vs CPU features."""
    import torch

    from ambient_eval.features import get_extractor
    from ambient_eval.features.clip import ClipExtractor
    from tests.conftest import random_images

    images = torch.from_numpy(random_images(8, size=32, seed=0)).permute(0, 3, 1, 2).contiguous()
    rows = []
    for name, (w, kw) in {**_feature_weights(tmp), "pixel": (None, {})}.items():
        with warnings.catch_warnings():
            warnings.simplefilter("ignore")
            make = (lambda d: ClipExtractor(weights=str(w), device=d, **kw)) if name == "clip" else \
                (lambda d: get_extractor(name, weights=None if w is None else str(w), device=d))
            cpu, got = make("cpu")(images), make(dev)(images)
        key = next(iter(cpu))
        rel = float((got[key] - cpu[key]).norm() / cpu[key].norm().clamp_min(1e-12))
        rows.append((f"features {name}", rel < FEATURE_REL, f"relative L2 difference {rel:.1e} vs CPU"))
    return rows


def step_models(dev: str, tmp: Path) -> list[Row]:
    """Checkpoint formats on the device: EDM pickle, EDM2 latent + VAE decoder, diffusers pipeline."""
    import diffusers
    import torch

    from ambient_eval.models import load_model
    from tests.models.edm_writer import write_snapshot

    rows = []
    write_snapshot(tmp / "edm.pkl", img_resolution=8)
    torch.manual_seed(0)
    vae = diffusers.AutoencoderKL(in_channels=3, out_channels=3, latent_channels=4,
                                  down_block_types=("DownEncoderBlock2D",) * 2,
                                  up_block_types=("UpDecoderBlock2D",) * 2, block_out_channels=(8, 8),
                                  layers_per_block=1, norm_num_groups=4, sample_size=8)
    vae.save_pretrained(tmp / "vae")
    write_snapshot(tmp / "latent.pkl", img_resolution=4, img_channels=4, encoder_vae="gpu-check/vae")
    unet = diffusers.UNet2DModel(sample_size=8, in_channels=3, out_channels=3, layers_per_block=1,
                                 block_out_channels=(8, 16), norm_num_groups=4,
                                 down_block_types=("DownBlock2D",) * 2, up_block_types=("UpBlock2D",) * 2)
    diffusers.DDPMPipeline(unet=unet, scheduler=diffusers.DDPMScheduler(num_train_timesteps=100)) \
        .save_pretrained(tmp / "ddpm")
    for label, path, kw in (("EDM pickle", tmp / "edm.pkl", {"trust_pickle": True}),
                            ("EDM2 latent + VAE", tmp / "latent.pkl", {"trust_pickle": True, "vae": tmp / "vae"}),
                            ("diffusers DDPM", tmp / "ddpm", {})):
        ref = _samples(load_model(path, device="cpu", **kw), "cpu", seeds=range(4))
        got = _samples(load_model(path, device=dev, **kw), dev, seeds=range(4))
        rows.append(_uint8_row(f"sample {label}", got, ref))
    return rows


def _write_pngs(folder: Path, n: int, seed: int, size: int = 16) -> Path:
    from tests.conftest import random_images, write_images

    write_images(folder, random_images(n, size=size, seed=seed))
    return folder


def step_train(dev: str, tmp: Path) -> list[Row]:
    """`train` a few steps on the device (bf16 autocast path on CUDA), then sample its checkpoint."""
    data = _write_pngs(tmp / "data", 32, 1)
    p = _cli(["train", data, "-o", tmp / "run", "--steps", "3", "--batch", "8", "--device", dev,
              "--checkpoint-every", "3"])
    if p.returncode:
        return [("train 3 steps", False, _fail_text(p))]
    q = _cli(["sample", tmp / "run" / "final", "--seeds", "0-3", "--steps", "3", "--device", dev,
              "-o", tmp / "s.npz"])
    return [("train 3 steps + sample", q.returncode == 0, "ok" if q.returncode == 0 else _fail_text(q))]


def step_cli_end_to_end(dev: str, tmp: Path) -> list[Row]:
    """`fid --model`, `memorization` and `reproducibility` end to end on the device (pixel features)."""
    from ambient_eval.models import save_native
    from ambient_eval.models import UNetConfig, native_config

    ckpt = save_native(_tiny_native(), tmp / "ckpt", native_config(UNetConfig.tiny(16, label_dim=0)), {})
    ref = _write_pngs(tmp / "ref", 40, 2)
    rows = []
    runs = {"fid --model": ["fid", "--model", ckpt, "--seeds", "0-39", "--steps", "3", ref, "--features",
                            "pixel-16", "--metrics", "fid", "--no-cache", "--no-report"],
            "memorization": ["memorization", ref, "--train", ref, "--embed", "pixel", "--no-cache"],
            "reproducibility": ["reproducibility", ckpt, ckpt, "--seeds", "0-7", "--steps", "3",
                                "--embed", "pixel", "--no-cache"]}
    for name, args in runs.items():
        p = _cli([*args, "--device", dev, "--out" if name != "reproducibility" else "-o", tmp / name.split()[0]])
        rows.append((name, p.returncode == 0, "exit 0" if p.returncode == 0 else _fail_text(p)))
    return rows


def step_faiss(dev: str, tmp: Path) -> list[Row]:
    """flat / IVF on the GPU, IVF-PQ (GPU or its CPU fallback), HNSW (CPU by design) vs faiss on CPU.

    SKIP only when no GPU faiss distribution is installed; a GPU distribution that does not work
    (shadowed, deleted files, no GPU seen) is a FAIL.
    """
    from ambient_eval.runtime import faiss_dist
    from ambient_eval.audits import search as S

    state, msg = faiss_dist.diagnose()
    if dev == "cpu" or state in ("none", "cpu"):
        why = "CPU smoke run" if dev == "cpu" else f"no GPU faiss distribution is installed ({msg})"
        return [("faiss-gpu", None, f"SKIP: {why}; recipe: {faiss_dist.install_recipe()}")]
    if state == "broken":
        return [("faiss-gpu", False, msg)]
    import faiss

    if faiss.get_num_gpus() < 1:
        return [("faiss-gpu", False, "faiss-gpu is installed but sees no GPU (CUDA runtime / driver "
                 "mismatch? faiss-gpu wheels use CUDA 12, torch 2.14 CUDA 13)")]
    rng = np.random.default_rng(0)
    xb = rng.standard_normal((50_000, 128), dtype=np.float32)
    xb /= np.linalg.norm(xb, axis=1, keepdims=True)
    xq = xb[:500]
    rows = []
    for kind in ("flat", "ivf", "ivfpq", "hnsw"):
        tx = S.train_sample(xb) if kind in ("ivf", "ivfpq") else None
        cpu = S.build_index(S.iter_blocks(xb), 128, kind, nb=len(xb), use_gpu=False, train_x=tx)
        gpu = S.build_index(S.iter_blocks(xb), 128, kind, nb=len(xb), use_gpu=True, train_x=tx)
        (_, Ic), (_, Ig) = S.search(cpu, xq, 5), S.search(gpu, xq, 5)
        agree = float((Ic[:, 0] == Ig[:, 0]).mean())
        # flat / IVF must run on the GPU; IVF-PQ (with its exact re-rank) may fall back to CPU with a
        # warning, HNSW always stays on CPU: those rows check the results, and say where they ran.
        from ambient_eval.audits.faiss_gpu import is_gpu_index

        on_gpu = is_gpu_index(gpu)
        ok = agree >= 0.99 and (on_gpu or kind in ("ivfpq", "hnsw"))
        rows.append((f"faiss {kind}", ok, f"{type(gpu).__name__} ({'GPU' if on_gpu else 'CPU'}), "
                     f"top-1 agreement {agree:.3f}"))
    return rows


def _torchrun(n: int, args: list, timeout: float = 240) -> subprocess.CompletedProcess:
    env = {**os.environ, "PYTHONPATH": str(ROOT), "AMBIENT_EVAL_PROGRESS": "0", "OMP_NUM_THREADS": "1"}
    return subprocess.run([sys.executable, "-m", "torch.distributed.run", "--standalone", "--nproc_per_node",
                           str(n), "-m", "ambient_eval", *map(str, args)], env=env, capture_output=True,
                          text=True, timeout=timeout * SCALE)


def step_torchrun(dev: str, tmp: Path) -> list[Row]:
    """`sample` under torchrun (one rank per GPU) vs one process; `stats` with nccl on >= 2 GPUs."""
    import torch

    from ambient_eval.models import UNetConfig, native_config, save_native

    ngpu = torch.cuda.device_count() if dev == "cuda" else 2
    ckpt = save_native(_tiny_native(), tmp / "ckpt", native_config(UNetConfig.tiny(16, label_dim=0)), {})
    base = ["sample", ckpt, "--seeds", "0-15", "--steps", "3", "--batch", "4", "--net-batch", "4",
            "--device", dev]
    one, many = _cli([*base, "-o", tmp / "one.npz"]), _torchrun(ngpu, [*base, "-o", tmp / "many.npz"])
    if one.returncode or many.returncode:
        rows = [(f"torchrun sample x{ngpu}", False, _fail_text(one if one.returncode else many))]
    else:
        with np.load(tmp / "one.npz") as a, np.load(tmp / "many.npz") as b:
            rows = [_uint8_row(f"torchrun sample x{ngpu}", b["images"], a["images"])]
    if dev == "cuda" and ngpu < 2:
        rows.append(("torchrun nccl stats", None, "SKIP: 1 GPU; NCCL needs one GPU per rank "
                     "(torchrun sample above ran with 1 rank)"))
        return rows
    np.save(tmp / "images.npy", np.random.default_rng(0).integers(0, 256, (64, 16, 16, 3), dtype=np.uint8))
    st = ["stats", tmp / "images.npy", "--features", "pixel-16", "--device", dev, "--no-cache", "--batch", "8"]
    one, many = _cli([*st, "-o", tmp / "a.npz"]), _torchrun(ngpu, [*st, "-o", tmp / "b.npz"])
    backend = "nccl" if dev == "cuda" else "gloo"
    if one.returncode or many.returncode:
        return rows + [(f"torchrun {backend} stats x{ngpu}", False, _fail_text(one if one.returncode else many))]
    with np.load(tmp / "a.npz") as a, np.load(tmp / "b.npz") as b:
        same = bool(np.array_equal(a["mu"], b["mu"]) and np.array_equal(a["sigma"], b["sigma"]))
    return rows + [(f"torchrun {backend} stats x{ngpu}", same, f"statistics identical to one process: {same}")]


def step_oom(dev: str, tmp: Path) -> list[Row]:
    """A real CUDA out-of-memory error is reported as exit-2 advice naming the batch."""
    if dev == "cpu":
        return [("CUDA OOM message", None, "SKIP: CPU smoke run (tested on CPU with torch.OutOfMemoryError)")]
    import torch

    from ambient_eval.errors import AmbientError
    from ambient_eval.sampling.generate import NetCall

    class Hog(torch.nn.Module):
        def forward(self, x, sigma, labels):
            return torch.empty((1 << 40,), device=x.device)  # 4 TiB

    try:
        NetCall(Hog(), None, None)(torch.zeros(4, 3, 8, 8, device="cuda"), torch.ones(4, device="cuda"), None)
    except AmbientError as e:
        return [("CUDA OOM message", "GPU memory" in str(e) and "--net-batch" in str(e), str(e)[:120])]
    return [("CUDA OOM message", False, "no error raised")]


# name => (function, time limit in seconds)
STEPS = {"env": (step_env, 90), "sample": (step_sample, 120), "features": (step_features, 240),
         "models": (step_models, 150), "train": (step_train, 150), "cli": (step_cli_end_to_end, 240),
         "faiss": (step_faiss, 180), "torchrun": (step_torchrun, 300), "oom": (step_oom, 60)}
