"""`ambient-eval fid`: FID, KID, IS, precision/recall and density/coverage of generated images."""
from __future__ import annotations

from pathlib import Path
from typing import Annotated, Optional

import typer

from ambient_eval.cli.conditioning_options import (ClassSpec, Gnet, Guidance, Lora, LoraScale, NegativePrompt,
                                                   PipelineSteps, Prompts, Scheduler, conditioning)
from ambient_eval.cli.safe_echo import echo
from ambient_eval.cli.options import Batch, Device, ReportPath, TrustPickle, check_report_option


def _fmt(v) -> str:
    return f"{v:.6g}" if isinstance(v, float) else str(v)


def print_table(res) -> None:
    """Metric table on stdout."""
    s = res.settings
    echo(f"{'metric':<12} value")
    for k, v in res.metrics.items():
        echo(f"{k:<12} {_fmt(v)}")
    echo(f"(N generated = {s.get('n_generated')}, N reference = {s.get('n_reference')}, extractor "
         f"{s.get('extractor')} / {s.get('mode')})")


def _check_compare(runs, labels) -> None:
    """--compare: a metric present in two runs must come from one feature space (exit 2 otherwise)."""
    from ambient_eval.results.comparability import check_comparable

    for r, lab in zip(runs[1:], labels[1:]):
        common = [k for k in runs[0].metrics if k in r.metrics]
        check_comparable(runs[0].settings, r.settings, common, label_a=f"'{labels[0]}'", label_b=f"'{lab}'",
                         what="--compare results", shared=False)  # other N / reference: a note in the report


def fid_command(
    generated: Annotated[Optional[str], typer.Argument(help="Generated images: folder, .zip, .npz/.npy, "
                         "builtin:NAME, or a stats .npz (FID only). Omit with --model.", metavar="GENERATED",
                         show_default=False)] = None,
    reference: Annotated[Optional[str], typer.Argument(help="Reference images (same kinds), a stats .npz "
                         "from `ambient-eval stats`, EDM or clean-fid, or ref:NAME from `ambient-eval refs list` "
                         "(fetched on first use; FID only).", metavar="REFERENCE",
                         show_default=False)] = None,
    metrics: Annotated[str, typer.Option("--metrics", help="Comma-separated: fid, kid, is, pr, dc; the ADM "
                                         "evaluator's sfid, adm-is, adm-pr; clipscore (needs --prompts); leakage "
                                         "(corruption leakage; needs --classifier).", metavar="LIST")] = "fid",
    classifier: Annotated[Optional[Path], typer.Option("--classifier", help="Clean-vs-corrupted classifier for "
                          "--metrics leakage (from `annotate --save-classifier`).", metavar="FILE")] = None,
    features: Annotated[Optional[str], typer.Option("--features", help="Extractor for all metrics (inception, "
                        "inception-clean, vgg16, dinov2, clip, pixel, ...) or METRIC=NAME pairs, e.g. "
                        "'pr=inception'. Default: fid/kid/is inception, pr vgg16, dc as pr.",
                        metavar="SPEC")] = None,
    weights: Annotated[Optional[list[str]], typer.Option("--weights", help="Weights file (PATH, or NAME=PATH "
                       "when several extractors are used; repeatable).", metavar="PATH")] = None,
    batch: Batch = 64,
    device: Device = "auto",
    resize: Annotated[Optional[int], typer.Option("--resize", help="Center-crop every generated and reference "
                      "image to a square and resize it to RxR (PIL bicubic, uint8) before the feature "
                      "extractor; COCO-30k FID uses 256 or 512. Recorded in the results.", metavar="R",
                      min=8)] = None,
    max_images: Annotated[Optional[int], typer.Option("--max-images", help="Use a seeded random subset of at "
                          "most N images per input.", metavar="N", min=1)] = None,
    subset_seed: Annotated[int, typer.Option("--subset-seed", help="Seed of the --max-images subset.",
                                             metavar="SEED")] = 0,
    skip_bad: Annotated[bool, typer.Option("--skip-bad", help="Skip unreadable images (counted in the "
                                           "results) instead of stopping.")] = False,
    out: Annotated[Optional[Path], typer.Option("--out", help="Write DIR/results.json, DIR/results.csv and "
                                                "DIR/report.html [default: reports/fid-<stamp>/; with "
                                                "--no-report and no --out, nothing is written].",
                                                metavar="DIR", show_default=False)] = None,
    report: ReportPath = None,
    no_report: Annotated[bool, typer.Option("--no-report", help="Do not write DIR/report.html.")] = False,
    cache_dir: Annotated[Optional[Path], typer.Option("--cache-dir", help="Feature cache folder (default "
                         "$AMBIENT_EVAL_CACHE or ~/.cache/ambient-eval/features).", metavar="DIR")] = None,
    no_cache: Annotated[bool, typer.Option("--no-cache", help="Neither read nor write the feature cache.")] = False,
    kid_subsets: Annotated[int, typer.Option("--kid-subsets", help="KID: number of random subsets.",
                                             metavar="N", min=1)] = 100,
    kid_subset_size: Annotated[int, typer.Option("--kid-subset-size", help="KID: images per subset (each "
                               "input needs at least this many).", metavar="N", min=2)] = 1000,
    fid_method: Annotated[str, typer.Option("--fid-method", help="Trace of the matrix square root: eig "
                          "(torch-fidelity), sqrtm (EDM, clean-fid), auto (sqrtm for clean mode, else eig).",
                          metavar="METHOD")] = "auto",
    model: Annotated[Optional[str], typer.Option("--model", help="Generate from this checkpoint instead of "
                     "reading GENERATED (needs --seeds).", metavar="CKPT")] = None,
    seeds: Annotated[Optional[str], typer.Option("--seeds", help="Seeds for --model, e.g. 0-49999.",
                                                 metavar="RANGE")] = None,
    steps: PipelineSteps = None,
    class_label: ClassSpec = None,
    prompts: Prompts = None,
    guidance: Guidance = None,
    gnet: Gnet = None,
    negative_prompt: NegativePrompt = None,
    scheduler: Scheduler = None,
    lora: Lora = None,
    lora_scale: LoraScale = 1.0,
    trust_pickle: TrustPickle = False,
    repeats: Annotated[int, typer.Option("--repeats", help="With --model: evaluate R disjoint seed ranges "
                       "(EDM reports the min over 3) and report mean, std, min and a 95% interval.",
                       metavar="R", min=1)] = 1,
    clip_model: Annotated[Optional[str], typer.Option("--clip-model", help="clipscore: open_clip model name "
                          "(default ViT-L-14, OpenAI weights).", metavar="NAME")] = None,
    clip_weights: Annotated[Optional[Path], typer.Option("--clip-weights", help="clipscore: weights of "
                            "--clip-model (OpenAI .pt or an open_clip state dict).", metavar="PATH")] = None,
    compare: Annotated[Optional[list[Path]], typer.Option("--compare", help="Earlier results.json to show "
                       "beside this run in the report (repeatable; alone, only builds the comparison).",
                       metavar="RESULTS")] = None,
) -> None:
    """Quality metrics of GENERATED images against REFERENCE images or statistics.

    Computes FID (Inception pool3, float64 statistics), KID (100 subsets of 1000), IS (10 splits),
    precision/recall (k=3, VGG16 by default) and density/coverage (k=5); the ADM evaluator's sFID,
    IS and precision/recall (sfid, adm-is, adm-pr; REFERENCE may be an ADM reference batch) and
    CLIP score (clipscore with --prompts; no REFERENCE needed). Features are cached by
    content, so a second run on the same images does no extraction. Prints a table and writes
    results.json, results.csv and report.html (unless --no-report) into --out
    (default reports/fid-<stamp>/). Python: `ambient_eval.fid(...)`.

    Examples:

      ambient-eval fid samples/ reference_stats/cifar10.npz

      ambient-eval fid samples/ ref:edm-cifar10-32

      ambient-eval fid samples/ data/train.zip --metrics fid,kid,pr,dc --out results/run1

      ambient-eval fid --model ckpt/ --seeds 0-9999 data/train.zip --metrics fid

      ambient-eval fid samples.npz VIRTUAL_imagenet64_labeled.npz --metrics fid,sfid,adm-is,adm-pr

      ambient-eval fid samples/ --metrics clipscore --prompts prompts.txt

      ambient-eval fid --model sd-folder/ --prompts captions.csv coco/val2014 --resize 256 --metrics fid,clipscore

      ambient-eval fid --model dit-folder/ --class balanced --seeds 0-49999 ref.npz

      ambient-eval fid --compare results/run1/results.json --compare results/run2/results.json

      ambient-eval fid samples/ data/train.zip --metrics fid,leakage --classifier clf.safetensors

      torchrun --nproc_per_node 2 -m ambient_eval fid samples/ data/train.zip   # ranks share extraction
    """
    import warnings

    from ambient_eval.errors import AmbientError
    from ambient_eval.files.atomic import claim_output_dir, publish_together
    from ambient_eval.metrics.fid_result import REPORT_HTML, FidResult
    from ambient_eval.reports.html import default_out_dir
    from ambient_eval.results.envelope import load_results

    check_report_option(report, out, "fid")

    if model is not None and generated is not None and reference is None:
        generated, reference = None, generated  # `fid --model CKPT REFERENCE`
    earlier = [load_results(p) for p in (compare or [])]
    for p, r in zip(compare or [], earlier):
        if r.kind != "fid":
            raise AmbientError(f"--compare '{p}' holds '{r.kind}' results, not 'fid' results.")
    _check_compare(earlier, [str(p) for p in compare or []])
    only_compare = bool(earlier) and generated is None and reference is None and model is None
    clip_only = [m.strip() for m in metrics.split(",") if m.strip()] == ["clipscore"]
    if not only_compare and ((reference is None and not clip_only) or (generated is None and model is None)):
        raise AmbientError("Pass GENERATED and REFERENCE (or --model CKPT --seeds RANGE REFERENCE, or only "
                           "--compare RESULTS...). See `ambient-eval fid --help`.")
    # Validate every output location before any long work.
    if out is None and not no_report:
        out = default_out_dir("fid")
    if out is not None:
        claim_output_dir(out)   # a second run on the same --out stops here (exit 2)
    report_path = None if no_report else out / REPORT_HTML
    if report_path is not None:
        if report_path.is_dir():
            raise AmbientError(f"'{report_path}' is a directory; fid writes its report there. Choose another "
                               "--out.")
        from ambient_eval.reports.html import plotlyjs_tag

        plotlyjs_tag(check_only=True)   # a bad AMBIENT_EVAL_PLOTLYJS fails now, not after the work
    labels = [p.parent.name or str(p) for p in (compare or [])]
    runs = list(earlier)
    if not only_compare:
        from ambient_eval import api
        from ambient_eval.features.distributed import feature_group, is_main

        with warnings.catch_warnings(), feature_group(device):  # torchrun: ranks share extraction
            warnings.simplefilter("ignore")  # api collects them into results.extra["warnings"]
            res = api.fid(generated, reference, metrics=[m for m in metrics.split(",")], features=features,
                          weights=weights, batch_size=batch, device=device, cache=not no_cache,
                          cache_dir=cache_dir, max_images=max_images, subset_seed=subset_seed, skip_bad=skip_bad,
                          kid_subsets=kid_subsets, kid_subset_size=kid_subset_size, fid_method=fid_method,
                          model=model, seeds=seeds, steps=steps or 18, trust_pickle=trust_pickle,
                          repeats=repeats, prompts=None if model else prompts, clip_model=clip_model,
                          clip_weights=clip_weights, classifier=classifier, conditioning=conditioning(
                              class_label, prompts if model else None, guidance, negative_prompt, scheduler,
                              steps, lora, lora_scale, gnet), resize=resize).results
        if not is_main():
            return
        _check_compare([*earlier, res], [*(str(p) for p in compare or []), "this run"])
        runs.append(res)
        labels.append(out.name if out is not None else "this run")
    # Write every file first (all of them or none), print last: a closed stdout must not lose results.
    if not only_compare and out is not None:
        FidResult(res, compared=earlier, labels=labels).save(out, report=report_path is not None)
    elif report_path is not None:
        from ambient_eval.reports.fid_report import save_fid_report

        with publish_together(out):
            save_fid_report(runs, report_path, labels)
    if not only_compare:
        for w in res.extra.get("warnings", []):
            echo("Warning: " + w, err=True)
        print_table(res)
        for k, s in res.extra.get("repeat_summary", {}).items():
            echo(f"{k:<12} over {res.settings['repeats']} seed ranges: mean {s['mean']:.6g}, std "
                 f"{s['std']:.4g}, min {s['min']:.6g}, max {s['max']:.6g}")
        if out is not None:
            echo(f"Wrote {out / 'results.json'} and {out / 'results.csv'}")
    else:
        for lab, r in zip(labels, runs):
            echo(f"{lab}: " + ", ".join(f"{k}={_fmt(v)}" for k, v in r.metrics.items()))
    if report_path is not None:
        echo(f"Report: {report_path}")


def register(app: typer.Typer) -> None:
    """Add `fid` to the root app."""
    app.command("fid")(fid_command)
