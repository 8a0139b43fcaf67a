"""`fid --metrics fid,sfid,adm-is,adm-pr` end to end on tiny image sets (random-weight Inception), ADM
reference batches (images + precomputed statistics) as input, and ADM sample batches written/read.

The Frechet distances here are 2048-d and 2023-d: one scipy sqrtm of that size takes minutes on the
shared 2-core machines, so the pipeline test records the statistics and method handed to
fid_from_stats and checks them against the oracle's np.mean / np.cov of the identical activations;
the sqrtm arithmetic itself is compared with the oracle in test_adm.py.
"""
from __future__ import annotations

import json
import warnings

import numpy as np
import pytest

from ambient_eval.errors import AmbientError
from ambient_eval.features import LOGITS, MIXED6_CONV7, POOL3
from tests.conftest import random_images, write_images
from tests.metrics import adm_oracle

N_GEN, N_REF = 10, 12


@pytest.fixture(scope="module")
def adm_sets(tmp_path_factory, inception_weights):
    """A PNG folder (generated), an ADM images-only batch (reference, arr_0 NHWC) and the activations of
    each, extracted once into a module feature cache that the runs below hit (content fingerprints)."""
    from ambient_eval.data import open_source
    from ambient_eval.features import FeatureCache, extract_features, get_extractor

    root = tmp_path_factory.mktemp("adm")
    gen, ref = random_images(N_GEN, seed=11), random_images(N_REF, seed=12)
    write_images(root / "gen", gen)
    np.savez(root / "ref.npz", arr_0=ref)
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        ex = get_extractor("inception", weights=str(inception_weights), device="cpu")
        cache = FeatureCache(root / "cache")
        acts = {k: extract_features(open_source(root / p), ex, batch_size=64, cache=cache)
                for k, p in (("gen", "gen"), ("ref", "ref.npz"))}
    return root, gen, ref, acts


@pytest.fixture
def recorded_frechet(monkeypatch):
    """Record fid_from_stats calls; each returns a distinct stand-in value (see the module docstring)."""
    import ambient_eval.metrics as M

    calls = []

    def record(mu1, s1, mu2, s2, method="eig", n1=None, n2=None):
        calls.append(dict(mu1=mu1, s1=s1, mu2=mu2, s2=s2, method=method, dim=len(mu1)))
        return float(len(calls))

    monkeypatch.setattr(M, "fid_from_stats", record)
    return calls


def _fid(root, *args, **kw):
    import shutil

    from ambient_eval import api

    shutil.rmtree(root / "cache" / "values", ignore_errors=True)   # stored distances: recompute (record)
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")   # small-N and random-weights warnings
        return api.fid(*args, device="cpu", cache=True, cache_dir=root / "cache", **kw)


def _assert_stats(call, acts_gen, acts_ref, ref_file=None):
    """The generated side from the activations; the reference side from them or from the batch file."""
    if ref_file is not None:
        with np.load(ref_file) as z:
            k_mu, k_sigma = ("mu", "sigma") if len(call["mu2"]) == 2048 else ("mu_s", "sigma_s")
            np.testing.assert_array_equal(call["mu2"], z[k_mu])
            np.testing.assert_array_equal(call["s2"], z[k_sigma])
    for (mu, s), acts in (((call["mu1"], call["s1"]), acts_gen), ((call["mu2"], call["s2"]), acts_ref))[
            :1 if ref_file is not None else 2]:
        mu_o, s_o = adm_oracle.statistics(acts)
        # the evaluator's np.mean of float32 activations is a float32 mean; ours accumulates in float64
        np.testing.assert_allclose(mu, mu_o, rtol=1e-6, atol=1e-9)
        np.testing.assert_allclose(mu, np.mean(np.asarray(acts, np.float64), axis=0), rtol=1e-12, atol=1e-12)
        np.testing.assert_allclose(s, s_o, rtol=0, atol=1e-10)


def test_adm_table_equals_oracle_on_identical_activations(adm_sets, inception_weights, recorded_frechet):
    root, _, _, acts = adm_sets
    res = _fid(root, root / "gen", root / "ref.npz", metrics=["fid", "sfid", "adm-is", "adm-pr"],
               weights=str(inception_weights), fid_method="sqrtm")
    fid_call, sfid_call = recorded_frechet
    assert (fid_call["dim"], fid_call["method"], sfid_call["dim"], sfid_call["method"]) == (2048, "sqrtm", 2023, "sqrtm")
    _assert_stats(fid_call, acts["gen"][POOL3], acts["ref"][POOL3])
    _assert_stats(sfid_call, acts["gen"][MIXED6_CONV7], acts["ref"][MIXED6_CONV7])
    m = res.metrics
    assert (m["fid"], m["sfid"]) == (1.0, 2.0)
    assert m["adm_is"] == pytest.approx(adm_oracle.inception_score(acts["gen"][LOGITS]), rel=1e-12)
    assert (m["adm_precision"], m["adm_recall"]) == adm_oracle.precision_recall(acts["ref"][POOL3], acts["gen"][POOL3])
    per = res.settings["per_metric"]
    assert per["sfid"]["feature"] == MIXED6_CONV7 and per["sfid"]["method"] == "sqrtm"
    assert per["adm-pr"]["reference_images"] == N_REF and per["adm-is"]["split_size"] == 5000


def test_sfid_defaults_to_sqrtm_and_fid_keeps_its_default(adm_sets, inception_weights, recorded_frechet):
    root = adm_sets[0]
    _fid(root, root / "gen", root / "ref.npz", metrics=["fid", "sfid"], weights=str(inception_weights))
    assert [c["method"] for c in recorded_frechet] == ["eig", "sqrtm"]


def _write_reference_batch(path, images, acts_pool, acts_spatial, keys=("mu", "sigma", "mu_s", "sigma_s")):
    arrays = dict(zip(("mu", "sigma"), adm_oracle.statistics(acts_pool)))
    arrays.update(zip(("mu_s", "sigma_s"), adm_oracle.statistics(acts_spatial)))
    np.savez(path, arr_0=images, **{k: v for k, v in arrays.items() if k in keys})


def test_adm_reference_batch_statistics_are_used(adm_sets, inception_weights, recorded_frechet, tmp_path):
    root, gen, ref, acts = adm_sets
    # statistics from other activations than its images: proves the precomputed ones are read
    other = {k: acts["gen"][k] * 1.5 + 0.1 for k in (POOL3, MIXED6_CONV7)}
    batch = tmp_path / "VIRTUAL_test_labeled.npz"
    _write_reference_batch(batch, ref, other[POOL3], other[MIXED6_CONV7])
    res = _fid(root, root / "gen", batch, metrics=["fid", "sfid", "adm-pr"], weights=str(inception_weights),
               fid_method="sqrtm")
    _assert_stats(recorded_frechet[0], acts["gen"][POOL3], None, ref_file=batch)
    _assert_stats(recorded_frechet[1], acts["gen"][MIXED6_CONV7], None, ref_file=batch)
    # adm-pr needs features: from the batch's images (arr_0, NHWC), identical to the PNG folder's
    assert (res.metrics["adm_precision"], res.metrics["adm_recall"]) == adm_oracle.precision_recall(
        acts["ref"][POOL3], acts["gen"][POOL3])
    assert res.inputs["reference"]["precomputed_stats"] == sorted([POOL3, MIXED6_CONV7])
    assert any("ADM evaluator statistics" in n for n in res.extra["reference_notes"])


def test_adm_reference_batch_without_spatial_stats_computes_sfid(adm_sets, inception_weights, recorded_frechet,
                                                                 tmp_path):
    root, gen, ref, acts = adm_sets
    batch = tmp_path / "ref.npz"
    _write_reference_batch(batch, ref, acts["gen"][POOL3] + 1, acts["gen"][MIXED6_CONV7], keys=("mu", "sigma"))
    _fid(root, root / "gen", batch, metrics=["sfid"], weights=str(inception_weights))
    _assert_stats(recorded_frechet[0], acts["gen"][MIXED6_CONV7], acts["ref"][MIXED6_CONV7])


@pytest.mark.parametrize("features, match", [("fid=inception-clean", "mode"), ("sfid=inception-clean", "sFID needs")])
def test_adm_reference_batch_mismatch_refused_before_extraction(adm_sets, inception_weights, tmp_path, features,
                                                                match, monkeypatch):
    root, gen, ref, acts = adm_sets
    batch = tmp_path / "ref.npz"     # pool3 statistics only: reading checks each covariance (eigvalsh)
    _write_reference_batch(batch, ref, acts["ref"][POOL3], acts["ref"][MIXED6_CONV7], keys=("mu", "sigma"))
    import ambient_eval.metrics.compute as fc

    monkeypatch.setattr(fc, "features_of", lambda *a, **k: pytest.fail("extracted before refusing"))
    metric = features.split("=")[0]
    with pytest.raises(AmbientError, match=match):
        _fid(root, root / "gen", batch, metrics=[metric], features=features, weights=str(inception_weights))


def test_export_adm_round_trip(cli, tmp_path):
    images = random_images(5, size=16, seed=4)
    src = tmp_path / "labeled.npz"
    np.savez(src, images=images, labels=np.arange(5))
    out = tmp_path / "samples.npz"
    r = cli(["export-adm", src, "-o", out])
    assert r.exit_code == 0, r.output
    with np.load(out) as z:
        assert sorted(z.files) == ["arr_0", "arr_1"]
        np.testing.assert_array_equal(z["arr_0"], images)            # NHWC uint8, as the evaluator reads
        np.testing.assert_array_equal(z["arr_1"], np.arange(5))
    from ambient_eval.data import open_source

    back = open_source(out)                                          # ADM sample batches read back, labels too
    np.testing.assert_array_equal(back.labels(), np.arange(5))
    assert cli(["export-adm", src, "-o", tmp_path / "x.png"]).exit_code == 2
