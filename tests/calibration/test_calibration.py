"""Copy-threshold calibration: ROC pieces against brute force, augmentations, real-data check, CLI."""
from __future__ import annotations

import json

import numpy as np
import pytest

from ambient_eval.audits.augment import AUGMENTATIONS, augment
from ambient_eval.audits.calibration import auc_score, calibrate, roc_curve, threshold_at_fpr
from ambient_eval.data.base import ArraySource


@pytest.mark.parametrize("fpr", [0.0, 0.01, 0.05, 0.3])
def test_threshold_at_fpr_is_the_smallest_admissible(fpr):
    neg = np.random.default_rng(0).normal(size=200).round(1)          # many ties
    t = threshold_at_fpr(neg, fpr)
    assert (neg > t).mean() <= fpr + 1e-12
    smaller = neg[neg < t]
    if smaller.size:  # any lower candidate would exceed the target
        assert (neg > smaller.max()).mean() > fpr


def test_roc_and_auc_match_brute_force():
    rng = np.random.default_rng(1)
    pos, neg = rng.normal(1, 1, 50).round(1), rng.normal(0, 1, 70).round(1)
    roc = roc_curve(pos, neg, n_points=10_000)
    assert (roc["fpr"][0], roc["tpr"][0], roc["fpr"][-1], roc["tpr"][-1]) == (0, 0, 1, 1)  # t = +-inf
    for t, f, p in list(zip(roc["threshold"], roc["fpr"], roc["tpr"]))[1:-1]:
        assert f == pytest.approx((neg > t).mean()) and p == pytest.approx((pos > t).mean())
    brute = np.mean([(a > b) + 0.5 * (a == b) for a in pos for b in neg])
    assert auc_score(pos, neg) == pytest.approx(brute, abs=1e-12)


@pytest.mark.parametrize("name", list(AUGMENTATIONS))
def test_augmentations_seeded_and_shaped(name):
    imgs = np.random.default_rng(2).integers(0, 256, (4, 32, 32, 3), dtype=np.uint8)
    a, b = augment(imgs, name, seed=3), augment(imgs, name, seed=3)
    assert a.shape == imgs.shape and a.dtype == np.uint8 and np.array_equal(a, b)
    assert np.array_equal(augment(imgs[1:2], name, seed=3)[0], augment(imgs[:2], name, seed=3)[1]) is (name in (
        "exact", "flip"))  # per-image generators are keyed by position; exact/flip are not random
    if name == "exact":
        assert np.array_equal(a, imgs)
    elif name == "flip":
        assert np.array_equal(a, imgs[:, :, ::-1])
    else:
        assert not np.array_equal(a, imgs)


@pytest.mark.slow
def test_calibration_on_real_cifar(shared_data):
    # Real CIFAR-10 at 32x32, pixel embedding: the threshold at 1% FPR flags the memorizer's
    # samples and not the Gaussian model's (the acceptance check, on 1000 real images:
    # 800 in the index, 200 held out).
    imgs = np.load(shared_data / "cifar10-test-first1000.npz")["images"]
    cal = calibrate(ArraySource(imgs), embed="pixel", fpr=0.01, n_per_aug=40, check_seeds=60,
                    holdout_fraction=0.2)
    assert cal.n_negatives == 200 and cal.fpr <= 0.01
    assert cal.tpr_per_aug["exact"] == 1.0 and set(cal.tpr_per_aug) == set(AUGMENTATIONS)
    assert cal.reference["empirical"] >= 0.99 and cal.reference["gaussian"] <= 0.01
    assert 0.5 < cal.auc <= 1.0


def test_cli_calibrate_and_threshold_calibrated(cli, tmp_path):
    train = "builtin:digits-16:train"
    r = cli(["memorization", "--calibrate", "--train", train, "--max-images", "300", "--embed", "pixel",
             "--check-seeds", "0", "--out", tmp_path / "c"])
    assert r.exit_code == 0, r.output
    cal = json.loads((tmp_path / "c" / "calibration.json").read_text())
    assert set(cal["tpr_per_augmentation"]) == set(AUGMENTATIONS) and "roc" in cal
    assert "plotly" in (tmp_path / "c" / "report.html").read_text().lower()
    r = cli(["memorization", "--model", "closed-form:empirical:builtin:digits-16:test", "--seeds", "0-3",
             "--train", train, "--max-images", "300", "--embed", "pixel", "--threshold", "calibrated",
             "--check-seeds", "0", "--bootstrap", "0", "--no-cache", "--out", tmp_path / "m"])
    assert r.exit_code == 0, r.output
    res = json.loads((tmp_path / "m" / "results.json").read_text())
    t = res["settings"]["calibration"]["threshold"]
    assert res["settings"]["thresholds"] == [t] and "roc" in res["extra"]["calibration"]
    assert "Threshold calibration" in (tmp_path / "m" / "report.html").read_text()
    r = cli(["memorization", "x/", "--train", train, "--threshold", "high"])
    assert r.exit_code == 2 and "neither a number nor 'calibrated'" in r.output


def test_calibration_scores_tta_views_like_the_audit():
    # With --tta flip the query is also searched mirrored: planted flips become exact matches.
    from ambient_eval.data import open_source

    src = open_source("builtin:digits-16:train", max_images=200)
    plain = calibrate(src, embed="pixel", n_per_aug=30, check_seeds=0)
    flip = calibrate(src, embed="pixel", n_per_aug=30, check_seeds=0, tta="flip")
    assert flip.tta == "flip" and flip.to_dict()["tta"] == "flip"
    assert flip.tpr_per_aug["flip"] == 1.0 > plain.tpr_per_aug["flip"]
    assert flip.fpr <= 0.01 and flip.threshold >= plain.threshold   # max over views raises negatives too
