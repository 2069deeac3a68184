"""A ScriptTask's child dies with its worker, even when the worker is killed with SIGKILL.

The child runs in its own process group with a parent-death signal (Linux ``prctl``), so after
``kill -9`` of the worker its side effect never happens (it would happen twice once the lost
run is rerun).
"""

from __future__ import annotations

import os
import shlex
import signal
import sys
import time
from pathlib import Path
from typing import Any

import pytest

from prefect_fireworks.core import states as st
from prefect_fireworks.core.models import Firework, Workflow

pytestmark = [
    pytest.mark.reliability,
    pytest.mark.skipif(not sys.platform.startswith("linux"), reason="prctl is Linux only"),
]

CHILD = (
    "import os, sys, time; from pathlib import Path; d = Path(sys.argv[1]); "
    "(d / 'child.pid').write_text(str(os.getpid())); time.sleep(3); "
    "(d / 'side_effect').write_text('done')"
)


def _alive(pid: int) -> bool:
    try:
        stat = Path(f"/proc/{pid}/stat").read_text()
    except OSError:
        return False
    return stat.rpartition(")")[2].split()[0] != "Z"


def _slow_side_effect(where: Path, use_shell: bool) -> Workflow:
    command = shlex.join([sys.executable, "-c", CHILD, str(where)])
    task = {"_fw_name": "ScriptTask", "script": [command], "use_shell": use_shell}
    return Workflow([Firework([task], name="slow")], name="slow")


@pytest.mark.parametrize(
    ("worker", "use_shell"),
    [
        (("rlaunch", "rapidfire", "--no-prefect", "--sleep", "0.2"), True),
        (("rlaunch", "rapidfire", "--no-prefect", "--sleep", "0.2"), False),
        (("lpad", "rapidfire", "--sleep", "0"), True),
    ],
    ids=["rlaunch-shell", "rlaunch-no-shell", "lpad-rapidfire-prefect"],
)
def test_script_child_dies_with_a_killed_worker(
    lp: Any,
    spawn: Any,
    cli_env: dict[str, str],
    tmp_path: Path,
    wait_for: Any,
    request: pytest.FixtureRequest,
    worker: tuple[str, ...],
    use_shell: bool,
) -> None:
    if worker[0] == "lpad":
        request.getfixturevalue("prefect_harness")
        from prefect.settings import PREFECT_API_URL

        cli_env["PREFECT_API_URL"] = str(PREFECT_API_URL.value())
    lp.add_wf(_slow_side_effect(tmp_path, use_shell))
    proc = spawn(
        *worker,
        "--launch_root" if worker[0] == "rlaunch" else "--launch-root",
        str(tmp_path / "launches"),
        cwd=tmp_path,
    )
    pid_file = tmp_path / "child.pid"

    def started() -> str:
        assert proc.poll() is None, proc.communicate()
        return pid_file.exists() and pid_file.read_text().strip()

    child = int(wait_for(started, timeout=120))
    assert _alive(child)
    assert lp.fireworks.find_one({}, {"state": 1})["state"] == st.RUNNING

    os.kill(proc.pid, signal.SIGKILL)
    proc.communicate()

    wait_for(lambda: not _alive(child), timeout=30)  # at once, in fact
    time.sleep(4)  # longer than the child's sleep: had it survived, it would have written
    assert not (tmp_path / "side_effect").exists()


def test_detect_lostruns_marks_the_prefect_runs_of_a_killed_worker_crashed(
    lp: Any,
    spawn: Any,
    cli_env: dict[str, str],
    tmp_path: Path,
    wait_for: Any,
    request: pytest.FixtureRequest,
) -> None:
    request.getfixturevalue("prefect_harness")
    from prefect import get_client
    from prefect.settings import PREFECT_API_URL

    cli_env["PREFECT_API_URL"] = str(PREFECT_API_URL.value())
    lp.add_wf(_slow_side_effect(tmp_path, use_shell=True))
    proc = spawn("lpad", "rapidfire", "--sleep", "0", "--launch-root", str(tmp_path / "l"))
    pid_file = tmp_path / "child.pid"
    wait_for(lambda: pid_file.exists() and pid_file.read_text().strip(), timeout=120)
    launch = wait_for(lambda: lp.launches.find_one({"prefect.flow_run_id": {"$exists": True}}))
    os.kill(proc.pid, signal.SIGKILL)
    proc.communicate()

    det = spawn("lpad", "detect_lostruns", "--time", "0", "--fizzle")
    out, err = det.communicate(timeout=300)
    assert det.returncode == 0, err
    assert f"lost launches: [{launch['launch_id']}]" in out
    assert "Prefect task runs, 1 flow runs" in err, err

    from prefect.exceptions import ObjectNotFound

    with get_client(sync_client=True) as client:
        flow_run = client.read_flow_run(launch["prefect"]["flow_run_id"])
        try:  # a task run reaches the API through events the killed worker may not have sent
            task_run = client.read_task_run(launch["prefect"]["task_run_id"])
        except ObjectNotFound:
            task_run = None
    assert flow_run.state is not None and flow_run.state.is_crashed()
    assert f"launch {launch['launch_id']}" in (flow_run.state.message or "")
    if task_run is not None:
        assert task_run.state is not None and task_run.state.is_crashed()
