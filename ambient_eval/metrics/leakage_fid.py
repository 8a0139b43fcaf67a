"""`fid --metrics ...,leakage --classifier PATH`: corruption leakage beside the feature metrics.

The generated images are opened once (a checkpoint's samples are kept in memory, so the
classifier sees the very pixels the other metrics scored); leakage goes into the same Results.
"""
from __future__ import annotations

from typing import Any

from ambient_eval.errors import AmbientError
from ambient_eval.metrics import leakage as L


def fid_with_leakage(generated: Any = None, reference: Any = None, *, metrics, classifier=None, model=None,
                     seeds=None, steps: int = 18, batch_size: int = 64, device: str = "auto",
                     trust_pickle: bool = False, max_images=None, subset_seed: int = 0, skip_bad: bool = False,
                     repeats: int = 1, conditioning=None, **kw):
    """api.fid with 'leakage' among the metrics => Results with leakage metrics, CIs and settings."""
    from ambient_eval import api
    from ambient_eval.audits.kept_images import KeptImages
    from ambient_eval.data.base import ImageSource
    from ambient_eval.results import KIND_FID, Results

    if classifier is None:
        raise AmbientError("--metrics leakage needs --classifier PATH: a clean-vs-corrupted classifier written by "
                           "`ambient-eval annotate CLEAN CORRUPTED -o ann.jsonl --save-classifier clf.safetensors`.")
    if int(repeats) != 1:
        raise AmbientError("--metrics leakage is not available with --repeats; run one seed range at a time.")
    clf = L.load_classifier(classifier)          # a bad file fails before any sampling
    if model is not None:
        if generated is not None:
            raise AmbientError("Give either GENERATED images or --model CKPT, not both.")
        generated = KeptImages(api._model_input(model, seeds, batch_size=batch_size, steps=steps, device=device,
                                                trust_pickle=trust_pickle, conditioning=conditioning))
    if generated is None:
        raise AmbientError("--metrics leakage needs GENERATED images (or --model CKPT --seeds RANGE).")
    gen = api._open_input(generated, max_images=max_images, subset_seed=subset_seed, skip_bad=skip_bad,
                          what="generated")
    if not isinstance(gen, ImageSource):
        raise AmbientError("Corruption leakage needs generated images, not a statistics file.")
    rest = [m for m in metrics if m != L.LEAKAGE]
    if rest:
        if reference is None:
            raise AmbientError(f"Metrics {rest} need REFERENCE images; pass them, or use --metrics leakage alone.")
        ref = api._open_input(reference, max_images=max_images, subset_seed=subset_seed, skip_bad=skip_bad,
                              what="reference")
        res = api.fid(gen, ref, metrics=rest, batch_size=batch_size, device=device, **kw)
    else:
        res = Results(kind=KIND_FID, metrics={}, settings={"n_generated": len(gen)},
                      inputs={"generated": {"description": gen.description, "fingerprint": gen.fingerprint(),
                                            "n": len(gen)}})
    p = L.source_probs(clf, gen, batch=batch_size)
    m, ci, settings = L.leakage_metrics(p, clf)
    res.metrics.update(m)
    res.ci.update(ci)
    res.settings[L.SETTINGS_KEY] = settings
    # The "feature space" of leakage is the classifier: gate/compare refuse results from another one.
    res.settings.setdefault("per_metric", {})[L.LEAKAGE] = {
        "extractor": "leakage-classifier", "mode": f"sigma={clf.sigma:g}", "feature": "p_corrupted",
        "weights_sha256": clf.sha256}
    return res
