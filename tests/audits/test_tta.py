"""--tta: flipped / shifted copies of real CIFAR-10 images are found with `pixel` features, no novel
image is flagged, views merge by max similarity; degenerate embeddings are warned about."""
from __future__ import annotations

import numpy as np
import pytest

from ambient_eval.audits import tta as T
from ambient_eval.audits.memorization_run import MemorizationConfig, run_memorization, write_outputs
from ambient_eval.data import ArraySource
from ambient_eval.errors import AmbientError
from tests.audits.planted import modify

N_TRAIN, N_NOVEL = 400, 40
MODS = ("hflip", "shift2", "hflip+shift2")


@pytest.fixture(scope="module")
def cifar(shared_data):
    with np.load(shared_data / "cifar10-test-first1000.npz") as z:
        return np.asarray(z["images"])


def _planted(images):
    rng = np.random.default_rng(0)
    train, novel = images[:N_TRAIN], images[N_TRAIN:N_TRAIN + N_NOVEL]
    src = rng.choice(N_TRAIN, 10 * len(MODS), replace=False)
    gen, truth = list(novel), [("novel", -1)] * N_NOVEL
    for j, mod in enumerate(MODS):
        for i in src[j * 10:(j + 1) * 10]:
            img = train[i]
            for part in mod.split("+"):
                img = modify(img, part, rng)
            gen.append(img)
            truth.append((mod, int(i)))
    return train, np.stack(gen), truth


def _audit(train, gen, tta):
    cfg = MemorizationConfig(embed="pixel", device="cpu", tta=tta, n_boot=10, thresholds=(0.95,))
    return run_memorization({"gen": ArraySource(gen)}, ArraySource(train), cfg)


def test_tta_finds_flipped_and_shifted_copies_of_real_images(cifar, tmp_path):
    train, gen, truth = _planted(cifar)
    plain = _audit(train, gen, "none").models[0].table
    audit = _audit(train, gen, "flip+shift")
    table = audit.models[0].table
    mod = np.array([t[0] for t in truth])
    src = np.array([t[1] for t in truth])
    copies = mod != "novel"
    # every planted copy is found (right training image, above 0.95); no novel image is flagged
    assert (table["top1_index"].to_numpy()[copies] == src[copies]).all()
    assert table["above_0.95"].to_numpy()[copies].all()
    assert not table["above_0.95"].to_numpy()[~copies].any()
    # without TTA the flipped copies are missed: the views are what finds them
    assert plain["above_0.95"].to_numpy()[mod == "hflip"].mean() < 0.5
    views = table["top1_view"].to_numpy()
    assert all(v == "flip" for v in views[mod == "hflip"])
    assert all(v.startswith("shift(") for v in views[mod == "shift2"])
    assert audit.warnings == []
    write_outputs(audit, tmp_path)
    import json

    res = json.loads((tmp_path / "results.json").read_text())
    assert res["settings"]["tta"] == "flip+shift" and res["settings"]["tta_shift_px"] == 2


def test_merge_views_keeps_max_per_training_image():
    d0, i0 = np.array([[0.9, 0.5, 0.1]], np.float32), np.array([[3, 1, 2]])
    d1, i1 = np.array([[0.95, 0.8, 0.2]], np.float32), np.array([[1, 3, 7]])
    D, I, V = T.merge_views([(d0, i0), (d1, i1)], 3)
    np.testing.assert_array_equal(I, [[1, 3, 7]])
    np.testing.assert_allclose(D, [[0.95, 0.9, 0.2]])
    assert V.tolist() == [1]


def test_views_are_exact_transforms():
    import torch

    x = torch.arange(2 * 3 * 32 * 32, dtype=torch.int64).reshape(2, 3, 32, 32).to(torch.uint8)
    views = dict(T.view_transforms("flip+shift", 32))
    assert len(views) == 18 and torch.equal(views["identity"](x), x)
    assert torch.equal(views["flip"](x), x.flip(-1))
    s = views["shift(0,2)"](x)
    assert torch.equal(s[..., 2:], x[..., :-2]) and torch.equal(s[..., 0], x[..., 0])
    with pytest.raises(AmbientError, match="Unknown --tta"):
        T.view_transforms("rotate", 32)


class _Degenerate:
    """A network whose output is dominated by one constant direction (like random weights with a
    large bias): every image is at cosine ~1 from every other one."""

    def __call__(self, *, weights=None, device="auto"):
        from ambient_eval.features.base import EMBEDDING, FeatureExtractor

        class Deg(FeatureExtractor):
            name, mode, outputs, weights_sha256, weights_official = "test-degenerate", "x", {EMBEDDING: 48}, None, False

            def _extract(self, images):
                x = images.float()[:, :, ::8, ::8].reshape(images.shape[0], -1) / 255
                return {EMBEDDING: 10.0 + 0.05 * x}

        return Deg("cpu")


def test_degenerate_embedding_is_warned():
    from ambient_eval.features import extractor_names, register_extractor
    from tests.audits.planted import smooth_images

    if "test-degenerate" not in extractor_names():
        register_extractor("test-degenerate", _Degenerate())
    train, gen = smooth_images(60, seed=1), smooth_images(20, seed=2)    # nothing is a copy
    cfg = MemorizationConfig(embed="test-degenerate", device="cpu", n_boot=10, thresholds=(0.9,))
    audit = run_memorization({"gen": ArraySource(gen)}, ArraySource(train), cfg)
    assert audit.models[0].metrics["frac_above_0.9"] == 1.0            # all "copies" ...
    assert len(audit.warnings) == 2                                    # ... and the user is told twice
    assert "unrelated training images" in audit.warnings[0] and "median top-1" in audit.warnings[1]
    assert T.degenerate_warnings({"m": np.full(5, 0.5)}, np.full(10, 0.1), "x") == []
