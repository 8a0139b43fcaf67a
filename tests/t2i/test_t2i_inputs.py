"""Prompt files, original-repository checkpoints (exit 2 naming the conversion) and LoRA adapters."""
from __future__ import annotations

import json
import struct

import numpy as np
import pytest

from ambient_eval.data.prompts import PromptRow, read_prompts
from ambient_eval.errors import AmbientError
from tests.t2i.conftest import PROMPTS


@pytest.mark.parametrize("suffix", [".txt", ".csv", ".tsv", ".jsonl", ".parquet"])
def test_read_prompts_formats(tmp_path, suffix):
    import pandas as pd

    p = tmp_path / f"p{suffix}"
    df = pd.DataFrame({"prompt": ["a cat", "b, dog"], "seed": [4, 7], "image": ["x.png", "y.png"]})
    if suffix == ".txt":
        p.write_text("a cat\n\n  b, dog  \n")
        assert read_prompts(p) == [PromptRow("a cat"), PromptRow("b, dog")]
        return
    {".csv": lambda: df.to_csv(p, index=False), ".tsv": lambda: df.to_csv(p, sep="\t", index=False),
     ".jsonl": lambda: df.to_json(p, orient="records", lines=True),
     ".parquet": lambda: df.to_parquet(p)}[suffix]()
    assert read_prompts(p) == [PromptRow("a cat", 4, "x.png"), PromptRow("b, dog", 7, "y.png")]


@pytest.mark.parametrize("name, text, needle", [
    ("e.txt", "\n\n", "holds no prompts"),
    ("c.csv", "caption\nx\n", "no 'prompt' column"),
    ("s.csv", "prompt,seed\nx,-3\n", "seed '-3'"),
    ("s2.csv", "prompt,seed\nx,1.5\n", "seed '1.5'"),
    ("j.jsonl", "not json\n", "is not JSON"),
    ("x.md", "a\n", "suffix '.md'"),
    ("missing.txt", None, "Cannot read prompt file"),
    ("bin.txt", b"\xff\xfe\x00bad", "Cannot read prompt file"),
])
def test_read_prompts_bad_files(tmp_path, name, text, needle):
    p = tmp_path / name
    if isinstance(text, bytes):
        p.write_bytes(text)
    elif text is not None:
        p.write_text(text)
    with pytest.raises(AmbientError, match=needle):
        read_prompts(p)


def test_conditions_depend_on_the_seed_alone():
    from ambient_eval.sampling.conditioning import Conditioning

    c = Conditioning(class_spec="balanced")
    assert [c.class_of(s, 10) for s in (3, 13, 20)] == [3, 3, 0]
    c.check_seeds(range(50), 10)
    with pytest.raises(AmbientError, match="between 0 and 1"):
        c.check_seeds(range(5), 10)
    r = Conditioning(class_spec="random")
    assert r.class_of(5, 1000) == np.random.RandomState(5).randint(1000) == Conditioning().class_of(5, 1000)


def _single_file_sd(path):
    header = json.dumps({"model.diffusion_model.input_blocks.0.0.weight":
                         {"dtype": "F32", "shape": [1], "data_offsets": [0, 4]}}).encode()
    path.write_bytes(struct.pack("<Q", len(header)) + header + b"\0\0\0\0")


@pytest.mark.parametrize("name, needle", [
    ("sd-v1-5.ckpt", "from_single_file"),
    ("DiT-XL-2-256x256.pt", "convert_dit_to_diffusers.py"),
    ("v1-5-pruned.safetensors", "from_single_file"),
])
@pytest.mark.parametrize("command", ["sample", "fid", "memorization", "reproducibility"])
def test_original_repository_checkpoints_exit_2(cli, tmp_path, name, needle, command):
    from tests.conftest import random_images, write_images

    write_images(tmp_path / "imgs", random_images(2, size=8))
    ckpt = tmp_path / name
    _single_file_sd(ckpt) if name.endswith(".safetensors") else ckpt.write_bytes(b"\x80\x04not loaded")
    args = {"sample": ["sample", ckpt, "--seeds", "0", "-o", tmp_path / "s"],
            "fid": ["fid", "--model", ckpt, "--seeds", "0", tmp_path / "imgs", "--no-report"],
            "memorization": ["memorization", "--model", ckpt, "--seeds", "0", "--train", tmp_path / "imgs"],
            "reproducibility": ["reproducibility", ckpt, ckpt, "--seeds", "0", "--embed", "pixel"]}[command]
    r = cli(args)
    assert r.exit_code == 2 and needle in r.stderr and "Traceback" not in r.output, r.output


@pytest.mark.slow
def test_lora_matches_diffusers(cli, pipes, prompt_file, tmp_path):
    pytest.importorskip("peft")
    import diffusers
    import torch
    from diffusers.utils import convert_state_dict_to_diffusers
    from peft import LoraConfig
    from peft.utils import get_peft_model_state_dict
    from PIL import Image

    pipe = diffusers.StableDiffusionPipeline.from_pretrained(str(pipes["sd"]), local_files_only=True)
    torch.manual_seed(1)
    pipe.unet.add_adapter(LoraConfig(r=4, lora_alpha=4, init_lora_weights=False,
                                     target_modules=["to_q", "to_k", "to_v", "to_out.0"]))
    layers = convert_state_dict_to_diffusers(get_peft_model_state_dict(pipe.unet))
    diffusers.StableDiffusionPipeline.save_lora_weights(tmp_path / "lora", unet_lora_layers=layers,
                                                        safe_serialization=True)
    r = cli(["sample", pipes["sd"], "--prompts", prompt_file, "--seeds", "0", "--steps", 2, "--lora",
             tmp_path / "lora", "--lora-scale", 0.5, "-o", tmp_path / "s", "--device", "cpu"])
    assert r.exit_code == 0, r.output
    ref = diffusers.StableDiffusionPipeline.from_pretrained(str(pipes["sd"]), local_files_only=True)
    ref.set_progress_bar_config(disable=True)
    base = np.asarray(ref(PROMPTS[0], num_inference_steps=2, generator=torch.Generator("cpu").manual_seed(0)).images[0])
    ref.load_lora_weights(str(tmp_path / "lora"), adapter_name="a")
    ref.set_adapters(["a"], adapter_weights=[0.5])
    want = np.asarray(ref(PROMPTS[0], num_inference_steps=2, generator=torch.Generator("cpu").manual_seed(0)).images[0])
    ours = np.asarray(Image.open(tmp_path / "s" / "000000" / "000000.png"))
    np.testing.assert_array_equal(ours, want)
    assert not np.array_equal(ours, base)
    settings = json.loads((tmp_path / "s" / ".ambient-sample.json").read_text())
    assert settings["lora_scale"] == 0.5 and settings["lora"][0]["path"].endswith("lora")
