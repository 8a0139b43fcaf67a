"""Item 7: reports carry plotly.js only when they have figures (once; CDN on request), the fid report
lists each metric once, and the compare report passes the browser check at phone width."""
from __future__ import annotations

import pytest

from ambient_eval.errors import AmbientError
from ambient_eval.reports import browser_check as bc
from ambient_eval.reports.fid_report import _columns, build_fid_report
from ambient_eval.reports.html import Report
from ambient_eval.results.envelope import Results

S = {"extractor": "inception", "mode": "tf-compat", "weights_sha256": "ab" * 32, "n_generated": 50000,
     "reference_fingerprint": "cd" * 32, "n_reference": 50000}


def _fig_report():
    import plotly.graph_objects as go

    rep = Report("t")
    rep.figure(go.Figure(go.Bar(x=[1], y=[1])))
    rep.figure(go.Figure(go.Bar(x=[2], y=[2])))
    return rep


def test_table_only_report_is_small(tmp_path):
    rep = Report("t")
    rep.table([{"metric": "fid", "value": 1.0}])
    p = rep.save(tmp_path / "r.html")
    assert p.stat().st_size < 20_000


def test_plotlyjs_once_inline_or_cdn(tmp_path, monkeypatch):
    html = _fig_report().render()
    assert html.count("plotly.js v") <= 2 and len(html) > 3_000_000     # one bundle (its banner)
    assert html.count('<script type="text/javascript">/**') == 1
    monkeypatch.setenv("AMBIENT_EVAL_PLOTLYJS", "cdn")
    html = _fig_report().render()
    assert len(html) < 50_000 and html.count("https://cdn.plot.ly/plotly-") == 1
    monkeypatch.setenv("AMBIENT_EVAL_PLOTLYJS", "web")
    with pytest.raises(AmbientError, match="AMBIENT_EVAL_PLOTLYJS"):
        _fig_report().render()


def test_kid_listed_once_without_fid():
    runs = [Results(kind="fid", metrics={"kid": 0.1, "kid_std": 0.01, "precision": 0.5}, settings=S)]
    cols = _columns(runs)
    assert cols == ["kid", "kid_std", "precision"]
    html = build_fid_report(runs).render()
    assert html.count("<th>kid</th>") == 1


def _compare_runs():
    long = "ambient-cifar10-jpeg-q10-sigma-tn-0.2-" + "x" * 60
    a = Results(kind="fid", metrics={"fid": 2.0, "kid": 0.001, "precision": 0.7, "recall": 0.6}, settings=S,
                extra={"warnings": ["see https://github.com/NVlabs/edm/blob/main/fid.py/" + "a" * 80]})
    b = Results(kind="fid", metrics={"fid": 2.5, "kid": 0.002, "precision": 0.6, "recall": 0.5},
                settings={**S, "extractor": "inception-clean-" + "y" * 60})
    return [a, b], ["edm-baseline-run-" + "z" * 50, long]


def test_compare_report_no_unbreakable_overflow_css():
    html = build_fid_report(*_compare_runs()).render()
    assert "overflow-wrap:anywhere" in html


@pytest.mark.skipif(bc.find_chromium() is None, reason="Chromium is not installed")
def test_compare_report_passes_browser_check_at_phone_width(tmp_path):
    runs, labels = _compare_runs()
    page = build_fid_report(runs, labels).save(tmp_path / "cmp.html")
    res = bc.check_report(page, None)
    assert res["ok"], res["problems"]
    assert res["narrow_overflow"] is False
