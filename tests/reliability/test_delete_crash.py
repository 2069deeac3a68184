"""kill -9 of a real ``lpad delete_wflows`` between its deletes; the re-issued command (or
``lpad admin check --repair``) finishes them: the workflow, its Fireworks, launches, GridFS-stored
actions and launch directories are gone, the other workflows untouched, ``admin check`` clean.

The deletes of a workflow are one intent (``ops/deletion.py``), in order GridFS chunks, GridFS
files, launches, offline runs, Fireworks, the workflow; the kill points are the crash hooks of
``store/intents.py`` (after recording the intent; after the n-th bulk write).
"""

from __future__ import annotations

import json
import signal
import time
from datetime import date
from pathlib import Path
from typing import Any

import gridfs
import pytest

from prefect_fireworks.core.constants import GRIDFS_FALLBACK_COLLECTION
from prefect_fireworks.core.models import Firework, Workflow
from prefect_fireworks.ops.check import check
from prefect_fireworks.store.intents import INTENTS_COLLECTION

pytestmark = [pytest.mark.reliability, pytest.mark.timeout(1200)]


def _password() -> str:
    """Today's date, read when used: a test that runs across midnight needs the new one."""
    return date.today().isoformat()


def _wf(k: int) -> Workflow:
    root = Firework([{"_fw_name": "ScriptTask", "script": "true"}], name=f"w{k}-root")
    kids = [
        Firework([{"_fw_name": "ScriptTask", "script": "true"}], name=f"w{k}-{i}", parents=[root])
        for i in range(3)
    ]
    return Workflow([root, *kids], name=f"w{k}")


def _snapshot(lp: Any, fw_ids: list[int]) -> dict[str, Any]:
    fws = list(lp.fireworks.find({"fw_id": {"$in": fw_ids}}, {"_id": 0}).sort("fw_id", 1))
    lids = sorted(i for d in fws for i in d.get("launches", []))
    return {
        "fireworks": fws,
        "launches": list(lp.launches.find({"launch_id": {"$in": lids}}, {"_id": 0})),
        "workflow": lp.workflows.find_one({"nodes": fw_ids[0]}, {"_id": 0}),
    }


@pytest.fixture
def three_ran(lp: Any, spawn: Any, tmp_path: Path) -> dict[str, Any]:
    """Three workflows run by a real worker; the middle one's first launch has a GridFS action."""
    lp.bulk_add_wfs([_wf(k) for k in range(3)])
    w = spawn("rlaunch", "rapidfire", "--no-prefect", "--sleep", "0.1")
    _, err = w.communicate(timeout=600)
    assert w.returncode == 0, err[-2000:]
    wfs = sorted(lp.workflows.find({}, {"nodes": 1}), key=lambda d: min(d["nodes"]))
    victim = sorted(wfs[1]["nodes"])
    lids = [i for d in lp.fireworks.find({"fw_id": {"$in": victim}}) for i in d["launches"]]
    dirs = [d["launch_dir"] for d in lp.launches.find({"launch_id": {"$in": lids}})]
    assert len(lids) == 4 and all(Path(d).is_dir() for d in dirs)
    gid = gridfs.GridFS(lp.db, GRIDFS_FALLBACK_COLLECTION).put(
        b"{}", metadata={"launch_id": lids[0]}
    )
    others = [sorted(d["nodes"]) for d in (wfs[0], wfs[2])]
    return {
        "victim": victim,
        "lids": lids,
        "dirs": dirs,
        "gid": gid,
        "others": {tuple(n): _snapshot(lp, n) for n in others},
    }


def _assert_deleted(lp: Any, ran: dict[str, Any]) -> None:
    assert lp.fireworks.count_documents({"fw_id": {"$in": ran["victim"]}}) == 0
    assert lp.launches.count_documents({"launch_id": {"$in": ran["lids"]}}) == 0
    assert lp.workflows.count_documents({"nodes": ran["victim"][0]}) == 0
    assert lp.db[f"{GRIDFS_FALLBACK_COLLECTION}.files"].count_documents({"_id": ran["gid"]}) == 0
    assert (
        lp.db[f"{GRIDFS_FALLBACK_COLLECTION}.chunks"].count_documents({"files_id": ran["gid"]}) == 0
    )
    assert not any(Path(d).exists() for d in ran["dirs"])
    assert lp.db[INTENTS_COLLECTION].count_documents({}) == 0
    for nodes, snap in ran["others"].items():
        assert _snapshot(lp, list(nodes)) == snap
    assert check(lp, claim_grace_secs=0).violations == []


def _delete_cmd(*sel: str) -> list[str]:
    return ["lpad", "delete_wflows", *sel, "--ldirs", "--password", _password()]


@pytest.mark.parametrize(
    ("point", "recovery"),
    [
        ("intent-recorded", "reissue"),
        ("intent-write:3", "reissue"),  # GridFS and launches deleted, Fireworks not
        ("intent-write:5", "reissue"),  # everything but the workflow document
        ("intent-write:3", "repair"),
    ],
)
def test_delete_wflows_killed_then_finished(lp, spawn, three_ran, point, recovery):
    ran = three_ran
    # by name: re-issued after the deletes were finished, it matches nothing (exit 0), as
    # after an uninterrupted delete (``-i`` would name a Firework that no longer exists: exit 2)
    first = spawn(*_delete_cmd("-n", "w1"), crash_at=point)
    _, err = first.communicate(timeout=600)
    t_crash = time.monotonic()
    assert first.returncode == -signal.SIGKILL, err[-2000:]
    assert lp.db[INTENTS_COLLECTION].count_documents({}) == 1
    assert lp.workflows.find_one({"nodes": ran["victim"][0]}, {"locked": 1})["locked"] is True

    if recovery == "reissue":
        again = spawn(*_delete_cmd("-n", "w1"))
        out, err = again.communicate(timeout=600)
        # the re-issued command finishes the dead one's deletes when it connects
        assert again.returncode == 0, out + err
        assert "Nothing matches the selection." in out + err
    else:
        adm = spawn("lpad", "admin", "check")
        out, _ = adm.communicate(timeout=300)
        assert adm.returncode == 1 and "intent" in out
        rep = spawn("lpad", "admin", "check", "--repair")
        out, err = rep.communicate(timeout=300)
        assert rep.returncode == 0, out + err
        assert "rolled forward" in out
    adm = spawn("lpad", "admin", "check", "--json")
    out, err = adm.communicate(timeout=300)
    elapsed = time.monotonic() - t_crash
    assert adm.returncode == 0 and json.loads(out)["clean"] is True, out + err
    print(f"\ndelete_wflows killed at {point}, {recovery}: crash to clean check {elapsed:.1f} s")
    _assert_deleted(lp, ran)


def test_delete_wflows_uninterrupted(lp, spawn, three_ran):
    p = spawn(*_delete_cmd("-i", str(three_ran["victim"][0])))
    out, err = p.communicate(timeout=600)
    assert p.returncode == 0, out + err
    assert "Deleted 1 workflow(s): 4 Firework(s), 4 launch(es), 4 launch dir(s)." in out
    _assert_deleted(lp, three_ran)
