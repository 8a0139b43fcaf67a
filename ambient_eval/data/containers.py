"""Where image files live: a folder, a zip (never extracted) or an uncompressed tar (read by seeking)."""
from __future__ import annotations

import io
import os
import tarfile
import threading
import zipfile
from pathlib import Path
from typing import Any

from ambient_eval.data.decode import IMAGE_EXTENSIONS, is_image_name
from ambient_eval.data.limits import check_member_size
from ambient_eval.errors import AmbientError


class Container:
    """Named binary members (relative posix paths) of a folder / zip / tar; `prefix` restricts."""

    kind = "container"

    def __init__(self, path: Path, prefix: str = "") -> None:
        self.path = Path(path)
        self.prefix = prefix.strip("/") + "/" if prefix.strip("/") else ""

    def names(self) -> list[str]:
        """All member names (relative to prefix), sorted, hidden and __MACOSX entries excluded."""
        raise NotImplementedError

    def read(self, name: str) -> bytes:
        raise NotImplementedError

    def exists(self, name: str) -> bool:
        raise NotImplementedError

    def open(self, name: str) -> io.BufferedIOBase:
        return io.BytesIO(self.read(name))

    def display(self, name: str) -> str:
        """How error messages name a member: a full path, or 'archive:member'."""
        return f"{self.path}:{self.prefix}{name}"

    def describe(self) -> str:
        return f"{self.kind} {self.path}" + (f"#{self.prefix.rstrip('/')}" if self.prefix else "")

    def _keep(self, rel: str) -> bool:
        parts = rel.split("/")
        return bool(rel) and not any(p.startswith(".") or p == "__MACOSX" for p in parts)


class FolderContainer(Container):
    kind = "folder"

    def names(self) -> list[str]:
        out = []
        root = self.path / self.prefix if self.prefix else self.path
        for dirpath, dirnames, filenames in os.walk(root):
            dirnames[:] = [d for d in dirnames if not d.startswith(".")]
            rel_dir = os.path.relpath(dirpath, root).replace(os.sep, "/")
            for f in filenames:
                rel = f if rel_dir == "." else f"{rel_dir}/{f}"
                if self._keep(rel):
                    out.append(rel)
        return sorted(out)

    def display(self, name: str) -> str:
        return str(self._full(name))

    def _full(self, name: str) -> Path:
        return self.path / (self.prefix + name)

    def _check_regular(self, name: str) -> None:
        # A FIFO named *.png would block open() forever; a link cycle or device is bad input too.
        from ambient_eval.files.user_files import check_regular_file

        try:
            check_regular_file(self._full(name), "Image", "Remove or fix the file, or pass --skip-bad to "
                               "skip unreadable images.")
        except FileNotFoundError as e:
            raise AmbientError(f"Cannot read '{self._full(name)}': it was removed while being read.") from e

    def read(self, name: str) -> bytes:
        self._check_regular(name)
        try:
            check_member_size(self._full(name).stat().st_size, self.display(name))
            return self._full(name).read_bytes()
        except OSError as e:
            raise AmbientError(f"Cannot read '{self._full(name)}': {e.strerror or e}. Check the file.") from e

    def open(self, name: str) -> io.BufferedIOBase:
        self._check_regular(name)
        try:
            return open(self._full(name), "rb")
        except OSError as e:                      # dangling symlink, permission denied, a FIFO...
            raise AmbientError(f"Cannot read '{self._full(name)}': {e.strerror or e}. Remove or fix the "
                               "file, or pass --skip-bad to skip unreadable images.") from e

    def exists(self, name: str) -> bool:
        return self._full(name).is_file()


class ArchiveContainer(Container):
    """An archive file read through one lazily opened handle, guarded by a lock.

    The handle and lock do not cross processes: they are dropped when pickled (for worker
    processes) and re-created on first use."""

    def __init__(self, path: Path, prefix: str = "") -> None:
        super().__init__(path, prefix)
        self._handle: Any = None
        self._lock = threading.Lock()            # one member read at a time (decoding is parallel)
        self._names: list[str] = []

    def __getstate__(self) -> dict[str, Any]:
        return {**self.__dict__, "_handle": None, "_lock": None}

    def __setstate__(self, state: dict[str, Any]) -> None:
        self.__dict__.update(state, _lock=threading.Lock())

    def names(self) -> list[str]:
        return self._names


class ZipContainer(ArchiveContainer):
    """Members of a zip, read one by one (never extracted); reopened lazily in child processes."""

    kind = "zip"

    def __init__(self, path: Path, prefix: str = "") -> None:
        super().__init__(path, prefix)
        try:
            members = self._zip().namelist()
        except (zipfile.BadZipFile, OSError) as e:
            raise AmbientError(f"Cannot open zip '{path}': {e}. Check that it is a complete zip file.") from e
        p = self.prefix
        self._names = sorted(m[len(p):] for m in members
                             if m.startswith(p) and not m.endswith("/") and self._keep(m[len(p):]))
        self._set = set(self._names)

    def _zip(self) -> zipfile.ZipFile:
        if self._handle is None:
            self._handle = zipfile.ZipFile(self.path)
        return self._handle

    def read(self, name: str) -> bytes:
        try:
            with self._lock:
                info = self._zip().getinfo(self.prefix + name)
                check_member_size(info.file_size, self.display(name), info.compress_size)
                return self._zip().read(info)
        except (zipfile.BadZipFile, OSError, EOFError) as e:   # bad CRC, truncated member...
            raise AmbientError(f"Cannot read '{name}' from zip '{self.path}': {e}. Re-create the zip.") from e

    def open(self, name: str) -> io.BufferedIOBase:
        with self._lock:
            info = self._zip().getinfo(self.prefix + name)
            check_member_size(info.file_size, self.display(name), info.compress_size)
            return self._zip().open(info)   # seekable, decompresses only what is read

    def exists(self, name: str) -> bool:
        return name in self._set


class TarContainer(ArchiveContainer):
    """Members of an uncompressed tar, indexed once, then read by seeking (never extracted)."""

    kind = "tar"

    def __init__(self, path: Path, prefix: str = "") -> None:
        super().__init__(path, prefix)
        self._members: dict[str, tarfile.TarInfo] = {}   # members share one file position (the lock)
        try:
            for m in self._tar():
                if not m.isfile():
                    continue
                name = m.name[2:] if m.name.startswith("./") else m.name
                if name.startswith(self.prefix) and self._keep(name[len(self.prefix):]):
                    self._members[name[len(self.prefix):]] = m
        except (tarfile.TarError, OSError, EOFError) as e:
            raise AmbientError(f"Cannot read tar '{path}': {e}. Check that it is a complete, "
                               "uncompressed tar (or extract it to a folder).") from e
        self._names = sorted(self._members)

    def _tar(self) -> tarfile.TarFile:
        if self._handle is None:
            self._handle = tarfile.open(self.path, mode="r:")   # uncompressed only: seekable members
        return self._handle

    def read(self, name: str) -> bytes:
        try:
            with self._lock:
                check_member_size(self._members[name].size, self.display(name))
                return self._tar().extractfile(self._members[name]).read()
        except (tarfile.TarError, OSError, EOFError) as e:
            raise AmbientError(f"Cannot read '{name}' from tar '{self.path}': {e}. Re-create the tar.") from e

    def exists(self, name: str) -> bool:
        return name in self._members


def image_names(container: Container) -> list[str]:
    """Sorted image member names; AmbientError naming the place and extensions when there are none."""
    names = [n for n in container.names() if is_image_name(n)]
    if not names:
        raise AmbientError(
            f"No images found in {container.describe()} (looked recursively for files ending in "
            f"{', '.join(IMAGE_EXTENSIONS)}, any case). Point the command at a folder, zip or tar "
            "that contains images.")
    return names
