"""Error paragraphs never break inside URLs, paths or option names (textwrap breaks at hyphens by default)."""
from __future__ import annotations

from ambient_eval.cli.app import _paragraph


def test_no_break_at_hyphens_or_inside_urls():
    url = "https://github.com/mseitzer/pytorch-fid/releases/download/fid_weights/pt_inception-2015-12-05-6726825d.pth"
    msg = ("Weights for extractor 'inception' were not found: need 'weights-inception-2015-12-05-6726825d.pth' "
           f"official URL {url}. Pass --weights PATH or set AMBIENT_EVAL_WEIGHTS, see --kid-subset-size.")
    out = _paragraph(msg)
    assert url in out.splitlines()[[i for i, ln in enumerate(out.splitlines()) if "https://" in ln][0]]
    assert "weights-inception-2015-12-05-6726825d.pth" in out
    for ln in out.splitlines():
        assert not ln.endswith("-"), ln
    assert " ".join(out.split()) == " ".join(msg.split())
