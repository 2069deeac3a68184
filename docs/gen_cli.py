"""Write docs/cli.md from the lpad app itself (``python docs/gen_cli.py``).

tests/docs/test_docs_cli.py checks the file is current, so the reference never drifts from the code.
"""

from __future__ import annotations

import sys
from pathlib import Path
from typing import Any

import click
import typer.main

HEADER = """# `lpad` reference

Generated from the command line itself by `python docs/gen_cli.py`; do not edit by hand.
FireWorks' underscore names (`get_fws`, `rerun_fws`, ...) are the documented ones; the dash-case
forms (`get-fws`, `rerun-fws`, ...) work too.

Every command prints what it did or found on stdout (with `--json`, every listing and every
operation prints JSON there and nothing else); messages, warnings, the progress display and
Prefect's log lines go to stderr. Bad input: one `Error: ...` line on stderr, exit 2, nothing
written. `lpad -h` and `lpad COMMAND -h` fit an 80-column terminal; `lpad --install-completion`
adds tab completion to your shell.
"""


def _section(cmd: Any, path: list[str], level: int) -> list[str]:
    ctx = click.Context(cmd, info_name=" ".join(path))
    out = [f"{'#' * level} `{' '.join(path)}`", ""]
    help_text = (cmd.help or "").strip()
    if help_text:
        out += [help_text, ""]
    out += ["```text", cmd.get_usage(ctx).strip(), "```", ""]
    from prefect_fireworks.cli.help import help_records

    rows = []
    args, opts = help_records(cmd, ctx)
    for names, text in args + opts:
        rows.append(f"- `{names}`: {text.strip()}" if text else f"- `{names}`")
    if rows:
        out += [*rows, ""]
    if hasattr(cmd, "list_commands"):
        for name in sorted(cmd.list_commands(ctx)):
            sub = cmd.get_command(ctx, name)
            if sub is None or sub.hidden:
                continue
            out += _section(sub, [*path, name], min(level + 1, 4))
    return out


def render() -> str:
    """The reference as markdown."""
    from prefect_fireworks.cli import app

    group = typer.main.get_command(app)
    lines = [HEADER, *_section(group, ["lpad"], 2)]
    return "\n".join(lines).rstrip() + "\n"


if __name__ == "__main__":
    target = Path(__file__).with_name("cli.md")
    target.write_text(render())
    sys.stdout.write(f"wrote {target}\n")
