"""Usage errors of every registered command exit 2 with click's message (never 'Internal error', exit 1).

The commands are introspected from the app, so a new command is covered without editing this file.
"""
from __future__ import annotations

import pytest
import typer.main

from ambient_eval.cli.app import app


def _leaves(cmd, path=()):
    subs = getattr(cmd, "commands", None)
    if subs:
        yield path, cmd  # a group: --help and unknown options apply to it too
        for name, sub in subs.items():
            yield from _leaves(sub, (*path, name))
    else:
        yield path, cmd


COMMANDS = [(p, c) for p, c in _leaves(typer.main.get_command(app)) if p]
IDS = [" ".join(p) for p, _ in COMMANDS]


def _assert_usage_error(r, *needles: str) -> None:
    out = r.output
    assert r.exit_code == 2, out
    assert "Internal error" not in out and "Traceback" not in out and "This is a bug" not in out
    for n in needles:
        assert n in out, out


def test_every_command_module_is_registered():
    names = {p[0] for p, _ in COMMANDS}
    assert {"fid", "stats", "sample", "train", "corrupt", "annotate", "memorization", "reproducibility",
            "gate", "demo", "history"} <= names


@pytest.mark.parametrize("path,cmd", COMMANDS, ids=IDS)
def test_help_exits_0(cli, path, cmd):
    r = cli([*path, "--help"])
    assert r.exit_code == 0, r.output
    assert "Usage:" in r.output


@pytest.mark.parametrize("path,cmd", COMMANDS, ids=IDS)
def test_unknown_option_exits_2(cli, path, cmd):
    _assert_usage_error(cli([*path, "--no-such-option-xyz"]), "No such option", "--no-such-option-xyz")


@pytest.mark.parametrize("path,cmd", [(p, c) for p, c in COMMANDS if any(x.required for x in c.params)],
                         ids=[i for i, (p, c) in zip(IDS, COMMANDS) if any(x.required for x in c.params)])
def test_missing_required_parameter_exits_2(cli, path, cmd):
    r = cli(list(path))
    # no_args_is_help commands print their help for a bare call; that is a usage error too (exit 2).
    _assert_usage_error(r, "Usage:" if getattr(cmd, "no_args_is_help", False) else "Missing")


def _below_min_options():
    for path, cmd in COMMANDS:
        for p in cmd.params:
            lo = getattr(p, "min", None)
            if lo is not None and getattr(p, "opts", None) and p.opts[0].startswith("--"):
                yield path, p.opts[0], int(lo) - 1


BELOW = list(_below_min_options())


@pytest.mark.parametrize("path,opt,value", BELOW, ids=[f"{' '.join(p)} {o}" for p, o, _ in BELOW])
def test_option_below_its_minimum_exits_2(cli, path, opt, value):
    _assert_usage_error(cli([*path, opt, str(value)]), "Invalid value", opt)


def test_gate_typo_in_config_option_is_a_usage_error_not_a_regression(cli, tmp_path):
    r = cli(["gate", "--confg", tmp_path / "x.toml"])
    _assert_usage_error(r, "No such option: --confg")


def test_batch_zero_is_a_usage_error(cli, tmp_path):
    _assert_usage_error(cli(["fid", "--batch", "0", tmp_path, tmp_path]), "--batch")


def test_console_entry_point_exits_2_on_a_usage_error(tmp_path):
    """The real entry point (sys.exit through typer's main), as the issue reproduced it."""
    import subprocess
    import sys

    r = subprocess.run([sys.executable, "-m", "ambient_eval", "gate", "--confg", str(tmp_path / "x.toml")],
                       capture_output=True, text=True, timeout=60)
    assert r.returncode == 2, r.stderr
    assert "No such option: --confg" in r.stderr and "Internal error" not in r.stderr
