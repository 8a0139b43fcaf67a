"""The results envelope every command writes (`results.json`), and the keys inside it.

Every evaluation (fid, memorization, reproducibility) writes one JSON object:

    {
      "schema": "ambient-eval/results@1",
      "kind": "fid" | "memorization" | "reproducibility",
      "tool_version": "0.1.0",
      "created": "2026-11-21T22:40:00+00:00",
      "metrics":  {"fid": 12.3, "kid": 0.004, ...},          # flat: name -> number
      "ci":       {"fid": [11.9, 12.8], ...},                 # optional: name -> [lo, hi]
      "repeats":  {"fid": [12.3, 12.1, 12.6]},               # optional: per-repeat values
      "settings": {"extractor": "inception", "mode": "tf-compat", "weights_sha256": "...",
                   "n_generated": 50000, "n_reference": 50000, ...},   # what must match to compare
      "inputs":   {"generated": {...fingerprint...}, "reference": {...}},
      "versions": {"torch": "...", "torch_fidelity": "...", ...},
      "extra":    {...}                                      # command-specific, free-form
    }

The CI gate compares `metrics` (addressed as `<kind>.<name>` or, for kind `fid`, plain `<name>`)
and refuses results whose `settings` differ in COMPARABILITY_KEYS.
"""
from __future__ import annotations

import datetime as _dt
import json
import os
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from ambient_eval import __version__
from ambient_eval.files.atomic import write_json
from ambient_eval.errors import AmbientError
from ambient_eval.metrics.stats_checks import check_metrics_finite

SCHEMA = "ambient-eval/results@1"
RESULTS_JSON = "results.json"   # the envelope's file name inside an output folder

# Result kinds.
KIND_FID = "fid"
KIND_MEMORIZATION = "memorization"
KIND_REPRODUCIBILITY = "reproducibility"

# Metric keys written by `fid` (exported constants; never spell these as literals elsewhere).
FID = "fid"
KID = "kid"
KID_STD = "kid_std"
IS = "is"
IS_STD = "is_std"
PRECISION = "precision"
RECALL = "recall"
DENSITY = "density"
COVERAGE = "coverage"
SFID = "sfid"                       # ADM evaluator: FID on Inception mixed_6/conv[:7] (Nash et al. 2021)
ADM_IS = "adm_is"                   # ADM evaluator's Inception Score (5000-image splits, in order)
ADM_IS_STD = "adm_is_std"
ADM_PRECISION = "adm_precision"     # ADM evaluator's precision/recall (float16 squared distances, k = 3)
ADM_RECALL = "adm_recall"
CLIP_SCORE = "clipscore"            # 100 * max(cos(image, text), 0), mean over images (Hessel et al. 2021)
CLIP_SCORE_STD = "clipscore_std"


def fd_key(extractor: str) -> str:
    """Metric key of the Frechet distance in another extractor's space, e.g. 'fd_dinov2'."""
    return f"fd_{extractor.replace('-', '_')}"


# Settings that must be equal for two results to be compared (gate, history, report overlays).
COMPARABILITY_KEYS = ("extractor", "mode", "weights_sha256", "n_generated", "reference_fingerprint")


def library_versions() -> dict[str, str]:
    """Versions of the libraries that produce numbers, for provenance."""
    import importlib.metadata as md

    out = {"ambient_eval": __version__}
    for dist in ("torch", "torchvision", "torch-fidelity", "clean-fid", "faiss-cpu", "numpy", "scipy",
                 "open-clip-torch"):
        try:
            out[dist.replace("-", "_")] = md.version(dist)
        except md.PackageNotFoundError:
            pass
    from ambient_eval.runtime.faiss_dist import faiss_version

    if faiss_version():
        out["faiss"] = faiss_version()  # which distribution (and build) provided `import faiss`
    return out


def now_iso() -> str:
    """Current UTC time, ISO 8601 with seconds."""
    return _dt.datetime.now(_dt.timezone.utc).isoformat(timespec="seconds")


@dataclass
class Results:
    """One evaluation's numbers plus everything needed to judge whether they are comparable."""

    kind: str
    metrics: dict[str, float]
    settings: dict[str, Any] = field(default_factory=dict)
    ci: dict[str, list[float]] = field(default_factory=dict)
    repeats: dict[str, list[float]] = field(default_factory=dict)
    inputs: dict[str, Any] = field(default_factory=dict)
    extra: dict[str, Any] = field(default_factory=dict)
    created: str = field(default_factory=now_iso)
    tool_version: str = __version__
    versions: dict[str, str] = field(default_factory=library_versions)

    def to_json(self) -> dict[str, Any]:
        """Plain-JSON dict in the documented envelope."""
        return {
            "schema": SCHEMA, "kind": self.kind, "tool_version": self.tool_version,
            "created": self.created, "metrics": self.metrics, "ci": self.ci, "repeats": self.repeats,
            "settings": self.settings, "inputs": self.inputs, "versions": self.versions,
            "extra": self.extra,
        }

    def save(self, path: str | os.PathLike) -> Path:
        """Write atomically to `path` (a file, or a directory that receives results.json)."""
        p = Path(path)
        if p.suffix != ".json":
            p = p / RESULTS_JSON
        check_metrics_finite(self.metrics, f"Not writing '{p}'")   # no NaN / negative distances
        from ambient_eval.runtime import precision
        obj = self.to_json()   # the float32 precision policy in effect (TF32 / autocast), unless given
        obj["settings"] = {precision.SETTINGS_KEY: precision.settings(), **self.settings}
        write_json(p, obj)
        return p


def load_results(path: str | os.PathLike) -> Results:
    """Read a results.json (or a directory containing one) with clear errors."""
    from ambient_eval.files.atomic import staged

    p = Path(path)
    if p.is_dir():
        p = p / RESULTS_JSON
    try:
        from ambient_eval.files.user_files import read_text

        obj = json.loads(read_text(staged(p), "Results file",   # this command's own staged copy, if any
                                   "Pass the results.json written by `ambient-eval fid|memorization|"
                                   "reproducibility --out DIR`."))
    except FileNotFoundError:
        raise AmbientError(f"Results file '{p}' does not exist. Pass the results.json written by "
                           "`ambient-eval fid|memorization|reproducibility --out DIR`.") from None
    except (json.JSONDecodeError, UnicodeDecodeError) as e:
        raise AmbientError(f"Results file '{p}' is not valid JSON ({e}). It may be truncated; "
                           "re-run the evaluation that wrote it.") from None
    if not isinstance(obj, dict) or obj.get("schema") != SCHEMA:
        raise AmbientError(f"'{p}' is not an ambient-eval results file (expected \"schema\": "
                           f"\"{SCHEMA}\", found {obj.get('schema') if isinstance(obj, dict) else type(obj).__name__!r}).")
    for key in ("metrics", "settings", "ci", "repeats", "inputs", "extra"):
        if not isinstance(obj.get(key, {}), dict):
            raise AmbientError(f"'{p}' is damaged: its \"{key}\" is a {type(obj[key]).__name__}, not an object "
                               "of name: value. Re-run the evaluation that wrote it.")
    if not isinstance(obj.get("kind"), str):
        raise AmbientError(f"'{p}' is damaged: it has no \"kind\" string. Re-run the evaluation that wrote it.")
    return Results(kind=obj["kind"], metrics=obj.get("metrics", {}), settings=obj.get("settings", {}),
                   ci=obj.get("ci", {}), repeats=obj.get("repeats", {}), inputs=obj.get("inputs", {}),
                   extra=obj.get("extra", {}), created=obj.get("created", ""),
                   tool_version=obj.get("tool_version", ""), versions=obj.get("versions", {}))
