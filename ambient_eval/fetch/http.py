"""One HTTP(S) download into a `.part` file that survives interruptions and is resumed with Range.

Retries with exponential backoff after a timeout, a cut connection or an HTTP 5xx; none after a 4xx.
Proxies come from the environment (urllib's ProxyHandler reads HTTPS_PROXY / HTTP_PROXY / NO_PROXY).
The caller hashes the finished `.part` and renames it (remote.py): nothing here writes the final name.
"""
from __future__ import annotations

import http.client
import logging
import re
import socket
import time
import urllib.error
import urllib.request
from dataclasses import dataclass
from pathlib import Path

from ambient_eval.errors import AmbientError

log = logging.getLogger(__name__)

_CONTENT_RANGE = re.compile(r"bytes (\d+)-(\d+)/(\d+|\*)")


class DownloadError(AmbientError):
    """A download failed; the message names the URL and the cause (the caller adds the manual steps)."""


@dataclass
class DownloadStats:
    """What one download did (benchmarks and tests read these)."""

    bytes_received: int = 0     # bytes read from the network, over all tries
    resumed_from: int = 0       # size of the .part file the first try resumed from
    tries: int = 0              # HTTP requests made


class _Transient(Exception):
    """A failure worth another try (timeout, cut connection, 5xx)."""


def validator_path(part: Path) -> Path:
    """Where the ETag / Last-Modified of the file a `.part` holds the start of is kept."""
    return part.with_name(part.name + ".validator")


def _open(url: str, start: int, timeout: float, validator: str | None):
    from ambient_eval import __version__

    headers = {"User-Agent": f"ambient-eval/{__version__}", "Accept-Encoding": "identity"}
    if start:
        headers["Range"] = f"bytes={start}-"
        if validator:                # RFC 9110 If-Range: the rest only if the file is still the same
            headers["If-Range"] = validator
    return urllib.request.urlopen(urllib.request.Request(url, headers=headers), timeout=timeout)


def _one_try(url: str, part: Path, timeout: float, chunk: int, desc: str, stats: DownloadStats) -> None:
    """One request: append to (or restart) `part` until the body ends; _Transient on retryable faults."""
    from ambient_eval.runtime.progress import progress

    start = part.stat().st_size if part.exists() else 0
    vfile = validator_path(part)
    validator = vfile.read_text().strip() if start and vfile.is_file() else None
    stats.tries += 1
    try:
        resp = _open(url, start, timeout, validator)
    except urllib.error.HTTPError as e:
        if e.code == 416 and start:        # the .part is not a prefix of this file: start over
            part.unlink()
            raise _Transient(f"HTTP 416 resuming at byte {start}") from None
        if 500 <= e.code < 600:
            raise _Transient(f"HTTP {e.code} {e.reason}") from None
        raise DownloadError(f"The server answered HTTP {e.code} {e.reason} for {url}.") from None
    except urllib.error.URLError as e:
        if isinstance(e.reason, (TimeoutError, socket.timeout)):
            raise _Transient(f"no answer within {timeout:g} s") from None
        raise _Transient(f"cannot connect ({e.reason})") from None
    except (TimeoutError, socket.timeout):
        raise _Transient(f"no answer within {timeout:g} s") from None
    except (ConnectionError, http.client.HTTPException) as e:
        raise _Transient(f"connection failed ({type(e).__name__}: {e})") from None
    with resp:
        mode = "wb"
        if start and resp.status == 206:
            m = _CONTENT_RANGE.match(resp.headers.get("Content-Range", ""))
            if m is None or int(m.group(1)) != start:
                part.unlink()
                raise _Transient("the server resumed at another byte than asked")
            mode = "ab"
        elif start:
            start = 0                                # Range ignored or the file changed: all of it again
        if mode == "wb":
            tag = resp.headers.get("ETag") or resp.headers.get("Last-Modified")
            if tag and not tag.startswith("W/"):     # weak ETags may not be used with If-Range
                vfile.write_text(tag)
            else:
                vfile.unlink(missing_ok=True)
        length = resp.headers.get("Content-Length")
        total = start + int(length) if length and length.isdigit() else None
        got = start
        bar = progress(total=total, desc=desc, unit="B")
        bar.update(start)
        try:
            with open(part, mode) as f:
                while True:
                    try:
                        block = resp.read1(chunk)
                    except (TimeoutError, socket.timeout):
                        raise _Transient(f"no data for {timeout:g} s after {got} bytes") from None
                    except (ConnectionError, http.client.HTTPException) as e:
                        raise _Transient(f"connection cut after {got} bytes ({type(e).__name__})") from None
                    if not block:
                        break
                    f.write(block)
                    got += len(block)
                    stats.bytes_received += len(block)
                    bar.update(len(block))
        finally:
            bar.close()
        if total is not None and got < total:
            raise _Transient(f"connection closed after {got} of {total} bytes")


def download(url: str, part: Path, *, timeout: float, retries: int, backoff_s: float, chunk: int = 1 << 20,
             desc: str = "download") -> DownloadStats:
    """Fetch `url` into `part` (resuming what is there); DownloadError after the last failed try."""
    stats = DownloadStats(resumed_from=part.stat().st_size if part.exists() else 0)
    part.parent.mkdir(parents=True, exist_ok=True)
    for attempt in range(retries + 1):
        try:
            _one_try(url, part, timeout, chunk, desc, stats)
            return stats
        except _Transient as e:
            last = str(e)
            if attempt == retries:
                break
            wait = backoff_s * 2 ** attempt     # exponential backoff: b, 2b, 4b, ...
            log.warning("download of %s: %s; retrying in %.3g s (%d/%d)", url, last, wait, attempt + 1, retries)
            time.sleep(wait)
    kept = part.stat().st_size if part.exists() else 0
    hint = " (timed out: raise AMBIENT_EVAL_DOWNLOAD_TIMEOUT on a slow link)" if "within" in last or "no data" in last else ""
    raise DownloadError(f"Downloading {url} failed after {retries + 1} tries: {last}{hint}. "
                        f"{kept} bytes are kept in '{part}' and a later run resumes from there.")
