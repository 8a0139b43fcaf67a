"""`ambient-eval demo` end to end: data -> sigma_tn -> 4 models -> samples -> fid, memorization,
reproducibility -> one combined report (DIR/report.html) + a short text summary.

Stages report progress through `on_stage(index, total, message)`. Every file is written
atomically; training and sampling resume after Ctrl-C, and a rerun with the same settings reuses
finished models and sample files (the evaluation stages are cheap and always recomputed).
"""
from __future__ import annotations

import contextlib
import logging
import time
from pathlib import Path
from typing import Any, Callable

from ambient_eval import __version__
from ambient_eval.files import atomic
from ambient_eval.demo.settings import MODELS, DemoSettings
from ambient_eval.errors import AmbientError

log = logging.getLogger(__name__)
STAGES = 7
DEMO_MARKER = "demo.json"

StageCallback = Callable[[int, int, str], None]


def check_out_dir(out: Path) -> None:
    """The output must be new, empty, or an earlier demo output (it is then reused/updated)."""
    if out.exists() and not out.is_dir():
        raise AmbientError(f"--out '{out}' is a file. Give a directory for the demo outputs.")
    if out.is_dir() and any(out.iterdir()) and not (out / DEMO_MARKER).is_file():
        raise AmbientError(f"--out '{out}' is not empty and holds no earlier demo output ({DEMO_MARKER}). "
                           "Choose a new or empty directory.")
    atomic.ensure_writable_dir(out)


def run_demo(s: DemoSettings, out: str | Path, on_stage: StageCallback | None = None) -> dict[str, Any]:
    """Run every stage; => summary dict (metrics per model, RP, report path, timings).

    On CPU, torch and BLAS run with `s.cpu_threads` threads for the duration (restored afterwards):
    for these tiny networks and 192-d covariances a second thread doubled the CPU time without
    lowering wall time on a shared 2-core machine."""
    import torch

    from ambient_eval.runtime.device import resolve_device

    threads = torch.get_num_threads()
    limit = contextlib.nullcontext()
    if resolve_device(s.device).type == "cpu" and s.cpu_threads > 0:
        torch.set_num_threads(min(threads, s.cpu_threads))
        try:  # numpy's BLAS too (FD eigenvalues, bootstrap); threadpoolctl comes with scikit-learn
            from threadpoolctl import threadpool_limits

            limit = threadpool_limits(s.cpu_threads)
        except ImportError:
            pass
    try:
        with limit:
            return _run(s, Path(out), on_stage)
    finally:
        torch.set_num_threads(threads)


def _run(s: DemoSettings, out: Path, on_stage: StageCallback | None) -> dict[str, Any]:
    import torch

    from ambient_eval.demo import data as D
    from ambient_eval.demo import evaluate as E
    from ambient_eval.demo import models as M
    from ambient_eval.runtime.device import resolve_device

    check_out_dir(out)
    device = str(resolve_device(s.device))
    t_start = time.perf_counter()
    timings: dict[str, float] = {}
    say = on_stage or (lambda i, n, msg: log.info("[%d/%d] %s", i, n, msg))

    cpu: dict[str, float] = {}  # CPU seconds per stage (all threads): load-independent cost

    def stage(i: int, name: str, msg: str):
        say(i, STAGES, msg)
        timings.setdefault(name, 0.0)
        cpu[name] = time.process_time()
        return time.perf_counter()

    def done(name: str, t: float) -> None:
        timings[name] = time.perf_counter() - t
        cpu[name] = time.process_time() - cpu[name]

    atomic.write_json(out / DEMO_MARKER, {"tool_version": __version__, "settings": s.to_dict(), "finished": False})
    t = stage(1, "data", f"data: {s.data}, {s.clean_fraction:.0%} clean + rest {s.corruption} (level {s.level:g})")
    data = D.prepare_data(s, out)
    real = E.probe_real_features(s)
    done("data", t)

    from ambient_eval.demo import pretrained as P

    shipped = P.install(data, out) if s.pretrained and P.available(s) else None
    t = stage(2, "annotate", f"sigma_tn for Ambient-Omni ({'shipped' if shipped else s.annotate})")
    if shipped is None:
        sigma_tn, ann_info = D.annotate_sigma(s, data, out, device)
    else:
        sigma_tn, ann_info, train_info = shipped
    done("annotate", t)

    t = stage(3, "train", f"{'shipped' if shipped else 'training'} {len(MODELS)} tiny models x {s.steps} steps "
                          f"(batch {s.batch}{'' if shipped else ', ' + device})")
    if shipped is None:
        train_info = {}
        for label, subset, method, off in MODELS:
            train_info[label] = M.train_model(s, data, label, subset, method, off, sigma_tn, out)
    done("train", t)

    t = stage(4, "sample", f"sampling {s.n_samples} seeds per model ({s.sampler_steps} Heun steps, shared noise)")
    samples = {}
    for label, *_ in MODELS:
        M.sample_model(s, label, out)
        samples[label] = M.load_samples(out, label)
    done("sample", t)

    t = stage(5, "fid", f"quality vs {len(data.heldout)} held-out clean images ({s.fid_features}"
                        f"{', ' + real['fid'] if real['fid'] else ''})")
    sources = {lab: D.array_source(x, f"demo samples {lab}") for lab, x in samples.items()}
    quality: dict[str, dict[str, Any]] = {}
    for label in sources:
        quality[label] = {s.fid_features: E.quality(s, label, sources[label], data.heldout, s.fid_features, out)}
        if real["fid"]:
            quality[label][real["fid"]] = E.quality(s, label, sources[label], data.heldout, real["fid"], out)
    done("fid", t)

    embed = real["embed"] or s.memorization_embed
    t = stage(6, "audits", f"memorization vs each model's training set + reproducibility ({embed})")
    keep = torch.from_numpy(~data.corrupted)
    train_clean = D.array_source(data.images[keep], "demo training set: clean subset")
    train_all = D.array_source(data.images, "demo training set: clean + corrupted")
    groups = {"clean-subset": (train_clean, {lab: sources[lab] for lab, sub, *_ in MODELS if sub == "clean"}),
              "all-data": (train_all, {lab: sources[lab] for lab, sub, *_ in MODELS if sub == "all"})}
    audits = E.memorization(s, groups, embed, out)
    repro, repro_opts = E.reproducibility(s, [m[0] for m in MODELS], embed, out)
    if s.leakage_steps:  # corruption leakage: a clean-vs-corrupted classifier on each model's samples
        from ambient_eval.demo.leakage import leakage

        leak = leakage(s, data, sources, out, device)
    done("audits", t)

    t = stage(7, "report", "writing the combined report")
    from ambient_eval.reports.demo_report import build_demo_report
    from ambient_eval.reports.html import REPORT_HTML

    timings["total_before_report"] = time.perf_counter() - t_start
    ctx = {"settings": s, "data": data, "sigma_tn": sigma_tn, "annotation": ann_info, "train": train_info,
           "samples": samples, "quality": quality, "audits": audits, "repro": repro, "repro_opts": repro_opts,
           "embed": embed, "real": real, "timings": timings, "out": out, "device": device,
           "leakage": leak if s.leakage_steps else None}
    report = build_demo_report(ctx).save(out / REPORT_HTML)
    done("report", t)
    timings["total"] = time.perf_counter() - t_start
    summary = summarize(ctx, report)
    atomic.write_json(out / "summary.json", summary)
    atomic.write_json(out / DEMO_MARKER, {"tool_version": __version__, "settings": s.to_dict(), "finished": True,
                                          "timings_s": timings, "cpu_s": cpu,
                                          "real_features": real})
    return summary


def summarize(ctx: dict[str, Any], report: Path) -> dict[str, Any]:
    """Per-model headline numbers (JSON-able) for the terminal and DIR/summary.json."""
    from ambient_eval.audits import memorization as MM
    from ambient_eval.results.envelope import fd_key

    s: DemoSettings = ctx["settings"]
    key = fd_key(s.fid_features)
    models = {}
    mem = {m.name: m for a in ctx["audits"].values() for m in a.models}
    t = min(next(iter(ctx["audits"].values())).thresholds)
    for label, *_ in MODELS:
        q = ctx["quality"][label][s.fid_features]
        models[label] = {key: q.metrics.get(key), f"{key}_ci": q.ci.get(key), "kid": q.metrics.get("kid"),
                         "precision": q.metrics.get("precision"), "recall": q.metrics.get("recall"),
                         "memorization_top1_mean": mem[label].metrics.get(MM.TOP1_MEAN),
                         f"memorization_frac_above_{t:g}": mem[label].metrics.get(MM.frac_above_key(t)),
                         "final_loss": ctx["train"][label].get("final_loss")}
        if ctx.get("leakage"):
            models[label]["leakage"] = ctx["leakage"][label]["metrics"]["leakage"]
            models[label]["leakage_ci"] = ctx["leakage"][label]["ci"].get("leakage")
        for name, r in ctx["quality"][label].items():
            if name != s.fid_features:
                models[label].update({f"{k} ({name})": v for k, v in r.metrics.items()})
    res = ctx["repro"].result
    idx = {n: i for i, n in enumerate(res.names)}
    rp = {f"{a}|{b}": float(res.rp[idx[a], idx[b]]) for a, b in res.pairs()}
    return {"models": models, "rp": rp, "rp_threshold": res.threshold, "fid_features": s.fid_features,
            "embed": ctx["embed"], "memorization_threshold": t, "report": str(report),
            "timings_s": {k: round(v, 2) for k, v in ctx["timings"].items()}, "real_features": ctx["real"]}


def summary_text(summary: dict[str, Any]) -> str:
    """A few lines for the terminal, ending with the report path."""
    key = next(k for k in next(iter(summary["models"].values())) if k.startswith("fd_") and not k.endswith("_ci"))
    t = summary["memorization_threshold"]
    head = f"{'model':<9} {key + ' [95% CI]':>26} {'KID':>9} {'prec':>6} {'recall':>6} {'mem>' + format(t, 'g'):>9}"
    lines = [f"Quality vs held-out clean digits ({summary['fid_features']}); memorization vs own training set "
             f"({summary['embed']}):", head]
    for label, m in summary["models"].items():
        ci = m.get(f"{key}_ci") or [float("nan")] * 2
        lines.append(f"{label:<9} {m[key]:>9.2f} [{ci[0]:6.2f}, {ci[1]:6.2f}] {m['kid']:>9.4f} "
                     f"{m['precision']:>6.2f} {m['recall']:>6.2f} {m[f'memorization_frac_above_{t:g}']:>9.2%}")
    if "leakage" in next(iter(summary["models"].values())):
        lines.append("Corruption leakage (samples a clean-vs-blurred classifier calls blurred): " + ", ".join(
            f"{label} {m['leakage']:.0%}" for label, m in summary["models"].items()))
    rp = ", ".join(f"{k} {v:.2f}" for k, v in summary["rp"].items() if k.startswith("clean-A|"))
    lines.append(f"Reproducibility (same seed, cosine > {summary['rp_threshold']:g}): {rp}")
    lines.append(f"Done in {summary['timings_s']['total']:.0f} s. Report: {summary['report']}")
    return "\n".join(lines)

