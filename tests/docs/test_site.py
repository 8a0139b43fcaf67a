"""The documentation site: `mkdocs build --strict` passes, every nav page and README link into docs/
exists, the generated CLI reference lists every command and option, and the built site works in
headless Chromium over HTTP (search finds a query, the CLI page shows `fid`'s options, no console
errors, nothing loaded from the network)."""
from __future__ import annotations

import functools
import http.server
import os
import re
import subprocess
import sys
import threading
import time
from pathlib import Path

import pytest

from ambient_eval.reports import browser_check as bc

ROOT = Path(__file__).resolve().parents[2]
DOCS = ROOT / "docs"
QUERY = "memorization"
# Options of `fid` the CLI page must show (name with metavar, as --help prints them) and a default.
FID_OPTIONS = ("--metrics LIST", "--features SPEC", "--kid-subset-size N", "--fid-method")

needs_chromium = pytest.mark.skipif(
    bc.find_chromium() is None,
    reason="Chromium is not installed (apt-get install -y --no-install-recommends chromium)")


def _nav_pages(nav) -> list[str]:
    out = []
    for item in nav:
        for value in (item.values() if isinstance(item, dict) else [item]):
            out += _nav_pages(value) if isinstance(value, list) else [value]
    return out


def _mkdocs_config() -> dict:
    yaml = pytest.importorskip("yaml")
    return yaml.safe_load((ROOT / "mkdocs.yml").read_text())


def test_every_nav_page_exists_and_every_page_is_in_the_nav():
    cfg = _mkdocs_config()
    pages = _nav_pages(cfg["nav"])
    assert len(pages) == len(set(pages))
    missing = [p for p in pages if not (DOCS / p).is_file()]
    assert not missing, f"mkdocs.yml nav names pages that do not exist in docs/: {missing}"
    unlisted = sorted(p.name for p in DOCS.glob("*.md") if p.name not in pages)
    assert not unlisted, f"pages in docs/ missing from the nav of mkdocs.yml: {unlisted}"
    assert not (DOCS / "sections").exists(), "docs/sections/ duplicated the README; it is gone"


def test_every_readme_link_into_docs_resolves():
    links = re.findall(r"\]\((docs/[^)#\s]+)(?:#[^)]*)?\)", (ROOT / "README.md").read_text())
    assert len(links) >= 15
    missing = sorted({ln for ln in links if not (ROOT / ln).is_file()})
    assert not missing, f"README links to files that do not exist: {missing}"


def test_cli_reference_lists_every_command_and_option():
    """The generated page names every command and subcommand of the app and every option of each."""
    sys.path.insert(0, str(DOCS / "hooks"))
    try:
        import cli_reference
    finally:
        sys.path.remove(str(DOCS / "hooks"))
    import typer

    from ambient_eval.cli.app import app

    text = cli_reference.cli_markdown()

    def walk(cmd, ctx, path):
        assert f"`{' '.join(path)}`" in text, f"{' '.join(path)} missing from the CLI reference"
        for p in cmd.params:
            rec = p.get_help_record(ctx)
            if rec and not getattr(p, "hidden", False):
                section = re.split(rf"#+ `{re.escape(' '.join(path))}`\n", text)[1]
                assert f"`{rec[0]}`" in section.split("\n#")[0], (path, rec[0])
        for name in getattr(cmd, "list_commands", lambda c: [])(ctx):
            sub = cmd.get_command(ctx, name)
            walk(sub, sub.context_class(sub, parent=ctx, info_name=name), [*path, name])

    root = typer.main.get_command(app)
    walk(root, root.context_class(root, info_name="ambient-eval"), ["ambient-eval"])
    for sub in ("ambient-eval refs list", "ambient-eval history record", "ambient-eval fid"):
        assert f"`{sub}`" in text
    assert "ambient-eval fid samples/ ref:edm-cifar10-32" in text      # the docstring's Examples


@pytest.fixture(scope="module")
def site(tmp_path_factory) -> Path:
    """The site built with --strict into a temporary folder (what `make docs` runs)."""
    pytest.importorskip("mkdocs")
    pytest.importorskip("mkdocstrings")
    out = tmp_path_factory.mktemp("site")
    env = {**os.environ, "PYTHONPATH": os.pathsep.join([str(ROOT), os.environ.get("PYTHONPATH", "")]),
           "NO_MKDOCS_2_WARNING": "1"}
    t = time.perf_counter()
    r = subprocess.run([sys.executable, "-m", "mkdocs", "build", "--strict", "-d", str(out)], cwd=ROOT,
                       env=env, capture_output=True, text=True, timeout=300)
    assert r.returncode == 0, f"mkdocs build --strict failed:\n{r.stdout[-3000:]}\n{r.stderr[-3000:]}"
    print(f"site built in {time.perf_counter() - t:.1f} s")
    return out


def test_site_builds_with_every_page(site):
    for page in ("index", "quality", "memorization", "reproducibility", "gate", "sampling", "training",
                 "cli", "api", "bad-inputs", "faults", "verification", "scaling"):
        path = site / ("index.html" if page == "index" else f"{page}/index.html")
        assert path.is_file(), page
    cli = (site / "cli" / "index.html").read_text()
    assert 'id="ambient-eval-refs"' in cli and 'id="ambient-eval-history"' in cli
    api = (site / "api" / "index.html").read_text()
    assert "ambient_eval.api.fid" in api and "doc-heading" in api      # mkdocstrings rendered
    assert (site / "search" / "search_index.json").is_file()
    assert (site / "img" / "regimes_closed_form.svg").is_file()


class _Handler(http.server.SimpleHTTPRequestHandler):
    """Static files, plus /__wait: 100 ms of real time for the page (see SEARCH_JS)."""

    def do_GET(self):
        if self.path.startswith("/__wait"):
            time.sleep(0.1)
            self.send_response(204)
            self.end_headers()
            return None
        return super().do_GET()

    def log_message(self, *args):
        pass


@pytest.fixture(scope="module")
def server(site):
    srv = http.server.ThreadingHTTPServer(("127.0.0.1", 0), functools.partial(_Handler, directory=str(site)))
    threading.Thread(target=srv.serve_forever, daemon=True).start()
    yield f"http://127.0.0.1:{srv.server_port}"
    srv.shutdown()
    srv.server_close()


# Types QUERY into the search box and waits for results. Chromium's virtual time (the harness's
# --virtual-time-budget) does not wait for the search web worker, so each poll waits on a real
# request to /__wait instead of a timer: virtual time stands still while a fetch is pending.
SEARCH_JS = r"""
window.aeBeforeReport = function(done){
  var tries = 0;
  function type(){
    var input = document.querySelector('.md-search__input'), toggle = document.getElementById('__search');
    if (!input) { window.aeExtra = {error: 'no search input'}; return false; }
    // open search as a click on the search button does (on a phone it is a full-screen overlay)
    if (toggle && !toggle.checked) { toggle.checked = true; toggle.dispatchEvent(new Event('change')); }
    input.focus(); input.value = '__QUERY__';
    input.dispatchEvent(new Event('input', {bubbles: true}));
    input.dispatchEvent(new KeyboardEvent('keyup', {bubbles: true, key: 'n'}));
    return true;
  }
  function poll(){
    var items = document.querySelectorAll('.md-search-result__item');
    if (items.length || tries++ > 50) {
      var meta = document.querySelector('.md-search-result__meta');
      window.aeExtra = {results: items.length, meta: meta ? meta.textContent.trim() : '',
                        first: items.length ? items[0].textContent.slice(0, 300) : ''};
      return done();
    }
    if (tries % 10 === 0) type();
    fetch('/__wait?' + tries).then(poll, poll);
  }
  if (type()) { poll(); } else { done(); }
};
""".replace("__QUERY__", QUERY)

# Reports the options listed in the table under the `ambient-eval fid` heading of the CLI page.
CLI_JS = r"""
window.aeBeforeReport = function(done){
  var h = document.getElementById('ambient-eval-fid'), rows = [];
  for (var el = h && h.nextElementSibling; el && !/^H[1-3]$/.test(el.tagName); el = el.nextElementSibling) {
    el.querySelectorAll('tr').forEach(function(tr){
      var c = tr.querySelectorAll('td');
      if (c.length) rows.push({name: c[0].textContent, help: c[2].textContent, default: c[3].textContent,
                               visible: tr.getBoundingClientRect().height > 0});
    });
  }
  window.aeExtra = {heading: !!h, rows: rows};
  done();
};
"""


def _probe_page(site: Path, page: str, js: str) -> str:
    """A copy of `page` beside it (relative links unchanged) with the harness's probe and `js`."""
    src = site / page
    dest = src.with_name("ae-check.html")
    dest.write_text(bc.inject_probe(src.read_text(encoding="utf-8"), extra_js=js), encoding="utf-8")
    return dest.relative_to(site).as_posix()


def _assert_clean(res: dict) -> None:
    assert res["ok"], res["problems"]
    assert res["js_errors"] == [] and res["external_resources"] == [] and res["narrow_overflow"] is False


@needs_chromium
def test_search_finds_a_query_in_chromium(site, server, tmp_path):
    from PIL import Image

    url = f"{server}/{_probe_page(site, 'index.html', SEARCH_JS)}"
    # Wide window only: on a phone Material's open search is a full-screen overlay grown from a
    # circle by a CSS transform, wider than the page by design (the CLI test checks the phone width).
    res = bc.check_url(url, tmp_path / "search.png", bc.BrowserCheckSettings(narrow_width=0),
                       name="index.html (search)")
    assert res["ok"], res["problems"]
    assert res["js_errors"] == [] and res["external_resources"] == []
    extra = res["extra"]
    assert extra and extra.get("results", 0) > 0, f"search for '{QUERY}' found nothing: {extra}"
    assert re.match(r"\d+ matching documents", extra["meta"]), extra
    assert QUERY in extra["first"].lower()
    with Image.open(res["screenshot"]) as im:
        w, h = im.size
        colours = len(set(im.convert("RGB").resize((64, 64)).getdata()))
    assert w == bc.BrowserCheckSettings().width and 600 < h <= bc.BrowserCheckSettings().max_height
    assert colours > 20, "the screenshot is (nearly) blank"


@needs_chromium
def test_cli_page_renders_fid_options_in_chromium(site, server):
    url = f"{server}/{_probe_page(site, 'cli/index.html', CLI_JS)}"
    res = bc.check_url(url, None, name="cli/index.html")
    _assert_clean(res)
    extra = res["extra"]
    assert extra["heading"], "no `ambient-eval fid` heading on the CLI page"
    names = {r["name"]: r for r in extra["rows"]}
    for opt in FID_OPTIONS:
        hit = [n for n in names if n.startswith(opt)]
        assert hit and names[hit[0]]["visible"], f"{opt} not rendered under `ambient-eval fid`: {sorted(names)}"
    metrics = names["--metrics LIST"]
    assert metrics["default"].strip() == "fid" and "clipscore" in metrics["help"]
