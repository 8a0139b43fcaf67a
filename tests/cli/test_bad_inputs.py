"""The bad-input table: every case in bad_input_cases.py exits 2 with one unwrapped paragraph that
names the problem, no traceback and nothing written to --out. In-process (CliRunner) and tiny inputs.

The table is also docs/bad-inputs.md; regenerate it with AMBIENT_EVAL_WRITE_DOCS=1.
"""
from __future__ import annotations

import os
import re
from pathlib import Path

import numpy as np
import pytest

from tests.cli.bad_input_cases import CASES
from tests.conftest import random_images, write_images

DOC = Path(__file__).resolve().parents[2] / "docs" / "bad-inputs.md"
_RESULTS: dict[str, tuple[str, int, str]] = {}


@pytest.fixture(scope="module")
def world(tmp_path_factory):
    from ambient_eval.api import compute_stats
    from ambient_eval.results.envelope import Results

    root = tmp_path_factory.mktemp("bad")
    w = {"root": root}
    for name, n, size, seed in (("gen", 6, 8, 1), ("ref", 6, 8, 2), ("ref16", 6, 16, 3)):
        write_images(root / name, random_images(n, size=size, seed=seed))
        w[name] = root / name
    write_images(root / "mixed", random_images(3, size=8, seed=4))
    write_images(root / "mixed", random_images(1, size=16, seed=5), start=3)
    write_images(root / "bad", random_images(3, size=8, seed=6))
    (root / "bad" / "000003.png").write_text("not a png")
    for name in ("seedsA", "seedsB"):
        write_images(root / name, random_images(4, size=8, seed=7))
    write_images(root / "named", random_images(4, size=8, seed=8))
    for i, p in enumerate(sorted((root / "named").iterdir())):
        p.rename(root / "named" / f"cat{i}.png")
    (root / "empty").mkdir()
    (root / "nonempty").mkdir()
    (root / "nonempty" / "keep.txt").write_text("x")
    (root / "notes.txt").write_text("just text")
    np.savez(root / "foo.npz", foo=np.zeros(3))
    for name, feat in (("stats", "pixel-8"), ("stats4", "pixel-4")):
        compute_stats(str(root / "ref"), features=feat, device="cpu", cache=False).save(root / f"{name}.npz")
    Results(kind="fid", metrics={"fid": 1.0}, settings={"extractor": "inception"}, versions={}).save(root / "res")
    Results(kind="memorization", metrics={"n": 1.0}, versions={}).save(root / "mem")
    (root / "bad.json").write_text('{"schema": ')
    (root / "other.json").write_text('{"hello": 1}')
    (root / "gate.toml").write_text('[[rule]]\nmetric = "fid"\nmax = 10\n')
    (root / "gatebad.toml").write_text('[[rule]\nmetric = "fid"\n')
    (root / "gateunk.toml").write_text('[[rule]]\nmetric = "fidd"\nmax = 10\n')
    (root / "model.pkl").write_bytes(b"\x80\x04K\x01.")
    import torch

    from ambient_eval.models import UNetConfig, build_native_model, native_config, save_native

    torch.manual_seed(0)
    cfg = native_config(UNetConfig.tiny(8))
    w["ckpt"] = save_native(build_native_model(cfg), root / "ckpt", cfg, {})
    from tests.models.edm_writer import write_snapshot

    rgb = dict(encoder_vae="rgb", encoder_class="StandardRGBEncoder")     # EDM2 pixel snapshots
    for name, kw in (("edm2", dict(rgb, label_dim=4)), ("edm2u", rgb), ("edm2r16", dict(rgb, img_resolution=16)),
                     ("edm2l5", dict(rgb, label_dim=5)), ("edmpkl", {})):
        write_snapshot(root / f"{name}.pkl", **kw)
        w[name] = root / f"{name}.pkl"
    (root / "dit").mkdir()
    (root / "dit" / "model_index.json").write_text('{"_class_name": "DiTPipeline"}')   # refused before loading
    w["dit"] = root / "dit"
    w.update(mixed=root / "mixed", bad=root / "bad", empty=root / "empty", nonempty=root / "nonempty",
             txt=root / "notes.txt", npz=root / "foo.npz", stats=root / "stats.npz", stats4=root / "stats4.npz",
             res=root / "res" / "results.json", mem=root / "mem" / "results.json", badjson=root / "bad.json",
             notres=root / "other.json", gate=root / "gate.toml", gatebad=root / "gatebad.toml",
             gateunk=root / "gateunk.toml", pkl=root / "model.pkl", seedsA=root / "seedsA",
             seedsB=root / "seedsB", named=root / "named", missing=root / "no-such-input", jsonl=root / "a.jsonl")
    return w


def _fill(arg: str, w: dict, out: Path) -> str:
    return re.sub(r"\{(\w+)\}", lambda m: str(out if m.group(1) == "out" else w[m.group(1)]), arg)


def _options(argv: list[str]) -> set[str]:
    import typer.main

    from ambient_eval.cli.app import app

    cmd = typer.main.get_command(app)
    for tok in argv:
        sub = getattr(cmd, "commands", {}).get(tok)
        if sub is None:
            break
        cmd = sub
    return {"--help", *(o for p in cmd.params for o in (*getattr(p, "opts", ()), *getattr(p, "secondary_opts", ())))}


def _unknown_suggestions(msg: str, argv: list[str]) -> set[str]:
    """Options named in `msg` that the command lacks; `ambient-eval CMD ...` spans name CMD's options."""
    bad: set[str] = set()
    for span in re.findall(r"`(ambient-eval [^`]*)`", msg):
        words = span.split()[1:]
        bad |= set(re.findall(r"(?<![\w-])--[a-z][a-z0-9-]*", span)) - _options(words)
    rest = re.sub(r"`ambient-eval [^`]*`", "", msg)
    return bad | (set(re.findall(r"(?<![\w-])--[a-z][a-z0-9-]*", rest)) - _options(argv))


def test_at_least_60_cases_with_unique_ids():
    ids = [c[0] for c in CASES]
    assert len(ids) >= 60 and len(set(ids)) == len(ids)


def _run_case(cli, world, case_id: str, argv: list[str], needle: str) -> tuple[str, int, str]:
    """Run one case, assert everything the table promises, return (command, exit code, message)."""
    out = world["root"] / f"out-{case_id}"
    args = [_fill(a, world, out) for a in argv]
    r = cli(args)
    err = r.stderr
    assert "Traceback" not in r.output and "Internal error" not in r.output, r.output
    assert r.exit_code == 2, r.output
    lines = [ln for ln in err.splitlines() if ln.strip()]
    assert len(lines) == 1 and lines[0].startswith("Error: "), err   # one unwrapped paragraph
    msg = lines[0][len("Error: "):]
    assert needle in msg, msg
    assert not out.exists() or not any(out.rglob("*")), sorted(out.rglob("*"))   # nothing written
    unknown = _unknown_suggestions(msg, args)
    assert not unknown, f"suggests {sorted(unknown)}, which the command lacks"
    norm = msg.replace(str(out), "<out>").replace(str(world["root"]), "<tmp>")
    return " ".join(argv[:2] if argv[1:2] == ["record"] else argv[:1]), r.exit_code, norm


@pytest.mark.parametrize("case_id,argv,needle", CASES, ids=[c[0] for c in CASES])
def test_bad_input(cli, world, case_id, argv, needle):
    _RESULTS[case_id] = _run_case(cli, world, case_id, argv, needle)


def _table() -> str:
    rows = ["# Bad inputs and their messages", "",
            "Generated by `tests/cli/test_bad_inputs.py` from `tests/cli/bad_input_cases.py` (regenerate with "
            "`AMBIENT_EVAL_WRITE_DOCS=1 pytest tests/cli/test_bad_inputs.py`). Every case exits with code 2, "
            "prints one unwrapped paragraph (no traceback) and leaves nothing in `--out`. `<tmp>` is the "
            "test's temporary folder, `<out>` the output folder that was never created.", "",
            "| case | command | exit | message |", "| --- | --- | --- | --- |"]
    for cid, _, _ in CASES:
        cmd, code, msg = _RESULTS[cid]
        rows.append(f"| {cid} | {cmd} | {code} | {msg.replace('|', chr(92) + '|')} |")
    return "\n".join(rows) + "\n"


def test_docs_table_matches(cli, world):
    for case_id, argv, needle in CASES:  # cases not run in this process (-k, xdist): run them here
        if case_id not in _RESULTS:
            _RESULTS[case_id] = _run_case(cli, world, case_id, argv, needle)
    text = _table()
    if os.environ.get("AMBIENT_EVAL_WRITE_DOCS") == "1":
        DOC.write_text(text)
    assert DOC.is_file(), "docs/bad-inputs.md is missing; run with AMBIENT_EVAL_WRITE_DOCS=1"
    assert DOC.read_text() == text, ("docs/bad-inputs.md is out of date; regenerate it with "
                                     "AMBIENT_EVAL_WRITE_DOCS=1 pytest tests/cli/test_bad_inputs.py")
