"""What a user sees while ``lpad run_workflow`` runs, and after a mass operation.

``lpad`` runs as a user runs it (a subprocess, 80 columns). On a terminal its output is fed
through a terminal emulator (pyte) and the screen is checked: the done/total bar and, above
it, every Prefect log line and every Firetask line whole, on a line of its own. Not on a
terminal, the output is plain lines with no escape sequence.
"""

from __future__ import annotations

import json
import os
import re
import subprocess
import sys
from pathlib import Path
from typing import Any

import pyte
import pytest

from prefect_fireworks.core.models import Firework, Workflow

LOG_LINE = re.compile(r"^\d\d:\d\d:\d\d\.\d{3} \| (INFO|WARNING|ERROR) +\| (Flow|Task) run '")


def _five(lp: Any) -> int:
    fws: list[Firework] = []
    for i in range(1, 6):
        task = {"_fw_name": "ScriptTask", "script": f"echo firetask-says-{i}"}
        fws.append(Firework([task], name=f"step{i}", parents=fws[-1:]))
    return min(lp.add_wf(Workflow(fws, name="five")).values())


def _lpad(args: list[str], tmp_path: Path, terminal: bool) -> subprocess.CompletedProcess[bytes]:
    from prefect.settings import PREFECT_API_URL

    env = {
        **os.environ,
        "PREFECT_API_URL": str(PREFECT_API_URL.value()),
        "PREFECT_INTEGRATIONS_FIREWORKS_LAUNCH_ROOT": str(tmp_path),
        "COLUMNS": "80",
        "LINES": "50",
    }
    for name in ("TTY_COMPATIBLE", "FORCE_COLOR", "NO_COLOR", "TTY_INTERACTIVE"):
        env.pop(name, None)
    if terminal:
        env["TTY_COMPATIBLE"] = "1"  # rich's switch for "this stream is a terminal"
    lpad = str(Path(sys.executable).parent / "lpad")
    return subprocess.run(
        [lpad, *args],
        env=env,
        cwd=tmp_path,
        stdout=subprocess.PIPE,
        # on a terminal, both streams go to the same screen
        stderr=subprocess.STDOUT if terminal else subprocess.PIPE,
        timeout=300,
    )


def _screen(raw: bytes) -> list[str]:
    """The lines an 80-column terminal shows after ``raw`` (trailing blanks dropped)."""
    screen = pyte.Screen(80, 200)
    pyte.ByteStream(screen).feed(raw.replace(b"\n", b"\r\n"))
    lines = [line.rstrip() for line in screen.display]
    while lines and not lines[-1]:
        lines.pop()
    return lines


def _unwrap(lines: list[str]) -> list[str]:
    """Join the lines the terminal wrapped at 80 columns back into the lines written."""
    out: list[str] = []
    for line in lines:
        wrapped = bool(out) and out[-1] != "" and len(out[-1]) % 80 == 0
        if wrapped and line and not line.startswith(("firetask", "run_")):
            out[-1] += line
        else:
            out.append(line)
    return out


@pytest.mark.usefixtures("prefect_harness")
def test_run_workflow_on_a_terminal_shows_done_of_total_below_intact_log_lines(
    lp: Any, tmp_path: Path
) -> None:
    wf = _five(lp)
    proc = _lpad(["run_workflow", str(wf)], tmp_path, terminal=True)
    screen = _screen(proc.stdout)
    assert proc.returncode == 0, "\n".join(screen)
    assert all(len(line) <= 80 for line in screen)
    shown = _unwrap(screen)
    # the bar, at 5/5 when the run ended, then the result
    bars = [line for line in shown if line.startswith(f"run_workflow {wf} ")]
    assert len(bars) == 1, screen
    assert "5/5" in bars[0] and "5 COMPLETED" in bars[0], bars
    assert shown[-1].startswith("Completed: workflow")
    assert shown.index(bars[0]) == len(shown) - 2
    lines = shown[: shown.index(bars[0])]
    # every Prefect line starts where a line starts, and nothing is glued to one
    logs = [line for line in lines if " | INFO " in line]
    assert len(logs) >= 7 and all(LOG_LINE.match(line) for line in logs), lines
    finished = [line for line in logs if "Task run 'fw-" in line and "Finished in state" in line]
    assert len(finished) == 5, lines
    # each Firetask's output on its own line, before its task run's "Finished" line
    said = [line for line in lines if "firetask-says" in line]
    assert said == [f"firetask-says-{i}" for i in range(1, 6)], lines
    for i in range(1, 6):
        step = lines.index(f"firetask-says-{i}")
        done = next(k for k, line in enumerate(lines) if f"-step{i}' - Finished" in line)
        assert step < done


@pytest.mark.usefixtures("prefect_harness")
def test_run_workflow_not_on_a_terminal_prints_plain_lines(lp: Any, tmp_path: Path) -> None:
    wf = _five(lp)
    proc = _lpad(["run_workflow", str(wf), "--json"], tmp_path, terminal=False)
    err = proc.stderr.decode()
    assert proc.returncode == 0, err
    assert sorted(json.loads(proc.stdout)["completed"]) == list(range(1, 6))  # stdout: JSON only
    assert "\x1b" not in err and "\r" not in err  # no escape sequence, no redrawn line
    lines = err.splitlines()
    assert f"run_workflow {wf}: 5/5 5 COMPLETED" in lines
    logs = [line for line in lines if " | INFO " in line]
    assert len(logs) >= 7 and all(LOG_LINE.match(line) for line in logs), lines
    # with --json the Firetasks' output goes to stderr, each line whole
    assert [line for line in lines if "firetask-says" in line] == [
        f"firetask-says-{i}" for i in range(1, 6)
    ]


@pytest.mark.usefixtures("prefect_harness")
def test_rapidfire_counts_what_it_finished(lp: Any, run_cli: Any, tmp_path: Path) -> None:
    for _ in range(3):
        lp.add_wf(Firework([{"_fw_name": "ScriptTask", "script": "true"}]))
    res = run_cli(["rapidfire", "--sleep", "0", "--launch-root", str(tmp_path)])
    assert "rapidfire: 3/3 3 COMPLETED" in res.stderr.splitlines()


def test_mass_operation_progress_not_on_a_terminal(
    monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]
) -> None:
    from prefect_fireworks.cli import progress

    monkeypatch.setattr(progress, "PLAIN_EVERY", 0.0)  # a line at each step
    with progress.count_progress("Rerunning", 3) as advance:
        advance(1)
        advance(2)
    with progress.count_progress("Rerunning", 3, enabled=False) as advance:
        advance(3)
    assert capsys.readouterr().err.splitlines() == ["Rerunning: 1/3", "Rerunning: 3/3"]


def test_a_mass_operation_on_many_fireworks_prints_counts_not_a_table(
    lp: Any, run_cli: Any
) -> None:
    lp.bulk_add_wfs([Firework([{"_fw_name": "ScriptTask", "script": "true"}]) for _ in range(25)])
    res = run_cli(["pause_fws", "-s", "READY", "--password", _today()])
    assert res.stdout.splitlines() == [
        "pause_fws: changed 25 Firework(s):",
        "  READY -> PAUSED: 25 (1, 2, 3, 4, 5, 6, 7, 8, 9, 10, 11, ... 25 (25 ids))",
        "  in 25 workflow(s)",
        "  (--json lists every Firework)",
        "pause_fws: 25 Firework(s) changed.",
    ]
    # a few: one table row each
    res = run_cli(["resume_fws", "-i", "1,2"])
    assert "│ 1 " in res.stdout and "│ 2 " in res.stdout and "PAUSED -> READY" in res.stdout


def _today() -> str:
    from datetime import date

    return date.today().strftime("%Y-%m-%d")
