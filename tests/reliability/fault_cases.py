"""The fault table as data: each case = a bad input or a failing environment, the command run on it,
the exit code it must give, and the files it may leave. tests/reliability/test_faults.py runs every
case and writes docs/faults.md from the results.

A case's `cmd` is the argument list after `ambient-eval`; "{t}" is replaced by the case's working
directory, which starts with `gen/` and `ref/` (12 random 32x32 PNGs each) and whatever `setup`
adds. `outputs` are the files the command would write; the table lists those that exist afterwards.
"""
from __future__ import annotations

import io
import json
import os
import struct
import tarfile
import zipfile
import zlib
from dataclasses import dataclass, field
from pathlib import Path
from typing import Callable

import numpy as np

PIX = ["--features", "pixel-8", "--device", "cpu", "--no-cache"]
FID = ["fid", "{t}/gen"]


@dataclass
class Case:
    name: str
    cmd: list[str]
    exit: int
    setup: Callable[[Path], None] | None = None
    env: dict[str, str] = field(default_factory=dict)
    patch: Callable[[object], None] | None = None     # gets a pytest MonkeyPatch
    outputs: list[str] = field(default_factory=lambda: ["out/results.json", "out/results.csv", "out/report.html"])


# ----------------------------------------------------------------------------- builders
def _changed_ref(t: Path) -> None:
    """A cached EDM reference whose pinned SHA-256 is another file's."""
    (t / "dl" / "refs").mkdir(parents=True)
    _stats(t / "dl" / "refs", "cifar10-32x32.npz", d=4)
    (t / "dl" / "sha256-pins.json").write_text(json.dumps({"refs/cifar10-32x32.npz": {"sha256": "ab" * 32}}))


def _png(img: np.ndarray) -> bytes:
    from PIL import Image

    buf = io.BytesIO()
    Image.fromarray(img).save(buf, format="PNG")
    return buf.getvalue()


def _img(seed: int = 0, size: int = 32, channels: int = 3) -> np.ndarray:
    a = np.random.default_rng(seed).integers(0, 256, (size, size, channels), dtype=np.uint8)
    return a[..., 0] if channels == 1 else a


def _stats(t: Path, name: str = "stats.npz", d: int = 192, mutate=None, **extra) -> None:
    rng = np.random.default_rng(0)
    x = rng.normal(size=(400, d))
    mu, s = x.mean(0), np.cov(x, rowvar=False)
    if mutate:
        mu, s = mutate(mu, s)
    np.savez(t / name, mu=mu, sigma=s, **extra)


def _asym(mu, s):
    s = s.copy(); s[0, 1] += 1.0
    return mu, s


def _notpsd(mu, s):
    s = np.eye(len(mu)); s[0, 1] = s[1, 0] = 2.0
    return mu, s


def _negdef(mu, s):
    return mu, -np.eye(len(mu))


def _nan_mu(mu, s):
    mu = mu.copy(); mu[3] = np.nan
    return mu, s


def _inf_sigma(mu, s):
    s = s.copy(); s[2, 2] = np.inf
    return mu, s


def _write(rel: str, data: bytes) -> Callable[[Path], None]:
    def f(t: Path) -> None:
        p = t / rel
        p.parent.mkdir(parents=True, exist_ok=True)
        p.write_bytes(data)
    return f


def _all(*fs) -> Callable[[Path], None]:
    def f(t: Path) -> None:
        for g in fs:
            g(t)
    return f


def _bomb_png(w: int = 8000, h: int = 8000) -> bytes:
    data = bytearray(_png(np.zeros((8, 8, 3), np.uint8)))
    data[16:24] = struct.pack(">II", w, h)
    data[29:33] = struct.pack(">I", zlib.crc32(bytes(data[12:29])) & 0xFFFFFFFF)
    return bytes(data)


def _zip(rel: str, members: dict[str, bytes], zeros_mb: int = 0) -> Callable[[Path], None]:
    def f(t: Path) -> None:
        with zipfile.ZipFile(t / rel, "w", compression=zipfile.ZIP_DEFLATED) as z:
            for k, v in members.items():
                z.writestr(k, v)
            if zeros_mb:
                with z.open("bomb.png", "w", force_zip64=True) as m:
                    for _ in range(zeros_mb):
                        m.write(bytes(2 ** 20))
    return f


def _zip_of_gen(rel: str = "gen.zip") -> Callable[[Path], None]:
    def f(t: Path) -> None:
        with zipfile.ZipFile(t / rel, "w") as z:
            for p in sorted((t / "gen").iterdir()):
                z.write(p, p.name)
    return f


def _tgz(t: Path) -> None:
    with tarfile.open(t / "gen.tar.gz", "w:gz") as tf:
        tf.add(t / "gen", arcname="gen")


def _symlink(t: Path) -> None:
    os.symlink(t / "does-not-exist.png", t / "gen" / "dangling.png")


def _empty_dir(rel: str) -> Callable[[Path], None]:
    return lambda t: (t / rel).mkdir(parents=True, exist_ok=True)


def _results(rel: str, metrics: dict, extractor: str = "inception", raw: str | None = None):
    def f(t: Path) -> None:
        p = t / rel
        p.parent.mkdir(parents=True, exist_ok=True)
        if raw is not None:
            p.write_text(raw)
            return
        obj = {"schema": "ambient-eval/results@1", "kind": "fid", "tool_version": "0", "created": "",
               "metrics": metrics, "settings": {"extractor": extractor, "mode": "tf-compat",
                                                "weights_sha256": "ab" * 32, "n_generated": 10000,
                                                "reference_fingerprint": "cd" * 32}}
        p.write_text(json.dumps(obj).replace("NaN", "NaN"))
    return f


GATE_TOML = '[[rule]]\nmetric = "fid"\nmax = 12.0\n'
GATE_REL = '[[rule]]\ncheck = "fid <= baseline + 1"\n'


def _npy(rel: str, arr: np.ndarray, pickle: bool = False) -> Callable[[Path], None]:
    return lambda t: np.save(t / rel, arr, allow_pickle=pickle)


def _npz(rel: str, **arrays) -> Callable[[Path], None]:
    return lambda t: np.savez(t / rel, **arrays)


def _jpeg_cmyk(t: Path) -> None:
    from PIL import Image

    Image.fromarray(_img(3)).convert("CMYK").save(t / "gen" / "cmyk.jpg")


def _png16(t: Path) -> None:
    from PIL import Image

    Image.fromarray((np.arange(32 * 32, dtype=np.uint16).reshape(32, 32) * 60)).save(t / "gen" / "deep.png")


def _pickle_ckpt(t: Path) -> None:
    import pickle

    (t / "net.pkl").write_bytes(pickle.dumps({"ema": None}))


def _disk_full(mp) -> None:
    import errno

    def full(*args, **kwargs):
        raise OSError(errno.ENOSPC, "No space left on device")
    mp.setattr(Path, "write_bytes", full)                  # text/JSON files fail while writing
    mp.setattr("ambient_eval.files.atomic.os.replace", full)     # others (npz, PNG) when they are finalised


def _cuda_oom(mp) -> None:
    import torch

    def oom(self, images):
        raise torch.OutOfMemoryError("CUDA out of memory. Tried to allocate 20.00 GiB (GPU 0; 79.11 GiB total)")
    mp.setattr("ambient_eval.features.pixel.PixelExtractor._extract", oom)


def _faiss_gpu_oom(mp) -> None:
    def fail(self, x):
        raise RuntimeError("Error in void* faiss::gpu::StandardGpuResourcesImpl::allocMemory: Error: "
                           "'err == cudaSuccess' failed: StandardGpuResources: alloc fail (cudaMalloc error "
                           "out of memory [2])")
    import faiss

    mp.setattr(faiss.IndexFlatIP, "add", fail)


def _perm_denied(mp) -> None:
    def denied(src, dst):
        raise PermissionError(13, "Permission denied", str(dst))
    mp.setattr("ambient_eval.files.atomic.os.replace", denied)


# ----------------------------------------------------------------------------- issue 24 builders
def _fifo(rel: str) -> Callable[[Path], None]:
    return lambda t: os.mkfifo(t / rel)


def _cycle(rel: str) -> Callable[[Path], None]:
    return lambda t: os.symlink(Path(rel).name, t / rel)      # a link to itself


def _bad_name(t: Path) -> None:
    os.rename(t / "ref" / "000000.png", os.fsencode(t / "ref") + b"/\xffimg.png")   # not UTF-8


def _metrics_list(rel: str) -> Callable[[Path], None]:
    def f(t: Path) -> None:
        _results(rel, {"fid": 2.0})(t)
        obj = json.loads((t / rel).read_text())
        obj["metrics"] = [2.0]
        (t / rel).write_text(json.dumps(obj))
    return f


def _string_metric(t: Path) -> None:
    _results("cur/results.json", {"fid": 2.0})(t)
    obj = json.loads((t / "cur/results.json").read_text())
    obj["metrics"]["kid"] = "9.5"
    (t / "cur/results.json").write_text(json.dumps(obj))


def _foreign_db(t: Path) -> None:
    import sqlite3

    con = sqlite3.connect(t / "app.sqlite")
    con.execute("CREATE TABLE users (name TEXT)")
    con.commit()
    con.close()


def _damaged_db(t: Path) -> None:
    from ambient_eval.results.history import record

    _results("cur/results.json", {"fid": 2.0})(t)
    record(str(t / "cur"), db=t / "h.sqlite", commit=None)
    raw = bytearray((t / "h.sqlite").read_bytes())
    raw[3 * 4096:4 * 4096] = b"\xff" * 4096            # a table's page: the schema still opens
    (t / "h.sqlite").write_bytes(bytes(raw))


def _report_disk_full(mp) -> None:
    import errno

    def full(*args, **kwargs):
        raise OSError(errno.ENOSPC, "No space left on device", "rep.html")
    mp.setattr("ambient_eval.reports.fid_report.save_fid_report", full)


def _out_locked(mp) -> None:
    import fcntl

    Path("out").mkdir()
    fd = os.open("out", os.O_RDONLY)                     # another run holds --out (closed at exit)
    fcntl.flock(fd, fcntl.LOCK_EX | fcntl.LOCK_NB)


def _killed_run(t: Path) -> None:
    (t / "out" / ".ambient-eval-staging.999999.abcdefgh").mkdir(parents=True)
    (t / "out" / ".ambient-eval-staging.999999.abcdefgh" / "results.json").write_text("{}")
    (t / "out" / ".results.csv.999999.abcdefgh.tmp.csv").write_text("x")


def _res16(t: Path) -> None:
    from PIL import Image

    (t / "ref16").mkdir()
    for i in range(12):
        Image.fromarray(_img(40 + i, size=16)).save(t / "ref16" / f"{i:06d}.png")


def _native_ckpt(t: Path) -> None:
    import torch

    from ambient_eval.models import UNetConfig, build_native_model, native_config, save_native

    torch.manual_seed(0)
    cfg = native_config(UNetConfig.tiny(8))
    save_native(build_native_model(cfg), t / "ckpt", cfg, {})


OUT = ["--out", "{t}/out"]
S = "{t}/stats.npz"

CASES: list[Case] = [
    # --- reference statistics files
    Case("stats: asymmetric covariance", [*FID, S, *PIX, *OUT], 2, lambda t: _stats(t, mutate=_asym)),
    Case("stats: covariance not positive semidefinite", [*FID, S, *PIX, *OUT], 2, lambda t: _stats(t, mutate=_notpsd)),
    Case("stats: negative definite covariance (FID would be negative)", [*FID, S, *PIX, *OUT], 2,
         lambda t: _stats(t, mutate=_negdef)),
    Case("stats: NaN in mu", [*FID, S, *PIX, *OUT], 2, lambda t: _stats(t, mutate=_nan_mu)),
    Case("stats: infinity in sigma", [*FID, S, *PIX, *OUT], 2, lambda t: _stats(t, mutate=_inf_sigma)),
    Case("stats: mu/sigma shapes disagree", [*FID, S, *PIX, *OUT], 2,
         lambda t: np.savez(t / "stats.npz", mu=np.zeros(192), sigma=np.eye(64))),
    Case("stats: integer arrays", [*FID, S, *PIX, *OUT], 2,
         lambda t: np.savez(t / "stats.npz", mu=np.zeros(192, int), sigma=np.eye(192, dtype=int))),
    Case("stats: empty arrays", [*FID, S, *PIX, *OUT], 2,
         lambda t: np.savez(t / "stats.npz", mu=np.zeros(0), sigma=np.zeros((0, 0)))),
    Case("stats: dimension differs from the features (64 vs 192)", [*FID, S, *PIX, *OUT], 2,
         lambda t: _stats(t, d=64, meta=np.array(json.dumps({"n": 400, "extractor": "pixel-8", "feature": "embedding",
                                                             "mode": "bilinear-antialias-8"})))),
    Case("stats: object array (pickle) inside", [*FID, S, *PIX, *OUT], 2,
         lambda t: np.savez(t / "stats.npz", mu=np.array([1, None], dtype=object), sigma=np.eye(2))),
    Case("stats: truncated .npz", [*FID, S, *PIX, *OUT], 2, _write("stats.npz", b"PK\x03\x04trunc")),
    Case("stats: file does not exist", [*FID, S, *PIX, *OUT], 2),
    Case("stats: clean-fid legacy_pytorch file", [*FID, "{t}/c10_legacy_pytorch_train_32.npz", *PIX, *OUT], 2,
         lambda t: _stats(t, "c10_legacy_pytorch_train_32.npz", d=2048)),
    Case("stats: our file with unreadable meta", [*FID, S, *PIX, *OUT], 2,
         lambda t: _stats(t, meta=np.array("{not json"))),
    Case("stats: other extractor (inception stats vs pixel-8 features)", [*FID, S, *PIX, *OUT], 2,
         lambda t: _stats(t, meta=np.array(json.dumps({"n": 400, "extractor": "inception", "mode": "tf-compat",
                                                       "feature": "pool3"})))),
    Case("stats: KID requested against a statistics file", [*FID, S, *PIX, *OUT, "--metrics", "kid"], 2,
         lambda t: _stats(t)),
    Case("stats: valid statistics file (control)", [*FID, S, *PIX, *OUT], 0, lambda t: _stats(t, meta=np.array(
        json.dumps({"n": 400, "extractor": "pixel-8", "mode": "bilinear-antialias-8", "feature": "embedding"})))),
    # --- image folders
    Case("images: empty folder", ["fid", "{t}/empty", "{t}/ref", *PIX, *OUT], 2, _empty_dir("empty")),
    Case("images: folder without images (only .txt)", ["fid", "{t}/txt", "{t}/ref", *PIX, *OUT], 2,
         _write("txt/readme.txt", b"hello")),
    Case("images: truncated PNG", [*FID, "{t}/ref", *PIX, *OUT], 2, _write("gen/bad.png", _png(_img())[:200])),
    Case("images: truncated PNG with --skip-bad", [*FID, "{t}/ref", *PIX, *OUT, "--skip-bad"], 0,
         _write("gen/bad.png", _png(_img())[:200])),
    Case("images: random bytes named .png", [*FID, "{t}/ref", *PIX, *OUT], 2,
         _write("gen/noise.png", bytes(range(256)) * 4)),
    Case("images: zero-byte .png", [*FID, "{t}/ref", *PIX, *OUT], 2, _write("gen/empty.png", b"")),
    Case("images: JPEG data named .png (control)", [*FID, "{t}/ref", *PIX, *OUT], 0,
         lambda t: __import__("PIL.Image").Image.fromarray(_img(5)).save(t / "gen" / "x.png", format="JPEG")),
    Case("images: mixed sizes", [*FID, "{t}/ref", *PIX, *OUT], 2, _write("gen/big.png", _png(_img(size=48)))),
    Case("images: 16-bit PNG", [*FID, "{t}/ref", *PIX, *OUT], 2, _png16),
    Case("images: CMYK JPEG", [*FID, "{t}/ref", *PIX, *OUT], 2, _jpeg_cmyk),
    Case("images: grayscale PNGs (control: repeated to RGB)", ["fid", "{t}/gray", "{t}/ref", *PIX, *OUT], 0,
         _all(*[_write(f"gray/{i}.png", _png(_img(i, channels=1))) for i in range(6)])),
    Case("images: RGBA PNGs (control: alpha dropped)", ["fid", "{t}/rgba", "{t}/ref", *PIX, *OUT], 0,
         _all(*[_write(f"rgba/{i}.png", _png(_img(i, channels=4))) for i in range(6)])),
    Case("images: dangling symlink named .png", [*FID, "{t}/ref", *PIX, *OUT], 2, _symlink),
    Case("images: dangling symlink with --skip-bad", [*FID, "{t}/ref", *PIX, *OUT, "--skip-bad"], 0, _symlink),
    Case("images: PNG header declares 8000x8000 (decompression bomb)", [*FID, "{t}/ref", *PIX, *OUT], 2,
         _write("gen/bomb.png", _bomb_png())),
    Case("images: decompression bomb with --skip-bad", [*FID, "{t}/ref", *PIX, *OUT, "--skip-bad"], 0,
         _write("gen/bomb.png", _bomb_png())),
    Case("images: over AMBIENT_EVAL_MAX_PIXELS", [*FID, "{t}/ref", *PIX, *OUT], 2,
         env={"AMBIENT_EVAL_MAX_PIXELS": "1000"}),
    Case("images: AMBIENT_EVAL_MAX_PIXELS not a number", [*FID, "{t}/ref", *PIX, *OUT], 2,
         env={"AMBIENT_EVAL_MAX_PIXELS": "lots"}),
    Case("images: every image unreadable, --skip-bad", ["fid", "{t}/bad", "{t}/ref", *PIX, *OUT, "--skip-bad"], 2,
         _all(_write("bad/a.png", b"x"), _write("bad/b.png", b"y"))),
    Case("images: input path does not exist", ["fid", "{t}/nope", "{t}/ref", *PIX, *OUT], 2),
    Case("images: one image only (covariance needs 2)", ["fid", "{t}/one", "{t}/ref", *PIX, *OUT], 2,
         _write("one/a.png", _png(_img()))),
    Case("images: fewer images than dimensions (control: warns)", [*FID, "{t}/ref", *PIX, *OUT], 0),
    # --- archives
    Case("zip: member inflating 1000:1 (zip bomb)", ["fid", "{t}/b.zip", "{t}/ref", *PIX, *OUT], 2,
         _zip("b.zip", {"a.png": _png(_img())}, zeros_mb=20)),
    Case("zip: member over AMBIENT_EVAL_MAX_FILE_BYTES", ["fid", "{t}/gen.zip", "{t}/ref", *PIX, *OUT], 2,
         _zip_of_gen(), env={"AMBIENT_EVAL_MAX_FILE_BYTES": "100"}),
    Case("zip: not a zip file", ["fid", "{t}/x.zip", "{t}/ref", *PIX, *OUT], 2, _write("x.zip", b"not a zip")),
    Case("zip: truncated zip", ["fid", "{t}/gen.zip", "{t}/ref", *PIX, *OUT], 2,
         lambda t: (_zip_of_gen()(t), (t / "gen.zip").write_bytes((t / "gen.zip").read_bytes()[:3000]))),
    Case("zip: empty zip", ["fid", "{t}/e.zip", "{t}/ref", *PIX, *OUT], 2, _zip("e.zip", {})),
    Case("zip: folder of images (control)", ["fid", "{t}/gen.zip", "{t}/ref", *PIX, *OUT], 0, _zip_of_gen()),
    Case("tar: gzip-compressed tar", ["fid", "{t}/gen.tar.gz", "{t}/ref", *PIX, *OUT], 2, _tgz),
    # --- arrays
    Case("npy: object array (pickle)", ["fid", "{t}/o.npy", "{t}/ref", *PIX, *OUT], 2,
         _npy("o.npy", np.array([1, None], dtype=object), pickle=True)),
    Case("npz: object array (pickle)", ["fid", "{t}/o.npz", "{t}/ref", *PIX, *OUT], 2,
         _npz("o.npz", images=np.array([np.zeros((4, 4, 3)), None], dtype=object))),
    Case("npy: float samples", ["fid", "{t}/f.npy", "{t}/ref", *PIX, *OUT], 2,
         _npy("f.npy", np.zeros((8, 32, 32, 3), np.float32))),
    Case("npy: NaN samples", ["fid", "{t}/n.npy", "{t}/ref", *PIX, *OUT], 2,
         _npy("n.npy", np.full((8, 32, 32, 3), np.nan, np.float32))),
    Case("npy: 5 channels", ["fid", "{t}/c.npy", "{t}/ref", *PIX, *OUT], 2,
         _npy("c.npy", np.zeros((8, 32, 32, 5), np.uint8))),
    Case("npy: not an image batch (1-D)", ["fid", "{t}/v.npy", "{t}/ref", *PIX, *OUT], 2,
         _npy("v.npy", np.zeros(10, np.uint8))),
    Case("npz: no 'images' key and several arrays", ["fid", "{t}/k.npz", "{t}/ref", *PIX, *OUT], 2,
         _npz("k.npz", a=np.zeros((4, 8, 8, 3), np.uint8), b=np.zeros(3))),
    Case("npz: truncated", ["fid", "{t}/t.npz", "{t}/ref", *PIX, *OUT], 2, _write("t.npz", b"PK\x03\x04xx")),
    Case("npy: uint8 NHWC (control)", ["fid", "{t}/u.npy", "{t}/ref", *PIX, *OUT], 0,
         _npy("u.npy", np.random.default_rng(0).integers(0, 256, (10, 32, 32, 3), dtype=np.uint8))),
    # --- options
    Case("fid: unknown metric", [*FID, "{t}/ref", *PIX, *OUT, "--metrics", "fid,foo"], 2),
    Case("fid: unknown extractor", [*FID, "{t}/ref", "--features", "resnet", "--device", "cpu", *OUT], 2),
    Case("fid: pixel-128 on a machine without 19 GB per covariance", [*FID, "{t}/ref", "--features", "pixel-128",
         "--device", "cpu", "--no-cache", *OUT], 2, env={"AMBIENT_EVAL_MAX_COV_BYTES": str(4 * 2 ** 30)}),
    Case("fid: pixel size out of range", [*FID, "{t}/ref", "--features", "pixel-0", "--device", "cpu", *OUT], 2),
    Case("fid: unknown --fid-method", [*FID, "{t}/ref", *PIX, *OUT, "--fid-method", "magic"], 2),
    Case("fid: --weights for an extractor without weights", [*FID, "{t}/ref", *PIX, *OUT, "--weights", "{t}/w.pth"], 2),
    Case("fid: inception weights missing (offline)", [*FID, "{t}/ref", "--device", "cpu", "--no-cache", *OUT], 2,
         env={"AMBIENT_EVAL_WEIGHTS": "{t}/noweights", "TORCH_HOME": "{t}/torchhome", "HF_HUB_OFFLINE": "1",
              "AMBIENT_EVAL_OFFLINE": "1", "AMBIENT_EVAL_DOWNLOADS": "{t}/dl"}),
    Case("fid: --batch 0", [*FID, "{t}/ref", *PIX, *OUT, "--batch", "0"], 2),
    Case("fid: --max-images 0", [*FID, "{t}/ref", *PIX, *OUT, "--max-images", "0"], 2),
    Case("fid: KID subset larger than N", [*FID, "{t}/ref", *PIX, *OUT, "--metrics", "kid"], 2),
    Case("fid: unknown device", [*FID, "{t}/ref", "--features", "pixel-8", "--device", "tpu", *OUT], 2),
    Case("fid: CUDA requested without a GPU", [*FID, "{t}/ref", "--features", "pixel-8", "--device", "cuda:7", *OUT], 2,
         patch=lambda mp: mp.setattr("torch.cuda.is_available", lambda: False)),
    Case("fid: no inputs", ["fid", *PIX], 2, outputs=[]),
    Case("fid: --out is an existing file", [*FID, "{t}/ref", *PIX, "--out", "{t}/file", "--no-report"], 2,
         _write("file", b"x"), outputs=["file/results.json"]),
    Case("fid: --out below a file", [*FID, "{t}/ref", *PIX, "--out", "{t}/file/sub", "--no-report"], 2,
         _write("file", b"x"), outputs=["file/sub/results.json"]),
    Case("fid: --report elsewhere than OUT/report.html", [*FID, "{t}/ref", *PIX, *OUT, "--report", "{t}/rep.html"],
         2,
         outputs=["out/results.json", "out/report.html", "rep.html"]),
    Case("fid: disk full while writing results (simulated)", [*FID, "{t}/ref", *PIX, *OUT], 2, patch=_disk_full),
    Case("fid: permission denied writing results (simulated)", [*FID, "{t}/ref", *PIX, *OUT], 2, patch=_perm_denied),
    Case("fid: CUDA out of memory in the extractor (simulated)", [*FID, "{t}/ref", *PIX, *OUT], 2, patch=_cuda_oom),
    Case("memorization: faiss-gpu cudaMalloc failure adding the index (simulated)",
         ["memorization", "{t}/gen", "--train", "{t}/ref", "--embed", "pixel", "--device", "cpu", "--no-cache",
          "--out", "{t}/out"], 2, patch=_faiss_gpu_oom, outputs=["out/results.json", "out/summary.json"]),
    Case("fid: AMBIENT_EVAL_PLOTLYJS unknown", [*FID, "{t}/ref", *PIX, *OUT, "--metrics", "fid,pr"], 2,
         env={"AMBIENT_EVAL_PLOTLYJS": "web"}),
    Case("fid: --compare file missing", ["fid", "--compare", "{t}/none.json", *OUT], 2),
    Case("fid: --compare not a results file", ["fid", "--compare", "{t}/x.json", *OUT], 2,
         _write("x.json", b'{"a": 1}')),
    Case("fid: --repeats without --model", [*FID, "{t}/ref", *PIX, *OUT, "--repeats", "3"], 2),
    Case("fid: --model checkpoint missing", ["fid", "--model", "{t}/ckpt", "--seeds", "0-9", "{t}/ref", *PIX, *OUT], 2),
    Case("fid: --model pickle without --trust-pickle", ["fid", "--model", "{t}/net.pkl", "--seeds", "0-9", "{t}/ref",
                                                        *PIX, *OUT], 2, _pickle_ckpt),
    Case("fid: absurd seed range", ["fid", "--model", "{t}/net.pkl", "--seeds", "0-99999999999", "{t}/ref", *PIX,
                                    *OUT, "--trust-pickle"], 2, _pickle_ckpt),
    Case("fid: reversed seed range", ["fid", "--model", "{t}/net.pkl", "--seeds", "9-0", "{t}/ref", *PIX, *OUT], 2,
         _pickle_ckpt),
    Case("fid: valid run (control)", [*FID, "{t}/ref", *PIX, *OUT], 0),
    # --- stats command
    Case("stats: output name without .npz", ["stats", "{t}/ref", "-o", "{t}/s.txt", *PIX], 2, outputs=["s.txt"]),
    Case("stats: empty folder", ["stats", "{t}/empty", "-o", "{t}/s.npz", *PIX], 2, _empty_dir("empty"),
         outputs=["s.npz"]),
    Case("stats: output below a file", ["stats", "{t}/ref", "-o", "{t}/file/s.npz", *PIX], 2, _write("file", b"x"),
         outputs=["file/s.npz"]),
    Case("stats: disk full (simulated)", ["stats", "{t}/ref", "-o", "{t}/s.npz", *PIX], 2, patch=_disk_full,
         outputs=["s.npz"]),
    Case("stats: valid (control)", ["stats", "{t}/ref", "-o", "{t}/s.npz", *PIX], 0, outputs=["s.npz"]),
    # --- gate
    Case("gate: rule fails (exit 1, files written)", ["gate", "-c", "{t}/g.toml", "{t}/cur", "--out", "{t}/gate"], 1,
         _all(_write("g.toml", GATE_TOML.encode()), _results("cur/results.json", {"fid": 20.0})),
         outputs=["gate/gate.json", "gate/junit.xml", "gate/gate.md"]),
    Case("gate: rule passes (control)", ["gate", "-c", "{t}/g.toml", "{t}/cur", "--out", "{t}/gate"], 0,
         _all(_write("g.toml", GATE_TOML.encode()), _results("cur/results.json", {"fid": 2.0})),
         outputs=["gate/gate.json", "gate/junit.xml", "gate/gate.md"]),
    Case("gate: config missing", ["gate", "-c", "{t}/none.toml", "{t}/cur", "--out", "{t}/gate"], 2,
         _results("cur/results.json", {"fid": 2.0}), outputs=["gate/gate.json"]),
    Case("gate: config is not TOML", ["gate", "-c", "{t}/g.toml", "{t}/cur", "--out", "{t}/gate"], 2,
         _all(_write("g.toml", b"[[rule]\nmetric ="), _results("cur/results.json", {"fid": 2.0})),
         outputs=["gate/gate.json"]),
    Case("gate: unknown key in config", ["gate", "-c", "{t}/g.toml", "{t}/cur", "--out", "{t}/gate"], 2,
         _all(_write("g.toml", b"name = 1\n" + GATE_TOML.encode()), _results("cur/results.json", {"fid": 2.0})),
         outputs=["gate/gate.json"]),
    Case("gate: metric missing from results", ["gate", "-c", "{t}/g.toml", "{t}/cur", "--out", "{t}/gate"], 2,
         _all(_write("g.toml", GATE_TOML.encode()), _results("cur/results.json", {"kid": 0.1})),
         outputs=["gate/gate.json"]),
    Case("gate: NaN metric in results", ["gate", "-c", "{t}/g.toml", "{t}/cur", "--out", "{t}/gate"], 2,
         _all(_write("g.toml", GATE_TOML.encode()), _results("cur/results.json", {"fid": float("nan")})),
         outputs=["gate/gate.json"]),
    Case("gate: results not comparable with baseline", ["gate", "-c", "{t}/g.toml", "-b", "{t}/base", "{t}/cur",
                                                        "--out", "{t}/gate"], 2,
         _all(_write("g.toml", GATE_REL.encode()), _results("cur/results.json", {"fid": 2.0}),
              _results("base/results.json", {"fid": 2.0}, extractor="clip")), outputs=["gate/gate.json"]),
    Case("gate: truncated results.json", ["gate", "-c", "{t}/g.toml", "{t}/cur", "--out", "{t}/gate"], 2,
         _all(_write("g.toml", GATE_TOML.encode()), _results("cur/results.json", {}, raw='{"schema": "ambient')),
         outputs=["gate/gate.json"]),
    Case("gate: disk full writing gate.json (simulated)", ["gate", "-c", "{t}/g.toml", "{t}/cur", "--out",
                                                           "{t}/gate"], 2,
         _all(_write("g.toml", GATE_TOML.encode()), _results("cur/results.json", {"fid": 20.0})), patch=_disk_full,
         outputs=["gate/gate.json", "gate/junit.xml"]),
    # --- history
    Case("history record: NaN metric", ["history", "record", "{t}/cur", "--db", "{t}/h.sqlite"], 2,
         _results("cur/results.json", {"fid": float("nan")}), outputs=["h.sqlite"]),
    Case("history record: negative FID", ["history", "record", "{t}/cur", "--db", "{t}/h.sqlite"], 2,
         _results("cur/results.json", {"fid": -3.0}), outputs=["h.sqlite"]),
    Case("history record: results missing", ["history", "record", "{t}/none", "--db", "{t}/h.sqlite"], 2,
         outputs=["h.sqlite"]),
    Case("history record: valid (control)", ["history", "record", "{t}/cur", "--db", "{t}/h.sqlite"], 0,
         _results("cur/results.json", {"fid": 3.0}), outputs=["h.sqlite"]),
    # --- named reference statistics (never downloaded here: offline)
    Case("fid: ref:NAME not downloaded (offline)", [*FID, "ref:edm-cifar10-32", *PIX, *OUT], 2,
         env={"AMBIENT_EVAL_OFFLINE": "1", "AMBIENT_EVAL_DOWNLOADS": "{t}/dl"}),
    Case("fid: unknown ref:NAME", [*FID, "ref:cifar10", *PIX, *OUT], 2),
    Case("refs fetch: CI without AMBIENT_EVAL_ALLOW_DOWNLOAD", ["refs", "fetch", "adm-imagenet64"], 2,
         env={"AMBIENT_EVAL_OFFLINE": "0", "CI": "true", "AMBIENT_EVAL_DOWNLOADS": "{t}/dl"}, outputs=[]),
    Case("refs verify: cached reference changed since pinned", ["refs", "verify"], 2, _changed_ref,
         env={"AMBIENT_EVAL_DOWNLOADS": "{t}/dl"}, outputs=[]),
    # --- sample / checkpoints
    Case("sample: checkpoint missing", ["sample", "{t}/ckpt", "--seeds", "0-3", "--out", "{t}/s"], 2, outputs=["s"]),
    Case("sample: pickle without --trust-pickle", ["sample", "{t}/net.pkl", "--seeds", "0-3", "--out", "{t}/s"], 2,
         _pickle_ckpt, outputs=["s"]),
    Case("sample: absurd seed range", ["sample", "{t}/net.pkl", "--seeds", "0-99999999999", "--out", "{t}/s"], 2,
         _pickle_ckpt, outputs=["s"]),
    Case("sample: seed not a number", ["sample", "{t}/net.pkl", "--seeds", "a-b", "--out", "{t}/s"], 2,
         _pickle_ckpt, outputs=["s"]),
    # --- audits
    Case("memorization: training set missing", ["memorization", "{t}/gen", "--train", "{t}/nope", "--embed", "dinov2",
                                                "--out", "{t}/m", "--device", "cpu"], 2, outputs=["m/results.json"]),
    Case("reproducibility: a single model", ["reproducibility", "{t}/ckpt", "--seeds", "0-3", "-o", "{t}/r"], 2,
         outputs=["r/results.json"]),
    # --- issue 24: all-or-nothing outputs, the --out lock, faults a new user found
    Case("fid: report fails after the results (disk full, simulated)", [*FID, "{t}/ref", *PIX, *OUT], 2,
         patch=_report_disk_full),
    Case("fid: another run holds --out", [*FID, "{t}/ref", *PIX, *OUT], 2, patch=_out_locked),
    Case("fid: a killed run's staging folder and temp file in --out (removed)", [*FID, "{t}/ref", *PIX, *OUT], 0,
         _killed_run, outputs=["out/results.json", "out/.ambient-eval-staging.999999.abcdefgh/results.json",
                               "out/.results.csv.999999.abcdefgh.tmp.csv"]),
    Case("images: a FIFO named *.png in the folder", [*FID, "{t}/ref", *PIX, *OUT], 2, _fifo("gen/pipe.png")),
    Case("images: a symlink cycle named *.png in the folder", [*FID, "{t}/ref", *PIX, *OUT], 2,
         _cycle("gen/loop.png")),
    Case("images: the source is a symlink cycle", ["fid", "{t}/loop.png", "{t}/ref", *PIX, *OUT], 2,
         _cycle("loop.png")),
    Case("fid: --features names two extractors for all metrics", [*FID, "{t}/ref", "--features", "pixel-8,pixel-16",
                                                                 "--device", "cpu", "--no-cache", *OUT], 2),
    Case("fid: AMBIENT_EVAL_PROGRESS=xyz", [*FID, "{t}/ref", *PIX, *OUT], 2, env={"AMBIENT_EVAL_PROGRESS": "xyz"}),
    Case("fid: AMBIENT_EVAL_THREADS=many", [*FID, "{t}/ref", *PIX, *OUT], 2, env={"AMBIENT_EVAL_THREADS": "many"}),
    Case("fid --compare: results.json whose metrics is a list", ["fid", "--compare", "{t}/cur", *OUT], 2, _metrics_list("cur/results.json")),
    Case("gate: results.json whose metrics is a list", ["gate", "-c", "{t}/g.toml", "{t}/cur", "--out", "{t}/gate"], 2,
         _all(_write("g.toml", GATE_TOML.encode()), _metrics_list("cur/results.json")), outputs=["gate/gate.json"]),
    Case("gate: --config is a directory", ["gate", "-c", "{t}/cfg", "{t}/cur", "--out", "{t}/gate"], 2,
         _all(_empty_dir("cfg"), _results("cur/results.json", {"fid": 2.0})), outputs=["gate/gate.json"]),
    Case("gate: --history database damaged (no gate files kept)", ["gate", "-c", "{t}/g.toml", "{t}/cur", "--out",
                                                                  "{t}/gate", "--history", "{t}/bad.sqlite"], 2,
         _all(_write("g.toml", GATE_TOML.encode()), _results("cur/results.json", {"fid": 20.0}),
              _write("bad.sqlite", b"not a database" * 300)),
         outputs=["gate/gate.json", "gate/junit.xml", "gate/gate.md"]),
    Case("history record: results.json whose metrics is a list", ["history", "record", "{t}/cur", "--db",
                                                                   "{t}/h.sqlite"], 2,
         _metrics_list("cur/results.json"), outputs=["h.sqlite"]),
    Case("history record: a metric is the string \"9.5\"", ["history", "record", "{t}/cur", "--db", "{t}/h.sqlite"], 2,
         _string_metric, outputs=["h.sqlite"]),
    Case("history record: another program's SQLite file", ["history", "record", "{t}/cur", "--db", "{t}/app.sqlite"], 2,
         _all(_results("cur/results.json", {"fid": 2.0}), _foreign_db), outputs=[]),
    Case("history: another program's SQLite file", ["history", "--db", "{t}/app.sqlite", "--no-report"], 2,
         _foreign_db, outputs=[]),
    Case("history: damaged database", ["history", "--db", "{t}/h.sqlite", "--no-report"], 2, _damaged_db, outputs=[]),
    Case("memorization: a training file name that is not UTF-8 (control)",
         ["memorization", "{t}/gen", "--train", "{t}/ref", "--embed", "pixel", "--device", "cpu", "--no-cache",
          "--bootstrap", "10", "--out", "{t}/m"], 0, _bad_name,
         outputs=["m/results.json", "m/samples.parquet", "m/report.html"]),
    Case("annotate: CLEAN and CORRUPTED of different resolutions", ["annotate", "{t}/ref16", "{t}/gen", "-o",
                                                                    "{t}/a.jsonl", "--steps", "1"], 2,
         _res16, outputs=["a.jsonl"]),
    Case("sample: --out holds images sample did not write", ["sample", "{t}/ckpt", "--seeds", "0-1", "--steps", "2",
                                                             "--out", "{t}/gen", "--device", "cpu"], 2,
         _native_ckpt, outputs=["gen/000000/000000.png"]),
    Case("corrupt: -o inside its own source", ["corrupt", "{t}/gen", "-o", "{t}/gen/sub", "--kind", "blur", "--level",
                                                "1"], 2, outputs=["gen/sub/corruption.json"]),
    Case("fid: OUT/report.html is a directory", [*FID, "{t}/ref", *PIX, *OUT], 2, _empty_dir("out/report.html"),
         outputs=["out/results.json", "out/results.csv"]),
]
