"""CLIP score (Hessel et al. 2021, "CLIPScore", Eq. 1 with w = 100, as torchmetrics' `CLIPScore`):

    CLIPScore(I, C) = 100 * max(cos(E_I, E_C), 0),   averaged over the images,

E_I, E_C the image and text embeddings of one CLIP model (open_clip; default ViT-L-14 with OpenAI's
weights, the model torchmetrics and most text-to-image papers use). Image i is paired with prompt i,
images in the source's order (folders: sorted file names). Per-image clipping as the paper and
torchmetrics' documentation state (torchmetrics' `compute` clips the mean instead; the two agree
whenever no pair has a negative cosine, which real CLIP models on real captions never give).
"""
from __future__ import annotations

import hashlib
import os
from typing import Any, Sequence

import numpy as np

from ambient_eval.errors import AmbientError
from ambient_eval.features.base import EMBEDDING, FeatureExtractor
from ambient_eval.features.clip import HF_VIT_B_32, OPENAI_VIT_B_32, ClipExtractor
from ambient_eval.features.weights import WeightsFile, resolve_weights

DEFAULT_CLIP_SCORE_MODEL = "ViT-L-14"   # open_clip name; OpenAI weights (QuickGELU)
TEXT_BATCH = 256                        # prompts per text-encoder batch

OPENAI_VIT_L_14 = WeightsFile(
    file_name="ViT-L-14.pt",
    url="https://openaipublic.azureedge.net/clip/models/"
        "b8cca3fd41ae0c99ba7e8951adf17d267cdb84cd88be6f7c2e0eca1737a03836/ViT-L-14.pt",
    sha256="b8cca3fd41ae0c99ba7e8951adf17d267cdb84cd88be6f7c2e0eca1737a03836",  # OpenAI put it in the URL
    cache_globs=lambda: [os.path.expanduser("~/.cache/clip")],
)
KNOWN_WEIGHTS = {"ViT-L-14": [OPENAI_VIT_L_14], "ViT-B-32": [OPENAI_VIT_B_32, HF_VIT_B_32]}


class ClipScoreModel(ClipExtractor):
    """open_clip model MODEL: image embeddings as the `clip` extractor (same cache entries), plus text."""

    def __init__(self, model_name: str | None = None, weights: str | os.PathLike | None = None,
                 device: str = "auto") -> None:
        FeatureExtractor.__init__(self, device)
        import open_clip

        model_name = model_name or DEFAULT_CLIP_SCORE_MODEL
        cfg = open_clip.get_model_config(model_name)
        if cfg is None:
            raise AmbientError(f"Unknown open_clip model '{model_name}'. Pass --clip-model with one of "
                               f"open_clip.list_models(), e.g. ViT-L-14 or ViT-B-32.")
        files = KNOWN_WEIGHTS.get(model_name, [])
        if weights is None and not files:
            raise AmbientError(f"No default weights are known for open_clip model '{model_name}'. Pass its "
                               "open_clip state dict (.safetensors / .pt) with --clip-weights PATH.")
        w = resolve_weights("clip", files, weights)
        self.name, self.mode = "clip", f"open_clip-{model_name}-eval-transform"
        self.weights_sha256, self.weights_official, self.weights_path = w.sha256, w.official, str(w.path)
        self.model_name, self.key = model_name, f"clip[{model_name}]"
        size = cfg.get("vision_cfg", {}).get("image_size", 224)
        self.image_size = size if isinstance(size, int) else size[0]
        self.transform = open_clip.image_transform(self.image_size, is_train=False)
        self.outputs = {EMBEDDING: int(cfg.get("embed_dim", 512))}
        self.model, self._built = None, False

    def encode_text(self, texts: Sequence[str]) -> np.ndarray:
        """Text embeddings. # N strings => N x D float64"""
        import open_clip
        import torch

        self.ensure_built()
        tokenizer = open_clip.get_tokenizer(self.model_name)
        out = []
        with torch.inference_mode():
            for i in range(0, len(texts), TEXT_BATCH):
                tokens = tokenizer(list(texts[i:i + TEXT_BATCH])).to(self.device)
                out.append(self.model.encode_text(tokens).double().cpu().numpy())
        return np.concatenate(out)


def read_prompt_texts(prompts: Any, n_images: int) -> list[str]:
    """Prompt strings from a file (.txt/.csv) or a list, exactly one per image."""
    if prompts is None:
        raise AmbientError("clipscore needs the prompts the images were made from: pass --prompts FILE (.txt "
                           "one per line, or .csv with a 'prompt' column), image i paired with prompt i.")
    if isinstance(prompts, (str, os.PathLike)):
        from ambient_eval.data.prompts import read_prompts

        texts = [r.prompt for r in read_prompts(prompts)]
        where = f"'{prompts}'"
    else:
        texts, where = [str(t) for t in prompts], "the prompt list"
    if len(texts) != n_images:
        raise AmbientError(f"clipscore pairs image i with prompt i, but {where} holds {len(texts)} prompts for "
                           f"{n_images} images. Give exactly one prompt per image (images in sorted order).")
    return texts


def clip_scores(image_emb: np.ndarray, text_emb: np.ndarray) -> np.ndarray:
    """Per-pair 100 * max(cos, 0). # N x D, N x D float => N float64"""
    a, b = np.asarray(image_emb, np.float64), np.asarray(text_emb, np.float64)
    cos = (a * b).sum(axis=1) / (np.linalg.norm(a, axis=1) * np.linalg.norm(b, axis=1))
    return 100.0 * np.maximum(cos, 0.0)


def clip_score_of(gen, scorer: ClipScoreModel, image_emb: np.ndarray, texts: Sequence[str]):
    """(mean, std, settings) of the CLIP score of `gen`'s images against `texts`."""
    s = clip_scores(image_emb, scorer.encode_text(texts))
    digest = hashlib.sha256("\n".join(texts).encode()).hexdigest()
    return float(s.mean()), float(s.std()), {
        "model": scorer.model_name, "pairing": "image i with prompt i (source order)",
        "n_prompts": len(texts), "prompts_sha256": digest, "clip": "per image, 100 * max(cos, 0)"}
