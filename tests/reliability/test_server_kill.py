"""kill -9 of the embedded MongoDB-wire server while a real worker runs.

The worker (``rlaunch rapidfire --no-prefect``) uses the embedded server of its own home (no
URI configured), so the retry policy restarts the server, on the same port, and the worker goes
on; or, if a write was cut off, it stops with one line and exit 1. Either way nothing is lost:
after a rerun of the worker every Firework is COMPLETED, every side effect happened exactly
once, and ``admin check`` is clean.
"""

from __future__ import annotations

import collections
import os
import signal
import subprocess
import sys
import time
from collections.abc import Iterator
from pathlib import Path

import pytest

from prefect_fireworks.core import states as st
from prefect_fireworks.core.models import Firework, Workflow
from prefect_fireworks.store import embedded

pytestmark = pytest.mark.reliability

BIN = Path(sys.executable).parent
N = 8


@pytest.fixture
def home(tmp_path: Path) -> Iterator[Path]:
    home = tmp_path / "home"
    yield home
    embedded.stop(home)


def _env(home: Path) -> dict[str, str]:
    env = {
        k: v for k, v in os.environ.items() if not k.startswith("PREFECT_INTEGRATIONS_FIREWORKS")
    }
    env["PREFECT_INTEGRATIONS_FIREWORKS_HOME"] = str(home)
    env["PREFECT_INTEGRATIONS_FIREWORKS_MONGODB_RETRY_SECONDS"] = "60"
    return env


def _worker(home: Path, cwd: Path) -> subprocess.Popen[str]:
    return subprocess.Popen(
        [
            str(BIN / "rlaunch"),
            "rapidfire",
            "--no-prefect",
            "--sleep",
            "0.2",
            "--launch_root",
            str(cwd / "launches"),
        ],
        env=_env(home),
        cwd=cwd,
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        text=True,
    )


def test_worker_outlives_a_killed_server_and_nothing_is_lost(home: Path, tmp_path: Path) -> None:
    from prefect_fireworks.ops.check import check
    from prefect_fireworks.store.launchpad import LaunchPad

    log = tmp_path / "side_effects.log"
    info = embedded.start(home)
    fws = [
        Firework(
            [{"_fw_name": "ScriptTask", "script": f"sleep 0.5; echo {i} >> {log}"}], name=f"s{i}"
        )
        for i in range(N)
    ]
    with LaunchPad.from_uri(info.uri) as lp:
        lp.add_wf(Workflow(fws, name="server-kill"))

    worker = _worker(home, tmp_path)
    deadline = time.monotonic() + 300
    while not (log.exists() and len(log.read_text().split()) >= 2):
        assert worker.poll() is None, worker.communicate()
        assert time.monotonic() < deadline, "the worker did not start"
        time.sleep(0.05)

    os.kill(info.pid, signal.SIGKILL)
    t_kill = time.monotonic()
    _, err = worker.communicate(timeout=600)
    print(f"\nworker after the kill: exit {worker.returncode}, {time.monotonic() - t_kill:.1f} s")
    assert "Traceback" not in err, err[-3000:]
    assert worker.returncode in (0, 1), err[-3000:]  # 1: a launch fizzled

    again = embedded.status(home)
    if again is None:
        # The worker stopped on a write the kill cut off (exit 1) before it needed the server
        # again, so nothing restarted it yet: the user's next command does, on the same port.
        assert worker.returncode == 1, err[-3000:]
        nxt = subprocess.run(
            [str(BIN / "lpad"), "get_fws", "-d", "count"],
            env=_env(home),
            cwd=tmp_path,
            capture_output=True,
            text=True,
            timeout=300,
            check=False,
        )
        assert nxt.returncode == 0 and nxt.stdout.strip() == str(N), nxt.stderr[-3000:]
        again = embedded.status(home)
    assert again is not None and again.pid != info.pid
    assert again.port == info.port  # saved LaunchPad files stay valid

    with LaunchPad.from_uri(again.uri) as lp:
        fizzled = [d["fw_id"] for d in lp.fireworks.find({"state": st.FIZZLED}, {"fw_id": 1})]
        errors = [
            str(((d.get("action") or {}).get("stored_data") or {}).get("_exception", ""))[:200]
            for d in lp.launches.find({"state": st.FIZZLED})
        ]
    print(f"fizzled by the kill: {fizzled} {errors}")
    if fizzled:
        # A write cut off by the kill (not retried: it may have been applied) fizzled the
        # Firework that was running; a rerun finishes the work.
        for args in (
            ["lpad", "rerun_fws", "-s", "FIZZLED"],
            ["lpad", "admin", "check", "--repair"],
        ):
            done = subprocess.run(
                [str(BIN / args[0]), *args[1:]],
                env=_env(home),
                cwd=tmp_path,
                capture_output=True,
                text=True,
                timeout=300,
                check=False,
            )
            assert "Traceback" not in done.stderr, done.stderr
        rerun = _worker(home, tmp_path)
        _, err = rerun.communicate(timeout=600)
        assert rerun.returncode == 0, err[-3000:]

    with LaunchPad.from_uri(again.uri) as lp:
        states = collections.Counter(d["state"] for d in lp.fireworks.find({}, {"state": 1}))
        assert states == {st.COMPLETED: N}
        assert check(lp).violations == []
    counts = collections.Counter(int(x) for x in log.read_text().split())
    assert sorted(counts) == list(range(N))
    twice = sorted(i for i, c in counts.items() if c != 1)
    # A Firework whose script had finished when its completion write was cut off ran its
    # side effect before the kill and again in the rerun: reported, not yet prevented.
    print(f"side effects run twice: {twice}")
    assert set(twice) <= {i - 1 for i in fizzled}
