"""Statistics files: our format with provenance, EDM and clean-fid files, refusal to mix conventions."""
from __future__ import annotations

import numpy as np
import pytest

from ambient_eval.errors import AmbientError
from ambient_eval.metrics.stats import FeatureStats, check_comparable, is_stats_file, load_stats, stats_from_features


def _stats(**kw):
    rng = np.random.default_rng(0)
    f = rng.normal(size=(50, 6)).astype(np.float32)
    args = dict(extractor="inception", mode="tf-compat", feature="pool3", weights_sha256="ab" * 32,
                source_fingerprint="cd" * 32)
    args.update(kw)
    return f, stats_from_features(f, **args)


def test_roundtrip_keeps_float64_arrays_and_provenance(tmp_path):
    f, st = _stats()
    p = st.save(tmp_path / "ref.npz")
    assert is_stats_file(p)
    back = load_stats(p)
    np.testing.assert_array_equal(back.mu, f.astype(np.float64).mean(0))
    np.testing.assert_array_equal(back.sigma, np.cov(f, rowvar=False))
    assert back.mu.dtype == back.sigma.dtype == np.float64
    assert back.meta() == st.meta() and back.n == 50
    with np.load(p, allow_pickle=False) as z:  # readable without unpickling anything
        assert set(z.files) == {"mu", "sigma", "n", "meta"}
    assert [x.name for x in tmp_path.iterdir()] == ["ref.npz"]  # atomic: no temp files left


def test_edm_style_reference_is_read_as_tf_compat_with_a_note(tmp_path):
    p = tmp_path / "cifar10-32x32.npz"
    np.savez(p, mu=np.zeros(2048, np.float64), sigma=np.eye(2048, dtype=np.float64))
    st = load_stats(p)
    assert (st.extractor, st.mode, st.feature, st.n, st.weights_sha256) == ("inception", "tf-compat", "pool3", None, None)
    assert "no provenance" in st.notes[0] and "EDM" in st.notes[0]


def test_clean_fid_stats_mode_comes_from_the_file_name(tmp_path):
    p = tmp_path / "cifar10_clean_train_32.npz"
    np.savez(p, mu=np.zeros(2048, np.float32), sigma=np.eye(2048, dtype=np.float32))
    st = load_stats(p)
    assert (st.extractor, st.mode) == ("inception-clean", "clean") and st.mu.dtype == np.float64
    legacy = tmp_path / "cifar10_legacy_tensorflow_train_32.npz"
    np.savez(legacy, mu=np.zeros(4), sigma=np.eye(4))
    assert load_stats(legacy).mode == "tf-compat"
    bad = tmp_path / "cifar10_legacy_pytorch_train_32.npz"
    np.savez(bad, mu=np.zeros(4), sigma=np.eye(4))
    with pytest.raises(AmbientError, match="legacy_pytorch"):
        load_stats(bad)


def test_mismatched_statistics_are_refused_naming_the_fields():
    _, a = _stats()
    _, b = _stats(extractor="inception-clean", mode="clean")
    with pytest.raises(AmbientError) as e:
        check_comparable(a, b)
    msg = str(e.value)
    assert "extractor: generated='inception' vs reference='inception-clean'" in msg
    assert "mode: generated='tf-compat' vs reference='clean'" in msg
    _, c = _stats(weights_sha256="ef" * 32)
    with pytest.raises(AmbientError, match="weights_sha256"):
        check_comparable(a, c)
    _, d = _stats(weights_sha256=None)  # unknown on one side (foreign file): allowed
    check_comparable(a, d)


@pytest.mark.parametrize("case", ["nan", "shape", "no_mu", "garbage", "int"])
def test_broken_stats_files_are_clear_errors(tmp_path, case):
    p = tmp_path / "s.npz"
    if case == "nan":
        np.savez(p, mu=np.array([0.0, np.nan]), sigma=np.eye(2))
    elif case == "shape":
        np.savez(p, mu=np.zeros(3), sigma=np.eye(2))
    elif case == "no_mu":
        np.savez(p, sigma=np.eye(2))
    elif case == "int":
        np.savez(p, mu=np.zeros(2, np.int64), sigma=np.eye(2, dtype=np.int64))
    else:
        p.write_bytes(b"not a zip file")
    with pytest.raises(AmbientError, match="s.npz"):
        load_stats(p)


def test_save_refuses_other_suffix(tmp_path):
    _, st = _stats()
    with pytest.raises(AmbientError, match=".npz"):
        st.save(tmp_path / "ref.txt")
    assert not list(tmp_path.iterdir())


def test_feature_stats_is_the_documented_record():
    _, st = _stats()
    assert isinstance(st, FeatureStats)
    assert {"n", "extractor", "mode", "feature", "weights_sha256", "source_fingerprint", "tool_version"} <= set(st.meta())
