"""Shared test fixtures. Area-specific fixtures live in tests/<area>/conftest.py."""
from __future__ import annotations

import os
from pathlib import Path

import numpy as np
import pytest

# Two xdist workers on 2 cores: one torch thread each avoids oversubscription.
if os.environ.get("PYTEST_XDIST_WORKER"):
    import torch

    torch.set_num_threads(1)

# Progress bars off in tests; no accidental downloads.
os.environ.setdefault("AMBIENT_EVAL_PROGRESS", "0")
os.environ.setdefault("HF_HUB_OFFLINE", "1")
# The suite never touches the network (tests of downloads use their own loopback server and env), and
# never reads or writes the user's download cache.
os.environ["AMBIENT_EVAL_OFFLINE"] = "1"
os.environ["AMBIENT_EVAL_DOWNLOADS"] = __import__("tempfile").mkdtemp(prefix="ambient-eval-downloads-")

SHARED_DATA = Path(__file__).resolve().parents[1].parent / "shared" / "data"


@pytest.fixture(scope="session")
def shared_data() -> Path:
    """../shared/data, or skip when it is absent (a user's machine)."""
    if not SHARED_DATA.is_dir():
        pytest.skip("../shared/data is not present (real datasets are only on project machines)")
    return SHARED_DATA


def write_images(folder: Path, images: np.ndarray, fmt: str = "png", start: int = 0) -> list[Path]:
    """Write NHWC (or NHW) uint8 images as files 000000.<fmt>, ...; returns the paths."""
    from PIL import Image

    folder.mkdir(parents=True, exist_ok=True)
    paths = []
    for i, img in enumerate(images):
        p = folder / f"{start + i:06d}.{fmt}"
        Image.fromarray(img).save(p)
        paths.append(p)
    return paths


def random_images(n: int, size: int = 32, seed: int = 0, channels: int = 3) -> np.ndarray:
    """Seeded smooth-ish random uint8 images, NHWC."""
    rng = np.random.default_rng(seed)
    low = rng.integers(0, 256, size=(n, max(size // 4, 1), max(size // 4, 1), channels)).astype(np.float32)
    img = np.repeat(np.repeat(low, 4, axis=1), 4, axis=2)[:, :size, :size]
    img = img + rng.normal(0, 12, size=img.shape)
    out = np.clip(img, 0, 255).astype(np.uint8)
    return out[..., 0] if channels == 1 else out


@pytest.fixture
def cli():
    """Run the CLI in-process: cli(['fid', ...]) -> click Result (exit_code, stdout, stderr)."""
    from typer.testing import CliRunner

    from ambient_eval.cli import app

    runner = CliRunner()

    def run(args, **kw):
        return runner.invoke(app, [str(a) for a in args], catch_exceptions=False, **kw)

    return run


# ---------------------------------------------------------------------------------------------
# Feature-extractor fixtures (owned by the features area; ambient_eval/features/random_weights.py)
#   inception_weights : path to a seeded random state dict with torch-fidelity's
#                       FeatureExtractorInceptionV3 keys (~96 MB, made once per session). Pass it as
#                       weights= / --weights for `inception` and `inception-clean`; it also works as
#                       torch-fidelity's feature_extractor_weights_path.
#   vgg16_weights     : path to a seeded random torchvision vgg16 state dict stored as float16
#                       (~264 MB, made once per session, only when a test asks for it). For `vgg16`
#                       and torch-fidelity's FeatureExtractorVGG16(feature_extractor_weights_path=...).
#   _feature_cache_dir (autouse): points $AMBIENT_EVAL_CACHE at a session temp dir unless already
#                       set, so tests never write features or weight hashes into ~/.cache.
# Random weights are not the official files: loading them emits ambient_eval WeightsWarning.
# ---------------------------------------------------------------------------------------------
@pytest.fixture(scope="session", autouse=True)
def _feature_cache_dir(tmp_path_factory):
    """$AMBIENT_EVAL_CACHE -> a session temp dir (unless the user set it)."""
    if os.environ.get("AMBIENT_EVAL_CACHE"):
        yield Path(os.environ["AMBIENT_EVAL_CACHE"])
        return
    path = tmp_path_factory.mktemp("ambient-eval-cache")
    os.environ["AMBIENT_EVAL_CACHE"] = str(path)
    yield path
    os.environ.pop("AMBIENT_EVAL_CACHE", None)


@pytest.fixture(scope="session")
def inception_weights(tmp_path_factory) -> Path:
    """Random torch-fidelity Inception-v3 weights file (seed 0)."""
    from ambient_eval.features.random_weights import random_inception_state_dict, save_state_dict

    path = tmp_path_factory.mktemp("weights") / "random-inception.pth"
    save_state_dict(random_inception_state_dict(seed=0), path)
    return path


@pytest.fixture(scope="session")
def vgg16_weights(tmp_path_factory) -> Path:
    """Random torchvision VGG16 weights file (seed 0, float16 on disk)."""
    from ambient_eval.features.random_weights import random_vgg16_state_dict, save_state_dict

    path = tmp_path_factory.mktemp("weights") / "random-vgg16.pth"
    save_state_dict(random_vgg16_state_dict(seed=0), path, half=True)
    return path
# ------------------------------ end of feature-extractor fixtures ------------------------------


@pytest.fixture
def builtin_extractors_only(monkeypatch):
    """Hide the extractors other tests register for the session in this worker ("test-..."):
    messages that list the registered extractors then do not depend on test order."""
    from ambient_eval.features import registry

    monkeypatch.setattr(registry, "_REGISTRY",
                        {k: v for k, v in registry._REGISTRY.items() if not k.startswith("test-")})


def kid_float32_bound(f1: np.ndarray, f2: np.ndarray, d_kernel: int = 3) -> float:
    """Largest |KID_float32 - KID_exact| we accept: 8 float32 epsilons times the mean kernel value.

    torch-fidelity sums m^2 kernel values (x.y/d + 1)^3 in float32; the rounding of that sum is of order
    eps32 * mean|k| and depends on the CPU's BLAS kernel. Measured worst case over OpenBLAS's default,
    Haswell, Zen and Sandybridge kernels and d in {8, 64, 2048}, m in {20..1000}: 1.14 eps32 * mean|k|
    (the KID std included); 8 leaves a margin of 7x.
    """
    x, y = f1.astype(np.float64), f2.astype(np.float64)
    k = max(np.abs((a @ b.T / a.shape[1] + 1) ** d_kernel).mean() for a, b in ((x, x), (y, y), (x, y)))
    return 8 * float(np.finfo(np.float32).eps) * float(k)
