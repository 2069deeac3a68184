"""``admin check``: each invariant is broken by hand (raw pymongo) and found; ``repair`` fixes what
it can and the check is clean afterwards."""

from __future__ import annotations

import subprocess
import sys
from datetime import datetime, timedelta, timezone

import pytest
from fwhelpers import greek_gods, run_all, run_fw, states

from prefect_fireworks.core import states as st
from prefect_fireworks.ops.check import check, repair
from prefect_fireworks.store import intents

OLD = "2000-01-01T00:00:00+00:00"


def _checks(rep):
    return sorted({v.check for v in rep.violations})


def test_clean_launchpad_is_clean(gods):
    assert check(gods).violations == []
    run_fw(gods)
    run_fw(gods, fail_at=0)
    assert check(gods).violations == []
    run_all(gods)
    rep = check(gods)
    assert rep.clean and rep.n_fireworks == 14 and rep.n_workflows == 1


def test_stale_fw_states_and_workflow_state_repaired(gods):
    lp = gods
    run_all(lp)
    # a rerun killed between its Firework writes and the workflow write
    lp.fireworks.update_many({"fw_id": {"$in": [2, 7]}}, {"$set": {"state": st.WAITING}})
    rep = check(lp)
    assert _checks(rep) == ["fw_states", "workflow_state"]
    v = next(v for v in rep.violations if v.check == "fw_states")
    assert v.wf_id == 1 and v.fw_ids == [2, 7] and "fw 2: cached COMPLETED, is WAITING" in v.message
    fixed = repair(lp)
    assert fixed.clean and fixed.remaining == []
    wf = lp.workflows.find_one({"nodes": 1})
    assert wf["fw_states"]["2"] == st.WAITING and wf["state"] == st.RUNNING
    assert check(lp).clean


def test_ready_under_unfinished_parent_goes_back_to_waiting(gods):
    lp = gods
    lp.fireworks.update_one({"fw_id": 7}, {"$set": {"state": st.READY}})
    lp.workflows.update_one({"nodes": 1}, {"$set": {"fw_states.7": st.READY}})
    rep = check(lp)
    assert _checks(rep) == ["ready_parents"]
    assert rep.violations[0].fw_ids == [7]
    assert repair(lp).clean
    assert states(lp, [7]) == {7: st.WAITING}


def test_orphan_claim_found_and_reset(gods):
    lp = gods
    # the claim was written, the process died before inserting the launch
    lp.fireworks.update_one({"fw_id": 1}, {"$set": {"state": st.RESERVED, "updated_on": OLD}})
    lp.workflows.update_one(
        {"nodes": 1}, {"$set": {"fw_states.1": st.RESERVED, "state": st.RESERVED}}
    )
    rep = check(lp)
    assert _checks(rep) == ["orphan_claim"] and rep.violations[0].fw_ids == [1]
    # a fresh claim (a checkout in progress) is not a violation yet
    assert check(lp, claim_grace_secs=10**9).clean
    assert repair(lp).clean
    assert states(lp, [1]) == {1: st.READY}
    assert lp.workflows.find_one({"nodes": 1})["state"] == st.READY
    assert run_fw(lp) is not None


def test_stale_lock_of_dead_process_released(gods):
    lp = gods
    dead = subprocess.Popen([sys.executable, "-c", "pass"])
    dead.wait()
    import socket

    lp.workflows.update_one(
        {"nodes": 1},
        {
            "$set": {
                "locked": True,
                "locked_by": f"{socket.gethostname()}:{dead.pid}:abc:def",
                "locked_at": datetime.now(timezone.utc),
            }
        },
    )
    rep = check(lp)
    assert _checks(rep) == ["stale_lock"] and "dead or expired" in rep.violations[0].message
    assert repair(lp).clean
    assert "locked" not in lp.workflows.find_one({"nodes": 1})


def test_lock_of_other_host_stale_only_when_expired(gods):
    lp = gods
    lp.workflows.update_one(
        {"nodes": 1},
        {
            "$set": {
                "locked": True,
                "locked_by": "elsewhere:1:abc",
                "locked_at": datetime.now(timezone.utc),
            }
        },
    )
    assert check(lp).clean
    lp.workflows.update_one(
        {"nodes": 1}, {"$set": {"locked_at": datetime.now(timezone.utc) - timedelta(hours=1)}}
    )
    assert _checks(check(lp)) == ["stale_lock"]
    assert repair(lp).clean


def test_abandoned_intent_rolled_forward(gods):
    lp = gods
    wf = lp.workflows.find_one({"nodes": 1})
    writes = [
        intents.Write("fireworks", "update_one", {"fw_id": 6}, {"$set": {"state": st.PAUSED}}),
        intents.Write(
            "workflows",
            "update_one",
            {"_id": wf["_id"]},
            {"$set": {"fw_states.6": st.PAUSED, "state": st.PAUSED}},
        ),
    ]
    dead = subprocess.Popen([sys.executable, "-c", "pass"])
    dead.wait()
    import socket

    intents.record(lp.db, "pause", wf["_id"], writes, owner=f"{socket.gethostname()}:{dead.pid}")
    rep = check(lp)
    assert _checks(rep) == ["intent"] and "pause" in rep.violations[0].message
    fixed = repair(lp)
    assert fixed.clean and any("rolled forward" in r for r in fixed.repaired)
    assert states(lp, [6]) == {6: st.PAUSED}
    assert lp.db[intents.INTENTS_COLLECTION].count_documents({}) == 0


def test_intent_of_live_process_is_not_a_violation(gods):
    lp = gods
    wf = lp.workflows.find_one({"nodes": 1})
    w = intents.Write("fireworks", "update_one", {"fw_id": 6}, {"$set": {"name": "x"}})
    iid = intents.record(lp.db, "rename", wf["_id"], [w, w])
    assert check(lp).clean
    assert intents.roll_forward(lp.db, 300) == []
    intents.forget(lp.db, iid)


@pytest.mark.no_admin_check
def test_missing_and_shared_launches_reported_not_repaired(gods):
    lp = gods
    _, lid = run_fw(lp)
    lp.fireworks.update_one({"fw_id": 6}, {"$set": {"archived_launches": [999]}})
    lp.fireworks.update_one({"fw_id": 2}, {"$set": {"launches": [lid]}})
    lp.fireworks.update_one({"fw_id": 2}, {"$set": {"state": st.COMPLETED}})
    lp.workflows.update_one({"nodes": 1}, {"$set": {"fw_states.2": st.COMPLETED}})
    rep = check(lp)
    got = {v.check: v for v in rep.violations}
    assert got["missing_launch"].launch_ids == [999] and got["missing_launch"].fw_ids == [6]
    assert got["shared_launch"].launch_ids == [lid] and got["shared_launch"].fw_ids == [1, 2]
    assert not got["missing_launch"].repairable
    after = repair(lp)
    assert {v.check for v in after.remaining} >= {"missing_launch", "shared_launch"}
    assert not after.clean


def test_firework_of_no_workflow_deleted(lp):
    lp.add_wf(greek_gods())
    lp.fireworks.insert_one(
        {"fw_id": 50, "state": st.READY, "spec": {"_tasks": []}, "launches": [], "updated_on": OLD}
    )
    rep = check(lp)
    assert _checks(rep) == ["orphan_firework"] and rep.violations[0].fw_ids == [50]
    assert repair(lp).clean
    assert lp.fireworks.count_documents({"fw_id": 50}) == 0


def test_json_shape(gods):
    d = check(gods).to_dict()
    assert d["clean"] is True and d["violations"] == [] and d["fireworks"] == 14
