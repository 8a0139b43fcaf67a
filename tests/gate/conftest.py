"""Gate/history test helpers: results.json files built with ambient_eval.results.envelope.Results."""
from __future__ import annotations

from pathlib import Path

import pytest

from ambient_eval.results.envelope import Results

SETTINGS = {"extractor": "inception", "mode": "tf-compat", "weights_sha256": "ab" * 32,
            "n_generated": 10000, "reference_fingerprint": "cd" * 32}


def make_results(path: Path, metrics: dict, *, kind: str = "fid", ci: dict | None = None,
                 repeats: dict | None = None, settings: dict | None = None) -> Path:
    """Write a results.json under `path` (a directory) and return the file path."""
    s = dict(SETTINGS)
    s.update(settings or {})
    res = Results(kind=kind, metrics=metrics, settings=s, ci=ci or {}, repeats=repeats or {},
                  versions={})
    return res.save(path / "results.json")


@pytest.fixture
def write_config(tmp_path):
    """write_config(text) -> path of a gate.toml in tmp_path."""
    def write(text: str, name: str = "gate.toml") -> Path:
        p = tmp_path / name
        p.write_text(text)
        return p
    return write
