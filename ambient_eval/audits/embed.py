"""Embeddings for nearest-neighbour audits: `--embed` name -> extractor, L2-normalized float32 rows.

Public API (reused by the reproducibility audit):
- `EMBEDS`: the `--embed` names and the feature extractor each maps to.
- `extractor_for(embed, weights=, device=)`: the FeatureExtractor for an `--embed` name.
- `l2_normalize(x, center=False)`: NC float => NC float32 unit rows.
- `embed_source(source, extractor, embed=, batch_size=, cache=)`: a whole ImageSource embedded,
  through the feature cache (same source fingerprint + extractor + weights => computed once).
- `embedding_info(extractor, embed)`: provenance dict recorded in results and index keys.
"""
from __future__ import annotations

from typing import TYPE_CHECKING, Any

import numpy as np

from ambient_eval.errors import AmbientError

if TYPE_CHECKING:
    from ambient_eval.data.base import ImageSource
    from ambient_eval.features.base import FeatureExtractor
    from ambient_eval.features.cache import FeatureCache

# --embed name -> feature extractor registry name (SPEC "Memorization").
EMBEDS: dict[str, str] = {
    "sscd": "sscd",                # copy-detection descriptor (user-supplied TorchScript weights)
    "dinov2": "dinov2-ambient",    # Ambient papers: CLS token, [0,1] input, no mean/std, 224
    "clip": "clip",                # open_clip image tower
    "inception": "inception",      # Inception-v3 pool3, 2048-d
    "pixel": "pixel",              # raw pixels at 32x32 (pixel-N: at NxN); needs no weights
}
EMBED_NAMES = tuple(EMBEDS)

# Numerical risk: an all-constant image has a zero vector after centring; dividing by its
# norm would give NaN. Rows with norm below EPS stay zero (cosine 0 with everything).
EPS = 1e-12


def family(embed: str) -> str:
    """Embedding family used for default thresholds: 'pixel-64' -> 'pixel', 'sscd' -> 'sscd'."""
    return "pixel" if embed.startswith("pixel") else embed


def centers(embed: str) -> bool:
    """Whether rows are mean-centred before normalizing (pixel: cosine = Pearson correlation).

    Raw pixel vectors of unrelated images share a large common component (mean brightness), so
    their plain cosine is high; centring each image removes it while copies stay at ~1.
    """
    return family(embed) == "pixel"


def extractor_for(embed: str, *, weights: str | None = None, device: str = "auto") -> "FeatureExtractor":
    """FeatureExtractor for an `--embed` name (other registry names such as pixel-64 pass through)."""
    from ambient_eval.features import get_extractor

    if not isinstance(embed, str) or not embed:
        raise AmbientError(f"Invalid --embed {embed!r}. Use one of: {', '.join(EMBED_NAMES)}.")
    return get_extractor(EMBEDS.get(embed, embed), weights=weights, device=device)


def l2_normalize(x: np.ndarray, *, center: bool = False, chunk: int = 65536,
                 dtype: type = np.float32) -> np.ndarray:
    """Rows scaled to unit L2 norm (optionally mean-centred first), `chunk` rows at a time."""
    # (N, d) float32/64 => (N, d) `dtype` (float32 for FAISS), ||row|| = 1 (or 0 for a zero row)
    out = np.empty(x.shape, dtype=dtype)
    for i0 in range(0, x.shape[0], chunk):
        # float64 per chunk: norms of d up to 786k (pixel-512) without float32 round-off
        b = np.asarray(x[i0:i0 + chunk], dtype=np.float64)
        if center:
            b = b - b.mean(axis=1, keepdims=True)
        norm = np.linalg.norm(b, axis=1, keepdims=True)
        out[i0:i0 + chunk] = b / np.maximum(norm, EPS)
    return out


def embedding_info(extractor: "FeatureExtractor", embed: str) -> dict[str, Any]:
    """What made the embeddings: recorded in results.json settings and in saved index keys."""
    return {
        "embed": embed,
        "extractor": extractor.name,
        "mode": extractor.mode,
        "output": extractor.default_output,
        "dim": int(extractor.outputs[extractor.default_output]),
        "weights_sha256": extractor.weights_sha256,
        "weights_official": bool(extractor.weights_official),
        "normalization": "center+l2" if centers(embed) else "l2",
    }


def embed_source(source: "ImageSource", extractor: "FeatureExtractor", *, embed: str | None = None,
                 batch_size: int = 64, cache: "FeatureCache | None" = None) -> np.ndarray:
    """Embed every image of `source`: raw features from the (cached) extractor, then normalized.

    The feature cache stores the extractor's raw output keyed by source fingerprint + extractor +
    weights, so a training set is embedded once and reused across checkpoints and runs; the cheap
    normalization is redone each time.
    """
    from ambient_eval.features import extract_features

    # ImageSource (N images) => (N, d) float32, unit rows
    if len(source) == 0:
        raise AmbientError(f"{source.description} contains no images. Pass a source with at least one image.")
    feats = extract_features(source, extractor, batch_size=batch_size, cache=cache)
    x = feats[extractor.default_output]
    return l2_normalize(x, center=centers(embed or extractor.name))
