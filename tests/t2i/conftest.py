"""Tiny random DiT / SD / SDXL / LCM pipeline folders (built once per session) and a prompt file."""
from __future__ import annotations

import pytest

pytest.importorskip("transformers")

from tests.t2i.tiny_pipelines import KINDS, build  # noqa: E402

PROMPTS = ["a photo of the thing", "the cat", "red dog 3"]


@pytest.fixture(scope="session")
def pipes(tmp_path_factory):
    """kind => folder written by save_pretrained (safetensors)."""
    root = tmp_path_factory.mktemp("t2i")
    return {k: build(k, root / k) for k in KINDS}


@pytest.fixture(scope="session")
def prompt_file(tmp_path_factory):
    p = tmp_path_factory.mktemp("prompts") / "prompts.txt"
    p.write_text("\n".join(PROMPTS[:2]) + "\n\n" + PROMPTS[2] + "\n")
    return p
