"""A FAISS index saved at --index-path, with the key file beside it that says what it was built for.

- `save_index(index, path, key)`: the index (CPU copy) and `<path>.json`, both written atomically.
- `read_index_key(path)` / `check_index_key(...)`: refuse an index built for other inputs.
- `load_index(path, key)`: read a checked index (moved to GPU when available).
"""
from __future__ import annotations

import json
import os
from pathlib import Path
from typing import Any

from ambient_eval.audits.search import to_cpu, to_gpu
from ambient_eval.errors import AmbientError

KEY_SUFFIX = ".json"              # the key file lives beside the index: <index-path>.json


def save_index(index: Any, path: str | os.PathLike, key: dict[str, Any]) -> Path:
    """Write the index (CPU copy) to `path` and its key to `path`.json, both atomically."""
    import faiss

    from ambient_eval.files.atomic import atomic_path, write_json

    p = Path(path)
    with atomic_path(p) as tmp:
        faiss.write_index(to_cpu(index), str(tmp))
    write_json(p.with_name(p.name + KEY_SUFFIX), {**key, "d": int(index.d), "ntotal": int(index.ntotal)})
    return p


def read_index_key(path: str | os.PathLike) -> dict[str, Any] | None:
    """The key saved beside an index, or None when there is no index at `path`."""
    p = Path(path)
    kp = p.with_name(p.name + KEY_SUFFIX)
    if not p.exists():
        return None
    try:
        return json.loads(kp.read_text())
    except (OSError, json.JSONDecodeError) as e:
        raise AmbientError(f"Index '{p}' has no readable key file '{kp}' ({e}); it cannot be checked "
                           "against this training set and extractor. Delete the index to rebuild it.") from None


def check_index_key(path: str | os.PathLike, saved: dict[str, Any], key: dict[str, Any],
                    d: int | None = None) -> None:
    """Refuse a saved index made for another training set, extractor, dimension or index kind."""
    if d is not None and saved.get("d") not in (None, d):
        raise AmbientError(f"Index '{path}' holds embeddings of dimension {saved.get('d')} "
                           f"(extractor '{saved.get('extractor')}') but extractor '{key.get('extractor')}' "
                           f"produces dimension {d}. Delete the index or pass another --index-path.")
    diff = sorted(f for f in key if saved.get(f) != key[f])
    if diff:
        detail = "; ".join(f"{f}: saved {saved.get(f)!r} vs now {key[f]!r}" for f in diff)
        raise AmbientError(f"Index '{path}' was built for other inputs ({detail}). Delete it to rebuild, "
                           "or pass another --index-path.")


def load_index(path: str | os.PathLike, key: dict[str, Any], *, d: int | None = None,
               use_gpu: bool | None = None) -> Any:
    """Read an index saved by `save_index` after checking its key; moved to GPU when available."""
    import faiss

    saved = read_index_key(path)
    if saved is None:
        raise AmbientError(f"No index at '{path}'. Build one first (run without an existing --index-path).")
    check_index_key(path, saved, key, d)
    try:
        index = faiss.read_index(str(path))
    except RuntimeError as e:
        raise AmbientError(f"Cannot read the FAISS index '{path}' ({str(e).splitlines()[0]}). "
                           "It may be truncated; delete it to rebuild.") from None
    if index.ntotal != saved.get("ntotal") or index.d != saved.get("d"):
        raise AmbientError(f"Index '{path}' does not match its key file (ntotal {index.ntotal}, d {index.d}). "
                           "Delete both files to rebuild.")
    return to_gpu(index, use_gpu)
