"""Benchmark: ambient-eval sampling of a text-to-image pipeline vs calling diffusers directly.

Same pipeline folder, prompts and seeds; "direct" is the reference call (one
`pipe(prompt, generator=torch.Generator("cpu").manual_seed(seed))` per image on CPU, as ours);
runs alternate (ours, direct, ours, ...) and the best of each is kept, so load drift on a
shared machine hits both. Target: ratio <= 1.05. Also checks the images are identical, and
reports the in-run overhead (time in our generate() outside the pipeline calls / time inside them),
which load drift between runs cannot distort.

  .venv/bin/python benchmarks/bench_t2i.py                          # tiny SD, 16 prompts, 4 steps
  .venv/bin/python benchmarks/bench_t2i.py --pipeline sd-folder/ --n 8 --steps 25
Writes bench_out/bench_t2i.json.
"""
from __future__ import annotations

import argparse
import json
import sys
import tempfile
import time
from pathlib import Path

import numpy as np
import torch

ROOT = Path(__file__).resolve().parents[1]


def _tiny_sd(folder: Path) -> Path:
    sys.path.insert(0, str(ROOT))
    from tests.t2i.tiny_pipelines import build

    return build("sd", folder)


def run(pipeline: Path | None, n: int, steps: int, repeats: int, out: Path | None) -> dict:
    import diffusers

    from ambient_eval.models import load_model
    from ambient_eval.sampling.conditioning import Conditioning
    from ambient_eval.sampling.generate import generate

    tmp = tempfile.TemporaryDirectory()
    folder = pipeline or _tiny_sd(Path(tmp.name) / "sd")
    prompts = Path(tmp.name) / "prompts.txt"
    prompts.write_text("\n".join(f"a photo of thing {i}" for i in range(n)) + "\n")
    seeds = list(range(n))
    cond = Conditioning(prompts=str(prompts), steps=steps)
    model = load_model(folder, device="cpu", conditioning=cond)
    pipe = diffusers.DiffusionPipeline.from_pretrained(str(folder), local_files_only=True,
                                                       **({"safety_checker": None} if hasattr(model.pipe, "safety_checker") else {}))
    pipe.set_progress_bar_config(disable=True)

    inside = [0.0]

    class TimedPipe:
        """Delegates to the pipeline; accumulates the wall time spent inside its calls."""

        def __init__(self, p):
            self._p = p

        def __getattr__(self, name):
            return getattr(self._p, name)

        def __call__(self, *a, **kw):
            t = time.perf_counter()
            try:
                return self._p(*a, **kw)
            finally:
                inside[0] += time.perf_counter() - t

    model.pipe = TimedPipe(model.pipe)

    def ours():
        return torch.cat([x for _, x in generate(model, seeds, batch_size=n, device="cpu")])

    def direct():
        imgs = [np.asarray(pipe(cond.prompt_of(s), num_inference_steps=steps,
                                generator=torch.Generator("cpu").manual_seed(s)).images[0]) for s in seeds]
        return torch.from_numpy(np.stack(imgs)).permute(0, 3, 1, 2)

    times: dict[str, list[float]] = {"ours": [], "direct": []}
    overhead: list[float] = []
    results = {}
    with torch.no_grad():
        ours(), direct()                                  # warm-up (allocator, kernels)
        for _ in range(repeats):
            for name, fn in (("ours", ours), ("direct", direct)):
                inside[0] = 0.0
                t = time.perf_counter()
                results[name] = fn()
                times[name].append(time.perf_counter() - t)
                if name == "ours":
                    overhead.append(times[name][-1] / inside[0] - 1)
    res = {"pipeline": str(pipeline or "tiny random StableDiffusionPipeline (16x16 px)"), "n": n,
           "steps": steps, "repeats": repeats, "threads": torch.get_num_threads(),
           "ours_s": min(times["ours"]), "direct_s": min(times["direct"]),
           "ratio": min(times["ours"]) / min(times["direct"]),
           "inrun_overhead_pct": 100 * min(overhead),
           "identical": bool(torch.equal(results["ours"], results["direct"])), "times": times}
    tmp.cleanup()
    if out is not None:
        out.parent.mkdir(parents=True, exist_ok=True)
        out.write_text(json.dumps(res, indent=2))
    return res


def main(argv=None) -> dict:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--pipeline", type=Path, default=None, help="SD pipeline folder (default: tiny random)")
    ap.add_argument("--n", type=int, default=16, help="prompts = seeds")
    ap.add_argument("--steps", type=int, default=4)
    ap.add_argument("--repeats", type=int, default=5)
    ap.add_argument("--out", type=Path, default=Path("bench_out/bench_t2i.json"))
    a = ap.parse_args(argv)
    res = run(a.pipeline, a.n, a.steps, a.repeats, a.out)
    print(f"ours {res['ours_s']:.3f} s, diffusers direct {res['direct_s']:.3f} s for {res['n']} images "
          f"({res['steps']} steps): ratio {res['ratio']:.3f}x, in-run overhead {res['inrun_overhead_pct']:.2f}%, "
          f"identical images: {res['identical']}")
    return res


if __name__ == "__main__":
    main()
