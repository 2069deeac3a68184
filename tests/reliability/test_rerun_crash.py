"""kill -9 of a real ``lpad rerun_fws`` on 5,000 Fireworks, at several points; the re-issued
command finishes the job: ``admin check`` is clean and every document is exactly what an
uninterrupted rerun leaves.

The workflow is a fan-out (one root, 4,999 children), every Firework COMPLETED with one launch;
``rerun_fws -s COMPLETED`` resets the root to READY and the children to WAITING, archiving every
launch. The kill points are the crash hooks of ``store/intents.py`` (intent recorded; after the
Fireworks' bulk write, before the workflow's; all written, intent not yet forgotten; intent
forgotten, lock still held) plus a kill timed on the first Firework changing state.

At the issue's size (``RELIABILITY_RERUN_FIREWORKS``, default 5,000) one rerun is killed three
times on one database: the command itself once its intent is recorded, then each re-issued
command while it rolls that intent forward (after its first bulk write, then after its last);
the fourth command finishes. Every point is also tried alone at ``..._SMALL`` (500) Fireworks.
"""

from __future__ import annotations

import json
import os
import signal
import time
from datetime import date
from typing import Any

import pytest

from prefect_fireworks.core import states as st
from prefect_fireworks.core.models import Firework, Workflow, isoformat
from prefect_fireworks.ops.check import check
from prefect_fireworks.ops.rerun import rerun_fws
from prefect_fireworks.ops.selection import Selector
from prefect_fireworks.store.intents import INTENTS_COLLECTION
from prefect_fireworks.store.launchpad import LaunchPad

# Real processes on a shared machine: well beyond the suite's 600 s default.
pytestmark = [pytest.mark.reliability, pytest.mark.timeout(3600)]

#: The issue's size, for one kill point; the other points use SMALL (same code paths).
N = int(os.environ.get("RELIABILITY_RERUN_FIREWORKS", "5000"))
SMALL = int(os.environ.get("RELIABILITY_RERUN_FIREWORKS_SMALL", "500"))


def _password() -> str:
    """Today's date, read when used: a test that runs across midnight needs the new one."""
    return date.today().isoformat()


def _build(lp: LaunchPad, n: int) -> list[int]:
    """A fan-out of ``n`` Fireworks, each COMPLETED with one launch (bulk writes)."""
    root = Firework([{"_fw_name": "ScriptTask", "script": "true"}], name="root")
    kids = [
        Firework([{"_fw_name": "ScriptTask", "script": "true"}], name=f"k{i}", parents=[root])
        for i in range(1, n)
    ]
    ids = sorted(lp.add_wf(Workflow([root, *kids], name="fan")).values())
    now = isoformat()
    lp.launches.insert_many(
        [
            {
                "launch_id": i,
                "fw_id": i,
                "fworker": {"name": "t", "category": "", "query": "{}", "env": {}},
                "host": "t",
                "ip": "127.0.0.1",
                "launch_dir": f"/tmp/x/{i}",
                "state": st.COMPLETED,
                "state_history": [
                    {"state": st.RUNNING, "created_on": now, "updated_on": now},
                    {"state": st.COMPLETED, "created_on": now},
                ],
                "trackers": [],
                "action": {"stored_data": {}, "update_spec": {}, "mod_spec": []},
                "time_start": now,
                "time_end": now,
                "runtime_secs": 0.0,
            }
            for i in ids
        ],
        ordered=False,
    )
    lp.fireworks.update_many(
        {"fw_id": {"$gte": ids[0], "$lte": ids[-1]}},
        [{"$set": {"state": st.COMPLETED, "launches": ["$fw_id"]}}],
    )
    lp.workflows.update_one(
        {"nodes": ids[0]},
        {"$set": {"fw_states": {str(i): st.COMPLETED for i in ids}, "state": st.COMPLETED}},
    )
    lp.fw_id_assigner.update_one({"_id": -1}, {"$set": {"next_launch_id": ids[-1] + 1}})
    return ids


def _normal(lp: LaunchPad) -> dict[str, Any]:
    """Every document, without what differs between two runs (times, ids, who)."""
    fws = {}
    for d in lp.fireworks.find({}, {"_id": 0, "updated_on": 0, "created_on": 0}):
        for h in d.get("rerun_history") or []:
            for k in (
                "at",
                "by",
                "actor",
                "host",
                "pid",
                "rerun_id",
                "command",
                "reason",
                "plan_token",
            ):
                h.pop(k, None)
        d["archived_launches"] = sorted(d.get("archived_launches") or [])
        fws[d["fw_id"]] = d
    wfs = [
        {k: v for k, v in d.items() if k not in ("_id", "updated_on", "created_on")}
        for d in lp.workflows.find({})
    ]
    return {"fireworks": fws, "workflows": wfs, "launches": lp.launches.count_documents({})}


@pytest.fixture(scope="module")
def reference(mongo_server: Any) -> Any:
    """``reference(n)``: the documents an uninterrupted rerun of ``n`` Fireworks leaves (built
    once per size, in its own database)."""
    import uuid

    cache: dict[int, dict[str, Any]] = {}

    def get(n: int) -> dict[str, Any]:
        if n not in cache:
            lp = LaunchPad.from_uri(mongo_server.uri, name=f"t_ref_{uuid.uuid4().hex[:8]}")
            lp.reset(None, require_password=False)
            try:
                _build(lp, n)
                rerun_fws(lp, Selector(state=st.COMPLETED), password=_password())
                cache[n] = _normal(lp)
            finally:
                lp.client.drop_database(lp.name)
                lp.close()
        return cache[n]

    return get


def _same(got: dict[str, Any], want: dict[str, Any]) -> None:
    """Assert equal documents, naming the first Firework and field that differ."""
    assert got["launches"] == want["launches"]
    assert got["workflows"] == want["workflows"]
    assert sorted(got["fireworks"]) == sorted(want["fireworks"])
    for i, doc in got["fireworks"].items():
        ref = want["fireworks"][i]
        diff = {
            k: (doc.get(k), ref.get(k)) for k in set(doc) | set(ref) if doc.get(k) != ref.get(k)
        }
        assert not diff, f"Firework {i} differs from an uninterrupted rerun: {diff}"


def _reissue_and_check(lp: LaunchPad, spawn: Any, t_crash: float) -> float:
    again = spawn("lpad", "rerun_fws", "-s", "COMPLETED", "--password", _password())
    out, err = again.communicate(timeout=600)
    assert again.returncode == 0, out + err
    adm = spawn("lpad", "admin", "check", "--json")
    out, err = adm.communicate(timeout=300)
    elapsed = time.monotonic() - t_crash
    assert adm.returncode == 0, out + err
    assert json.loads(out)["clean"] is True
    return elapsed


@pytest.mark.parametrize(
    ("point", "n"),
    [
        ("intent-write:1", SMALL),
        ("intent-recorded", SMALL),
        ("intent-applied", SMALL),
        ("intent-done", SMALL),
    ],
)
def test_kill_at_crash_point_then_reissue(lp, spawn, reference, point, n):
    _build(lp, n)
    first = spawn("lpad", "rerun_fws", "-s", "COMPLETED", "--password", _password(), crash_at=point)
    _, err = first.communicate(timeout=600)
    t_crash = time.monotonic()
    assert first.returncode == -signal.SIGKILL, err
    # the crash left something to finish (or, at intent-done, only the lock)
    wf = lp.workflows.find_one({}, {"locked": 1})
    assert wf.get("locked") is True
    pending = lp.db[INTENTS_COLLECTION].count_documents({})
    assert pending == (0 if point == "intent-done" else 1)
    elapsed = _reissue_and_check(lp, spawn, t_crash)
    print(f"\n{n} Fireworks, killed at {point}: crash to clean admin check {elapsed:.1f} s")
    _same(_normal(lp), reference(n))
    assert check(lp).violations == []


def test_rerun_killed_three_times_then_reissued_at_full_size(lp, spawn, reference):
    """The issue's 5,000 Fireworks: the rerun and two of its repairs are killed; nothing is lost,
    nothing is applied twice, the fourth command leaves what an uninterrupted rerun leaves."""
    _build(lp, N)
    t_crash = None
    # (the point, whether the killed process was repairing the first one's intent)
    for point in ("intent-recorded", "intent-write:1", "intent-write:2"):
        p = spawn("lpad", "rerun_fws", "-s", "COMPLETED", "--password", _password(), crash_at=point)
        _, err = p.communicate(timeout=900)
        assert p.returncode == -signal.SIGKILL, f"not killed at {point}: {err[-2000:]}"
        t_crash = t_crash or time.monotonic()
        # one intent, never a second one: a repair finishes the first, it starts nothing new
        intents = list(lp.db[INTENTS_COLLECTION].find({"kind": {"$exists": True}}, {"kind": 1}))
        assert len(intents) == 1 and intents[0]["kind"] == "rerun", (point, intents)
        assert lp.workflows.find_one({}, {"locked": 1}).get("locked") is True
    assert t_crash is not None
    elapsed = _reissue_and_check(lp, spawn, t_crash)
    print(f"\n{N} Fireworks, killed 3 times: first crash to clean admin check {elapsed:.1f} s")
    _same(_normal(lp), reference(N))
    assert lp.db[INTENTS_COLLECTION].count_documents({}) == 0
    assert check(lp).violations == []


def test_kill_timed_on_first_change_then_reissue(lp, spawn, reference, wait_for):
    """A kill at whatever moment the first Firework changes: possibly mid bulk write."""
    ids = _build(lp, SMALL)
    first = spawn("lpad", "rerun_fws", "-s", "COMPLETED", "--password", _password())
    wait_for(
        lambda: (
            first.poll() is not None
            or lp.fireworks.find_one({"fw_id": ids[-1], "state": {"$ne": st.COMPLETED}}, {"_id": 1})
            or lp.db[INTENTS_COLLECTION].find_one({}, {"_id": 1})
        ),
        timeout=600,
        step=0.01,
    )
    if first.poll() is None:
        os.kill(first.pid, signal.SIGKILL)
    first.communicate()
    t_crash = time.monotonic()
    elapsed = _reissue_and_check(lp, spawn, t_crash)
    rc = first.returncode
    print(f"\n{SMALL} Fireworks, timed kill (rc {rc}): crash to clean check {elapsed:.1f} s")
    _same(_normal(lp), reference(SMALL))


def test_admin_check_repair_alone_rolls_forward(lp, spawn, reference):
    """No re-issue: ``admin check --repair`` finishes the dead rerun."""
    _build(lp, SMALL)
    first = spawn(
        "lpad", "rerun_fws", "-s", "COMPLETED", "--password", _password(), crash_at="intent-write:1"
    )
    first.communicate(timeout=600)
    assert first.returncode == -signal.SIGKILL
    adm = spawn("lpad", "admin", "check")
    out, _ = adm.communicate(timeout=300)
    assert adm.returncode == 1 and "intent" in out and "fw_states" in out
    rep = spawn("lpad", "admin", "check", "--repair")
    out, err = rep.communicate(timeout=300)
    assert rep.returncode == 0, out + err
    assert "rolled forward" in out
    _same(_normal(lp), reference(SMALL))
