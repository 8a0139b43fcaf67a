"""Headless-Chromium check of HTML reports: JS errors, rendered Plotly figures, screenshot."""
from __future__ import annotations

import json

import numpy as np
import pytest

from ambient_eval.errors import AmbientError
from ambient_eval.reports import browser_check as bc

needs_chromium = pytest.mark.skipif(
    bc.find_chromium() is None,
    reason="Chromium is not installed (apt-get install -y --no-install-recommends chromium)")


@needs_chromium
@pytest.mark.slow
def test_report_with_two_figures_passes_and_screenshot_shows_them(tmp_path):
    import plotly.graph_objects as go
    from PIL import Image

    from ambient_eval.reports.html import Report

    rep = Report("Browser check", settings={"extractor": "inception"}, inputs={"a": "sha256:abc"})
    rep.heading("Metrics")
    rep.table([{"metric": "fid", "value": 1.25}])
    rep.figure(go.Figure(go.Bar(x=["precision", "recall"], y=[0.7, 0.6], marker_color="#ff0000")))
    rep.figure(go.Figure(go.Scatter(x=[1, 2, 3], y=[3, 1, 2])))
    page = rep.save(tmp_path / "report.html")
    res = bc.check_report(page, tmp_path / "shots" / "report.png")
    assert res["ok"], res["problems"]
    assert res["js_errors"] == [] and res["external_resources"] == [] and res["narrow_overflow"] is False
    assert (res["n_figures"], res["n_rendered"]) == (2, 2)
    assert [f["traces"] for f in res["figures"]] == [1, 1]
    assert res["title"] == "Browser check"
    shot = np.asarray(Image.open(res["screenshot"]).convert("RGB"))
    assert shot.shape[1] == bc.BrowserCheckSettings().width and 300 < shot.shape[0] < 4000
    red = (shot[..., 0] > 240) & (shot[..., 1] < 30) & (shot[..., 2] < 30)
    assert red.sum() > 1000                     # the red bars were actually drawn


@needs_chromium
def test_js_error_unrendered_figure_and_network_resource_are_reported(tmp_path, capsys):
    page = tmp_path / "broken.html"
    page.write_text(
        "<!DOCTYPE html><html><head><title>t</title></head><body>"
        '<div id="fig-a" class="plotly-graph-div ae-figure"></div>'
        '<img src="http://127.0.0.1:9/logo.png">'
        "<script>notDefinedAnywhere();</script>"
        "<script>Promise.reject(new Error('async boom'));</script>"
        '<div style="width:2000px">wide</div>'
        "</body></html>")
    res = bc.check_report(page, None, bc.BrowserCheckSettings(narrow_width=0))
    assert not res["ok"] and res["screenshot"] is None and res["narrow_overflow"] is None
    assert any("notDefinedAnywhere" in e for e in res["js_errors"])
    assert any("async boom" in e for e in res["js_errors"])
    assert res["figures"] == [{"id": "fig-a", "rendered": False, "traces": 0,
                               "width": res["figures"][0]["width"], "height": res["figures"][0]["height"]}]
    assert res["external_resources"] == ["http://127.0.0.1:9/logo.png"]
    assert any("fig-a" in p for p in res["problems"])
    # the CI entry point: JSON on stdout, exit 1 on a failed check; the narrow load sees overflow
    assert bc.main([str(page)]) == 1
    out = json.loads(capsys.readouterr().out)
    assert out["narrow_overflow"] is True and not out["ok"]


def test_missing_chromium_or_report_is_a_clean_error(tmp_path, monkeypatch, capsys):
    page = tmp_path / "r.html"
    page.write_text("<html></html>")
    monkeypatch.setattr(bc, "CHROMIUM_CANDIDATES", ())
    monkeypatch.delenv(bc.CHROMIUM_ENV, raising=False)
    with pytest.raises(AmbientError, match="apt-get install"):
        bc.check_report(page, None)
    assert bc.main([str(tmp_path / "missing.html")]) == 2
    assert "does not exist" in capsys.readouterr().err


def test_chromium_temp_folder_is_short_under_a_long_tmpdir(tmp_path, monkeypatch):
    """Chromium's unix sockets fail (exit -6) under a long $TMPDIR: its profile goes to a short folder."""
    import tempfile

    from ambient_eval.reports import browser_check

    long_dir = tmp_path / ("a-very-long-directory-name-" * 4)
    long_dir.mkdir()
    monkeypatch.setattr(tempfile, "tempdir", str(long_dir))
    short = browser_check._short_tmp()
    assert short is not None and len(short) <= 40
    monkeypatch.setattr(tempfile, "tempdir", "/tmp")
    assert browser_check._short_tmp() is None
