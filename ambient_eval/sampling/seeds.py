"""Seed lists: "0-49999", "0,5,10-19" => [int]. Seeds name images ({seed:06d}.png) and fix noise."""
from __future__ import annotations

import re

from ambient_eval.errors import AmbientError

MAX_SEED = 2 ** 63 - 1          # torch.Generator.manual_seed accepts 64-bit seeds
MAX_SEED_COUNT = 10 ** 8        # more images than anyone samples; a bigger range is a typo
_RANGE = re.compile(r"^(\d+)-(\d+)$")


def parse_seeds(text: str) -> list[int]:
    """Comma-separated seeds and inclusive ranges, in the given order, without duplicates."""
    seeds: list[int] = []
    for part in str(text).replace(" ", "").split(","):
        if not part:
            continue
        m = _RANGE.match(part)
        if m:
            lo, hi = int(m.group(1)), int(m.group(2))
            if hi < lo:
                raise AmbientError(f"Seed range '{part}' is reversed. Write it as {hi}-{lo}.")
            if len(seeds) + hi - lo + 1 > MAX_SEED_COUNT:
                raise AmbientError(f"Seed range '{part}' names {hi - lo + 1:,} seeds, one image each; at most "
                                   f"{MAX_SEED_COUNT:,} are supported (50,000 is the usual FID sample). "
                                   "Check the range, e.g. --seeds 0-49999.")
            seeds.extend(range(lo, hi + 1))
        elif part.isdigit():
            seeds.append(int(part))
        else:
            raise AmbientError(f"Cannot parse seed '{part}' in '{text}'. Use non-negative integers and "
                               "inclusive ranges, e.g. 0-49999 or 0,5,10-19.")
    if not seeds:
        raise AmbientError(f"No seeds in '{text}'. Give e.g. --seeds 0-49999.")
    if max(seeds) > MAX_SEED:
        raise AmbientError(f"Seed {max(seeds)} is larger than {MAX_SEED}. Use smaller seeds.")
    if len(set(seeds)) != len(seeds):
        dup = sorted({s for s in seeds if seeds.count(s) > 1})[:5] if len(seeds) < 10_000 else "some"
        raise AmbientError(f"Seeds '{text}' contain duplicates ({dup}); each seed names one image. "
                           "Remove the overlap.")
    return seeds


def format_seeds(seeds: list[int]) -> str:
    """Compact inverse of parse_seeds (consecutive runs as ranges), for provenance records."""
    parts, i = [], 0
    while i < len(seeds):
        j = i
        while j + 1 < len(seeds) and seeds[j + 1] == seeds[j] + 1:
            j += 1
        parts.append(str(seeds[i]) if i == j else f"{seeds[i]}-{seeds[j]}")
        i = j + 1
    return ",".join(parts)
