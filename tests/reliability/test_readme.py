"""Docs and tool agree: every `ambient-eval` command of README.md and of the site's pages (docs/*.md)
parses against the real CLI, and the ones that fit a test are executed on small data, as are the
Python snippets and the gate configs.

Tiers (each documented command and snippet is in exactly one; the lists below say which and why):
  RUN        executed verbatim in a sandbox whose paths (samples/, data/cifar10-train.zip,
             reference_stats/, results/run1, eval/step-20000, ...) hold small stand-ins, and
             ambient_eval/demo/checkpoints/ the demo's shipped models (the README's examples);
             Inception uses seeded random weights placed in $AMBIENT_EVAL_WEIGHTS under the
             official name.
  PARSE      needs something a test cannot have (official weights of VGG16/DINOv2/SSCD, a trained
             checkpoint, a GPU, minutes of training, CI secrets): its subcommand and every option are
             checked against the command's real `--help`.
Non-`ambient-eval` lines (make, benchmarks, experiments, apt-get) are documentation of other tools.
"""
from __future__ import annotations

import re
import shlex
import zipfile
from pathlib import Path

import numpy as np
import pytest

from tests.conftest import random_images, write_images

ROOT = Path(__file__).resolve().parents[2]
README = ROOT / "README.md"
README_MAX_LINES = 250
# Where documented commands live: the README and every page of the site.
SOURCES = (README, *sorted((ROOT / "docs").glob("*.md")))
# Python blocks that are executed: all but ARCHITECTURE.md's (interface sketches, not programs).
PY_SOURCES = tuple(s for s in SOURCES if s.name != "ARCHITECTURE.md")

# Commands executed verbatim (prefix of the documented line, in the order they run: later ones use
# the files earlier ones wrote). The README's examples (demo checkpoints, builtin digits) first.
RUN = (
    "ambient-eval sample ambient_eval/demo/checkpoints/ambient.safetensors --seeds 0-255",
    "ambient-eval sample ambient_eval/demo/checkpoints/naive.safetensors --seeds 0-255",
    "ambient-eval fid ambient.npz builtin:digits-16:test",
    "ambient-eval fid naive.npz builtin:digits-16:test",
    "ambient-eval memorization naive.npz --train builtin:digits-16:train",
    "ambient-eval reproducibility ambient_eval/demo/checkpoints/clean-A.safetensors",
    "ambient-eval gate --config gate.toml --baseline eval/ambient eval/naive eval/mem-naive",
    "ambient-eval stats data/cifar10-train.zip -o reference_stats/cifar10-train.npz",
    "ambient-eval fid samples/ reference_stats/cifar10-train.npz",
    "ambient-eval fid --compare results/run1/results.json --compare results/run2/results.json",
    "ambient-eval memorization samples.npz --train train.zip --embed pixel",
    "ambient-eval history record eval/step-20000 --run ambient --step 20000",
    "ambient-eval history --metric fid --report reports/fid-trend.html",
    "ambient-eval history --run ambient --no-report",
)
# Exit code a RUN command must give where it is not 0 (the README's gate example shows a regression).
RUN_EXIT = {"ambient-eval gate --config gate.toml --baseline eval/ambient": 1}
# What the README's example outputs must contain when the commands run here (the numbers it quotes).
README_OUTPUT = {
    "ambient-eval fid ambient.npz builtin:digits-16:test": "fd_pixel_8   5.4939",
    "ambient-eval reproducibility ambient_eval/demo/checkpoints/clean-A.safetensors": "clean-A | ambient: 0.7656",
    "ambient-eval gate --config gate.toml --baseline eval/ambient": "Gate FAILED: 2 of 3 rules failed",
}
# Python snippets that are only compiled (their first line identifies them), with the reason.
PY_PARSE_ONLY: dict[str, str] = {}
# Python snippets whose printed output the README quotes: a line of the snippet -> a line of its output
# (checked in what the snippet prints and in the README, so the quoted numbers cannot drift).
PY_OUTPUT = {'r = ae.fid("builtin:digits-16:train", "builtin:digits-16:test"': "0  fd_pixel_8  1.808776"}
# Names a snippet uses without defining (README prose explains them).
PY_GLOBALS = {"uint8_nhwc_array": lambda: random_images(4)}


def _blocks(lang: str, sources=SOURCES) -> list[str]:
    return [b for src in sources for lg, b in re.findall(r"```(\w*)\n(.*?)```", src.read_text(), re.S)
            if lg == lang]


def readme_commands(sources=SOURCES) -> list[str]:
    """Every ambient-eval command line of the bash blocks of `sources` (README and docs pages by
    default; continuations joined, comments cut)."""
    out = []
    for block in _blocks("bash", sources):
        text = block.replace("\\\n", " ")
        for line in text.splitlines():
            line = line.split(" # ")[0].split("   #")[0].strip()
            if "-m ambient_eval " in line:
                line = "ambient-eval " + line.split("-m ambient_eval ", 1)[1]
            if line.startswith("ambient-eval ") or line.startswith(".venv/bin/ambient-eval "):
                out.append(line.replace(".venv/bin/", ""))
    return out


def _help(args: list[str]) -> tuple[int, str]:
    from typer.testing import CliRunner

    from ambient_eval.cli.app import app

    r = CliRunner().invoke(app, [*args, "--help"], env={"COLUMNS": "250"})
    return r.exit_code, r.output


def _split_command(argv: list[str]) -> tuple[list[str], list[str]]:
    """(subcommand path, option names) of an ambient-eval argv (without the program name)."""
    path = [argv[0]]
    if len(argv) > 1 and not argv[1].startswith("-"):
        code, text = _help([argv[0], argv[1]])
        if code == 0 and "Usage: ambient-eval " + f"{argv[0]} {argv[1]}" in " ".join(text.split()):
            path.append(argv[1])
    opts = [a.split("=")[0] for a in argv[len(path):] if a.startswith("-") and not re.match(r"^-\d", a)]
    return path, opts


def test_readme_has_commands_and_run_list_matches():
    assert len(readme_commands((README,))) >= 10, "the README shows one example per question"
    cmds = readme_commands()
    assert len(cmds) >= 60
    for prefix in RUN:
        assert any(c.startswith(prefix) for c in cmds), f"RUN entry no longer in README or docs/: {prefix}"
    for prefix in (*RUN_EXIT, *README_OUTPUT):
        assert any(r.startswith(prefix) for r in RUN), prefix


def test_readme_is_short():
    n = len(README.read_text().splitlines())
    assert n <= README_MAX_LINES, f"README.md has {n} lines; move detail into a page of docs/ (the site)"


@pytest.mark.parametrize("line", readme_commands())
def test_every_readme_command_parses(line):
    argv = shlex.split(line.replace('"$GITHUB_STEP_SUMMARY"', "summary.md"))[1:]
    path, opts = _split_command(argv)
    code, text = _help(path)
    assert code == 0, f"`ambient-eval {' '.join(path)}` does not exist: {text[-300:]}"
    flat = " ".join(text.split())
    for o in opts:
        assert re.search(rf"(?<![\w-]){re.escape(o)}(?![\w-])", flat), \
            f"README or docs/ uses {o} but `ambient-eval {' '.join(path)} --help` does not list it"


@pytest.fixture(scope="module")
def sandbox(tmp_path_factory, inception_weights):
    """A folder with small stand-ins for every path the RUN commands and snippets use."""
    from ambient_eval.results.envelope import Results

    t = tmp_path_factory.mktemp("readme")
    write_images(t / "samples", random_images(12, seed=1))
    write_images(t / "train_imgs", random_images(12, seed=2))
    (t / "data").mkdir()
    for name in ("data/cifar10-train.zip", "train.zip"):
        with zipfile.ZipFile(t / name, "w") as z:
            for p in sorted((t / "train_imgs").iterdir()):
                z.write(p, p.name)
    np.savez(t / "samples.npz", images=random_images(12, seed=1))
    import tarfile

    for cls in ("cat", "dog"):
        write_images(t / "tarsrc" / "train" / cls, random_images(22, size=8, seed=len(cls)))  # read([0, 17, 42])
    with tarfile.open(t / "data" / "cifar10-jpeg.tar", "w") as tf:
        tf.add(t / "tarsrc" / "train", arcname="train")
    settings = {"extractor": "inception", "mode": "tf-compat", "weights_sha256": "ab" * 32,
                "n_generated": 10000, "reference_fingerprint": "cd" * 32}
    for rel, v in (("results/run1", 3.0), ("results/run2", 2.5), ("eval/step-20000", 2.0)):
        Results(kind="fid", metrics={"fid": v}, settings=settings).save(t / rel)
    (t / "ambient_eval" / "demo").mkdir(parents=True)
    (t / "ambient_eval" / "demo" / "checkpoints").symlink_to(ROOT / "ambient_eval" / "demo" / "checkpoints")
    (t / "gate.toml").write_text(_blocks("toml", (README,))[0])
    w = t / "weights"
    w.mkdir()
    (w / "weights-inception-2015-12-05-6726825d.pth").symlink_to(inception_weights)
    return t


@pytest.fixture
def in_sandbox(sandbox, monkeypatch):
    monkeypatch.chdir(sandbox)
    monkeypatch.setenv("AMBIENT_EVAL_WEIGHTS", str(sandbox / "weights"))
    monkeypatch.setenv("AMBIENT_EVAL_REPORTS", str(sandbox / "reports"))
    monkeypatch.setenv("AMBIENT_EVAL_PROGRESS", "0")
    return sandbox


@pytest.mark.slow
def test_run_readme_commands(in_sandbox):
    from typer.testing import CliRunner

    from ambient_eval.cli.app import app

    cmds = readme_commands()
    for prefix in RUN:
        line = next(c for c in cmds if c.startswith(prefix))
        r = CliRunner().invoke(app, shlex.split(line)[1:])
        code = next((c for p, c in RUN_EXIT.items() if line.startswith(p)), 0)
        assert r.exit_code == code, f"documented command failed: {line}\n{r.output[-1500:]}"
        for p, text in README_OUTPUT.items():
            if line.startswith(p):
                assert text in r.output and text in README.read_text(), (line, text, r.output[-1500:])
    assert (in_sandbox / "reference_stats" / "cifar10-train.npz").is_file()
    assert (in_sandbox / "reports" / "fid-trend.html").exists() or (in_sandbox / "reports").is_dir()


@pytest.mark.slow
def test_run_readme_python_snippets(in_sandbox, monkeypatch):
    import ambient_eval.api as api

    # The README's KID example uses the default subsets of 1000 images; the stand-in data has 12.
    monkeypatch.setitem(api.fid.__kwdefaults__, "kid_subset_size", 10)
    (in_sandbox / "reference_stats").mkdir(exist_ok=True)
    snippets = _blocks("python", PY_SOURCES)
    assert len(snippets) >= 6
    for code in snippets:
        first = code.strip().splitlines()[0]
        compiled = compile(code, "README.md or docs/", "exec")
        if first in PY_PARSE_ONLY:
            continue
        g = {"__name__": "readme"}
        g.update({k: f() for k, f in PY_GLOBALS.items() if re.search(rf"\b{k}\b", code)})
        if not (in_sandbox / "reference_stats" / "cifar10-train.npz").exists() and "reference_stats" in code \
                and "compute_stats" not in code:
            from ambient_eval import compute_stats

            compute_stats("data/cifar10-train.zip", features="inception").save("reference_stats/cifar10-train.npz")
        import contextlib
        import io

        printed = io.StringIO()
        with contextlib.redirect_stdout(printed):
            exec(compiled, g)   # noqa: S102 - the docs' own code, on stand-in data
        for line, text in PY_OUTPUT.items():
            if line in code:
                assert text in printed.getvalue() and text in README.read_text(), (text, printed.getvalue())
    assert all(any(line in code for code in snippets) for line in PY_OUTPUT), "a PY_OUTPUT snippet is gone"


def test_readme_gate_config_loads(tmp_path):
    """The gate.toml examples of the README and the docs are valid configs for the real loader."""
    from ambient_eval.gate import load_config

    blocks = _blocks("toml")
    assert blocks
    for i, text in enumerate(blocks):
        p = tmp_path / f"gate{i}.toml"
        p.write_text(text)
        assert load_config(p).rules
