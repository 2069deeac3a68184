"""Every example in examples/ runs, as a user runs it (a subprocess), and does what it says."""

from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path
from typing import Any

import pytest

EXAMPLES = Path(__file__).resolve().parents[2] / "examples"

pytestmark = pytest.mark.usefixtures("prefect_harness")


def run_example(name: str, *args: str, cwd: Path, code: int = 0) -> str:
    """``python examples/NAME ARGS`` on the test's LaunchPad and the harness's Prefect API."""
    from prefect.settings import PREFECT_API_URL

    env = {
        **os.environ,
        "PATH": f"{Path(sys.executable).parent}{os.pathsep}{os.environ['PATH']}",
        "PREFECT_API_URL": str(PREFECT_API_URL.value()),
    }
    proc = subprocess.run(
        [sys.executable, str(EXAMPLES / name), *args],
        cwd=cwd,
        env=env,
        capture_output=True,
        text=True,
        timeout=300,
    )
    assert proc.returncode == code, (proc.stdout, proc.stderr)
    return proc.stdout


def test_dynamic_workflow(lp: Any, tmp_path: Path) -> None:
    out = run_example("dynamic_workflow.py", "--launch-root", str(tmp_path), cwd=tmp_path)
    assert "2. Flow run finished: Completed" in out
    fws = {fw["name"]: fw for fw in lp.fireworks.find()}
    # additions: fib-1 grew the sequence 1, 2, 3, 5, 8 (13 >= stop ends it)
    fibs = sorted((n for n in fws if n.startswith("fib-")), key=lambda n: int(n[4:]))
    assert fibs == ["fib-1", "fib-2", "fib-3", "fib-5", "fib-8"]
    assert all(fws[n]["state"] == "COMPLETED" for n in fws)
    # detours: refine becomes a parent of report (FireWorks keeps measure -> report too)
    links = lp.workflows.find_one()["links"]
    ids = {name: fw["fw_id"] for name, fw in fws.items()}
    assert sorted(links[str(ids["measure"])]) == sorted([ids["report"], ids["refine"]])
    assert links[str(ids["refine"])] == [ids["report"]]
    # mod_spec (_push) from measure and update_spec from refine reached report
    assert fws["report"]["spec"]["measurements"] == [42]
    assert fws["report"]["spec"]["refined"] == 21
    assert "4. report ran after refine" in out


def test_rerun_by_stacktrace(lp: Any, tmp_path: Path) -> None:
    out = run_example("rerun_by_stacktrace.py", "--workdir", str(tmp_path), cwd=tmp_path)
    ids = {fw["name"]: fw["fw_id"] for fw in lp.fireworks.find()}
    assert f"2. Out of memory: fw_ids {[ids['sim-2'], ids['sim-4']]}" in out
    states = {fw["name"]: fw["state"] for fw in lp.fireworks.find()}
    assert states == {
        "sim-1": "COMPLETED",
        "sim-2": "COMPLETED",
        "sim-3": "FIZZLED",
        "sim-4": "COMPLETED",
    }
    # only the matching Fireworks were rerun: the bad-input one kept its single launch
    archived = {fw["name"]: fw["archived_launches"] for fw in lp.fireworks.find()}
    assert [len(archived[n]) for n in ("sim-1", "sim-2", "sim-3", "sim-4")] == [0, 1, 0, 1]


def test_rerun_fizzled_automation(lp: Any, tmp_path: Path) -> None:
    out = run_example("rerun_fizzled_automation.py", "--workdir", str(tmp_path), cwd=tmp_path)
    fw = lp.fireworks.find_one({"name": "download"})
    assert "2. First run: Fizzled" in out
    assert "only_fizzled" in out and f"'fw_ids': [{fw['fw_id']}]" in out
    assert "5. Second run: Completed; the Firework is COMPLETED" in out
    assert fw["state"] == "COMPLETED" and len(fw["archived_launches"]) == 1


def test_fireworks_workflow_file_runs_unchanged(lp: Any, run_cli: Any, tmp_path: Path) -> None:
    """The FireWorks-format file: ``lpad add`` it, run it; FireWorks' side is in tests/compat."""
    from prefect_fireworks.prefect.flows import run_workflow

    out = run_cli(["add", str(EXAMPLES / "fireworks_workflow.yaml")]).stdout
    assert "Added workflow org chart" in out
    first = min(fw["fw_id"] for fw in lp.fireworks.find())
    state = run_workflow(first, launch_root=str(tmp_path), return_state=True)
    assert state.name == "Completed"
    lines = (tmp_path / "org.txt").read_text().splitlines()
    assert lines[0] == "Ingrid is the CEO." and lines[-1] == "Kip is an intern."
    assert sorted(lines[1:3]) == ["Jack is a manager.", "Jill is a manager."]
