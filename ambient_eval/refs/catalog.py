"""The catalog of named reference statistics (catalog.toml beside this file; $AMBIENT_EVAL_REFS_CATALOG
replaces it, e.g. for an organisation's own list or the tests' loopback catalog)."""
from __future__ import annotations

import os
import sys
import tomllib
from dataclasses import dataclass
from pathlib import Path, PurePosixPath
from urllib.parse import urlsplit

from ambient_eval.errors import AmbientError

CATALOG_ENV = "AMBIENT_EVAL_REFS_CATALOG"
PACKAGE_CATALOG = Path(__file__).with_name("catalog.toml")
REPO_COPY = Path(__file__).resolve().parents[2] / "reference_stats" / "catalog.toml"
FORMATS = ("npz", "edm2-pkl", "torch-fidelity-pt", "adm-npz")


@dataclass(frozen=True)
class RefEntry:
    """One named reference: where it comes from and the feature space its statistics live in."""

    name: str                         # catalog name (`ref:NAME`)
    url: str                          # official URL ("" = not published for download)
    sha256: str | None                # publisher's SHA-256 (None: pinned on first download)
    format: str                       # one of FORMATS
    extractor: str                    # ambient-eval extractor of that feature space ("inception", ...)
    mode: str                         # its preprocessing mode ("tf-compat", "clean", ...)
    feature: str                      # extractor output ("pool3", "embedding")
    n: int                            # images the statistics were computed over
    resolution: int                   # image side, pixels
    split: str                        # dataset split ("train", "test", "trainval70k", ...)
    dataset: str                      # dataset name
    source: str                       # who published it, and where this is documented
    file_name: str                    # file name in caches (default: the URL's last part)
    key: str = ""                     # edm2-pkl: which statistics of the dict ("fid", "fd_dinov2")
    library_caches: tuple[str, ...] = ()  # other tools' cache folders (patterns), searched first
    notes: str = ""                   # anything a user must know (how to make an unpublished file)


def catalog_path() -> Path:
    """The catalog file in use."""
    env = os.environ.get(CATALOG_ENV)
    return Path(env).expanduser() if env else PACKAGE_CATALOG


def _entry(name: str, d: dict, where: Path) -> RefEntry:
    need = ("url", "format", "extractor", "mode", "feature", "n", "resolution", "split", "dataset", "source")
    missing = [k for k in need if k not in d]
    if missing or d.get("format") not in FORMATS:
        raise AmbientError(f"Reference catalog '{where}': entry [{name}] lacks {missing} or has an unknown format "
                           f"{d.get('format')!r} (formats: {', '.join(FORMATS)}). Fix the catalog.")
    file_name = d.get("file_name") or PurePosixPath(urlsplit(d["url"]).path).name
    if not file_name:
        raise AmbientError(f"Reference catalog '{where}': entry [{name}] has neither a URL nor a file_name.")
    sha = (d.get("sha256") or "").lower() or None
    return RefEntry(name=name, url=d["url"], sha256=sha, format=d["format"], extractor=d["extractor"],
                    mode=d["mode"], feature=d["feature"], n=int(d["n"]), resolution=int(d["resolution"]),
                    split=d["split"], dataset=d["dataset"], source=d["source"], file_name=file_name,
                    key=d.get("key", ""), library_caches=tuple(d.get("library_caches", ())),
                    notes=d.get("notes", ""))


def load_catalog(path: Path | None = None) -> dict[str, RefEntry]:
    """name -> RefEntry, in file order."""
    path = path or catalog_path()
    try:
        with open(path, "rb") as f:
            raw = tomllib.load(f)
    except (OSError, tomllib.TOMLDecodeError) as e:
        raise AmbientError(f"Cannot read the reference catalog '{path}': {e}. Fix the file or unset "
                           f"{CATALOG_ENV}.") from None
    return {name: _entry(name, d, path) for name, d in raw.items()}


def get_entry(name: str) -> RefEntry:
    """The entry called `name`; AmbientError listing the names otherwise."""
    cat = load_catalog()
    if name not in cat:
        where = f" (catalog {catalog_path()})" if os.environ.get(CATALOG_ENV) else ""
        raise AmbientError(f"Unknown reference 'ref:{name}'. Known names{where}: {', '.join(cat)}. "
                           "See `ambient-eval refs list`.")
    return cat[name]


if __name__ == "__main__" and sys.argv[1:] == ["--sync"]:   # copy the package catalog to reference_stats/
    REPO_COPY.write_bytes(PACKAGE_CATALOG.read_bytes())
