"""`inception` / `inception-clean` against torch-fidelity and clean-fid with the same weights file.

Inception at 299x299 is slow on a shared 2-core CPU: few images, networks built once per module.
"""
from __future__ import annotations

import warnings

import numpy as np
import pytest
import torch

from ambient_eval.features import LOGITS, MIXED6_CONV7, POOL3, WeightsWarning, extract_features, get_extractor
from tests.conftest import random_images, write_images
from tests.features.conftest import array_source


def _get(name, path):
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", WeightsWarning)
        return get_extractor(name, weights=str(path), device="cpu")


@pytest.fixture(scope="module")
def images2() -> np.ndarray:
    return random_images(2, size=32, seed=11)


@pytest.fixture(scope="module")
def ours_tf(inception_weights):
    return _get("inception", inception_weights)


@pytest.fixture(scope="module")
def ours_clean(inception_weights):
    return _get("inception-clean", inception_weights)


@pytest.fixture(scope="module")
def torch_fidelity_net(inception_weights):
    from torch_fidelity.feature_extractor_inceptionv3 import FeatureExtractorInceptionV3

    return FeatureExtractorInceptionV3("inception-v3-compat", ["2048", "logits_unbiased"],
                                       feature_extractor_weights_path=str(inception_weights))


def test_inception_equals_torch_fidelity(ours_tf, torch_fidelity_net, images2):
    assert (ours_tf.name, ours_tf.mode, ours_tf.outputs) == ("inception", "tf-compat", {POOL3: 2048, LOGITS: 1008,
                                                                           MIXED6_CONV7: 2023})
    feats = extract_features(array_source(images2), ours_tf, batch_size=2)    # same batch as the reference
    with torch.no_grad():
        pool3, logits = torch_fidelity_net(torch.from_numpy(images2).permute(0, 3, 1, 2).contiguous())
    assert feats[POOL3].std() > 0.1 and feats[LOGITS].std() > 0.1   # O(1) features: a real comparison
    np.testing.assert_allclose(feats[POOL3], pool3.numpy(), rtol=0, atol=1e-6)
    np.testing.assert_allclose(feats[LOGITS], logits.numpy(), rtol=0, atol=1e-6)
    # batch-size independence (torch-fidelity's property test); BLAS kernels differ per batch size
    one = extract_features(array_source(images2), ours_tf, batch_size=1)
    for key in (POOL3, LOGITS):
        np.testing.assert_allclose(one[key], feats[key], rtol=1e-5, atol=1e-5)


def test_sfid_spatial_features_are_mixed6_conv_nhwc(ours_tf, torch_fidelity_net, images2):
    # ADM evaluator: sess.run("mixed_6/conv:0")[..., :7].reshape(N, -1) on the NHWC TF tensor; here the
    # same numpy steps on torch-fidelity's Mixed_6d.branch1x1 output (NCHW), taken by the test's own hook.
    got = {}
    handle = torch_fidelity_net.Mixed_6d.branch1x1.register_forward_hook(lambda m, i, o: got.update(x=o.clone()))
    try:
        with torch.no_grad():
            torch_fidelity_net(torch.from_numpy(images2).permute(0, 3, 1, 2).contiguous())
    finally:
        handle.remove()
    nhwc = got["x"].numpy().transpose(0, 2, 3, 1)                 # N x 17 x 17 x 192
    want = nhwc[..., :7].reshape(nhwc.shape[0], -1)
    feats = extract_features(array_source(images2), ours_tf, batch_size=2)
    assert feats[MIXED6_CONV7].shape == (len(images2), 2023) and want.std() > 0.01
    np.testing.assert_allclose(feats[MIXED6_CONV7], want, rtol=0, atol=1e-6)


def test_inception_clean_preprocessing_is_clean_fid_resize(ours_clean, images2):
    from cleanfid.resize import build_resizer

    assert (ours_clean.name, ours_clean.mode, ours_clean.outputs) == ("inception-clean", "clean", {POOL3: 2048})
    x = ours_clean.preprocess(torch.from_numpy(images2).permute(0, 3, 1, 2))
    ref = np.stack([build_resizer("clean")(img) for img in images2])            # NHWC float32
    assert x.dtype == torch.float32 and x.shape == (2, 3, 299, 299)
    np.testing.assert_array_equal(x.permute(0, 2, 3, 1).numpy(), ref)
    assert not np.array_equal(ref, np.round(ref))                               # really not re-quantized


def test_inception_clean_network_is_torch_fidelity_network(ours_clean, torch_fidelity_net):
    # At 299x299 torch-fidelity's TF1 resize is the identity, so both must agree on uint8 299 inputs.
    x = torch.from_numpy(np.random.default_rng(5).integers(0, 256, (1, 3, 299, 299), dtype=np.uint8))
    with torch.no_grad():
        ref, _ = torch_fidelity_net(x)
        out = ours_clean.cleanfid_feat_model()(x.float())
    np.testing.assert_allclose(out.numpy(), ref.numpy(), rtol=0, atol=1e-6)


def test_inception_clean_equals_clean_fid_pipeline(ours_clean, images2, tmp_path):
    # clean-fid's own folder pipeline (its loader + resize) with our network => our features.
    from cleanfid.fid import get_folder_features

    from ambient_eval.data import open_source

    write_images(tmp_path / "imgs", images2)
    feats = extract_features(open_source(tmp_path / "imgs"), ours_clean, batch_size=2)[POOL3]
    ref = get_folder_features(str(tmp_path / "imgs"), model=ours_clean.cleanfid_feat_model(), num_workers=0,
                              batch_size=2, device=torch.device("cpu"), mode="clean", verbose=False)
    assert feats.std() > 0.1
    np.testing.assert_allclose(feats, ref, rtol=0, atol=1e-6)


class _FakeNvidiaInception(torch.nn.Module):
    """Shaped like NVIDIA's TorchScript Inception: a `layers` module mapping normalized 299 input => N x 2048."""

    def __init__(self):
        super().__init__()
        self.layers = torch.nn.Sequential(torch.nn.AdaptiveAvgPool2d(1), torch.nn.Conv2d(3, 2048, 1))

    def forward(self, x):
        return self.layers(x)


@pytest.mark.filterwarnings("ignore:`torch.jit.script` is deprecated:FutureWarning")
def test_inception_clean_accepts_nvidia_torchscript(tmp_path, images2):
    torch.manual_seed(0)
    fake = torch.jit.script(_FakeNvidiaInception().eval())
    path = tmp_path / "inception-2015-12-05.pt"
    fake.save(str(path))
    ours = _get("inception-clean", path).ensure_built()
    assert ours.script is not None and ours.net is None
    x = torch.from_numpy(images2).permute(0, 3, 1, 2)
    out = ours(x)[POOL3]
    with torch.no_grad():
        ref = fake.layers((ours.preprocess(x) - 128) / 128).view(2, 2048)   # clean-fid's InceptionV3W.forward
    torch.testing.assert_close(out, ref)
