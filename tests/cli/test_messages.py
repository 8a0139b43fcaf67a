"""Error messages are one unwrapped paragraph: a long path stays on one line (copy-paste works)."""
from __future__ import annotations

from ambient_eval.cli.app import _paragraph


def test_paragraph_never_wraps():
    long = "x" * 40 + "/" + "a-very-long-directory-name-to-force-wrapping-of-messages/" * 4
    msg = f"Input '{long}' does not exist.\n   Check the path."
    assert _paragraph(msg) == f"Input '{long}' does not exist. Check the path."


def test_long_missing_path_is_printed_on_one_line(cli, tmp_path):
    deep = tmp_path.joinpath(*["a-very-long-directory-name-to-force-wrapping-of-messages"] * 4, "missing")
    r = cli(["stats", deep, "--output", tmp_path / "s.npz", "--features", "pixel-8", "--device", "cpu"])
    assert r.exit_code == 2, r.output
    lines = [ln for ln in r.output.splitlines() if ln.strip()]
    assert len(lines) == 1 and lines[0].startswith("Error: "), r.output
    assert str(deep) in lines[0]
