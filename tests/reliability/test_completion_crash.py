"""kill -9 of a real worker inside the lean launch cycle (``store/launch_cycle.py``), at the
points where one Firework's start or completion is several writes with no intent:

- ``cache-running``: the claim and the launch insert are written, the workflow's
  ``fw_states.<id>: RUNNING`` is not (the task never started);
- ``fireworks-written``: the task ran and its launch is COMPLETED, the Firework and its children
  are not written (the Firework is RUNNING with a COMPLETED launch);
- ``workflow-commit``: the Firework is COMPLETED and its children READY, the workflow's
  ``fw_states`` and state are not (the compare-and-swap never reached the server).

The code has no crash hook there, so the worker talks to the server through a wire proxy
(``wirekill.py``) that kills it (SIGKILL) just before the matching command would be sent. Then
``lpad detect_lostruns --rerun`` (for the run that was lost) and ``lpad admin check --repair``,
and a new worker finishes the workflow: ``admin check`` clean, every Firework COMPLETED, every
side effect exactly once.
"""

from __future__ import annotations

import collections
import json
import signal
import time
from typing import Any

import pytest
from wirekill import Command, kill_proxy

from prefect_fireworks.core import states as st
from prefect_fireworks.core.models import Firework, Workflow
from prefect_fireworks.ops.check import check

# Real processes on a shared machine: well beyond the suite's 600 s default.
pytestmark = [pytest.mark.reliability, pytest.mark.timeout(1200)]

URI_ENV = "PREFECT_INTEGRATIONS_FIREWORKS_MONGODB_URI"


def _sets(cmd: Command) -> list[dict[str, Any]]:
    return [
        u["u"].get("$set", {})
        for u in cmd.items("updates")
        if isinstance(u.get("u"), dict) and "$set" in u["u"]
    ]


def _cache_running(cmd: Command) -> bool:
    return (
        cmd.name == "update"
        and cmd.collection == "workflows"
        and any(
            k.startswith("fw_states.") and v == st.RUNNING for s in _sets(cmd) for k, v in s.items()
        )
    )


def _fireworks_written(cmd: Command) -> bool:
    return (
        cmd.name == "update"
        and cmd.collection == "fireworks"
        and any(s.get("state") == st.COMPLETED for s in _sets(cmd))
    )


def _workflow_commit(cmd: Command) -> bool:
    return (
        cmd.name == "update"
        and cmd.collection == "workflows"
        and any(
            k.startswith("fw_states.") and v == st.COMPLETED
            for s in _sets(cmd)
            for k, v in s.items()
        )
    )


RULES = {
    "cache-running": _cache_running,
    "fireworks-written": _fireworks_written,
    "workflow-commit": _workflow_commit,
}


def _diamond(log: Any) -> Workflow:
    """a -> (b, c) -> d, each appending its name to ``log``."""

    def fw(name: str, parents: list[Firework]) -> Firework:
        task = {"_fw_name": "ScriptTask", "script": f"echo {name} >> {log}"}
        return Firework([task], name=name, parents=parents)

    a = fw("a", [])
    b, c = fw("b", [a]), fw("c", [a])
    return Workflow([a, b, c, fw("d", [b, c])], name="diamond")


def _run(spawn: Any, *args: str, ok: tuple[int, ...] = (0,)) -> str:
    p = spawn(*args)
    out, err = p.communicate(timeout=600)
    assert p.returncode in ok, f"{args}: exit {p.returncode}\n{out}\n{err[-3000:]}"
    return out


@pytest.mark.parametrize("point", sorted(RULES))
def test_worker_killed_in_launch_cycle(lp, spawn, tmp_path, mongo_server, point):
    log = tmp_path / "side.log"
    lp.add_wf(_diamond(log))
    with kill_proxy(mongo_server.uri) as proxy:
        worker = spawn(
            "rlaunch",
            "rapidfire",
            "--no-prefect",
            "--sleep",
            "0.1",
            extra_env={URI_ENV: proxy.uri_for(mongo_server.uri)},
        )
        # the first matching command: Firework a's (the root's) start or completion
        proxy.arm(worker.pid, RULES[point])
        _, err = worker.communicate(timeout=600)
    t_crash = time.monotonic()
    assert worker.returncode == -signal.SIGKILL, f"never reached {point}: {err[-2000:]}"
    assert proxy.killed is not None
    done = collections.Counter(log.read_text().split()) if log.exists() else collections.Counter()
    assert sum(done.values()) <= 1  # killed in the first Firework

    found = _run(spawn, "lpad", "admin", "check", "--claim-grace", "0", "--json", ok=(0, 1))
    report = json.loads(found)
    print(f"\n{point}: admin check found {[v['check'] for v in report['violations']]}")
    if point == "cache-running":
        # a lost run: its launch is RUNNING and nobody pings it
        out = _run(spawn, "lpad", "detect_lostruns", "--time", "0", "--rerun")
        assert "lost FWs: [" in out
    _run(spawn, "lpad", "admin", "check", "--repair", "--claim-grace", "0")
    _run(spawn, "rlaunch", "rapidfire", "--no-prefect", "--sleep", "0.1")
    out = _run(spawn, "lpad", "admin", "check", "--json")
    elapsed = time.monotonic() - t_crash
    assert json.loads(out)["clean"] is True
    print(f"{point}: crash to clean admin check (recovery and the rest of the run) {elapsed:.1f} s")

    assert collections.Counter(log.read_text().split()) == {n: 1 for n in "abcd"}
    assert {d["state"] for d in lp.fireworks.find({}, {"state": 1})} == {st.COMPLETED}
    wf = lp.workflows.find_one({})
    assert wf["state"] == st.COMPLETED and set(wf["fw_states"].values()) == {st.COMPLETED}
    assert check(lp, claim_grace_secs=0).violations == []
    assert lp.launches.count_documents({"state": st.COMPLETED}) == 4
