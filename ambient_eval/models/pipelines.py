"""Class-conditional and text-to-image diffusers pipelines as a model source (DiT, SD, SDXL, LCM).

    model = load_pipeline("sd-folder/", conditioning=Conditioning(prompts="p.txt"), device="cpu")
    for seeds, images in model.generate_images([0, 1, 2], batch_size=8): ...  # NCHW uint8

The diffusers pipeline itself is the reference behaviour, so it is what runs: each call gets one
`torch.Generator("cpu").manual_seed(s)` per seed (diffusers draws every image's latents from its
own generator), output_type="np", and the floats become uint8 as diffusers' numpy_to_pil does
((x * 255).round()). The PNGs therefore equal `pipe(..., generator=torch.Generator("cpu")
.manual_seed(s)).images[0]` saved by PIL. On CPU every seed is its own pipeline call (batch 1), so
an image is bit-identical to a single-image diffusers call whatever --batch is (CPU kernels pick
their algorithm by batch shape); on GPU a batch of seeds is one call.
Loading reads safetensors only (pickled .bin components need trust_pickle=True); the SD safety
checker is not loaded (it blacks out images, which would change every metric).
"""
from __future__ import annotations

import inspect
import json
from pathlib import Path
from typing import Iterator, Sequence

import numpy as np
import torch

from ambient_eval.errors import AmbientError
from ambient_eval.sampling.conditioning import Conditioning

# pipeline class => (condition kind, accepts negative_prompt)
PIPELINES = {"DiTPipeline": ("class", False),
             "StableDiffusionPipeline": ("text", True),
             "StableDiffusionXLPipeline": ("text", True),
             "LatentConsistencyModelPipeline": ("text", False)}
WEIGHT_SUFFIXES = (".safetensors", ".bin", ".pt", ".pth", ".ckpt", ".pkl")


def pipeline_class(path: Path) -> str | None:
    """`_class_name` of path/model_index.json, or None when there is none."""
    index = Path(path) / "model_index.json"
    if not index.is_file():
        return None
    try:
        return json.loads(index.read_text()).get("_class_name")
    except (OSError, ValueError) as e:
        raise AmbientError(f"Cannot read '{index}': {e}.") from e


def _weight_files(path: Path) -> list[Path]:
    return sorted(p for p in path.rglob("*") if p.is_file() and p.suffix in WEIGHT_SUFFIXES)


def _check_weights(path: Path, trust_pickle: bool) -> list[Path]:
    """Component weight files; pickled ones (.bin ...) only with trust_pickle."""
    files = _weight_files(path)
    pickled = [p for p in files if p.suffix != ".safetensors"]
    safe_dirs = {p.parent for p in files if p.suffix == ".safetensors"}
    unsafe = [p for p in pickled if p.parent not in safe_dirs]
    if unsafe and not trust_pickle:
        raise AmbientError(
            f"'{unsafe[0]}' is a pickled weights file (loading it runs code stored in it), and "
            f"'{unsafe[0].parent.name}' has no .safetensors copy. Re-save the pipeline with "
            "pipe.save_pretrained(dir, safe_serialization=True), or pass --trust-pickle if you trust it.")
    return [p for p in files if p.suffix == ".safetensors" or p.parent not in safe_dirs]


def _weights_sha256(files: Sequence[Path], root: Path) -> str:
    from ambient_eval.files.hashing import sha256_file, sha256_json

    return sha256_json({str(p.relative_to(root)): sha256_file(p) for p in files})


class PipelineModel:
    """A loaded conditional pipeline + its conditioning; the sampling code's model interface."""

    label_dim = 0                     # conditions are handled here, not by EDM's label rule
    img_channels = 3

    def __init__(self, pipe, name: str, conditioning: Conditioning, path: Path) -> None:
        self.pipe, self.name, self.cond, self.path = pipe, name, conditioning, path
        self.kind, self.accepts_negative = PIPELINES[name]
        params = inspect.signature(type(pipe).__call__).parameters
        self.steps = conditioning.steps or params["num_inference_steps"].default
        self.guidance = params["guidance_scale"].default if conditioning.guidance is None \
            else conditioning.guidance
        denoiser = pipe.transformer if self.kind == "class" else pipe.unet
        self.num_classes = int(denoiser.config.num_embeds_ada_norm) if self.kind == "class" else 0
        size = denoiser.config.sample_size                       # latent pixels; VAE upsamples
        upscale = 2 ** (len(pipe.vae.config.block_out_channels) - 1)
        self.img_resolution = int(size if isinstance(size, int) else size[0]) * upscale
        self.weights_sha256: str | None = None
        self.checkpoint_format = "diffusers-pipeline"
        self.checkpoint_path = str(path)

    # model-interface no-ops (the sampling code moves and switches denoisers)
    def to(self, device):
        self.pipe.to(torch.device(device))
        return self

    def eval(self):
        return self

    def check_seeds(self, seeds: Sequence[int]) -> None:
        """Validate conditions for `seeds` before any image is generated."""
        self.cond.check_seeds(seeds, self.num_classes)
        if self.kind == "class":
            for s in seeds[:1]:
                self.cond.class_of(s, self.num_classes)
        elif self.cond.rows is None:
            raise AmbientError(f"'{self.path}' is a text-to-image {self.name}: pass --prompts FILE "
                               "(one prompt per line, or a table with a 'prompt' column).")

    def labels_for(self, seeds: Sequence[int]) -> np.ndarray | None:
        """Validated conditions => int64 class per seed (DiT), None for text-to-image."""
        self.check_seeds(seeds)
        if self.kind != "class":
            return None
        return np.asarray([self.cond.class_of(int(s), self.num_classes) for s in seeds], dtype=np.int64)

    def provenance(self) -> dict:
        """What determines the pixels besides the weights (recorded in every settings file)."""
        sched = self.pipe.scheduler
        extra = {}
        if self.name == "StableDiffusionXLPipeline":
            r = self.img_resolution
            extra["micro_conditioning"] = {"original_size": [r, r], "target_size": [r, r],
                                           "crops_coords_top_left": [0, 0]}
        return {"pipeline": self.name, "scheduler": type(sched).__name__,
                "scheduler_config": {k: (v if not isinstance(v, float) or np.isfinite(v) else str(v))
                                     for k, v in dict(sched.config).items()
                                     if not k.startswith("_") and isinstance(v, (int, float, str, bool))},
                "steps": self.steps, "guidance": self.guidance, **self.cond.describe(),
                "noise": "diffusers: one torch.Generator('cpu').manual_seed(seed) per image",
                "to_uint8": "(x * 255).round() as diffusers numpy_to_pil",
                "safety_checker": "not loaded", **extra}

    def call_kwargs(self, seeds: Sequence[int]) -> dict:
        """Pipeline keyword arguments for one call generating `seeds` (conditions per seed)."""
        kw = dict(num_inference_steps=self.steps, guidance_scale=self.guidance, output_type="np",
                  generator=[torch.Generator("cpu").manual_seed(int(s)) for s in seeds])
        if self.kind == "class":
            kw["class_labels"] = [self.cond.class_of(s, self.num_classes) for s in seeds]
            return kw
        if self.cond.rows is None:
            raise AmbientError(f"'{self.path}' is a text-to-image {self.name}: pass --prompts FILE "
                               "(one prompt per line, or a table with a 'prompt' column).")
        kw["prompt"] = [self.cond.prompt_of(int(s)) for s in seeds]
        if self.cond.negative_prompt is not None:
            kw["negative_prompt"] = [self.cond.negative_prompt] * len(seeds)
        return kw

    def generate_images(self, seeds: Sequence[int], batch_size: int, device: torch.device
                        ) -> Iterator[tuple[list[int], torch.Tensor]]:
        """Yield (seeds, NCHW uint8 on CPU) in seed order: see the module docstring."""
        seeds = [int(s) for s in seeds]
        per_call = 1 if torch.device(device).type == "cpu" else batch_size
        for start in range(0, len(seeds), batch_size):
            batch = seeds[start:start + batch_size]
            out = []
            for s in range(0, len(batch), per_call):
                with torch.no_grad():
                    images = self.pipe(**self.call_kwargs(batch[s:s + per_call])).images
                out.append(to_uint8(images))
            yield batch, torch.cat(out)


def to_uint8(images: np.ndarray) -> torch.Tensor:
    """NHWC float [0, 1] (diffusers output_type='np') => NCHW uint8, as diffusers numpy_to_pil."""
    return torch.from_numpy((images * 255).round().astype("uint8")).permute(0, 3, 1, 2).contiguous()


def _set_scheduler(pipe, name: str) -> None:
    import diffusers

    compatible = sorted({c.__name__ for c in pipe.scheduler.compatibles} | {type(pipe.scheduler).__name__})
    if name not in compatible:
        raise AmbientError(f"--scheduler {name} does not fit this {type(pipe).__name__} (scheduler "
                           f"{type(pipe.scheduler).__name__}). Compatible: {', '.join(compatible)}.")
    pipe.scheduler = getattr(diffusers, name).from_config(pipe.scheduler.config)


def load_pipeline(path, *, conditioning: Conditioning | None = None, device="cpu",
                  trust_pickle: bool = False) -> PipelineModel:
    """A DiT / SD / SDXL / LCM save_pretrained folder => PipelineModel on `device`."""
    try:
        import diffusers
    except ImportError as e:
        raise AmbientError("Loading diffusers pipelines needs the optional 'diffusers' and "
                           "'transformers' packages: pip install 'ambient-eval[diffusers]'.") from e
    path = Path(path)
    cond = conditioning or Conditioning()
    name = pipeline_class(path)
    if name not in PIPELINES:
        raise AmbientError(f"'{path}' is a diffusers {name}; conditional pipelines supported: "
                           f"{', '.join(PIPELINES)}.")
    kind, accepts_negative = PIPELINES[name]
    if kind == "class" and cond.prompts is not None:
        raise AmbientError(f"'{path}' is a class-conditional {name}; it takes --class "
                           "N|random|balanced, not --prompts.")
    if kind == "text" and cond.class_spec is not None:
        raise AmbientError(f"'{path}' is a text-to-image {name}; it takes --prompts FILE, not --class.")
    if cond.negative_prompt is not None and not accepts_negative:
        raise AmbientError(f"{name} has no negative prompt (it does not run an unconditional "
                           "branch). Drop --negative-prompt.")
    if cond.lora and name == "DiTPipeline":
        raise AmbientError("DiTPipeline cannot load LoRA adapters (diffusers has no load_lora_weights "
                           "for it). Drop --lora, or merge the adapter into the transformer weights.")
    files = _check_weights(path, trust_pickle)
    index = json.loads((path / "model_index.json").read_text())
    extra = {"safety_checker": None, "requires_safety_checker": False} if "safety_checker" in index else {}
    try:
        pipe = getattr(diffusers, name).from_pretrained(
            str(path), use_safetensors=None if trust_pickle else True, local_files_only=True, **extra)
    except (OSError, ValueError, RuntimeError, KeyError, TypeError) as e:
        raise AmbientError(f"Cannot load the {name} in '{path}': {' '.join(str(e).split())[:400]}. "
                           "Check that every component folder holds its config and weights.") from e
    pipe.set_progress_bar_config(disable=True)
    if cond.scheduler:
        _set_scheduler(pipe, cond.scheduler)
    model = PipelineModel(pipe, name, cond, path)
    sha = {"pipeline": _weights_sha256(files, path)}
    if cond.lora:
        from ambient_eval.models.lora import apply_lora

        sha["lora"] = apply_lora(pipe, cond.lora, cond.lora_scale)
    from ambient_eval.files.hashing import sha256_json

    model.weights_sha256 = sha["pipeline"] if not cond.lora else sha256_json(sha)
    return model.to(device)
