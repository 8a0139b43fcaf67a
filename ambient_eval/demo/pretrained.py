"""The demo's shipped models: four tiny checkpoints trained by this project's own CLI, with their recipe.

ambient_eval/demo/checkpoints/
  recipe.json                 the demo settings they were trained with, the exact commands
                              (`ambient-eval corrupt`, `annotate`, `train`), sha256 of the training
                              images, tool version, wall time
  annotations.jsonl           sigma_tn per training image (from `ambient-eval annotate`)
  <model>.safetensors         EMA weights + config (native single-file checkpoint, no pickle)
  <model>.loss.csv            the run's loss.csv (for the report's training curves)

`make demo-models` (= `python -m ambient_eval.demo.pretrained`) rebuilds them; `ambient-eval demo`
uses them when recipe.json matches its settings and the training images it prepares hash to the
recorded value (otherwise, or with --retrain, it trains the four models itself).
"""
from __future__ import annotations

import hashlib
import json
import logging
import os
import shutil
import subprocess
import sys
import tempfile
import time
from pathlib import Path

import numpy as np

from ambient_eval import __version__
from ambient_eval.files import atomic
from ambient_eval.demo.settings import MODELS, DemoSettings

log = logging.getLogger(__name__)
CHECKPOINT_DIR = Path(__file__).resolve().parent / "checkpoints"
RECIPE = "recipe.json"
# Settings that decide what the shipped models are (sampling / evaluation settings do not).
RECIPE_KEYS = ("data", "n_train", "clean_fraction", "corruption", "level", "annotate", "classifier_steps",
               "annotate_grid", "annotate_draws", "arch", "steps", "batch", "lr", "warmup_steps", "ema", "seed")


def recipe_settings(s: DemoSettings) -> dict:
    """The part of the demo settings the shipped models depend on."""
    d = s.to_dict()
    return {k: d[k] for k in RECIPE_KEYS}


def images_sha256(images) -> str:
    """sha256 of an NCHW uint8 tensor's bytes (identifies the training images exactly)."""
    return hashlib.sha256(np.ascontiguousarray(images.numpy()).tobytes()).hexdigest()


def commands(s: DemoSettings, work: Path) -> list[list[str]]:
    """The CLI commands that train the four models (argv after `ambient-eval`)."""
    data, ann = work / "data", work / "annotations.jsonl"
    cmds = [["corrupt", s.data, "-o", str(data), "--kind", s.corruption, "--level", f"{s.level:g}",
             "--fraction", f"{1 - s.clean_fraction:g}", "--seed", str(s.seed), "--overwrite"]
            + (["--max-images", str(s.n_train)] if s.n_train else []),
            ["annotate", str(data), str(data), "-o", str(ann), "--steps", str(s.classifier_steps),
             "--grid", f"0.01,10,{s.annotate_grid}", "--draws", str(s.annotate_draws), "--seed", str(s.seed),
             "--device", "cpu", "--no-report", "--overwrite"]]
    common = ["--arch", s.arch, "--steps", str(s.steps), "--batch", str(s.batch), "--lr", f"{s.lr:g}",
              "--warmup", str(s.warmup_steps), "--ema", f"{s.ema:g}", "--checkpoint-every", str(s.steps),
              "--device", "cpu", "--overwrite"]
    for label, subset, method, off in MODELS:
        which = ["--annotations", str(ann), "--only-clean"] if subset == "clean" else []
        if method == "ambient-omni":
            which = ["--method", "ambient-omni", "--annotations", str(ann)]
        cmds.append(["train", str(data), "-o", str(work / "runs" / label), *which, *common,
                     "--seed", str(s.seed + off)])
    return cmds


def build(s: DemoSettings | None = None, dest: Path = CHECKPOINT_DIR, work: Path | None = None) -> dict:
    """Run the recipe with the CLI (subprocesses, 1 thread each) and write `dest`; => recipe dict."""
    if s is None:
        s = DemoSettings()
    if s.annotate != "classifier":
        raise ValueError("the shipped models use the classifier annotation")
    tmp = Path(tempfile.mkdtemp(prefix="ambient-demo-models-")) if work is None else Path(work)
    env = {**os.environ, "OMP_NUM_THREADS": "1", "MKL_NUM_THREADS": "1"}
    t0 = time.time()
    cmds = commands(s, tmp)
    for argv in cmds[:2]:  # corrupt, annotate
        print("ambient-eval " + " ".join(argv), flush=True)
        subprocess.run([sys.executable, "-m", "ambient_eval", *argv], check=True, env=env)
    # the four trainings are independent: one process each (cores permitting), logs in work/runs/
    (tmp / "runs").mkdir(exist_ok=True)
    procs = []
    for argv in cmds[2:]:
        print("ambient-eval " + " ".join(argv), flush=True)
        log_file = open(tmp / "runs" / f"{Path(argv[3]).name}.log", "w")
        procs.append((subprocess.Popen([sys.executable, "-m", "ambient_eval", *argv], env=env, stdout=log_file,
                                       stderr=subprocess.STDOUT), log_file, argv))
    for p, f, argv in procs:
        if p.wait() != 0:
            raise RuntimeError(f"ambient-eval {' '.join(argv)} failed; see {f.name}")
        f.close()
    from ambient_eval.training.dataset import load_train_data

    sha = images_sha256(load_train_data(tmp / "data").images)
    staged = dest.with_name(dest.name + ".partial")
    shutil.rmtree(staged, ignore_errors=True)
    staged.mkdir(parents=True)
    for label, *_ in MODELS:
        run = tmp / "runs" / label
        _single_file(run / "final", staged / f"{label}.safetensors")
        shutil.copy(run / "loss.csv", staged / f"{label}.loss.csv")
    shutil.copy(tmp / "annotations.jsonl", staged / "annotations.jsonl")
    recipe = {"settings": recipe_settings(s), "commands": [["ambient-eval", *c] for c in commands(s, Path("WORK"))],
              "work": "WORK = a scratch directory",
              "train_images_sha256": sha, "tool_version": __version__, "seconds": round(time.time() - t0, 1),
              "created_utc": time.strftime("%Y-%m-%dT%H:%M:%SZ", time.gmtime())}
    (staged / RECIPE).write_text(json.dumps(recipe, indent=1) + "\n")
    for f in staged.iterdir():  # package data: world-readable (atomic writes create 0600 files)
        f.chmod(0o644)
    shutil.rmtree(dest, ignore_errors=True)
    staged.rename(dest)
    if work is None:
        shutil.rmtree(tmp, ignore_errors=True)
    return recipe


def _single_file(run_final: Path, target: Path) -> None:
    from ambient_eval.models import load_model
    from ambient_eval.models.native import CONFIG_NAME, save_native

    cfg = json.loads((run_final / CONFIG_NAME).read_text())
    meta = cfg.pop("metadata", {})
    for k in ("format", "format_version"):
        cfg.pop(k, None)
    save_native(load_model(run_final, device="cpu"), target, cfg, meta)


def available(s: DemoSettings, where: Path = CHECKPOINT_DIR) -> bool:
    """The shipped models exist and were trained with these settings."""
    p = where / RECIPE
    if not (p.is_file() and all((where / f"{m[0]}.safetensors").is_file() for m in MODELS)):
        return False
    try:
        return json.loads(p.read_text()).get("settings") == json.loads(json.dumps(recipe_settings(s)))
    except (OSError, ValueError):
        return False


def install(data, out: Path, where: Path = CHECKPOINT_DIR) -> tuple[np.ndarray, dict, dict] | None:
    """Put the shipped models where the demo's later stages read them (DIR/train/<model>/final,
    loss.csv); => (sigma_tn (N,), annotation info, train info per model), or None when the demo's
    training images differ from the recipe's (then the demo trains)."""
    recipe = json.loads((where / RECIPE).read_text())
    if images_sha256(data.images) != recipe["train_images_sha256"]:
        log.warning("shipped demo models were trained on other images; retraining")
        return None
    rows = [json.loads(ln) for ln in (where / "annotations.jsonl").read_text().splitlines()[1:] if ln.strip()]
    sigma = np.array([r["sigma_tn"] for r in sorted(rows, key=lambda r: r["index"])], np.float32)
    info = {}
    for label, *_ in MODELS:
        run = out / "train" / label
        shutil.rmtree(run, ignore_errors=True)
        (run / "final").mkdir(parents=True)
        _unpack(where / f"{label}.safetensors", run / "final")
        shutil.copy(where / f"{label}.loss.csv", run / "loss.csv")
        losses = [float(ln.split(",")[2]) for ln in (run / "loss.csv").read_text().splitlines()[1:] if ln]
        atomic.write_json(run / "run.json", {"shipped": True, "recipe": recipe})
        info[label] = {"run_dir": str(run), "shipped": True, "final_loss": float(np.mean(losses[-50:])),
                       "first_loss": float(np.mean(losses[:50])), "seconds": None}
    ann = {"mode": "classifier (shipped)", "rule": recipe["settings"], "reused": True, "accuracy": []}
    return sigma, ann, info


def _unpack(single: Path, final_dir: Path) -> None:
    """Single-file checkpoint => the directory form a training run's final/ has."""
    from safetensors import safe_open

    from ambient_eval.models import load_model
    from ambient_eval.models.native import META_CONFIG_KEY, save_native

    with safe_open(str(single), framework="pt") as f:
        full = json.loads((f.metadata() or {})[META_CONFIG_KEY])
    meta = full.pop("metadata", {})
    for k in ("format", "format_version"):
        full.pop(k, None)
    save_native(load_model(single, device="cpu"), final_dir, full, meta)


if __name__ == "__main__":
    logging.basicConfig(level=logging.INFO, format="%(message)s")
    r = build()
    print(f"wrote {CHECKPOINT_DIR} in {r['seconds']:.0f} s")
