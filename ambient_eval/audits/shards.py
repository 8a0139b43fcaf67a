"""Training sets larger than RAM: embeddings in .npy shards, searched shard by shard or on-disk IVF.

`memorization --shards DIR` writes, per `shard_size` training images,
    DIR/emb-00000.npy        (rows, d) float32, L2-normalized embeddings of rows [start, stop)
    DIR/emb-00000.json       {"key", "start", "stop", "d", "sha256"}: its fingerprint
and DIR/manifest.json (training-set fingerprint, embedding, shard size). A shard whose sidecar
matches (key, rows, content hash) is reused, so an interrupted run resumes where it stopped. Under
torchrun, shard i is embedded by rank i % world.

Search: `flat` is exact, shard by shard, with a merged top-k (one shard in memory at a time);
`ivf` / `ivfpq` are trained on a seeded sample, one index per shard is filled and written, and
the inverted lists are merged into DIR/<kind>.ivfdata (faiss OnDiskInvertedLists, merge_ondisk),
which is memory-mapped at search time. IVF-PQ candidates are re-ranked exactly from the shards.
"""
from __future__ import annotations

import contextlib
import json
import logging
import os
import sys
from pathlib import Path
from typing import TYPE_CHECKING, Any, Iterator

import numpy as np

from ambient_eval.audits import search as S
from ambient_eval.errors import AmbientError

if TYPE_CHECKING:
    from ambient_eval.data.base import ImageSource

log = logging.getLogger(__name__)

MANIFEST = "manifest.json"
FORMAT = 1


@contextlib.contextmanager
def _quiet_stdout() -> Iterator[None]:
    # faiss's on-disk inverted lists print progress with C printf ("resizing ...", "IO_FLAG_ONDISK_SAME_DIR:
    # updating ..."); keep the command's stdout to its own summary lines.
    sys.stdout.flush()
    saved = os.dup(1)
    try:
        with open(os.devnull, "wb") as null:
            os.dup2(null.fileno(), 1)
            yield
    finally:
        os.dup2(saved, 1)
        os.close(saved)


def _shard_name(i: int) -> str:
    return f"emb-{i:05d}"


def _key_hash(key: dict[str, Any]) -> str:
    from ambient_eval.files.hashing import sha256_json

    return sha256_json({"format": FORMAT, **key})


def _file_sha256(path: Path) -> str:
    from ambient_eval.files.hashing import sha256_file

    return sha256_file(path)


def shard_valid(out_dir: Path, i: int, key_hash: str, start: int, stop: int, d: int | None) -> bool:
    """Whether shard i holds the embeddings of rows [start, stop) for this key (content hash checked)."""
    npy, meta = out_dir / f"{_shard_name(i)}.npy", out_dir / f"{_shard_name(i)}.json"
    try:
        m = json.loads(meta.read_text())
        if (m.get("key"), m.get("start"), m.get("stop")) != (key_hash, start, stop) or \
                (d is not None and m.get("d") != d):
            return False
        arr = np.load(npy, mmap_mode="r")
        return arr.shape == (stop - start, m["d"]) and arr.dtype == np.float32 and _file_sha256(npy) == m["sha256"]
    except (OSError, ValueError, KeyError, json.JSONDecodeError):
        return False


def _write_shard(out_dir: Path, i: int, x: np.ndarray, key_hash: str, start: int, stop: int) -> None:
    from ambient_eval.files.atomic import atomic_path, write_json

    npy = out_dir / f"{_shard_name(i)}.npy"
    with atomic_path(npy) as tmp:
        with open(tmp, "wb") as f:
            np.save(f, np.ascontiguousarray(x, dtype=np.float32))
    write_json(out_dir / f"{_shard_name(i)}.json", {"key": key_hash, "start": start, "stop": stop,
                                                     "d": int(x.shape[1]), "sha256": _file_sha256(npy)})


def _check_manifest(out_dir: Path, manifest: dict[str, Any]) -> None:
    p = out_dir / MANIFEST
    if not p.exists():
        return
    try:
        old = json.loads(p.read_text())
    except (OSError, json.JSONDecodeError):
        return  # rewritten below; the shards' own sidecars decide what is reused
    diff = sorted(f for f in ("key", "shard_size") if old.get(f) != manifest[f])
    if diff:
        raise AmbientError(f"--shards '{out_dir}' holds shards of another training set, embedding or shard "
                           f"size ({', '.join(diff)} differ: {old.get('train')} vs {manifest['train']}). "
                           "Pass another --shards directory, or delete this one to re-embed.")


def embed_shards(source: "ImageSource", extractor: Any, *, embed: str, out_dir: str | Path, shard_size: int,
                 batch_size: int, key: dict[str, Any]) -> "ShardArray":
    """Embed `source` into L2-normalized .npy shards under out_dir (valid shards are reused)."""
    from ambient_eval.files.atomic import ensure_writable_dir, write_json
    from ambient_eval.audits import embed as E
    from ambient_eval.features import distributed as D
    from ambient_eval.features.extract import _extract_rows
    from ambient_eval.runtime.progress import progress

    out_dir = Path(out_dir)
    ensure_writable_dir(out_dir)
    n, kh = len(source), _key_hash(key)
    manifest = {"format": FORMAT, "key": kh, "train": key, "n": n, "shard_size": int(shard_size)}
    _check_manifest(out_dir, manifest)
    if D.is_main():
        write_json(out_dir / MANIFEST, manifest)
    rank, world = D.rank_world()
    d = int(extractor.outputs[extractor.default_output])
    ranges = [(s, min(s + shard_size, n)) for s in range(0, n, shard_size)]
    bar = progress(total=len(ranges), desc="training shards", unit="shard")
    reused = 0
    for i, (s, e) in enumerate(ranges):
        if i % world == rank:
            if shard_valid(out_dir, i, kh, s, e, d):
                reused += 1
            else:
                feats = _extract_rows(D.iter_range(source, s, e, batch_size), e - s, s, source, extractor)
                x = E.l2_normalize(feats[extractor.default_output], center=E.centers(embed))
                _write_shard(out_dir, i, x, kh, s, e)
        bar.update(1)
    bar.close()
    log.info("shards in %s: %d of %d reused", out_dir, reused, len(ranges))
    from ambient_eval.sampling.distributed import barrier

    barrier()
    files = [out_dir / f"{_shard_name(i)}.npy" for i in range(len(ranges))]
    return ShardArray(files, reused=reused)


class ShardArray:
    """Read-only (n, d) float32 view of consecutive .npy shards (rows by slice or index array)."""

    def __init__(self, files: list[Path], reused: int = 0) -> None:
        self.files = [Path(f) for f in files]
        self._mm = [np.load(f, mmap_mode="r") for f in self.files]
        sizes = [m.shape[0] for m in self._mm]
        self.offsets = np.concatenate([[0], np.cumsum(sizes)]).astype(np.int64)
        dims = {m.shape[1] for m in self._mm}
        if len(dims) != 1:
            raise AmbientError(f"Shards {self.files[0].parent} have different dimensions {sorted(dims)}. "
                               "Delete the directory to re-embed.")
        self.shape = (int(self.offsets[-1]), dims.pop())
        self.dtype = np.dtype(np.float32)
        self.reused = reused

    def __len__(self) -> int:
        return self.shape[0]

    def blocks(self, rows: int = S.DEFAULTS.add_chunk) -> Iterator[np.ndarray]:
        """Each shard read into memory (not memory-mapped, so pages do not accumulate), in `rows` chunks."""
        for f in self.files:
            x = np.load(f)
            for i0 in range(0, x.shape[0], rows):
                yield np.ascontiguousarray(x[i0:i0 + rows])
            del x

    def __getitem__(self, key: Any) -> np.ndarray:
        if isinstance(key, slice):
            start, stop, step = key.indices(self.shape[0])
            if step != 1:
                raise IndexError("ShardArray slices must be contiguous")
            key = np.arange(start, stop, dtype=np.int64)
        idx = np.asarray(key, dtype=np.int64)
        scalar = idx.ndim == 0
        idx = idx.reshape(-1)
        out = np.empty((idx.size, self.shape[1]), np.float32)
        which = np.searchsorted(self.offsets, idx, side="right") - 1
        for s in np.unique(which):
            sel = which == s
            out[sel] = self._mm[s][idx[sel] - self.offsets[s]]
        return out[0] if scalar else out


class ShardedFlat:
    """Exact inner-product search over shards: each shard searched, top-k merged (S.knn_blocks)."""

    def __init__(self, xb: ShardArray) -> None:
        self.xb, self.d, self.ntotal = xb, xb.shape[1], xb.shape[0]

    def search(self, xq: np.ndarray, k: int) -> tuple[np.ndarray, np.ndarray]:
        return S.knn_blocks(xq, self.xb.blocks(), k)


class OnDiskIVF:
    """IVF-Flat / IVF-PQ whose inverted lists live in a memory-mapped .ivfdata file."""

    def __init__(self, index: Any, xb: ShardArray, k_factor: int | None) -> None:
        self.index, self.xb, self.k_factor = index, xb, k_factor
        self.d, self.ntotal = index.d, index.ntotal
        self.nprobe, self.nlist = int(index.nprobe), int(index.nlist)

    def search(self, xq: np.ndarray, k: int) -> tuple[np.ndarray, np.ndarray]:
        xq = np.ascontiguousarray(xq, dtype=np.float32)
        if self.k_factor is None:
            return self.index.search(xq, k)
        _, cand = self.index.search(xq, k * self.k_factor)   # PQ shortlist, re-ranked exactly
        D = np.empty((xq.shape[0], k), np.float32)
        I = np.empty((xq.shape[0], k), np.int64)
        for q0 in range(0, xq.shape[0], 1024):
            c = cand[q0:q0 + 1024]
            ok = c >= 0
            vec = self.xb[np.where(ok, c, 0).reshape(-1)].reshape(c.shape[0], c.shape[1], -1)
            sims = np.where(ok, np.einsum("qkd,qd->qk", vec, xq[q0:q0 + 1024]), -np.inf).astype(np.float32)
            D[q0:q0 + 1024], I[q0:q0 + 1024] = S._merge_topk(sims, np.where(ok, c, -1), k)
        return D, I


def _use_gpu_flat(xb: ShardArray, use_gpu: bool | None) -> Any:
    """Exact search sharded over all GPUs (faiss IndexShards via index_cpu_to_all_gpus(shard=True)).

    Guarded: only when faiss sees GPUs (faiss-gpu build) and --device is not cpu. Untested here (no GPU).
    """
    import faiss

    ngpu = faiss.get_num_gpus() if hasattr(faiss, "get_num_gpus") else 0
    if use_gpu is False or ngpu == 0:
        return None

    class GpuShardedFlat(ShardedFlat):
        def search(self, xq, k):
            xq = np.ascontiguousarray(xq, dtype=np.float32)
            D = np.full((xq.shape[0], k), -np.inf, np.float32)
            I = np.full((xq.shape[0], k), -1, np.int64)
            i0 = 0
            for x in self.xb.blocks(rows=1 << 22):   # big blocks, each split over the GPUs (IndexShards)
                co = faiss.GpuMultipleClonerOptions()
                co.shard = True
                index = faiss.index_cpu_to_all_gpus(faiss.IndexFlatIP(self.d), co=co)
                index.add(x)
                Db, Ib = index.search(xq, min(k, x.shape[0]))
                D, I = S._merge_topk(np.hstack([D, Db]), np.hstack([I, Ib + i0]), k)
                i0 += x.shape[0]
            return D, I

    return GpuShardedFlat(xb)


def open_index(xb: ShardArray, kind: str, out_dir: str | Path, key: dict[str, Any], *,
               use_gpu: bool | None = None) -> Any:
    """A searchable index over the shards: ShardedFlat (exact) or OnDiskIVF (built once, then reused)."""
    if kind == "flat":
        return _use_gpu_flat(xb, use_gpu) or ShardedFlat(xb)
    if kind not in ("ivf", "ivfpq"):
        raise AmbientError(f"--index {kind} does not work with --shards (its graph must fit in RAM). "
                           "Use flat (exact), ivf or ivfpq.")
    import faiss

    out_dir = Path(out_dir)
    path, keyfile = out_dir / f"{kind}.index", out_dir / f"{kind}.index.json"
    full_key = {**key, "index": kind, "ntotal": int(xb.shape[0]), "shards": _key_hash({"f": [
        json.loads((f.with_suffix(".json")).read_text())["sha256"] for f in xb.files]})}
    try:
        reuse = path.exists() and json.loads(keyfile.read_text()) == full_key
    except (OSError, json.JSONDecodeError):
        reuse = False
    if not reuse:
        from ambient_eval.features.distributed import is_main
        from ambient_eval.sampling.distributed import barrier

        if is_main():
            _build_ondisk(xb, kind, out_dir, path, keyfile, full_key)
        barrier()
    with _quiet_stdout():
        index = faiss.read_index(str(path), faiss.IO_FLAG_ONDISK_SAME_DIR)
    k_factor = S.DEFAULTS.refine_k_factor if kind == "ivfpq" else None
    return OnDiskIVF(index, xb, k_factor)


def _build_ondisk(xb: ShardArray, kind: str, out_dir: Path, path: Path, keyfile: Path,
                  full_key: dict[str, Any]) -> None:
    """Train on a seeded sample, fill one index per shard, merge the inverted lists on disk."""
    import faiss
    from faiss.contrib.ondisk import merge_ondisk

    from ambient_eval.files.atomic import atomic_path, write_json
    from ambient_eval.runtime.progress import progress

    n, d = xb.shape
    proto = S.new_index(kind, d, n)
    if kind == "ivfpq":                       # the exact re-rank reads the shards instead of a copy
        proto = faiss.clone_index(faiss.downcast_index(proto.base_index))
    rng = np.random.default_rng(S.DEFAULTS.seed)
    rows = np.sort(rng.choice(n, min(n, S.DEFAULTS.max_train), replace=False))
    proto.train(np.ascontiguousarray(xb[rows]))
    parts = []
    bar = progress(total=len(xb.files), desc=f"{kind} shards", unit="shard")
    for i, f in enumerate(xb.files):
        part = faiss.clone_index(proto)
        x, base = np.load(f), int(xb.offsets[i])
        for i0 in range(0, x.shape[0], S.DEFAULTS.add_chunk):   # global row numbers as ids
            chunk = np.ascontiguousarray(x[i0:i0 + S.DEFAULTS.add_chunk])
            part.add_with_ids(chunk, np.arange(base + i0, base + i0 + chunk.shape[0], dtype=np.int64))
        del x
        parts.append(out_dir / f"{kind}-part-{i:05d}.index")
        faiss.write_index(part, str(parts[-1]))
        del part
        bar.update(1)
    bar.close()
    merged = faiss.clone_index(proto)
    data = out_dir / f"{kind}.ivfdata"
    if data.exists():
        data.unlink()                          # OnDiskInvertedLists appends to an existing file
    with _quiet_stdout():
        merge_ondisk(merged, [str(p) for p in parts], str(data), shift_ids=False)
    with atomic_path(path) as tmp:
        faiss.write_index(merged, str(tmp))
    write_json(keyfile, full_key)
    for p in parts:
        p.unlink()
