"""Copy-threshold calibration on the user's own data (SPEC "Memorization", Calibration).

Positives: augmented copies of training images (augment.AUGMENTATIONS), planted as queries.
Negatives: held-out real images (`holdout`, or a seeded split of the training set kept out of
the index). Score = top-1 cosine to the index in the chosen embedding (as the audit scores
samples); a query is flagged when score > t. The threshold is the smallest t whose false-positive
rate on the negatives is <= the target; the true-positive rate is reported per augmentation.
A second check samples the closed-form references of the index set: the empirical denoiser
(copies by construction) should be flagged, the Gaussian one (never copies) should not.

    cal = calibrate(open_source("train.zip"), embed="pixel", fpr=0.01)
    cal.threshold, cal.tpr_per_aug["jpeg"], cal.reference["empirical"]
"""
from __future__ import annotations

import math
from dataclasses import dataclass, field
from typing import Any, Sequence

import numpy as np

from ambient_eval.audits.augment import AUGMENTATIONS, augment
from ambient_eval.errors import AmbientError

# results.json keys (settings["calibration"], extra["calibration"])
THRESHOLD = "threshold"
TARGET_FPR = "target_fpr"
FPR = "fpr"
TPR = "tpr"
TPR_PER_AUG = "tpr_per_augmentation"
AUC = "auc"
REFERENCE = "reference_flagged"


@dataclass(frozen=True)
class CalibrationDefaults:
    fpr: float = 0.01                 # target false-positive rate on held-out real images
    n_per_aug: int = 200              # training images planted per augmentation
    holdout_fraction: float = 0.1     # seeded split of the training set when no --holdout is given
    max_holdout: int = 2000           # at most this many negatives (seeded subset)
    check_seeds: int = 100            # samples per closed-form reference in the second check (0: skip)
    sample_steps: int = 18            # Heun steps for the reference samples
    seed: int = 0                     # split, planted images, augmentations
    roc_points: int = 400             # ROC curve points kept in results.json


DEFAULTS = CalibrationDefaults()


@dataclass
class Calibration:
    """The calibrated threshold and the evidence for it."""

    threshold: float
    target_fpr: float
    fpr: float                                    # achieved on the negatives
    tpr: float                                    # all planted copies
    tpr_per_aug: dict[str, float]
    auc: float
    roc: dict[str, list[float]]                   # {"fpr": [...], "tpr": [...], "threshold": [...]}
    n_index: int
    n_negatives: int
    n_per_aug: int
    holdout: str                                  # "split" or the holdout's description
    embedding: dict[str, Any]
    seed: int
    tta: str = "none"                             # query views scored by their max (as memorization --tta)
    reference: dict[str, float] = field(default_factory=dict)   # {"empirical": frac, "gaussian": frac}
    warnings: list[str] = field(default_factory=list)
    pos_scores: np.ndarray | None = None
    neg_scores: np.ndarray | None = None

    def to_dict(self, roc: bool = True) -> dict[str, Any]:
        """JSON-safe summary (ROC arrays included unless roc=False)."""
        d = {THRESHOLD: self.threshold, TARGET_FPR: self.target_fpr, FPR: self.fpr, TPR: self.tpr,
             TPR_PER_AUG: self.tpr_per_aug, AUC: self.auc, "n_index": self.n_index,
             "n_negatives": self.n_negatives, "n_per_augmentation": self.n_per_aug, "holdout": self.holdout,
             "embed": self.embedding.get("embed"), "seed": self.seed, "tta": self.tta, REFERENCE: self.reference,
             "warnings": self.warnings}
        if roc:
            d["roc"] = self.roc
        return d


def threshold_at_fpr(neg: np.ndarray, fpr: float) -> float:
    """Smallest t with mean(neg > t) <= fpr (t is one of the negative scores)."""
    # k negatives may lie above t: t = the (k+1)-th largest negative score.
    desc = np.sort(np.asarray(neg, dtype=np.float64))[::-1]
    k = int(math.floor(fpr * len(desc) + 1e-9))
    return float(desc[k]) if k < len(desc) else -1.0


def roc_curve(pos: np.ndarray, neg: np.ndarray, n_points: int = DEFAULTS.roc_points) -> dict[str, list[float]]:
    """ROC with 'flagged when score > t' over the pooled scores (subsampled to n_points)."""
    t = np.unique(np.concatenate([pos, neg]).astype(np.float64))[::-1]
    t = np.concatenate([[np.inf], t, [-np.inf]])
    if len(t) > n_points:
        t = t[np.unique(np.linspace(0, len(t) - 1, n_points).round().astype(int))]
    ps, ns = np.sort(pos), np.sort(neg)
    tpr = 1 - np.searchsorted(ps, t, side="right") / len(ps)
    fpr = 1 - np.searchsorted(ns, t, side="right") / len(ns)
    finite = np.where(np.isfinite(t), t, np.sign(t) * 2.0)      # JSON-safe: +-2 beyond any cosine
    return {"fpr": fpr.tolist(), "tpr": tpr.tolist(), "threshold": finite.tolist()}


def auc_score(pos: np.ndarray, neg: np.ndarray) -> float:
    """P(pos > neg) + P(pos = neg) / 2 (Mann-Whitney), from ranks in float64."""
    from scipy.stats import rankdata

    r = rankdata(np.concatenate([pos, neg]).astype(np.float64))
    n1, n0 = len(pos), len(neg)
    return float((r[:n1].sum() - n1 * (n1 + 1) / 2) / (n1 * n0))


def _read_all(source) -> np.ndarray:
    # ImageSource => NHWC uint8, 3 channels
    return np.concatenate([x.permute(0, 2, 3, 1).numpy() for _, x in source.iter_batches(512)])


class _Scorer:
    """Embeds images and scores them by top-1 cosine to the index (FAISS exact inner product)."""

    def __init__(self, index_images: np.ndarray, embed: str, weights: str | None, device: str,
                 batch_size: int, tta: str = "none") -> None:
        import faiss

        from ambient_eval.audits import embed as E

        self.embed, self.batch_size, self.tta = embed, batch_size, tta
        self.extractor = E.extractor_for(embed, weights=weights, device=device)
        self.info = E.embedding_info(self.extractor, embed)
        xb = self.vectors(index_images)
        self.index = faiss.IndexFlatIP(xb.shape[1])
        self.index.add(xb)

    def vectors(self, images: np.ndarray) -> np.ndarray:
        # NHWC uint8 => (N, d) float32 unit rows
        from ambient_eval.audits.embed import embed_source
        from ambient_eval.data.base import ArraySource

        return embed_source(ArraySource(images, description="calibration images"), self.extractor,
                            embed=self.embed, batch_size=self.batch_size)

    def top1(self, images: np.ndarray) -> np.ndarray:
        # NHWC uint8 => (N,) float64: max over the --tta query views, as the audit scores samples
        import torch

        from ambient_eval.audits.tta import view_transforms

        x = torch.as_tensor(np.ascontiguousarray(images)).permute(0, 3, 1, 2)
        best = None
        for _, fn in view_transforms(self.tta, int(images.shape[1])):
            D, _ = self.index.search(self.vectors(fn(x).permute(0, 2, 3, 1).numpy()), 1)
            best = D[:, 0] if best is None else np.maximum(best, D[:, 0])
        return np.clip(best.astype(np.float64), -1.0, 1.0)


def reference_flagged(index_images: np.ndarray, scorer: _Scorer, threshold: float, seeds: Sequence[int], *,
                      steps: int = DEFAULTS.sample_steps, batch_size: int = 64,
                      device: str = "cpu") -> dict[str, float]:
    """Fraction of each closed-form reference's samples flagged at `threshold` (empirical, gaussian)."""
    import torch

    from ambient_eval.data.base import ArraySource
    from ambient_eval.models.closed_form import closed_form_model
    from ambient_eval.sampling.generate import generate

    out = {}
    for kind in ("empirical", "gaussian"):
        den = closed_form_model(kind, ArraySource(index_images, description="calibration index"))
        imgs = torch.cat([x for _, x in generate(den, list(seeds), batch_size=batch_size, steps=steps,
                                                 device=device)])
        imgs = imgs.repeat(1, 3, 1, 1) if imgs.shape[1] == 1 else imgs
        out[kind] = float((scorer.top1(imgs.permute(0, 2, 3, 1).numpy()) > threshold).mean())
    return out


def calibrate(train, holdout=None, *, embed: str = "pixel", weights: str | None = None, device: str = "cpu",
              fpr: float = DEFAULTS.fpr, n_per_aug: int = DEFAULTS.n_per_aug,
              holdout_fraction: float = DEFAULTS.holdout_fraction, max_holdout: int = DEFAULTS.max_holdout,
              check_seeds: int = DEFAULTS.check_seeds, seed: int = DEFAULTS.seed,
              batch_size: int = 256, tta: str = "none") -> Calibration:
    """Training ImageSource (+ optional held-out ImageSource) => Calibration at target `fpr`."""
    if not 0 < fpr < 1:
        raise AmbientError(f"--fpr must be in (0, 1), got {fpr}.")
    imgs = _read_all(train)
    rng = np.random.default_rng(seed)
    if holdout is None:  # seeded split: the held-out part never enters the index
        n_h = min(max_holdout, max(1, round(len(imgs) * holdout_fraction)))
        if len(imgs) - n_h < 2:
            raise AmbientError(f"Calibration needs at least 3 training images to split off a holdout; "
                               f"{train.description} has {len(imgs)}. Pass --holdout DATA.")
        perm = rng.permutation(len(imgs))
        neg_imgs, index_imgs = imgs[np.sort(perm[:n_h])], imgs[np.sort(perm[n_h:])]
        where = f"split ({n_h} of {len(imgs)} training images held out, seed {seed})"
    else:
        neg_imgs, index_imgs = _read_all(holdout), imgs
        if len(neg_imgs) > max_holdout:
            neg_imgs = neg_imgs[np.sort(rng.choice(len(neg_imgs), max_holdout, replace=False))]
        where = holdout.description
        if neg_imgs.shape[1:3] != index_imgs.shape[1:3]:
            raise AmbientError(f"The holdout images are {neg_imgs.shape[1]}x{neg_imgs.shape[2]} but the training "
                               f"images are {index_imgs.shape[1]}x{index_imgs.shape[2]}; use the same size.")
    scorer = _Scorer(index_imgs, embed, weights, device, batch_size, tta)
    planted = np.sort(rng.choice(len(index_imgs), min(n_per_aug, len(index_imgs)), replace=False))
    pos_by_aug = {a: scorer.top1(augment(index_imgs[planted], a, seed)) for a in AUGMENTATIONS}
    pos = np.concatenate(list(pos_by_aug.values()))
    neg = scorer.top1(neg_imgs)
    t = threshold_at_fpr(neg, fpr)
    warns = []
    if len(neg) * fpr < 1:
        warns.append(f"Only {len(neg)} negatives: a false-positive rate of {fpr:g} cannot be resolved "
                     f"(the threshold is the largest negative score). Use a larger --holdout.")
    cal = Calibration(threshold=t, target_fpr=fpr, fpr=float((neg > t).mean()), tpr=float((pos > t).mean()),
                      tpr_per_aug={a: float((s > t).mean()) for a, s in pos_by_aug.items()},
                      auc=auc_score(pos, neg), roc=roc_curve(pos, neg), n_index=len(index_imgs),
                      n_negatives=len(neg), n_per_aug=len(planted), holdout=where, embedding=scorer.info,
                      seed=seed, tta=tta, warnings=warns, pos_scores=pos, neg_scores=neg)
    if check_seeds:
        cal.reference = reference_flagged(index_imgs, scorer, t, range(check_seeds), device=device)
    return cal
