"""Atomic file writes: a result file is either complete or absent, never partial."""
from __future__ import annotations

import contextlib
import json
import os
import re
import shutil
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
        if not _CREATED:
            release_output_dirs()   # the command is over: the next run may use its --out


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
    asked = Path(path)
    ensure_writable_dir(asked.parent if str(asked.parent) else ".")
    dest = _staged_dest(asked)   # inside publish_together(): a path in the staging folder
    sfx = suffix if suffix is not None else dest.suffix
    # The pid in the name lets a later run remove what a killed run left (remove_dead_temps).
    fd, tmp = tempfile.mkstemp(prefix=f".{dest.name}.{os.getpid()}.", suffix=f".tmp{sfx}", dir=dest.parent)
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
        if e.errno is not None and (e.filename is None or str(e.filename) in (str(tmp_path), str(dest))):
            # Name the file the user asked for, not our temporary (or nothing: "writing 'None'").
            raise type(e)(e.errno, e.strerror or str(e), str(asked)) from e
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


# ---------------------------------------------------------------------------------------------
# All-or-nothing publishing and the --out lock.
#
# A command's outputs (results.json, csv, parquet, report, gate.json, ...) are written inside
# `publish_together(dirs)`: every atomic write under one of `dirs` lands in a hidden staging folder
# `<dir>/.ambient-eval-staging.<pid>.<random>/`; when the block ends without error the files are
# moved into place (the old copies removed first, *.json last, so a results.json is never beside
# files of another run), and on any error the staging folder is deleted. `claim_output_dir(out)`
# takes an exclusive flock on the --out folder for the rest of the command: a second run on the
# same folder stops at once with exit 2. A SIGKILLed run's staging folders and temp files carry its
# pid and are removed by the next run that finds the pid dead (or holds the folder's lock).

STAGING_PREFIX = ".ambient-eval-staging."
_TEMP_NAME = re.compile(r"^\..+\.(\d+)\.[a-z0-9_]{8}\.tmp")   # atomic_path: .<name>.<pid>.<random>.tmp<sfx>
_LOCKED: dict[Path, int] = {}          # folder -> open fd holding its flock (this process)
_STAGES: list[dict[Path, "_Stage"]] = []


def _pid_alive(pid: int) -> bool:
    if pid == os.getpid():
        return True
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    except OSError:   # EPERM: alive, another user's
        return True
    return True


def remove_dead_temps(folder: str | os.PathLike) -> None:
    """Remove staging folders and temp files in `folder` left by processes that are gone."""
    d = Path(folder)
    locked = d.absolute() in _LOCKED
    try:
        entries = list(os.scandir(d))
    except OSError:
        return
    for e in entries:
        if e.name.startswith(STAGING_PREFIX):
            pid = e.name[len(STAGING_PREFIX):].split(".")[0]
            if (locked and pid != str(os.getpid())) or (pid.isdigit() and not _pid_alive(int(pid))):
                shutil.rmtree(e.path, ignore_errors=True)
        elif (m := _TEMP_NAME.match(e.name)) and not _pid_alive(int(m.group(1))):
            with contextlib.suppress(OSError):
                os.unlink(e.path)


def claim_output_dir(path: str | os.PathLike) -> Path:
    """ensure_writable_dir, then lock the folder for this command (AmbientError if another run has it).

    Non-zero torchrun ranks (RANK > 0) share rank 0's claim and take no lock.
    """
    p = ensure_writable_dir(path)
    key = p.absolute()
    if key in _LOCKED or int(os.environ.get("RANK", 0) or 0) != 0:
        return p
    import fcntl

    fd = os.open(p, os.O_RDONLY | getattr(os, "O_DIRECTORY", 0))
    try:
        fcntl.flock(fd, fcntl.LOCK_EX | fcntl.LOCK_NB)
    except OSError:
        os.close(fd)
        raise AmbientError(
            f"Another ambient-eval run is writing to '{p}' right now (it holds the folder's lock). "
            "Wait for it to finish, or give this run another output folder.") from None
    _LOCKED[key] = fd
    remove_dead_temps(p)
    return p


def release_output_dirs() -> None:
    """Release every folder lock this process holds (the end of a command)."""
    while _LOCKED:
        _, fd = _LOCKED.popitem()
        with contextlib.suppress(OSError):
            os.close(fd)   # closing the fd releases the flock


class _Stage:
    """One output folder's staging folder and the files written into it."""

    def __init__(self, root: Path) -> None:
        self.root = root
        remove_dead_temps(root)
        self.dir = Path(tempfile.mkdtemp(prefix=f"{STAGING_PREFIX}{os.getpid()}.", dir=root))
        self.files: dict[Path, Path] = {}   # final path -> staged path

    def discard(self) -> None:
        shutil.rmtree(self.dir, ignore_errors=True)


def _staged_dest(dest: Path) -> Path:
    """Where atomic_path writes `dest`: its staging twin inside publish_together(), else `dest`."""
    if not _STAGES:
        return dest
    full = dest.absolute()
    for scope in reversed(_STAGES):   # the innermost scope that stages this folder
        for root, stage in sorted(scope.items(), key=lambda rs: -len(rs[0].parts)):   # deepest first
            if full.parent == root or root in full.parents:
                twin = stage.dir / full.relative_to(root)
                twin.parent.mkdir(parents=True, exist_ok=True)
                stage.files[full] = twin
                return twin
    return dest


def staged(path: str | os.PathLike) -> Path:
    """The file to read for `path` while its new copy waits in staging (else `path` itself)."""
    full = Path(path).absolute()
    for scope in reversed(_STAGES):
        for stage in scope.values():
            if full in stage.files:
                return stage.files[full]
    return Path(path)


@contextlib.contextmanager
def publish_together(*dirs: str | os.PathLike | None) -> Iterator[None]:
    """Stage every atomic write under `dirs`; publish them all when the block succeeds, none if not.

    Nested in another publish_together that already stages a folder, writes there join the outer
    scope (published with it): `result.save(out)` inside a command's own scope stays all-or-nothing.
    """
    outer = {r for sc in _STAGES for r in sc}
    roots = sorted({ensure_writable_dir(d).absolute() for d in dirs if d is not None} - outer)
    scope: dict[Path, _Stage] = {}
    _STAGES.append(scope)
    try:
        for r in roots:
            scope[r] = _Stage(r)
        yield
    except BaseException as e:
        if not (isinstance(e, SystemExit) and e.code in (0, None)) and getattr(e, "exit_code", 1) != 0:
            _STAGES.pop()
            for s in scope.values():
                s.discard()
            raise
        _STAGES.pop()
        _publish(scope)
        raise
    else:
        _STAGES.pop()
        _publish(scope)


def _publish(scope: dict[Path, _Stage]) -> None:
    # Old copies out first (*.json first), then new ones in (*.json last): at any moment the folder
    # holds a subset of one run's files, and a results.json only beside its own run's files.
    pairs = sorted(((d, s) for st in scope.values() for d, s in st.files.items()),
                   key=lambda ds: (ds[0].suffix == ".json", str(ds[0])))
    try:
        for dest, _ in reversed(pairs):
            with contextlib.suppress(FileNotFoundError, IsADirectoryError):
                dest.unlink()
        for dest, twin in pairs:
            dest.parent.mkdir(parents=True, exist_ok=True)
            os.replace(twin, dest)
    finally:
        for st in scope.values():
            st.discard()
