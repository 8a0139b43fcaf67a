"""`ambient-eval refs`: named reference statistics (list, fetch, verify, path) from the catalog."""
from __future__ import annotations

from typing import Annotated

import typer

from ambient_eval.cli.safe_echo import echo

refs_app = typer.Typer(no_args_is_help=True, add_completion=False, help="""Named reference statistics
(`ref:NAME` in any reference argument): list, fetch, verify, path.

The catalog names EDM, EDM2, clean-fid, torch-fidelity and ADM statistics with their URL and feature
space. Files are fetched on first use into the download cache ($AMBIENT_EVAL_DOWNLOADS, default
~/.cache/ambient-eval/downloads), SHA-256 checked; --offline / AMBIENT_EVAL_OFFLINE=1 and CI never
download.

Examples:

  ambient-eval refs list

  ambient-eval refs fetch edm-cifar10-32 edm2-img512-dinov2

  ambient-eval fid samples/ ref:edm-cifar10-32
""")

Names = Annotated[list[str], typer.Argument(help="Catalog names (see `ambient-eval refs list`).",
                                            metavar="NAME...", show_default=False)]


def _size(n: int) -> str:
    for unit in ("B", "KB", "MB", "GB"):
        if n < 1024 or unit == "GB":
            return f"{n:.0f} {unit}" if unit == "B" else f"{n:.1f} {unit}"
        n /= 1024
    return ""


@refs_app.command("list")
def list_command() -> None:
    """Every catalog entry: name, feature space, N, resolution, whether cached, and its size.

    Examples:

      ambient-eval refs list
    """
    from ambient_eval.refs.catalog import load_catalog
    from ambient_eval.refs.resolve import find_local

    rows = []
    for e in load_catalog().values():
        local = find_local(e)
        rows.append((e.name, f"{e.extractor}/{e.mode}", str(e.n), str(e.resolution),
                     "yes" if local else ("no" if e.url else "no (not published)"),
                     _size(local.stat().st_size) if local else "-"))
    head = ("name", "features", "N", "res", "cached", "size")
    widths = [max(len(r[i]) for r in [head, *rows]) for i in range(len(head))]
    for r in [head, *rows]:
        echo("  ".join(c.ljust(w) for c, w in zip(r, widths)).rstrip())


@refs_app.command("fetch")
def fetch_command(names: Names) -> None:
    """Download (or find) each named reference and check its SHA-256; print where it is.

    Examples:

      ambient-eval refs fetch edm-cifar10-32

      AMBIENT_EVAL_DOWNLOADS=/shared/ambient-cache ambient-eval refs fetch adm-imagenet256
    """
    from ambient_eval.refs.resolve import ref_path

    paths = [(n, ref_path(n)) for n in names]
    for n, p in paths:
        echo(f"{n}: {p}")


@refs_app.command("verify")
def verify_command() -> None:
    """Hash every cached reference file again and check it against the published or pinned SHA-256.

    Exits 2 when a file changed (both hashes are named).

    Examples:

      ambient-eval refs verify
    """
    from ambient_eval.errors import AmbientError
    from ambient_eval.fetch import cached_path, verify_file
    from ambient_eval.refs.catalog import load_catalog
    from ambient_eval.refs.resolve import library_hit, remote_of

    bad, lines = [], []
    for e in load_catalog().values():
        remote = remote_of(e)
        path = library_hit(e) or cached_path(remote)
        if not path.is_file():
            continue
        try:
            lines.append(f"ok  {e.name}: {verify_file(remote, path, fresh=True)}  {path}")
        except AmbientError as err:
            bad.append(str(err))
    for line in lines:
        echo(line)
    if bad:
        raise AmbientError(" ".join(bad))
    echo(f"{len(lines)} cached reference file(s) verified.")


@refs_app.command("path")
def path_command(name: Annotated[str, typer.Argument(help="Catalog name.", metavar="NAME",
                                                     show_default=False)]) -> None:
    """Print where NAME is (or will be placed when fetched); never downloads.

    Examples:

      ambient-eval refs path edm-cifar10-32
    """
    from ambient_eval.fetch import cached_path
    from ambient_eval.refs.catalog import get_entry
    from ambient_eval.refs.resolve import find_local, remote_of

    e = get_entry(name)
    local = find_local(e)
    echo(str(local or cached_path(remote_of(e))))
    if local is None:
        echo(f"(not present yet: `ambient-eval refs fetch {name}` downloads it from {e.url or 'nowhere: ' + e.notes})",
             err=True)


def register(app: typer.Typer) -> None:
    """Add `refs` (list, fetch, verify, path) to the root app."""
    app.add_typer(refs_app, name="refs")
