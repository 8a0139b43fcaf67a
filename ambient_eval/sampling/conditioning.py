"""Conditioning options of every command that samples a model: class, prompts, guidance, scheduler.

    cond = Conditioning(class_spec="balanced")            # DiT / EDM: seed s gets class s % C
    cond = Conditioning(prompts="captions.csv", guidance=7.5)
    cond.class_of(seed, num_classes), cond.prompt_of(seed), cond.default_seeds()

Every condition is a function of the seed alone, so an image never depends on which other seeds
share its batch, its process or the run: seed s uses row s mod N of a prompt file (or the row whose
`seed` column is s), class N for every seed, class RandomState(s).randint(C) (`random`), or
class s mod C (`balanced`: equal seeds per class over a range that is a multiple of C, as the
ADM / DiT 50-per-class FID protocol).
"""
from __future__ import annotations

from dataclasses import dataclass
from functools import cached_property
from typing import Sequence

import numpy as np

from ambient_eval.errors import AmbientError

CLASS_MODES = ("random", "balanced")


@dataclass(frozen=True)
class Conditioning:
    class_spec: str | None = None       # "N" | "random" | "balanced"; None: the model's default rule
    prompts: str | None = None          # prompt file (see ambient_eval.data.prompts)
    guidance: float | None = None       # classifier-free guidance weight w; None: pipeline default
    negative_prompt: str | None = None  # text for the unconditional branch (SD / SDXL)
    scheduler: str | None = None        # diffusers scheduler class name; None: the pipeline's own
    steps: int | None = None            # inference steps; None: the pipeline's default
    lora: tuple[str, ...] = ()          # LoRA adapter paths (diffusers load_lora_weights formats)
    lora_scale: float = 1.0             # weight of every adapter
    gnet: str | None = None             # EDM2 guiding network pickle (models.guided); None: no gnet

    def __post_init__(self) -> None:
        if self.class_spec is not None:
            parse_class(self.class_spec)
        if self.guidance is not None and not np.isfinite(self.guidance):
            raise AmbientError(f"--guidance {self.guidance} is not a finite number.")

    @property
    def pipeline_only(self) -> list[str]:
        """Options given that only diffusers conditional pipelines use (flag names)."""
        given = {"--prompts": self.prompts, "--guidance": self.guidance,
                 "--negative-prompt": self.negative_prompt, "--scheduler": self.scheduler,
                 "--lora": self.lora or None}
        return [k for k, v in given.items() if v is not None]

    @cached_property
    def rows(self):
        """The prompt file's rows (read once), or None without --prompts."""
        if self.prompts is None:
            return None
        from ambient_eval.data.prompts import read_prompts

        rows = read_prompts(self.prompts)
        seeds = [r.seed for r in rows]
        if any(s is not None for s in seeds):
            if any(s is None for s in seeds):
                raise AmbientError(f"Prompt file '{self.prompts}' gives a seed for some rows but not "
                                   "others. Fill the 'seed' column for every row, or drop it (row i "
                                   "then uses seed i).")
            dup = sorted({s for s in seeds if seeds.count(s) > 1})
            if dup:
                raise AmbientError(f"Prompt file '{self.prompts}' lists seed {dup[0]} on more than "
                                   "one row; every row needs its own seed (images are keyed by seed).")
        return rows

    @cached_property
    def _by_seed(self) -> dict | None:
        rows = self.rows
        if rows is None or rows[0].seed is None:
            return None
        return {r.seed: r for r in rows}

    def default_seeds(self) -> list[int] | None:
        """Seeds implied by the prompt file (its seed column, else 0..N-1); None without prompts."""
        if self.rows is None:
            return None
        return [r.seed for r in self.rows] if self._by_seed else list(range(len(self.rows)))

    def row_of(self, seed: int):
        """The prompt row seed `seed` is generated from."""
        if self._by_seed is not None:
            if seed not in self._by_seed:
                raise AmbientError(f"Seed {seed} is not in the 'seed' column of '{self.prompts}'. "
                                   "Drop --seeds to generate every row with its own seed.")
            return self._by_seed[seed]
        return self.rows[seed % len(self.rows)]

    def prompt_of(self, seed: int) -> str:
        return self.row_of(seed).prompt

    def check_seeds(self, seeds: Sequence[int], num_classes: int) -> None:
        """Validate the seed list against prompts (seed column) and `balanced` (equal counts)."""
        for s in seeds:
            if self.rows is not None:
                self.row_of(int(s))
        if parse_class(self.class_spec) == "balanced" and num_classes:
            counts = np.bincount(np.asarray(seeds, dtype=np.int64) % num_classes, minlength=num_classes)
            if counts.min() != counts.max():
                raise AmbientError(
                    f"--class balanced gives seed s the class s mod {num_classes}, but the {len(seeds)} "
                    f"seeds give between {counts.min()} and {counts.max()} seeds per class. Pass a "
                    f"contiguous range whose length is a multiple of {num_classes}, e.g. "
                    f"--seeds 0-{50 * num_classes - 1} for 50 per class.")

    def class_of(self, seed: int, num_classes: int) -> int:
        """Class of `seed`: fixed N, s mod C (balanced) or RandomState(s).randint(C) (random/default)."""
        spec = parse_class(self.class_spec)
        if spec == "balanced":
            return int(seed) % num_classes
        if spec in (None, "random"):
            return int(np.random.RandomState(int(seed) % (1 << 32)).randint(num_classes))
        if not 0 <= spec < num_classes:
            raise AmbientError(f"--class {spec} is out of range: the model has {num_classes} classes "
                               f"(0-{num_classes - 1}).")
        return spec

    def describe(self) -> dict:
        """Settings recorded with the samples (the prompt file by name and content hash)."""
        from ambient_eval.files.hashing import sha256_file

        return {"class": self.class_spec,
                "prompts": None if self.prompts is None else
                {"file": str(self.prompts), "sha256": sha256_file(self.prompts), "rows": len(self.rows),
                 "rule": "seed column" if self._by_seed else "seed s uses row s mod N"},
                "negative_prompt": self.negative_prompt,
                "lora": [{"path": str(p)} for p in self.lora], "lora_scale": self.lora_scale}


def parse_class(spec) -> int | str | None:
    """'--class' value => int class | 'random' | 'balanced' | None."""
    if spec is None or isinstance(spec, (int, np.integer)):
        return None if spec is None else int(spec)
    s = str(spec).strip().lower()
    if s in CLASS_MODES:
        return s
    if s.isdigit():
        return int(s)
    raise AmbientError(f"--class '{spec}' is not a class index, 'random' or 'balanced'. Use e.g. "
                       "--class 207, --class random (a seed-determined class per image) or --class "
                       "balanced (equal seeds per class).")
