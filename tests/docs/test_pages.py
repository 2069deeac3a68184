"""The shell blocks of docs/getting-started.md and docs/rerun.md run in order, as a reader would.

Each ``$ command`` line of a ```console block runs in one temporary directory per page (the
repository's ``examples/`` is copied there, so ``examples/...`` paths work as in a clone). The
lines under a command must appear in its output (stdout + stderr, whitespace-normalised; ``...``
inside a line matches anything). The exit status must be 0, or 2 when an expected line starts
with ``Error:``, or N when the command ends with the comment ``# exit N``.

``lpad`` runs in-process (typer's runner) on the test's database; other commands run in bash
with the same environment. Commands listed in `RUN_BY_CI` (the README's set-up commands) are
not run here: .ci/run runs them word for word.
"""

from __future__ import annotations

import os
import re
import shlex
import shutil
import subprocess
import sys
from dataclasses import dataclass, field
from datetime import date
from pathlib import Path
from typing import Any

import pytest

ROOT = Path(__file__).resolve().parents[2]
DOCS = ROOT / "docs"

#: The database the tutorial exports (it starts on an empty one, so its fw_ids are 1, 2, 3).
TUTORIAL_DB = "rerun_tutorial"

RUN_BY_CI = {
    'python3 -m venv .venv && .venv/bin/pip install -e ".[embedded]"',
    "source .venv/bin/activate",
}


@dataclass
class Step:
    command: str
    expected: list[str] = field(default_factory=list)
    code: int = 0


def steps(page: str) -> list[Step]:
    """The commands of a page's ```console blocks, in order, with their expected output."""
    out: list[Step] = []
    text = (DOCS / page).read_text()
    for block in re.findall(r"```console\n(.*?)```", text, flags=re.S):
        for line in block.splitlines():
            if line.startswith("$ "):
                command, _, comment = line[2:].partition("  # ")
                match = re.match(r"exit (\d+)", comment.strip())
                out.append(Step(command.strip(), code=int(match.group(1)) if match else 0))
            elif line.strip():
                out[-1].expected.append(line.strip())
    for step in out:
        if any(e.startswith("Error:") for e in step.expected):
            step.code = 2
    return out


def _norm(text: str) -> str:
    return " ".join(text.split())


def _matches(expected: str, output: str) -> bool:
    parts = [re.escape(_norm(p)) for p in expected.split("...")]
    return re.search(".*?".join(parts), _norm(output)) is not None


SHELL = re.compile(r"[|;&<>]")


def lpad_in_process(args: list[str]) -> Any:
    """``lpad ARGS`` in this process (typer's runner), whatever the exit status."""
    from typer.testing import CliRunner

    from prefect_fireworks.cli import app

    return CliRunner().invoke(app, args, catch_exceptions=False)


def run_page(page: str, workdir: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    """Run every command of ``page`` in ``workdir`` and check its output and exit status.

    ``export NAME=VALUE`` sets the variable for the later commands (in-process ones too); a
    command with a pipe or a redirection runs in bash, ``lpad`` included.
    """
    shutil.copytree(ROOT / "examples", workdir / "examples")
    from prefect.logging.configuration import setup_logging
    from prefect.settings import PREFECT_API_URL

    # Bind Prefect's console handler to this process's stderr now, not to the stream of the
    # first in-process lpad run (typer's runner closes it afterwards).
    setup_logging()

    env = {
        **os.environ,
        "PATH": f"{Path(sys.executable).parent}{os.pathsep}{os.environ['PATH']}",
        # the harness's API (it is a setting of this process, not an environment variable)
        "PREFECT_API_URL": str(PREFECT_API_URL.value()),
    }
    today = date.today().strftime("%Y-%m-%d")
    for step in steps(page):
        if step.command in RUN_BY_CI:
            continue
        if step.command.startswith("export "):
            name, _, value = step.command.removeprefix("export ").partition("=")
            monkeypatch.setenv(name, value)
            env[name] = value
            continue
        if step.command.startswith("lpad ") and not SHELL.search(step.command):
            args = shlex.split(step.command.replace("$(date +%F)", today))
            res = lpad_in_process(args[1:])
            code, output = res.exit_code, res.stdout + res.stderr
        else:
            proc = subprocess.run(
                ["bash", "-c", step.command],
                cwd=workdir,
                env=env,
                capture_output=True,
                text=True,
                timeout=300,
            )
            code, output = proc.returncode, proc.stdout + proc.stderr
        if os.environ.get("DOCS_TEST_VERBOSE"):
            print(f"$ {step.command}  [exit {code}]\n{output}", file=sys.__stderr__)
        assert code == step.code, (step.command, code, output)
        for line in step.expected:
            assert _matches(line, output), (step.command, line, output)


def test_pages_have_their_promised_content():
    rerun = (DOCS / "rerun.md").read_text()
    for needle in (
        "!!! warning",
        "-lm",
        "--task-level",
        "--copy-data",
        "--previous-dir",
        "--clear-recovery",
        "--dry-run",
        "-n ",
        "-s ",
        "-q ",
        "get_fws",
    ):
        assert needle in rerun, needle
    assert len(steps("rerun.md")) >= 15
    assert "examples/rerun_tutorial.yaml" in rerun


@pytest.mark.usefixtures("prefect_harness")
def test_rerun_tutorial_runs_command_for_command(lp, tmp_path, monkeypatch):
    monkeypatch.chdir(tmp_path)
    lp.client.drop_database(TUTORIAL_DB)
    try:
        run_page("rerun.md", tmp_path, monkeypatch)
    finally:
        lp.client.drop_database(TUTORIAL_DB)


@pytest.mark.usefixtures("prefect_harness")
def test_getting_started_runs_command_for_command(tmp_path, monkeypatch):
    """As on a fresh machine: no MongoDB configured, so the embedded server starts on demand
    (in the session's temporary PREFECT_INTEGRATIONS_FIREWORKS_HOME, stopped at the end)."""
    monkeypatch.delenv("PREFECT_INTEGRATIONS_FIREWORKS_MONGODB_URI", raising=False)
    monkeypatch.chdir(tmp_path)
    run_page("getting-started.md", tmp_path, monkeypatch)
