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
