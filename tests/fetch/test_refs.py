"""Named reference statistics: the catalog, `ref:NAME` in each publisher's format (fixtures made here,
served by a loopback server), feature-space mismatch, the `refs` CLI, offline messages."""
from __future__ import annotations

import io
import pickle
import socket
from pathlib import Path

import numpy as np
import pytest

from ambient_eval.errors import AmbientError
from ambient_eval.refs.catalog import PACKAGE_CATALOG, REPO_COPY, load_catalog
from ambient_eval.metrics.stats import FeatureStats

D = 8
RNG = np.random.default_rng(0)
_A = RNG.normal(size=(40, D))
MU, SIGMA = _A.mean(0), np.cov(_A, rowvar=False)
MU2, SIGMA2 = MU + 0.5, SIGMA * 1.5


def test_package_catalog_is_the_repository_copy():
    assert REPO_COPY.read_bytes() == PACKAGE_CATALOG.read_bytes(), \
        "run `python -m ambient_eval.refs.catalog --sync` after editing ambient_eval/refs/catalog.toml"


def test_shipped_catalog_entries():
    from ambient_eval.features.registry import extractor_names

    cat = load_catalog(PACKAGE_CATALOG)
    modes = {"inception": "tf-compat", "inception-clean": "clean", "dinov2": "edm2-bicubic-aa-224-imagenet"}
    for e in cat.values():
        assert e.extractor in extractor_names() and modes[e.extractor] == e.mode, e.name
        assert e.url.startswith("https://") or (e.url == "" and e.notes), e.name
    for name in ("edm-cifar10-32", "edm-ffhq-64", "edm-afhqv2-64", "edm-imagenet-64", "edm2-img64-fid",
                 "edm2-img64-dinov2", "edm2-img512-fid", "edm2-img512-dinov2", "cleanfid-cifar10-train-32-clean",
                 "cleanfid-cifar10-train-32-tf", "cleanfid-ffhq-trainval70k-1024-clean",
                 "torch-fidelity-cifar10-train", "adm-imagenet64", "adm-imagenet128", "adm-imagenet256",
                 "adm-imagenet512"):
        assert name in cat
    assert cat["edm-cifar10-32"].url == "https://nvlabs-fi-cdn.nvidia.com/edm/fid-refs/cifar10-32x32.npz"


def _npz(**arrays) -> bytes:
    buf = io.BytesIO()
    np.savez(buf, **arrays)
    return buf.getvalue()


def _torch_save(obj) -> bytes:
    import torch

    buf = io.BytesIO()
    torch.save(obj, buf)
    return buf.getvalue()


def fixtures() -> dict[str, tuple[str, bytes, dict]]:
    """name -> (file name, bytes, catalog fields) in every catalog format."""
    tf = {"extractor": "inception", "mode": "tf-compat", "feature": "pool3"}
    edm2 = pickle.dumps({"num_images": 40, "fid": {"mu": MU, "sigma": SIGMA},
                         "fd_dinov2": {"mu": MU2, "sigma": SIGMA2}})
    adm = _npz(arr_0=np.zeros((3, 4, 4, 3), np.uint8), mu=MU, sigma=SIGMA, mu_s=MU2, sigma_s=SIGMA2)
    return {
        "t-edm": ("cifar10-32x32.npz", _npz(mu=MU, sigma=SIGMA), {"format": "npz", **tf}),
        "t-edm2-fid": ("img64.pkl", edm2, {"format": "edm2-pkl", "key": "fid", **tf}),
        "t-edm2-dinov2": ("img64.pkl", edm2, {"format": "edm2-pkl", "key": "fd_dinov2", "extractor": "dinov2",
                                              "mode": "edm2-bicubic-aa-224-imagenet", "feature": "embedding"}),
        "t-cleanfid": ("cifar10_clean_train_32.npz", _npz(mu=MU, sigma=SIGMA),
                       {"format": "npz", "extractor": "inception-clean", "mode": "clean", "feature": "pool3"}),
        "t-tfid": ("stat.pt", _torch_save({"mu": MU, "sigma": SIGMA}), {"format": "torch-fidelity-pt", **tf}),
        "t-adm": ("VIRTUAL_imagenet64_labeled.npz", adm, {"format": "adm-npz", **tf}),
    }


EXPECTED = {"t-edm2-dinov2": (MU2, SIGMA2)}


@pytest.fixture
def catalog(server, online, tmp_path, monkeypatch):
    """A test catalog whose URLs point at the loopback server."""
    lines = []
    for name, (fname, body, fields) in fixtures().items():
        url = server.add(f"/{name}/{fname}", body)
        lines += [f"[{name}]", f'url = "{url}"', 'sha256 = ""', "n = 40", "resolution = 32", 'split = "train"',
                  'dataset = "test"', 'source = "generated in the test"', f'file_name = "{name}-{fname}"']
        lines += [f'{k} = "{v}"' for k, v in fields.items()] + [""]
    lines += ["[t-missing]", f'url = "{server.url("/nowhere.npz")}"', 'format = "npz"', 'extractor = "inception"',
              'mode = "tf-compat"', 'feature = "pool3"', "n = 1", "resolution = 32", 'split = "train"',
              'dataset = "x"', 'source = "x"', ""]
    path = tmp_path / "catalog.toml"
    path.write_text("\n".join(lines))
    monkeypatch.setenv("AMBIENT_EVAL_REFS_CATALOG", str(path))
    return path


@pytest.mark.parametrize("name", list(fixtures()))
def test_ref_reads_each_catalog_format(catalog, name):
    from ambient_eval.refs.resolve import load_ref

    s = load_ref(f"ref:{name}")
    mu, sigma = EXPECTED.get(name, (MU, SIGMA))
    assert isinstance(s, FeatureStats) and s.n == 40 and s.mu.dtype == np.float64
    np.testing.assert_array_equal(s.mu, mu)
    np.testing.assert_array_equal(s.sigma, sigma)
    assert s.extractor == fixtures()[name][2]["extractor"] and f"ref:{name}" in s.notes[0]


def _our_stats(tmp_path: Path, extractor="inception", mode="tf-compat") -> Path:
    s = FeatureStats(mu=MU2, sigma=SIGMA2, n=40, extractor=extractor, mode=mode, feature="pool3")
    return s.save(tmp_path / f"gen-{extractor}.npz")


def test_fid_against_ref_and_feature_space_mismatch(catalog, cli, tmp_path):
    from ambient_eval.metrics.fid import fid_from_stats

    gen = _our_stats(tmp_path)
    ok = cli(["fid", str(gen), "ref:t-edm", "--no-report", "--no-cache"])
    assert ok.exit_code == 0, ok.output
    value = float(ok.stdout.split("fid")[1].split()[0])
    assert value == pytest.approx(fid_from_stats(MU2, SIGMA2, MU, SIGMA, method="eig"), rel=1e-6)
    bad = cli(["fid", str(gen), "ref:t-cleanfid", "--no-report", "--no-cache"])   # clean vs tf-compat
    assert bad.exit_code == 2 and "Cannot compare statistics" in bad.stderr and "clean" in bad.stderr


def test_malicious_pickle_refused_without_running(tmp_path):
    from ambient_eval.refs.readers import read_edm2_pkl

    marker = tmp_path / "pwned"

    class Evil:
        def __reduce__(self):
            return (open, (str(marker), "w"))

    path = tmp_path / "evil.pkl"
    path.write_bytes(pickle.dumps({"fid": Evil()}))
    with pytest.raises(AmbientError, match=r"global '(io|builtins)\.open' is not allowed.*refused without running it"):
        read_edm2_pkl(path, "fid")
    assert not marker.exists()


def test_refs_cli_fetch_list_path_verify(catalog, cli, online):
    r = cli(["refs", "fetch", "t-edm", "t-adm"])
    assert r.exit_code == 0, r.output
    cached = online / "refs" / "t-edm-cifar10-32x32.npz"
    assert f"t-edm: {cached}" in r.stdout
    listing = cli(["refs", "list"]).stdout
    assert any(line.startswith("t-edm ") and " yes " in line for line in listing.splitlines())
    assert any(line.startswith("t-tfid ") and " no " in line for line in listing.splitlines())
    assert cli(["refs", "path", "t-edm"]).stdout.strip() == str(cached)
    assert cli(["refs", "verify"]).exit_code == 0
    cached.write_bytes(cached.read_bytes() + b"x")                  # changed after the first download
    v = cli(["refs", "verify"])
    assert v.exit_code == 2 and "pinned" in v.stderr and "t-edm-cifar10-32x32.npz" in v.stderr


def test_refs_fetch_404_exits_2_with_url_and_steps(catalog, cli, server):
    r = cli(["refs", "fetch", "t-missing"])
    assert r.exit_code == 2
    assert "HTTP 404" in r.stderr and server.url("/nowhere.npz") in r.stderr and "curl -L -o" in r.stderr


def test_unknown_ref_lists_names(catalog, cli, tmp_path):
    r = cli(["fid", str(_our_stats(tmp_path)), "ref:nope", "--no-report"])
    assert r.exit_code == 2 and "Unknown reference 'ref:nope'" in r.stderr and "t-edm" in r.stderr


def test_offline_ref_names_file_url_and_place_without_a_socket(cli, tmp_path, monkeypatch):
    calls = []
    monkeypatch.setattr(socket.socket, "connect", lambda self, *a: calls.append(a))
    r = cli(["--offline", "fid", str(_our_stats(tmp_path)), "ref:edm-cifar10-32", "--no-report"])
    assert r.exit_code == 2 and calls == []
    msg = " ".join(r.stderr.split())
    assert "https://nvlabs-fi-cdn.nvidia.com/edm/fid-refs/cifar10-32x32.npz" in msg
    assert "offline mode" in msg and "refs/cifar10-32x32.npz" in msg and "SHA-256" in msg


def test_torch_fidelity_stats_read_from_its_own_cache(monkeypatch, tmp_path):
    """The file torch-fidelity itself writes for input 'cifar10-train', found in $TORCH_HOME/fidelity_cache."""
    import torch
    from torch_fidelity.metric_fid import fid_features_to_statistics
    from torch_fidelity.utils_torch import torch_atomic_save

    from ambient_eval.refs.resolve import load_ref

    monkeypatch.setenv("TORCH_HOME", str(tmp_path / "th"))
    monkeypatch.setenv("AMBIENT_EVAL_DOWNLOADS", str(tmp_path / "dl"))
    (tmp_path / "th" / "fidelity_cache").mkdir(parents=True)
    stats = fid_features_to_statistics(torch.from_numpy(_A.astype(np.float32)))
    torch_atomic_save(stats, str(tmp_path / "th" / "fidelity_cache" / "cifar10-train-inception-v3-compat-stat-fid-2048.pt"))
    s = load_ref("ref:torch-fidelity-cifar10-train")
    np.testing.assert_array_equal(s.mu, stats["mu"])
    np.testing.assert_array_equal(s.sigma, stats["sigma"])
    assert (s.extractor, s.mode, s.feature, s.n) == ("inception", "tf-compat", "pool3", 50000)


def test_torch_fidelity_stats_missing_says_how_to_make_them(monkeypatch, tmp_path):
    from ambient_eval.refs.resolve import ref_path

    monkeypatch.setenv("TORCH_HOME", str(tmp_path / "th"))
    with pytest.raises(AmbientError, match=r"not published for download.*fidelity --fid --input1 cifar10-train"):
        ref_path("torch-fidelity-cifar10-train")
