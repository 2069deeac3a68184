"""docs/rerun.md runs command for command: each ``$ lpad ...`` line of a ```console block is run
in order against a prepared LaunchPad; the lines under it must appear in its output, and an
``Error:`` line means exit status 2 (else 0)."""

from __future__ import annotations

import re
import shlex
from datetime import date
from pathlib import Path

from fwhelpers import greek_gods, run_all, run_fw

from prefect_fireworks.core.models import Firework, Workflow

DOC = Path(__file__).resolve().parents[1] / "docs" / "rerun.md"


def _steps() -> list[tuple[str, list[str]]]:
    steps: list[tuple[str, list[str]]] = []
    for block in re.findall(r"```console\n(.*?)```", DOC.read_text(), flags=re.S):
        for line in block.splitlines():
            if line.startswith("$ "):
                steps.append((line[2:], []))
            elif line.strip():
                steps[-1][1].append(line.strip())
    return steps


def test_doc_has_the_promised_content():
    text = DOC.read_text()
    for needle in ("WARNING", "-lm", "--task-level", "--copy-data", "--previous-dir"):
        assert needle in text
    assert "--clear-recovery" in text and len(_steps()) >= 10


def test_rerun_tutorial_runs_command_for_command(lp, run_cli, tmp_path, monkeypatch):
    monkeypatch.chdir(tmp_path)
    lp.add_wf(greek_gods())
    run_all(lp)
    tasks = [{"_fw_name": "ScriptTask", "script": f"echo {i}"} for i in range(3)]
    lp.add_wf(Workflow([Firework(tasks, name="relax")]))
    run_fw(lp, 15, fail_at=1)
    today = date.today().strftime("%Y-%m-%d")
    for command, expected in _steps():
        args = shlex.split(command.replace("$(date +%F)", today))
        assert args[0] == "lpad"
        code = 2 if any(e.startswith("Error:") for e in expected) else 0
        res = run_cli(args[1:], code=code)
        output = res.stdout + res.stderr
        for line in expected:
            assert " ".join(line.split()) in " ".join(output.split()), (command, line, output)
