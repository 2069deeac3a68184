"""The MongoDB server dies at the moment the Rocket writes a launch's end.

A ScriptTask writes its side effect (a marker line) and freezes the server (SIGSTOP), so the
Rocket's completion write is sent to a server that does not answer; the server is then killed
(the write is cut off: it may or may not have been applied) and, in the first test, restarted
on the same port. The Firework must end COMPLETED with its side effect done once, never
FIZZLED by the store's failure (a rerun would do the side effect again). When the store stays
away past the retry deadline, the worker exits with one line and status 1, and the launch stays
RUNNING for ``detect_lostruns``.

Each test has a server of its own (the session's server must not be killed). Clients connect
with ``retryWrites=false``, as they do to a standalone MongoDB server (which has no retryable
writes): pymongo then does not resend the cut-off write itself, the case FireWorks users meet.
"""

from __future__ import annotations

import os
import signal
import subprocess
import sys
import threading
import time
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest

from prefect_fireworks.core import states as st
from prefect_fireworks.core.models import Firework
from prefect_fireworks.ops.check import check
from prefect_fireworks.runtime.firetasks import ScriptTask
from prefect_fireworks.runtime.launchpad import LaunchPad
from prefect_fireworks.runtime.rocket import run_one
from prefect_fireworks.store import embedded

BIN = Path(sys.executable).parent
#: How long the server stays away in the first test (several retries of the Rocket's write).
OUTAGE_SECS = 3.0


@pytest.fixture
def server(tmp_path: Path) -> Iterator[tuple[Path, embedded.ServerInfo]]:
    """An embedded server of the test's own (home, info)."""
    home = tmp_path / "own-server"
    info = embedded.start(home)
    try:
        yield home, info
    finally:
        embedded.stop(home)


def _uri(info: embedded.ServerInfo) -> str:
    return info.uri + ("&" if "?" in info.uri else "?") + "retryWrites=false"


@pytest.fixture
def own_lp(server: tuple[Path, embedded.ServerInfo]) -> Iterator[LaunchPad]:
    _, info = server
    lp = LaunchPad.from_uri(_uri(info), name="outage")
    lp.reset(None, require_password=False)
    try:
        yield lp
    finally:
        lp.close()


def _freezing_firework(marker: Path, pid: int) -> Firework:
    # The side effect, then the server stops answering before the Rocket's completion write.
    return Firework([ScriptTask.from_str(f"echo done >> {marker}; kill -STOP {pid}")], name="fx")


def _kill_when(marker: Path, pid: int, then: Any = None) -> threading.Thread:
    """Once the marker exists (the server is frozen) and the completion write is on its way,
    kill the server; then call ``then`` (e.g. restart it)."""

    def run() -> None:
        end = time.monotonic() + 120
        while not marker.exists() and time.monotonic() < end:
            time.sleep(0.02)
        time.sleep(0.5)  # the Rocket sends its completion write to the frozen server
        os.kill(pid, signal.SIGKILL)
        while _alive(pid):
            time.sleep(0.02)
        if then is not None:
            then()

    t = threading.Thread(target=run, daemon=True)
    t.start()
    return t


def _alive(pid: int) -> bool:
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    try:  # a killed child of this process stays a zombie until reaped
        with open(f"/proc/{pid}/stat") as f:
            return f.read().split(")")[-1].split()[0] != "Z"
    except OSError:
        return False


def test_completion_write_cut_off_then_server_back_completed_once(
    server: tuple[Path, embedded.ServerInfo],
    own_lp: LaunchPad,
    tmp_path: Path,
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    home, info = server
    monkeypatch.setenv("PREFECT_INTEGRATIONS_FIREWORKS_MONGODB_RETRY_SECONDS", "60")
    marker = tmp_path / "side_effect.txt"
    own_lp.add_wf(_freezing_firework(marker, info.pid))

    restarted: list[embedded.ServerInfo] = []

    def restart() -> None:
        time.sleep(OUTAGE_SECS)
        restarted.append(embedded.start(home, info.port))

    killer = _kill_when(marker, info.pid, restart)
    result = run_one(own_lp, launch_root=tmp_path)
    killer.join(timeout=120)

    assert restarted and restarted[0].port == info.port and restarted[0].pid != info.pid
    assert result is not None
    assert result.state == st.COMPLETED, result.message
    assert marker.read_text().split() == ["done"]  # the side effect ran once
    fw = own_lp.get_fw_by_id(1)
    assert fw.state == st.COMPLETED
    launch = own_lp.launches.find_one({"launch_id": result.launch_id})
    assert launch is not None and launch["state"] == st.COMPLETED
    assert [h["state"] for h in launch["state_history"]] == [st.RUNNING, st.COMPLETED]
    assert check(own_lp).violations == []


def test_store_gone_past_the_deadline_worker_exits_one_line_launch_stays_running(
    server: tuple[Path, embedded.ServerInfo],
    own_lp: LaunchPad,
    tmp_path: Path,
) -> None:
    home, info = server
    marker = tmp_path / "side_effect.txt"
    own_lp.add_wf(_freezing_firework(marker, info.pid))
    env = {k: v for k, v in os.environ.items() if not k.startswith("PREFECT_INTEGRATIONS_")}
    env.update(
        PREFECT_INTEGRATIONS_FIREWORKS_HOME=str(tmp_path / "worker-home"),
        PREFECT_INTEGRATIONS_FIREWORKS_MONGODB_URI=_uri(info),
        PREFECT_INTEGRATIONS_FIREWORKS_DATABASE="outage",
        PREFECT_INTEGRATIONS_FIREWORKS_MONGODB_RETRY_SECONDS="2",
        PREFECT_INTEGRATIONS_FIREWORKS_LOCAL_PREFECT_SERVER="false",
    )
    killer = _kill_when(marker, info.pid)  # and not restarted while the worker waits
    worker = subprocess.run(
        [str(BIN / "rlaunch"), "singleshot", "--no-prefect", "--launch_root", str(tmp_path)],
        env=env,
        cwd=tmp_path,
        capture_output=True,
        text=True,
        timeout=300,
        check=False,
    )
    killer.join(timeout=120)

    assert worker.returncode == 1, worker.stderr
    assert "Traceback" not in worker.stderr, worker.stderr
    lines = [ln for ln in worker.stderr.splitlines() if ln.strip()]
    # One error line, last; before it at most the retry policy's notices that it is waiting.
    assert lines[-1].startswith("Error: MongoDB unreachable for 2 s, giving up"), worker.stderr
    assert all("retrying for up to 2 s" in ln for ln in lines[:-1]), worker.stderr
    assert marker.read_text().split() == ["done"]

    back = embedded.start(home, info.port)
    assert back.port == info.port
    fw = own_lp.fireworks.find_one({"fw_id": 1})
    launch = own_lp.launches.find_one({})
    assert fw is not None and launch is not None
    # Not FIZZLED: the tasks succeeded; the launch is left to detect_lostruns.
    assert fw["state"] == st.RUNNING and launch["state"] == st.RUNNING
    from prefect_fireworks.ops.lostruns import detect_lostruns

    found = detect_lostruns(own_lp, expiration_secs=0)
    assert found.lost_launch_ids == [launch["launch_id"]]
