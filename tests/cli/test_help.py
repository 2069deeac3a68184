"""Every ``lpad`` and ``rlaunch`` help page reads cleanly in an 80-column terminal."""

from __future__ import annotations

import re
from collections.abc import Iterator
from typing import Any

import pytest
import typer.main
from typer.testing import CliRunner

from prefect_fireworks.cli import app as lpad_app
from prefect_fireworks.cli.rlaunch import app as rlaunch_app

WIDTH = 80


def _commands(group: Any, path: list[str]) -> Iterator[list[str]]:
    yield path
    ctx = group.make_context(path[0], ["--help"], resilient_parsing=True)
    for name in getattr(group, "list_commands", lambda _ctx: [])(ctx):
        sub = group.get_command(ctx, name)
        if sub is None or sub.hidden:
            continue
        if hasattr(sub, "list_commands"):
            yield from _commands(sub, [*path, name])
        else:
            yield [*path, name]


def _pages() -> list[tuple[Any, list[str]]]:
    pages = []
    for app, prog in ((lpad_app, "lpad"), (rlaunch_app, "rlaunch")):
        group = typer.main.get_command(app)
        pages += [(app, path) for path in _commands(group, [prog])]
    return pages


PAGES = _pages()


def test_every_command_is_covered() -> None:
    names = {" ".join(path) for _, path in PAGES}
    assert {"lpad", "lpad rerun_fws", "lpad get_fws", "lpad server start", "rlaunch"} <= names
    assert len(names) > 25


@pytest.mark.parametrize(("app", "path"), PAGES, ids=[" ".join(p) for _, p in PAGES])
def test_help_fits_80_columns(app: Any, path: list[str]) -> None:
    result = CliRunner().invoke(app, [*path[1:], "--help"], env={"COLUMNS": str(WIDTH)})
    assert result.exit_code == 0, result.output
    text = result.stdout
    assert text.startswith("Usage:"), text
    too_long = [line for line in text.splitlines() if len(line) > WIDTH]
    assert not too_long, too_long
    assert "…" not in text  # no truncated option names
    assert not re.search(r"<(bool|str|int|float)>", text)  # plain metavars: TEXT, INTEGER
    assert "``" not in text  # no reStructuredText markup
    assert "│" not in text  # no boxes
    # each option is listed by at most one short and one long name
    for line in text.split("Options:", 1)[-1].splitlines():
        first = line.strip().split("  ")[0]
        if first.startswith("-"):
            names = [n for n in re.split(r"[ ,/]+", first) if n.startswith("-")]
            assert len([n for n in names if not n.startswith("--no-")]) <= 2, line


def test_completion_is_offered() -> None:
    text = CliRunner().invoke(lpad_app, ["--help"], env={"COLUMNS": "80"}).stdout
    assert "--install-completion" in text and "--show-completion" in text
    # What the installed script asks: the shell passes the words typed so far (typer prints
    # the script for the shell it detects from the parent processes, which differ between a
    # terminal, CI and pytest, so the protocol itself is checked).
    for words, cword, expected in (
        ("lpad get_", "1", ["get_fws", "get_wflows", "get_launchdir"]),
        ("lpad rerun_fws --task", "2", ["--task-level", "--task_level"]),
    ):
        env = {"_LPAD_COMPLETE": "complete_bash", "COMP_WORDS": words, "COMP_CWORD": cword}
        done = CliRunner().invoke(lpad_app, [], env=env, prog_name="lpad")
        assert done.exit_code == 0, done.output
        assert done.stdout.split() == expected
