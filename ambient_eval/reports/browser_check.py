"""Open an HTML report in headless Chromium: JavaScript errors, rendered figures, screenshot.

No Python dependency beyond the standard library: a copy of the report gets a small script
injected first in <head> that records errors (window `error` events, unhandled promise
rejections, console.error) and, after the page has loaded and Plotly has drawn, writes a JSON
status into the DOM. Chromium's `--dump-dom` prints that DOM; `--screenshot` saves the PNG.
`--virtual-time-budget` lets timers run without waiting in real time.

A page may define `window.aeBeforeReport(done)` (a script passed as `extra_js` to `inject_probe`):
the probe then calls it after the settle time and writes its status when `done` is called, with
`window.aeExtra` in the status as `extra` (the docs-site test types a search query this way).
`check_url` opens any URL (file:// or http://) of a page that already carries the probe.

Command line (exit 0 = OK, 1 = check failed, 2 = Chromium missing or bad input):
    python -m ambient_eval.reports.browser_check reports/fid-*/report.html --screenshot shot.png
Chromium on Debian/Ubuntu: apt-get install -y --no-install-recommends chromium
"""
from __future__ import annotations

import argparse
import json
import os
import re
import shutil
import signal
import subprocess
import sys
import tempfile
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from ambient_eval.errors import AmbientError

CHROMIUM_ENV = "AMBIENT_EVAL_CHROMIUM"          # path override for the browser binary
CHROMIUM_CANDIDATES = ("/usr/bin/chromium", "chromium", "chromium-browser", "google-chrome",
                       "google-chrome-stable")
INSTALL_HINT = "Install it with `apt-get update && apt-get install -y --no-install-recommends chromium`"
STATUS_ID = "ae-browser-check"


@dataclass(frozen=True)
class BrowserCheckSettings:
    width: int = 1280                  # window width for the DOM check and the screenshot, CSS px
    narrow_width: int = 390            # phone width for a second load (overflow check), CSS px; 0 = skip
    max_height: int = 8000             # screenshot height cap (full page up to this), px
    settle_ms: int = 500               # wait after the load event before reading the DOM, ms
    virtual_time_budget_ms: int = 8000  # virtual time Chromium grants timers before dumping, ms
    timeout_s: float = 90.0            # wall-clock limit per Chromium launch, s


CHROMIUM_FLAGS = ("--headless", "--no-sandbox", "--disable-gpu", "--disable-quic", "--no-first-run",
                  "--disable-background-networking", "--disable-component-update", "--disable-sync",
                  "--disable-dev-shm-usage", "--hide-scrollbars", "--mute-audio")

# Runs before any other script of the page. Collects errors; after load + settle, writes a JSON
# status (figures, errors, external resources, page size) into <script id=STATUS_ID>.
_PROBE_JS = r"""
(function(){
  var errs = [];
  function add(m){ if (errs.length < 50) errs.push(String(m).slice(0, 500)); }
  window.addEventListener('error', function(e){
    var t = e.target;
    if (t && t !== window && (t.src || t.href)) { add('resource failed to load: ' + (t.src || t.href)); return; }
    var where = e.filename ? ' (' + e.filename.split('/').pop() + ':' + e.lineno + ')' : '';
    add((e.message || 'error') + where);
  }, true);
  window.addEventListener('unhandledrejection', function(e){
    var r = e.reason; add('unhandled promise rejection: ' + (r && r.message ? r.message : r));
  });
  var ce = console.error;
  console.error = function(){ add('console.error: ' + Array.prototype.map.call(arguments, String).join(' '));
                              return ce.apply(console, arguments); };
  function report(){
    var figs = Array.prototype.map.call(document.querySelectorAll('.ae-figure'), function(d){
      var r = d.getBoundingClientRect();
      return {id: d.id || '', rendered: !!(d.querySelector('svg.main-svg') && d._fullLayout),
              traces: (d.data || []).length, width: Math.round(r.width), height: Math.round(r.height)};
    });
    var ext = [];
    Array.prototype.forEach.call(document.querySelectorAll('script[src],link[href],img[src],iframe[src]'),
      function(el){ var u = el.getAttribute('src') || el.getAttribute('href') || '';
                    if (/^(https?:)?\/\//i.test(u)) ext.push(u); });
    var de = document.documentElement;
    var s = document.createElement('script');
    s.type = 'application/json'; s.id = '__STATUS_ID__';
    s.textContent = JSON.stringify({errors: errs, figures: figs, external: ext, title: document.title,
      scroll_width: de.scrollWidth, client_width: de.clientWidth,
      extra: window.aeExtra === undefined ? null : window.aeExtra,
      height: Math.ceil((document.body || de).getBoundingClientRect().bottom + window.scrollY)}).replace(/</g, '\\u003c');
    (document.body || de).appendChild(s);
  }
  window.addEventListener('load', function(){ setTimeout(function(){
    if (typeof window.aeBeforeReport === 'function') { window.aeBeforeReport(report); } else { report(); }
  }, __SETTLE__); });
})();
"""


def find_chromium() -> str | None:
    """Path of a Chromium/Chrome binary ($AMBIENT_EVAL_CHROMIUM first), or None."""
    override = os.environ.get(CHROMIUM_ENV)
    for cand in ((override,) if override else ()) + CHROMIUM_CANDIDATES:
        found = shutil.which(cand) if cand else None
        if found:
            return found
    return None


def check_report(html_path: str | os.PathLike, screenshot_path: str | os.PathLike | None,
                 settings: BrowserCheckSettings = BrowserCheckSettings()) -> dict[str, Any]:
    """Open `html_path` headless; return {'ok', 'js_errors', 'figures', 'n_figures', 'n_rendered',
    'external_resources', 'narrow_overflow', 'screenshot', 'chromium', 'title', 'problems'}.

    ok = page finished loading, no JavaScript errors, every `.ae-figure` rendered (has an
    svg.main-svg), no external (network) resources, no horizontal overflow at a phone width.
    """
    src = Path(html_path)
    if not src.is_file():
        raise AmbientError(f"Report '{src}' does not exist. Pass the path of an HTML report.")
    _chromium()
    with tempfile.TemporaryDirectory(prefix="ae-page-", dir=_short_tmp()) as tmp:
        page = Path(tmp) / "page.html"
        page.write_text(inject_probe(src.read_text(encoding="utf-8", errors="replace"),
                                     src.resolve().parent.as_uri() + "/", settings), encoding="utf-8")
        return check_url(page.as_uri(), screenshot_path, settings, name=src.name)


def check_url(url: str, screenshot_path: str | os.PathLike | None,
              settings: BrowserCheckSettings = BrowserCheckSettings(), name: str | None = None) -> dict[str, Any]:
    """Open `url`, a page carrying the probe (`inject_probe`), headless; the result of `check_report`
    plus 'extra' (the page's `window.aeExtra`). `name` names the page in messages."""
    chromium = _chromium()
    name = name or url
    with tempfile.TemporaryDirectory(prefix="ae-browser-", dir=_short_tmp()) as tmp:
        # Wide window: DOM status and (optionally) a screenshot of a tall viewport, cropped below
        # to the page height the probe measured - one launch instead of two.
        shot = None
        extra = []
        if screenshot_path is not None:
            shot = Path(screenshot_path).resolve()
            shot.parent.mkdir(parents=True, exist_ok=True)
            raw_shot = Path(tmp) / "shot.png"
            extra = [f"--screenshot={raw_shot}"]
        wide = _status(_run(chromium, tmp, "wide", settings, settings.width,
                            settings.max_height if shot else 900, "--dump-dom", *extra, url), name)
        if shot is not None:
            _crop_screenshot(raw_shot, shot, int(wide.get("height") or settings.max_height))
        narrow: dict[str, Any] = {}
        if settings.narrow_width:
            narrow = _status(_run(chromium, tmp, "narrow", settings, settings.narrow_width, 844,
                                  "--dump-dom", url), name)
    figures = wide.get("figures", [])
    errors = list(dict.fromkeys(wide.get("errors", []) + narrow.get("errors", [])))
    overflow = None
    if narrow:
        overflow = int(narrow.get("scroll_width", 0)) > int(narrow.get("client_width", 0)) + 1
    problems = [f"JavaScript error: {e}" for e in errors]
    problems += [f"figure '{f['id']}' did not render" for f in figures if not f["rendered"]]
    problems += [f"figure '{f['id']}' did not render at {settings.narrow_width}px"
                 for f in narrow.get("figures", []) if not f["rendered"]]
    problems += [f"external resource (report must open offline): {u}" for u in wide.get("external", [])]
    if overflow:
        problems.append(f"page overflows horizontally at {settings.narrow_width}px "
                        f"({narrow.get('scroll_width')}px wide)")
    return {"ok": not problems, "problems": problems, "js_errors": errors, "figures": figures,
            "n_figures": len(figures), "n_rendered": sum(bool(f["rendered"]) for f in figures),
            "external_resources": wide.get("external", []), "narrow_overflow": overflow,
            "title": wide.get("title", ""), "screenshot": str(shot) if shot else None,
            "chromium": _version(chromium), "extra": wide.get("extra")}


def _chromium() -> str:
    chromium = find_chromium()
    if chromium is None:
        raise AmbientError(f"No Chromium found (looked for ${CHROMIUM_ENV} and {', '.join(CHROMIUM_CANDIDATES)}). "
                           f"{INSTALL_HINT}.")
    return chromium


def _crop_screenshot(raw: Path, dest: Path, height: int) -> None:
    """Crop Chromium's tall-viewport PNG to the page height and write it atomically to `dest`."""
    from PIL import Image

    from ambient_eval.files.atomic import atomic_path

    if not raw.is_file():
        raise AmbientError(f"Chromium did not write a screenshot for '{dest}'. Check the Chromium install.")
    with Image.open(raw) as im:
        im.load()
        cropped = im.crop((0, 0, im.width, max(1, min(height, im.height))))
    with atomic_path(dest) as tmp:
        cropped.save(tmp, format="PNG")


def inject_probe(text: str, base_href: str | None = None,
                 settings: BrowserCheckSettings = BrowserCheckSettings(), extra_js: str = "") -> str:
    """The page `text` with the probe (and `extra_js`) first in <head>, and <base href> when given
    (relative files then resolve beside the original)."""
    probe = _PROBE_JS.replace("__STATUS_ID__", STATUS_ID).replace("__SETTLE__", str(int(settings.settle_ms)))
    base = f'<base href="{base_href}">' if base_href else ""
    # The copy is written as UTF-8; declare it first (the page's own meta may now be past byte 1024).
    snippet = f'<meta charset="utf-8">{base}<script>{probe}{extra_js}</script>'
    m = re.search(r"<head(\s[^>]*)?>", text, re.IGNORECASE)
    if m:
        return text[:m.end()] + snippet + text[m.end():]
    return snippet + text


def _short_tmp() -> str | None:
    """A temp folder with a short path: Chromium puts unix sockets in its profile and temp folders,
    and a socket path over ~107 bytes makes it crash (a long $TMPDIR, e.g. in CI)."""
    here = tempfile.gettempdir()
    if len(here) <= 40:
        return None
    for d in ("/tmp", "/var/tmp", "/dev/shm"):
        if os.path.isdir(d) and os.access(d, os.W_OK | os.X_OK):
            return d
    return None


def _run(chromium: str, tmp: str, tag: str, settings: BrowserCheckSettings, width: int, height: int,
         *args: str) -> str:
    """One headless Chromium launch with a fresh profile; stdout. Kills its process group on timeout."""
    cmd = [chromium, *CHROMIUM_FLAGS, f"--user-data-dir={Path(tmp) / ('profile-' + tag)}",
           f"--window-size={width},{height}", f"--virtual-time-budget={settings.virtual_time_budget_ms}",
           *args]
    env = {**os.environ, "TMPDIR": tmp}          # Chromium's own sockets: short paths too
    proc = subprocess.Popen(cmd, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True,
                            start_new_session=True, env=env)
    try:
        out, err = proc.communicate(timeout=settings.timeout_s)
    except subprocess.TimeoutExpired:
        os.killpg(proc.pid, signal.SIGKILL)     # the browser and the helpers it started
        proc.communicate()
        raise AmbientError(f"Chromium did not finish within {settings.timeout_s:.0f} s on the report. "
                           "Retry, or raise BrowserCheckSettings.timeout_s.") from None
    if proc.returncode != 0:
        tail = " ".join(err.strip().splitlines()[-3:])[:600]
        raise AmbientError(f"Chromium exited with code {proc.returncode}: {tail}. {INSTALL_HINT}, "
                           "or set $AMBIENT_EVAL_CHROMIUM to a working browser.")
    return out


def _status(dom: str, name: str) -> dict[str, Any]:
    m = re.search(rf'<script type="application/json" id="{STATUS_ID}">(.*?)</script>', dom, re.DOTALL)
    if not m:
        return {"errors": [f"page '{name}' did not finish loading (no status from the probe)"]}
    return json.loads(m.group(1))


def _version(chromium: str) -> str:
    try:
        return subprocess.run([chromium, "--version"], capture_output=True, text=True, timeout=30).stdout.strip()
    except (OSError, subprocess.SubprocessError):
        return "unknown"


def main(argv: list[str] | None = None) -> int:
    """CLI for CI: print the result as JSON; exit 0 OK, 1 failed check, 2 cannot check."""
    ap = argparse.ArgumentParser(description="Check an ambient-eval HTML report in headless Chromium.")
    ap.add_argument("report", help="HTML report to open")
    ap.add_argument("--screenshot", default=None, metavar="PNG", help="where to save a screenshot")
    args = ap.parse_args(argv)
    try:
        result = check_report(args.report, args.screenshot)
    except AmbientError as e:
        print(f"Error: {e}", file=sys.stderr)
        return 2
    print(json.dumps(result, indent=2))
    return 0 if result["ok"] else 1


if __name__ == "__main__":
    sys.exit(main())
