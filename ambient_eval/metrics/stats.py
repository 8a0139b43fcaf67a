"""Feature statistics: streaming float64 mean/covariance and reference-stats files with provenance.

Our stats file is an `.npz` (no pickles) with `mu` (D,) float64, `sigma` (D, D) float64, `n`, and
`meta`: a JSON string with extractor, mode, feature output, weights sha256, source fingerprint and
tool version. Two foreign formats are read as well, both holding only `mu` and `sigma`:
  - EDM `fid-refs/*.npz` (NVlabs dnnlib Inception = TF graph, same as our `inception`/`tf-compat`);
  - clean-fid stats (`<dataset>_<mode>_<split>_<res>.npz`); the mode is read from the file name.
Their provenance is incomplete; what we assume is recorded in `FeatureStats.notes`.
"""
from __future__ import annotations

import json
import os
from dataclasses import asdict, dataclass, field
from pathlib import Path

import numpy as np

from ambient_eval import __version__
from ambient_eval.files.atomic import save_npz
from ambient_eval.errors import AmbientError
from ambient_eval.metrics.stats_checks import check_cov_memory, check_mean_cov

# Feature arrays with more elements than this are reduced in float64 chunks instead of np.cov
# (np.cov makes two float64 copies: 50k x 2048 -> 1.6 GB).
IN_MEMORY_COV_MAX_ELEMENTS = 64 * 2**20
# Rows per chunk for the streaming path.
STREAM_CHUNK_ROWS = 4096

# Fields that must be equal before two statistics may be compared.
STATS_MATCH_FIELDS = ("extractor", "mode", "feature", "weights_sha256")


class StreamingMeanCov:
    """Mean and covariance (N-1) of rows seen in batches, accumulated in float64.

    Chan, Golub & LeVeque 1979, pairwise update: for batches A, B with means m_A, m_B, centred scatter
    matrices M_A, M_B and delta = m_B - m_A:
        m = m_A + delta n_B / n,   M = M_A + M_B + delta delta^T n_A n_B / n.
    Each batch is centred on its own mean first, which avoids the catastrophic cancellation of the
    naive sum(x x^T) - n m m^T on features with large means.
    """

    def __init__(self, dim: int | None = None):
        self.n = 0
        self.mean = None if dim is None else np.zeros(dim, np.float64)
        self.m2 = None if dim is None else np.zeros((dim, dim), np.float64)

    def update(self, x: np.ndarray) -> "StreamingMeanCov":
        """Add a batch of rows. # NC float => (state)"""
        x = np.asarray(x, dtype=np.float64)
        if x.ndim != 2 or len(x) == 0:
            return self
        n_b = len(x)
        m_b = x.mean(axis=0)
        xc = x - m_b
        m2_b = xc.T @ xc
        if self.n == 0:
            self.n, self.mean, self.m2 = n_b, m_b, m2_b
            return self
        n = self.n + n_b
        delta = m_b - self.mean
        self.mean = self.mean + delta * (n_b / n)
        self.m2 = self.m2 + m2_b + np.outer(delta, delta) * (self.n * n_b / n)
        self.n = n
        return self

    def cov(self) -> np.ndarray:
        """Unbiased covariance (divides by N - 1). # => DxD float64"""
        if self.n < 2:
            raise AmbientError(f"A covariance needs at least 2 feature vectors; got {self.n}. Use more images.")
        return self.m2 / (self.n - 1)


def mean_cov(features: np.ndarray, chunk_rows: int = STREAM_CHUNK_ROWS) -> tuple[np.ndarray, np.ndarray]:
    """Mean and covariance in float64. # NC float => (C,) float64, CxC float64

    Small inputs use np.cov (float64), which is the exact arithmetic of torch-fidelity and clean-fid, so
    results match them bit for bit; large ones are reduced in chunks with StreamingMeanCov.
    """
    features = np.asarray(features)
    if features.ndim != 2 or len(features) < 2:
        raise AmbientError(f"Need at least 2 feature vectors to compute statistics; got shape "
                           f"{features.shape}. Use more images.")
    check_cov_memory(features.shape[1])
    if features.size <= IN_MEMORY_COV_MAX_ELEMENTS:
        return features.astype(np.float64).mean(axis=0), np.cov(features, rowvar=False)
    acc = StreamingMeanCov()
    for i in range(0, len(features), chunk_rows):
        acc.update(features[i:i + chunk_rows])
    return acc.mean, acc.cov()


@dataclass
class FeatureStats:
    """Gaussian statistics of one image set in one feature space, with where they came from."""

    mu: np.ndarray                       # (D,) float64 mean
    sigma: np.ndarray                    # (D, D) float64 covariance (N - 1)
    n: int | None                        # number of images (None when a foreign file does not say)
    extractor: str                       # registry name, e.g. "inception"
    mode: str                            # preprocessing mode, e.g. "tf-compat", "clean"
    feature: str                         # extractor output name, e.g. "pool3"
    weights_sha256: str | None = None    # sha256 of the weights file used (None: unknown)
    source_fingerprint: str | None = None  # ImageSource.fingerprint() (None: unknown)
    tool_version: str = __version__      # ambient-eval version that computed them
    notes: list[str] = field(default_factory=list)  # assumptions made when reading foreign files

    def meta(self) -> dict:
        """Everything except the arrays, as plain JSON."""
        d = asdict(self)
        d.pop("mu"), d.pop("sigma")
        return d

    def save(self, path: str | os.PathLike) -> Path:
        """Write atomically as .npz (mu, sigma, n, meta JSON); no pickles."""
        p = Path(path)
        if p.suffix != ".npz":
            raise AmbientError(f"Statistics file name '{p}' must end in .npz.")
        save_npz(p, mu=np.asarray(self.mu, np.float64), sigma=np.asarray(self.sigma, np.float64),
                 n=np.int64(-1 if self.n is None else self.n), meta=np.array(json.dumps(self.meta())))
        return p


def stats_from_features(features: np.ndarray, *, extractor: str, mode: str, feature: str,
                        weights_sha256: str | None, source_fingerprint: str | None) -> FeatureStats:
    """FeatureStats of an in-memory feature array. # NC float => FeatureStats"""
    mu, sigma = mean_cov(features)
    return FeatureStats(mu=mu, sigma=sigma, n=len(features), extractor=extractor, mode=mode, feature=feature,
                        weights_sha256=weights_sha256, source_fingerprint=source_fingerprint)


def is_stats_file(path: str | os.PathLike) -> bool:
    """True for an .npz that holds `mu` and `sigma` (ours, EDM or clean-fid), not images."""
    p = Path(path)
    if p.suffix.lower() != ".npz" or not p.is_file():
        return False
    try:
        with np.load(p, allow_pickle=False) as z:
            return "mu" in z.files and "sigma" in z.files
    except Exception:  # noqa: BLE001 - not a readable npz: let the image reader explain
        return False


def _foreign_provenance(p: Path) -> tuple[str, str, list[str]]:
    """(extractor, mode, notes) assumed for a stats file without our metadata."""
    name = p.name.lower()
    if "_clean_" in name or name.startswith("clean_"):
        return "inception-clean", "clean", [f"'{p.name}' has no provenance; read as clean-fid stats "
                                            "(mode 'clean', from its file name)."]
    if "legacy_pytorch" in name:
        raise AmbientError(f"'{p}' is a clean-fid 'legacy_pytorch' statistics file (pytorch-fid Inception "
                           "with PyTorch resizing); ambient-eval has no matching extractor. Use the "
                           "'clean' or 'legacy_tensorflow' statistics instead.")
    how = "clean-fid 'legacy_tensorflow'" if "legacy_tensorflow" in name else "EDM-style reference"
    return "inception", "tf-compat", [f"'{p.name}' has no provenance; read as {how} statistics of the TF "
                                      "Inception graph (extractor 'inception', mode 'tf-compat'); weights "
                                      "hash and image count unknown."]


def load_stats(path: str | os.PathLike) -> FeatureStats:
    """Read our stats .npz, an EDM fid-ref .npz or a clean-fid stats .npz, with clear errors."""
    p = Path(path)
    if not p.is_file():
        raise AmbientError(f"Statistics file '{p}' does not exist. Create it with "
                           "`ambient-eval stats SOURCE -o reference_stats/NAME.npz`.")
    try:
        with np.load(p, allow_pickle=False) as z:
            arrays = {k: z[k] for k in z.files}
    except Exception as e:  # noqa: BLE001 - zip/npy errors vary; all mean "not a valid npz"
        raise AmbientError(f"Cannot read statistics file '{p}' ({type(e).__name__}: {e}). It is not a valid "
                           ".npz without pickled objects; recompute it with `ambient-eval stats`.") from None
    if "mu" not in arrays or "sigma" not in arrays:
        raise AmbientError(f"'{p}' is not a statistics file: it has arrays {sorted(arrays)} but needs 'mu' "
                           "and 'sigma'.")
    mu, sigma = arrays["mu"], arrays["sigma"]
    check_mean_cov(mu, sigma, f"Statistics file '{p}'")   # shapes, dtype, finite, symmetric, PSD
    mu, sigma = mu.astype(np.float64), sigma.astype(np.float64)
    if "meta" in arrays:
        try:
            meta = json.loads(str(arrays["meta"]))
            return FeatureStats(mu=mu, sigma=sigma, n=meta["n"], extractor=meta["extractor"], mode=meta["mode"],
                                feature=meta["feature"], weights_sha256=meta.get("weights_sha256"),
                                source_fingerprint=meta.get("source_fingerprint"),
                                tool_version=meta.get("tool_version", ""), notes=list(meta.get("notes", [])))
        except (ValueError, KeyError, TypeError) as e:
            raise AmbientError(f"'{p}' has unreadable metadata ({e}). Recompute it with `ambient-eval stats`.") from None
    extractor, mode, notes = _foreign_provenance(p)
    feature = "pool3" if mu.shape[0] == 2048 else "unknown"
    return FeatureStats(mu=mu, sigma=sigma, n=None, extractor=extractor, mode=mode, feature=feature,
                        tool_version="", notes=notes)


def check_comparable(a: FeatureStats, b: FeatureStats, what_a: str = "generated",
                     what_b: str = "reference") -> None:
    """Refuse to compare statistics from different extractors, modes, outputs or weights."""
    diffs = []
    for f in STATS_MATCH_FIELDS:
        va, vb = getattr(a, f), getattr(b, f)
        if f == "weights_sha256" and (va is None or vb is None):
            continue  # unknown on one side (foreign file): cannot check, noted in provenance
        if va != vb:
            diffs.append(f"{f}: {what_a}={va!r} vs {what_b}={vb!r}")
    if a.mu.shape != b.mu.shape:
        diffs.append(f"dimension: {what_a}={a.mu.shape[0]} vs {what_b}={b.mu.shape[0]}")
    if diffs:
        raise AmbientError("Cannot compare statistics computed differently (" + "; ".join(diffs) + "). "
                           "Recompute one side with the same --features extractor, mode and weights.")
