"""The README's first commands on a fresh machine: the quickstart, then every follow-up command
it prints, each clean (exit 0, no traceback), with a fresh PREFECT_HOME and a fresh
PREFECT_INTEGRATIONS_FIREWORKS_HOME, from the repository as the README says.

Without the repository's prefect.toml, `prefect flow-run ls` printed a ~100-line "database is
locked" traceback (the temporary API server's telemetry job against its SQLite database).
"""

from __future__ import annotations

import os
import re
import subprocess
import sys
from pathlib import Path

import pytest

REPO = Path(__file__).resolve().parents[2]
BIN = Path(sys.executable).parent

pytestmark = pytest.mark.server  # starts Prefect's temporary servers and an embedded MongoDB


def test_quickstart_and_its_follow_up_commands_run_clean(tmp_path: Path) -> None:
    env = {
        k: v
        for k, v in os.environ.items()
        if not k.startswith(("PREFECT_", "PREFECT_INTEGRATIONS_FIREWORKS_"))
    }
    env["PREFECT_HOME"] = str(tmp_path / "prefect-home")
    env["PREFECT_INTEGRATIONS_FIREWORKS_HOME"] = str(tmp_path / "fireworks-home")
    env["COLUMNS"] = "200"  # wide enough for `prefect flow-run ls` to print names whole

    def run(*cmd: str, timeout: float = 300) -> subprocess.CompletedProcess[str]:
        proc = subprocess.run(
            cmd, cwd=REPO, env=env, capture_output=True, text=True, timeout=timeout
        )
        output = proc.stdout + proc.stderr
        assert proc.returncode == 0, f"{' '.join(cmd)} exited {proc.returncode}:\n{output}"
        # A traceback of the command itself (a stored stack trace inside JSON output is data).
        assert not any(line.startswith("Traceback") for line in output.splitlines()), output
        assert "database is locked" not in output
        return proc

    try:
        quick = run(str(BIN / "python"), "examples/quickstart.py", timeout=600)
        assert "workflow state: COMPLETED" in quick.stdout
        # No Prefect API configured: the local Prefect server starts, and the example says so
        # until it answers (never silent for long), then that both servers keep running.
        assert "starting a local Prefect server in the background" in quick.stdout
        ready = r"Prefect API ready after \d+ s: http://127\.0\.0\.1:\d+/api"
        assert re.search(ready, quick.stdout), quick.stdout
        assert "The embedded MongoDB-wire server keeps running in the background" in quick.stdout
        assert "`lpad server stop` stops it as well" in quick.stdout
        # The fizzle is one clear line: no state repr with the summary dict, no empty traceback.
        both = quick.stdout + quick.stderr
        assert "Firework 2 (compute) fizzled in Firetask 1 (ScriptTask): ScriptTaskError" in both
        assert "NoneType: None" not in both and "result={" not in both
        printed = quick.stdout.strip().splitlines()[-1]
        assert "`prefect flow-run ls`" in printed and "`lpad get_wflows -t`" in printed
        fws = re.search(r"`lpad get_fws -i (\d+) -d all`", printed)
        assert fws is not None, printed

        ls = run(str(BIN / "prefect"), "flow-run", "ls")
        assert "wf-1" in ls.stdout  # both flow runs of the quickstart's workflow
        run(str(BIN / "lpad"), "get_wflows", "-t")
        run(str(BIN / "lpad"), "get_fws", "-i", fws.group(1), "-d", "all")
    finally:
        subprocess.run(
            [str(BIN / "lpad"), "server", "stop"], cwd=REPO, env=env, capture_output=True
        )
