"""gate.toml parsing and validation: every bad config is an AmbientError naming the problem."""
from __future__ import annotations

import shutil
from pathlib import Path

import pytest

from ambient_eval.errors import AmbientError
from ambient_eval.gate import load_config
from ambient_eval.gate.catalog import HIGHER, LOWER, parse_address

EXAMPLE = Path(__file__).resolve().parents[2] / "examples" / "ci" / "gate.toml"


def test_example_config_is_valid(tmp_path):
    cfg = load_config(EXAMPLE)
    assert len(cfg.rules) >= 4
    assert {r.kind_label for r in cfg.rules} == {"absolute", "relative", "noise-aware"}


def test_schema_forms(write_config):
    cfg = load_config(write_config("""
[gate]
baseline = "base/results.json"
alpha = 0.01
[[rule]]
metric = "fid"
max = 12.0
[[rule]]
check = "recall >= baseline - 0.02"
[[rule]]
metric = "fid"
max = "baseline * 1.05"
min = 0
[[rule]]
metric = "memorization.frac_above_0.95"
regression = "significant"
[[rule]]
metric = "reproducibility.rp"
regression = "significant"
alpha = 0.1
margin = 0.01
"""))
    r = cfg.rules
    assert (r[0].max.value, r[0].max.relative, r[0].kind_label) == (12.0, False, "absolute")
    assert (r[1].min.op, r[1].min.value, r[1].max, r[1].kind_label) == ("-", 0.02, None, "relative")
    assert r[2].max.resolve(10.0) == pytest.approx(10.5) and r[2].min.resolve(None) == 0.0
    assert (r[3].metric.kind, r[3].metric.name, r[3].direction, r[3].alpha) == \
        ("memorization", "frac_above_0.95", LOWER, 0.01)  # [gate] alpha is the default
    assert (r[4].direction, r[4].alpha, r[4].margin) == (HIGHER, 0.1, 0.01)
    assert cfg.baselines == (cfg.path.parent / "base/results.json",)  # relative to the config


def test_addressing():
    assert parse_address("fid").address == "fid"
    assert (parse_address("fid.kid").kind, parse_address("fid.kid").name) == ("fid", "kid")
    ref = parse_address("memorization.frac_above_0.95")
    assert (ref.kind, ref.name) == ("memorization", "frac_above_0.95")
    assert parse_address("reproducibility.rp[a|b]").name == "rp[a|b]"


@pytest.mark.parametrize("body, expected", [
    ('[[rule]]\nmetric = "fdi"\nmax = 1', ["unknown metric 'fdi'", "fid", "recall",
                                            "memorization.frac_above_<threshold>", "reproducibility.rp"]),
    ('[[rule]]\nmetric = "memorization.top1"\nmax = 1', ["unknown metric 'memorization.top1'"]),
    ('[[rule]]\nmetric = "fid"\nmaximum = 1', ["unknown key 'maximum'", "Did you mean 'max'"]),
    ('[gate]\nalfa = 0.05\n[[rule]]\nmetric = "fid"\nmax = 1', ["unknown key 'alfa'", "'alpha'"]),
    ('[[rules]]\nmetric = "fid"', ["unknown key 'rules'"]),
    ('[[rule]]\nmetric = "fid"\nmax = "baseline / 2"', ["unsupported operator '/'", "+, - or *"]),
    ('[[rule]]\nmetric = "fid"\nmax = "baseline ** 2"', ["unsupported operator '**'"]),
    ('[[rule]]\ncheck = "fid < 12"', ["unsupported operator '<'", "<= or >="]),
    ('[[rule]]\ncheck = "fid == 12"', ["unsupported operator '=='"]),
    ('[[rule]]\nmetric = "fid"\nmax = "twelve"', ["not a number or a baseline expression"]),
    ('[[rule]]\nmetric = "fid"\nmax = nan', ["finite number"]),
    ('[[rule]]\nmetric = "fid"\nmax = true', ["finite number"]),
    ('[[rule]]\nmetric = "fid"\nmin = 5\nmax = 1', ["min = 5 is above max = 1"]),
    ('[[rule]]\nmetric = "fid"', ["needs max, min, check"]),
    ('[[rule]]\nmax = 3', ["missing 'metric'"]),
    ('[[rule]]\nmetric = "fid"\nregression = "yes"', ["regression = 'yes' is not supported"]),
    ('[[rule]]\nmetric = "fid"\nregression = "significant"\nmax = 3', ["split it"]),
    ('[[rule]]\nmetric = "fid"\nregression = "significant"\nalpha = 0.7', ["alpha = 0.7 is outside"]),
    ('[[rule]]\nmetric = "fid"\nregression = "significant"\ndirection = "up"', ["direction = 'up'"]),
    ('[[rule]]\nmetric = "kid_std"\nregression = "significant"', ["no natural direction"]),
    ('[[rule]]\nmetric = "fid"\nregression = "significant"\nmethod = "z"', ["method = 'z'"]),
    ('[[rule]]\nmetric = "fid"\nmax = 3\nalpha = 0.1', ["'alpha' only applies"]),
    ('[gate]\nalpha = 0.05', ["no [[rule]] entries"]),
    ('[[rule]]\nmetric = "fid"\nmax = ', ["not valid TOML"]),
])
def test_bad_configs(write_config, body, expected):
    path = write_config(body)
    with pytest.raises(AmbientError) as e:
        load_config(path)
    msg = str(e.value)
    assert str(path) in msg
    for part in expected:
        assert part in msg, msg


def test_unknown_metric_lists_every_fid_constant(write_config):
    from ambient_eval.results import envelope as R
    with pytest.raises(AmbientError) as e:
        load_config(write_config('[[rule]]\nmetric = "fid.nope"\nmax = 1'))
    for key in (R.FID, R.KID, R.IS, R.PRECISION, R.RECALL, R.DENSITY, R.COVERAGE):
        assert key in str(e.value)


def test_missing_config_file(tmp_path):
    with pytest.raises(AmbientError, match="does not exist"):
        load_config(tmp_path / "nope.toml")


def test_example_copy_runs_from_anywhere(tmp_path):
    # The example is self-contained TOML; copying it elsewhere still parses.
    shutil.copy(EXAMPLE, tmp_path / "g.toml")
    assert load_config(tmp_path / "g.toml").rules
