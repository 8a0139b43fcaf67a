"""`gate --model CKPT`: compute the fid results the config needs, then gate them.

The config's [evaluate] table says how (passed to ambient_eval.api.fid):

    [evaluate]
    reference = "reference_stats/cifar10.npz"   # images or a stats .npz (relative to the config)
    seeds = "0-9999"                             # one evaluation, or:
    repeats = ["0-4999", "5000-9999", "10000-14999"]  # one per disjoint seed range
    metrics = ["fid", "kid"]                     # api.fid metrics (default ["fid"])
    features = "inception"                       # optional; weights = "path" optional
    batch = 64
    steps = 18
    device = "auto"

With `repeats`, every metric's headline value is the mean over the repeats and results.repeats
holds the per-range values (what noise-aware rules use). Memorization and reproducibility
results are passed as files.
"""
from __future__ import annotations

from pathlib import Path
from typing import Any

from ambient_eval.errors import AmbientError
from ambient_eval.gate.config import GateConfig
from ambient_eval.metrics.repeats import combine_repeats, seed_label
from ambient_eval.results.envelope import KIND_FID

_FALLBACK = ("run `ambient-eval fid --model CKPT --seeds SEEDS REFERENCE --out DIR` and pass DIR to "
             "`ambient-eval gate` instead")
# [evaluate] key -> (api.fid keyword, accepted Python types)
_KEYS: dict[str, tuple[str, tuple[type, ...]]] = {
    "reference": ("reference", (str,)), "seeds": ("seeds", (str,)), "repeats": ("", (list,)),
    "metrics": ("metrics", (list, str)), "features": ("features", (str, dict)),
    "weights": ("weights", (str, list)), "batch": ("batch_size", (int,)), "steps": ("steps", (int,)),
    "device": ("device", (str,)),
}


def check_model_config(config: GateConfig) -> None:
    """Validate that --model can serve this config (before any sampling)."""
    other = [k for k in config.kinds if k != KIND_FID]
    if other:
        raise AmbientError(f"--model computes only kind fid, but the rules of '{config.path}' also need "
                           f"{', '.join(other)}. Run `ambient-eval {other[0]} ... --out DIR` and pass "
                           "all results.json files as CURRENT_RESULTS instead of --model.")
    ev = config.evaluate
    if "reference" not in ev or ("seeds" in ev) == ("repeats" in ev):
        raise AmbientError(f"--model needs [evaluate] reference and exactly one of seeds / repeats in "
                           f"'{config.path}', e.g. [evaluate] reference = \"reference_stats/cifar10.npz\" "
                           "seeds = \"0-9999\" (or repeats = [\"0-4999\", \"5000-9999\"]).")
    for key, value in ev.items():
        types = _KEYS[key][1]
        if isinstance(value, bool) or not isinstance(value, types):
            raise AmbientError(f"[evaluate] {key} = {value!r} in '{config.path}' must be of type "
                               f"{' or '.join(t.__name__ for t in types)}.")
    reps = ev.get("repeats")
    if reps is not None and (len(reps) < 2 or not all(isinstance(s, str) for s in reps)):
        raise AmbientError(f"[evaluate] repeats = {reps!r} in '{config.path}' must list at least two "
                           "seed ranges as strings, e.g. [\"0-4999\", \"5000-9999\"].")


def _label(seeds: str) -> str:
    """Canonical seed-range label (as `fid --repeats` writes it), or the string as given."""
    try:
        from ambient_eval.sampling.seeds import parse_seeds

        return seed_label(parse_seeds(seeds))
    except (ImportError, AmbientError):
        return seeds


def results_for_model(config: GateConfig, checkpoint: str):
    """Evaluate `checkpoint` as [evaluate] says => the Results envelope (repeats combined)."""
    check_model_config(config)
    try:
        from ambient_eval.metrics import fid_run  # imported lazily: pulls in torch (api.fid is fid_run.fid)

        fid = fid_run.fid
    except (ImportError, AttributeError):
        raise AmbientError("`gate --model` needs the Python API ambient_eval.api.fid, which this "
                           f"installation does not provide; {_FALLBACK}.") from None
    ev = dict(config.evaluate)
    ref = Path(ev["reference"])
    if not ref.is_absolute() and not str(ev["reference"]).startswith("builtin:"):
        ref = config.path.parent / ref  # relative to the config, like the baselines
    kwargs: dict[str, Any] = {_KEYS[k][0]: v for k, v in ev.items() if k not in ("reference", "seeds", "repeats")}
    if isinstance(kwargs.get("metrics"), str):
        kwargs["metrics"] = kwargs["metrics"].split(",")
    if isinstance(kwargs.get("weights"), str) and not Path(kwargs["weights"]).is_absolute() and "=" not in kwargs["weights"]:
        kwargs["weights"] = str(config.path.parent / kwargs["weights"])
    ranges = ev["repeats"] if "repeats" in ev else [ev["seeds"]]
    runs = [fid(None, str(ref) if not str(ev["reference"]).startswith("builtin:") else ev["reference"],
                model=checkpoint, seeds=seeds, **kwargs) for seeds in ranges]
    runs = [getattr(r, "results", r) for r in runs]   # FidResult -> its Results envelope
    return runs[0] if len(runs) == 1 else combine_repeats(runs, [_label(s) for s in ranges])
