"""`ref:NAME` => a local file (other tools' caches, our download cache, else fetched on first use) =>
FeatureStats carrying the catalog's feature space, so a mismatch with --features exits 2 as usual."""
from __future__ import annotations

import glob
import os
from pathlib import Path

from ambient_eval.errors import AmbientError
from ambient_eval.fetch import RemoteFile, cached_path, ensure, verify_file
from ambient_eval.refs import REF_PREFIX
from ambient_eval.refs.catalog import RefEntry, get_entry


def remote_of(entry: RefEntry) -> RemoteFile:
    """The RemoteFile of a catalog entry (cached under <downloads>/refs/<file_name>)."""
    return RemoteFile(url=entry.url, file_name=entry.file_name, subdir="refs", sha256=entry.sha256,
                      what=f"reference statistics of 'ref:{entry.name}'", alternatives=entry.notes)


def _expand(pattern: str) -> str:
    torch_home = os.environ.get("TORCH_HOME") or os.path.join(os.path.expanduser("~"), ".cache", "torch")
    dnnlib = os.environ.get("DNNLIB_CACHE_DIR") or os.path.join(os.path.expanduser("~"), ".cache", "dnnlib")
    cleanfid = ""
    if "{cleanfid}" in pattern:
        try:
            import importlib.util

            spec = importlib.util.find_spec("cleanfid")
            cleanfid = os.path.dirname(spec.origin) if spec and spec.origin else ""
        except (ImportError, ValueError):
            cleanfid = ""
        if not cleanfid:
            return ""
    return pattern.replace("{torch_home}", torch_home).replace("{dnnlib}", dnnlib).replace("{cleanfid}", cleanfid)


def library_hit(entry: RefEntry) -> Path | None:
    """The file in another tool's cache (clean-fid's stats/, dnnlib's downloads/, torch-fidelity's cache)."""
    for pattern in entry.library_caches:
        base = _expand(pattern)
        if base:
            for hit in sorted(glob.glob(base + glob.escape(entry.file_name))):
                if Path(hit).is_file():
                    return Path(hit)
    return None


def find_local(entry: RefEntry) -> Path | None:
    """The local file of `entry` without downloading (None: not present)."""
    remote = remote_of(entry)
    hit = library_hit(entry)
    if hit is not None:
        verify_file(remote, hit)
        return hit
    path = cached_path(remote)
    if path.is_file():
        verify_file(remote, path)
        return path
    return None


def ref_path(name: str) -> Path:
    """Local path of `ref:NAME`, fetched on first use when allowed (offline/CI: AmbientError saying where)."""
    entry = get_entry(name)
    local = find_local(entry)
    if local is not None:
        return local
    if not entry.url:
        raise AmbientError(f"'ref:{name}' ({entry.source}) is not published for download and was not found in "
                           f"{', '.join(filter(None, map(_expand, entry.library_caches))) or 'any library cache'} "
                           f"nor at '{cached_path(remote_of(entry))}'. {entry.notes}")
    return ensure(remote_of(entry))


def is_ref(spec) -> bool:
    """True for a `ref:NAME` string."""
    return isinstance(spec, str) and spec.startswith(REF_PREFIX)


def ref_name(spec: str) -> str:
    """`ref:NAME` (or NAME) => NAME."""
    return spec[len(REF_PREFIX):] if is_ref(spec) else spec


def ref_entry_format(spec: str) -> str:
    """The catalog file format of `ref:NAME` (npz, edm2-pkl, torch-fidelity-pt, adm-npz)."""
    return get_entry(ref_name(spec)).format


def load_ref(spec: str):
    """`ref:NAME` => FeatureStats with the catalog's extractor, mode, feature and N."""
    from ambient_eval.refs import readers
    from ambient_eval.metrics.stats import FeatureStats, load_stats
    from ambient_eval.metrics.stats_checks import check_mean_cov

    name = ref_name(spec)
    entry = get_entry(name)
    path = ref_path(name)
    if entry.format == "npz":
        s = load_stats(path)                       # the normal loader (EDM fid-refs, clean-fid stats)
        mu, sigma = s.mu, s.sigma
    else:
        if entry.format == "edm2-pkl":
            mu, sigma = readers.read_edm2_pkl(path, entry.key)
        elif entry.format == "torch-fidelity-pt":
            mu, sigma = readers.read_torch_fidelity_pt(path)
        else:
            from ambient_eval.data.adm_npz import STATS_KEYS, read_adm_pair
            from ambient_eval.features.base import POOL3

            pair = read_adm_pair(path, *STATS_KEYS[POOL3])
            if pair is None:
                raise AmbientError(f"'{path}' ('ref:{name}') is not an ADM reference batch with statistics: it "
                                   "has no 'mu' and 'sigma'. Delete it and fetch again (`ambient-eval refs fetch "
                                   f"{name}`).")
            mu, sigma = pair
        check_mean_cov(mu, sigma, f"Reference statistics 'ref:{name}' ('{path}')")
    sha = verify_file(remote_of(entry), path)      # memoised: no second hash of the file
    note = (f"ref:{name}: {entry.dataset} {entry.split} {entry.resolution}px, N={entry.n}, {entry.extractor}/"
            f"{entry.mode}/{entry.feature}; {entry.source}; file '{path}' (SHA-256 {sha}).")
    return FeatureStats(mu=mu.astype("float64"), sigma=sigma.astype("float64"), n=entry.n, extractor=entry.extractor,
                        mode=entry.mode, feature=entry.feature, weights_sha256=None,
                        source_fingerprint=f"ref:{name}:{sha}", tool_version="", notes=[note])
