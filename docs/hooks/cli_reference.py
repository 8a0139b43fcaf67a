"""MkDocs hook: the CLI reference page (cli.md), replaced at build time by one generated from the Typer app.

Every command and subcommand of `ambient_eval.cli.app.app`, its docstring (the `Examples:` section
as a code block) and every argument and option with its help and default, read from the same
objects `--help` prints, so the page cannot drift from the tool. Also adds files that live outside
docs/ (a figure an experiment writes) to the site.
"""
from __future__ import annotations

import html
import re
import sys
from pathlib import Path

ROOT = Path(__file__).resolve().parents[2]
CLI_PAGE = "cli.md"
# Files outside docs/ that pages show: site path -> repository path.
EXTERNAL_FILES = {
    "img/regimes_closed_form.svg": "experiments/results/regimes_closed_form/regimes_closed_form.svg",
}
_DEFAULT = re.compile(r"\s*\[([^\[\]]*)\]\s*$")


def _cell(text: str, code: bool = False) -> str:
    """Markdown table cell on one line; outside a code span HTML-escaped, pipes escaped."""
    text = " ".join(text.split())
    if code:       # Python-Markdown's tables do not split on a pipe inside a code span
        return text
    return html.escape(text, quote=False).replace("|", "\\|")


def _docstring(text: str) -> list[str]:
    """Command help as Markdown: prose paragraphs, then `Examples:` as one bash block."""
    body, _, examples = text.partition("\nExamples:")
    out = [html.escape(p.strip(), quote=False) for p in body.strip().split("\n\n") if p.strip()]
    out = [" ".join(p.split()) for p in out]
    lines = [ln.strip() for ln in examples.splitlines() if ln.strip()]
    if lines:
        out += ["**Examples**", "```text\n" + "\n".join(lines) + "\n```"]
    return out


def _params(cmd, ctx) -> list[str]:
    rows = []
    for p in cmd.params:
        if getattr(p, "hidden", False):
            continue
        rec = p.get_help_record(ctx)
        if rec is None:
            continue
        decl, help_text = rec
        default = ""
        m = _DEFAULT.search(help_text)
        if m:
            help_text = help_text[:m.start()]
            parts = [s.strip().removeprefix("default: ") for s in m.group(1).split(";")]
            default = "; ".join(s for s in parts if s != "required")
            if "required" in parts:
                default = ("required; " + default).rstrip("; ")
        kind = "argument" if p.param_type_name == "argument" else "option"
        rows.append(f"| `{_cell(decl, code=True)}` | {kind} | {_cell(help_text)} | {_cell(default)} |")
    if not rows:
        return []
    return ["\n".join(["| name | kind | description | default, range |", "| --- | --- | --- | --- |", *rows])]


def _walk(cmd, ctx, path: list[str], level: int, out: list[str]) -> None:
    title = " ".join(path)
    out.append(f"{'#' * level} `{title}`")
    out.append(f"```text\n{cmd.get_usage(ctx).strip()}\n```")
    out += _docstring(cmd.help or "")
    out += _params(cmd, ctx)
    if hasattr(cmd, "list_commands"):
        for name in cmd.list_commands(ctx):
            sub = cmd.get_command(ctx, name)
            if sub is None or getattr(sub, "hidden", False):
                continue
            _walk(sub, sub.context_class(sub, parent=ctx, info_name=name), [*path, name], min(level + 1, 4), out)


def cli_markdown() -> str:
    """The whole CLI reference as Markdown (also used by tests)."""
    if str(ROOT) not in sys.path:       # document this checkout, not another installed copy
        sys.path.insert(0, str(ROOT))
    import typer

    from ambient_eval.cli.app import app

    root = typer.main.get_command(app)      # a click (or Typer's vendored click) Group
    ctx = root.context_class(root, info_name="ambient-eval")
    out = ["# CLI reference", "",
           "Generated when the site is built from the command-line app itself (the objects `--help` "
           "prints), so it lists every command, subcommand, argument and option of this version. "
           "The same text: `ambient-eval COMMAND --help`."]
    names = [n for n in root.list_commands(ctx) if not getattr(root.get_command(ctx, n), "hidden", False)]
    out.append("Commands: " + " · ".join(f"[`{n}`](#ambient-eval-{n})" for n in names))
    _walk(root, ctx, ["ambient-eval"], 2, out)
    return "\n\n".join(out) + "\n"


def on_page_markdown(markdown, page, config, files):
    """docs/cli.md is a placeholder (for readers of the repository): the site gets the generated page."""
    return cli_markdown() if page.file.src_uri == CLI_PAGE else markdown


def on_files(files, config):
    """Add the figures that live outside docs/ to the site's files."""
    from mkdocs.structure.files import File

    for dest, src in EXTERNAL_FILES.items():
        files.append(File.generated(config, dest, abs_src_path=str(ROOT / src)))
    return files
