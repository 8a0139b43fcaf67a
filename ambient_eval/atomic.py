"""Atomic file writes: a result file is either complete or absent, never partial."""
from __future__ import annotations

import contextlib
import json
import os
import tempfile
from pathlib import Path
from typing import Any, Iterator

from ambient_eval.errors import AmbientError


_CREATED: list[list[Path]] = []   # stack of track_created_dirs() scopes


@contextlib.contextmanager
def track_created_dirs() -> Iterator[None]:
    """On an exception, remove the directories ensure_writable_dir created that are still empty.

    A run that fails on bad input leaves no empty results/ or reports/ folder behind.
    """
    _CREATED.append([])
    try:
        yield
    except BaseException as e:
        if not (isinstance(e, SystemExit) and e.code in (0, None)) and getattr(e, "exit_code", 1) != 0:
            for d in sorted(_CREATED[-1], key=lambda q: len(q.parts), reverse=True):
                try:
                    d.rmdir()  # only succeeds when empty
                except OSError:
                    pass
        raise
    finally:
        _CREATED.pop()


def ensure_writable_dir(path: str | os.PathLike) -> Path:
    """Create `path` (and parents) and check we can write there; AmbientError otherwise."""
    p = Path(path)
    missing, q = [], p.absolute()
    while not q.exists() and q != q.parent:
        missing.append(q)
        q = q.parent
    try:
        p.mkdir(parents=True, exist_ok=True)
        if _CREATED:
            _CREATED[-1].extend(missing)
    except OSError as e:
        raise AmbientError(
            f"Cannot create output directory '{p}': {e.strerror or e}. "
            "Choose another location with the output option, or fix the permissions."
        ) from e
    if not os.access(p, os.W_OK | os.X_OK):
        raise AmbientError(
            f"Output directory '{p}' is not writable. "
            "Choose another location with the output option, or fix the permissions."
        )
    return p


@contextlib.contextmanager
def atomic_path(path: str | os.PathLike, suffix: str | None = None) -> Iterator[Path]:
    """Yield a temporary path beside `path`; on success rename it over `path`, on error delete it.

    `suffix` keeps an extension some writers insist on (np.savez appends '.npz' otherwise).
    """
    dest = Path(path)
    ensure_writable_dir(dest.parent if str(dest.parent) else ".")
    sfx = suffix if suffix is not None else dest.suffix
    fd, tmp = tempfile.mkstemp(prefix=f".{dest.name}.", suffix=f".tmp{sfx}", dir=dest.parent)
    tmp_path = Path(tmp)
    try:
        # mkstemp creates 0600; give the file the mode a plain open() would (0666 & ~umask).
        mode = 0o666 & ~current_umask()
        try:
            os.fchmod(fd, mode)
        finally:
            os.close(fd)
        yield tmp_path
        os.chmod(tmp_path, mode)     # again: some writers (safetensors) replace the file they are given
        os.replace(tmp_path, dest)
    except OSError as e:
        with contextlib.suppress(OSError):
            tmp_path.unlink()
        if e.errno is not None and (e.filename is None or str(e.filename) == str(tmp_path)):
            # Name the file the user asked for, not our temporary (or nothing: "writing 'None'").
            raise type(e)(e.errno, e.strerror or str(e), str(dest)) from e
        raise
    except BaseException:
        with contextlib.suppress(OSError):
            tmp_path.unlink()
        raise


def current_umask() -> int:
    """The process umask, read without changing it where /proc allows (else set-and-restore)."""
    try:
        with open("/proc/self/status") as f:
            for line in f:
                if line.startswith("Umask:"):
                    return int(line.split()[1], 8)
    except (OSError, ValueError):
        pass
    mask = os.umask(0o022)
    os.umask(mask)
    return mask


def write_bytes(path: str | os.PathLike, data: bytes) -> None:
    """Write bytes atomically."""
    with atomic_path(path) as tmp:
        tmp.write_bytes(data)


def write_text(path: str | os.PathLike, text: str) -> None:
    """Write UTF-8 text atomically."""
    write_bytes(path, text.encode("utf-8"))


def write_json(path: str | os.PathLike, obj: Any) -> None:
    """Write JSON atomically (sorted keys, 2-space indent, NaN refused)."""
    write_text(path, json.dumps(obj, indent=2, sort_keys=True, allow_nan=False, default=_json_default) + "\n")


def _json_default(o: Any) -> Any:
    # numpy scalars / arrays and paths appear in results; convert them to plain JSON.
    try:
        import numpy as np

        if isinstance(o, np.generic):
            return o.item()
        if isinstance(o, np.ndarray):
            return o.tolist()
    except ImportError:  # pragma: no cover
        pass
    if isinstance(o, os.PathLike):
        return os.fspath(o)
    raise TypeError(f"Object of type {type(o).__name__} is not JSON serializable")


def save_npz(path: str | os.PathLike, **arrays: Any) -> None:
    """np.savez atomically."""
    import numpy as np

    with atomic_path(path, suffix=".npz") as tmp:
        with open(tmp, "wb") as f:
            np.savez(f, **arrays)
