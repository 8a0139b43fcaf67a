"""Tiny randomly initialised DiT / SD / SDXL / LCM pipelines built from configs (no downloads).

Components follow the shapes diffusers' own pipeline tests use (tests/pipelines/*), written here.
The CLIP tokenizer gets a vocabulary of single characters and a few merges written to disk.
"""
from __future__ import annotations

import json
from pathlib import Path

import torch

KINDS = ("dit", "sd", "sd-v", "sdxl", "lcm")
_CHARS = "abcdefghijklmnopqrstuvwxyz0123456789 .,"


def tiny_tokenizer(folder: Path):
    """CLIPTokenizer over single characters (+ end-of-word forms) and two merges."""
    from transformers import CLIPTokenizer

    folder.mkdir(parents=True, exist_ok=True)
    tokens = ["<|startoftext|>", "<|endoftext|>", "!"]
    for c in _CHARS.strip():
        tokens += [c, c + "</w>"]
    tokens += ["th", "th</w>", "e</w>"]
    vocab = {t: i for i, t in enumerate(dict.fromkeys(tokens))}
    (folder / "vocab.json").write_text(json.dumps(vocab))
    (folder / "merges.txt").write_text("#version: 0.2\nt h\nt h</w>\n")
    return CLIPTokenizer(str(folder / "vocab.json"), str(folder / "merges.txt"), pad_token="!",
                         model_max_length=16)


def _clip(vocab_size: int, projection: bool = False, hidden: int = 32):
    from transformers import CLIPTextConfig, CLIPTextModel, CLIPTextModelWithProjection

    cfg = CLIPTextConfig(bos_token_id=0, eos_token_id=1, pad_token_id=2, hidden_size=hidden,
                         intermediate_size=37, layer_norm_eps=1e-05, num_attention_heads=4,
                         num_hidden_layers=2, vocab_size=vocab_size, projection_dim=32, max_position_embeddings=16,
                         hidden_act="gelu")
    return (CLIPTextModelWithProjection if projection else CLIPTextModel)(cfg)


def _vae():
    from diffusers import AutoencoderKL

    return AutoencoderKL(block_out_channels=(16, 32), in_channels=3, out_channels=3,
                         down_block_types=("DownEncoderBlock2D", "DownEncoderBlock2D"),
                         up_block_types=("UpDecoderBlock2D", "UpDecoderBlock2D"),
                         latent_channels=4, norm_num_groups=8, sample_size=32)


def _unet(cross_dim: int = 32, sdxl: bool = False, time_cond_proj_dim=None):
    from diffusers import UNet2DConditionModel

    kw = dict(block_out_channels=(16, 32), layers_per_block=1, sample_size=8, in_channels=4,
              out_channels=4, norm_num_groups=8,
              down_block_types=("DownBlock2D", "CrossAttnDownBlock2D"),
              up_block_types=("CrossAttnUpBlock2D", "UpBlock2D"), cross_attention_dim=cross_dim,
              attention_head_dim=(2, 4), time_cond_proj_dim=time_cond_proj_dim)
    if sdxl:
        kw.update(addition_embed_type="text_time", addition_time_embed_dim=8,
                  projection_class_embeddings_input_dim=80, use_linear_projection=True,
                  transformer_layers_per_block=(1, 1))
    return UNet2DConditionModel(**kw)


def build(kind: str, folder: Path, seed: int = 0) -> Path:
    """Build the tiny `kind` pipeline with random weights and save_pretrained it to `folder`."""
    import diffusers as d

    torch.manual_seed(seed)
    tok_dir = folder.parent / f".{folder.name}-tok"
    if kind == "dit":
        tr = d.DiTTransformer2DModel(sample_size=8, patch_size=2, in_channels=4, out_channels=8,
                                     num_layers=2, attention_head_dim=8, num_attention_heads=2,
                                     num_embeds_ada_norm=1000, norm_type="ada_norm_zero")
        pipe = d.DiTPipeline(transformer=tr, vae=_vae(), scheduler=d.DPMSolverMultistepScheduler(),
                             id2label={i: f"class{i}" for i in range(1000)})
    elif kind in ("sd", "sd-v", "lcm"):
        tok = tiny_tokenizer(tok_dir)
        sched_kw = dict(beta_start=0.00085, beta_end=0.012, beta_schedule="scaled_linear")
        if kind == "lcm":
            unet = _unet(time_cond_proj_dim=32)
            sched = d.LCMScheduler(**sched_kw)
            cls = d.LatentConsistencyModelPipeline
        else:
            unet = _unet()
            sched = d.PNDMScheduler(skip_prk_steps=True, **sched_kw) if kind == "sd" else \
                d.DDIMScheduler(prediction_type="v_prediction", **sched_kw)
            cls = d.StableDiffusionPipeline
        pipe = cls(unet=unet, scheduler=sched, vae=_vae(), text_encoder=_clip(len(tok)), tokenizer=tok,
                   safety_checker=None, feature_extractor=None, requires_safety_checker=False)
    elif kind == "sdxl":
        tok = tiny_tokenizer(tok_dir)
        pipe = d.StableDiffusionXLPipeline(
            unet=_unet(cross_dim=64, sdxl=True), vae=_vae(),
            scheduler=d.EulerDiscreteScheduler(beta_start=0.00085, beta_end=0.012,
                                               beta_schedule="scaled_linear", timestep_spacing="leading",
                                               steps_offset=1),
            text_encoder=_clip(len(tok)), tokenizer=tok, text_encoder_2=_clip(len(tok), True),
            tokenizer_2=tok)
    else:
        raise ValueError(kind)
    pipe.save_pretrained(str(folder), safe_serialization=True)
    return folder
