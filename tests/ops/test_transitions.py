"""FireWorks' defuse/reignite/pause/archive/delete scenarios on the Greek-gods DAG, with the
``fw_states`` consistency check after each operation (WorkflowFireworkStatesTest)."""

from __future__ import annotations

import os

import pytest
from fwhelpers import (
    ALL_IDS,
    ZEUS,
    ZEUS_CHILDREN,
    fw_states_consistent,
    greek_gods,
    run_all,
    run_fw,
    start_fw,
    states,
)

from prefect_fireworks.core import states as st
from prefect_fireworks.ops import admin, deletion, lostruns, transitions
from prefect_fireworks.ops.selection import Selector


def test_pause_fw_then_resume(gods):
    lp = gods
    transitions.pause_fws(lp, [ZEUS])
    fw_states_consistent(lp)
    run_all(lp)
    s = states(lp)
    assert s[ZEUS] == st.PAUSED and all(s[i] != st.COMPLETED for i in ZEUS_CHILDREN)
    transitions.resume_fws(lp, [ZEUS])
    run_all(lp)
    assert set(states(lp).values()) == {st.COMPLETED}
    fw_states_consistent(lp)


def test_defuse_fw_then_reignite(gods):
    lp = gods
    transitions.defuse_fws(lp, [ZEUS])
    fw_states_consistent(lp)
    run_all(lp)
    s = states(lp)
    assert s[ZEUS] == st.DEFUSED and all(s[i] != st.COMPLETED for i in ZEUS_CHILDREN)
    assert {s[i] for i in ALL_IDS - ZEUS_CHILDREN - {ZEUS, 9}} == {st.COMPLETED}
    transitions.reignite_fws(lp, [ZEUS])
    fw_states_consistent(lp)
    run_all(lp)
    assert set(states(lp).values()) == {st.COMPLETED}


def test_defuse_fw_after_completion_reruns_first(gods):
    lp = gods
    run_all(lp)
    res = transitions.defuse_fws(lp, [ZEUS])
    s = states(lp)
    assert s[ZEUS] == st.DEFUSED and {s[i] for i in ZEUS_CHILDREN} == {st.WAITING}
    assert len(res.archived) == 6
    fw_states_consistent(lp)


def test_pause_defuse_reignite_workflow(gods):
    lp = gods
    transitions.pause_wflows(lp, [1])
    run_all(lp)
    assert st.COMPLETED not in states(lp).values()
    fw_states_consistent(lp)
    transitions.resume_fws(lp, Selector(state=st.PAUSED))
    run_fw(lp, 1)
    transitions.defuse_wflows(lp, [1])
    assert set(states(lp).values()) == {st.DEFUSED}  # defuse_wf after partial run
    assert run_all(lp) == []
    fw_states_consistent(lp)
    transitions.reignite_wflows(lp, [3])
    run_all(lp)
    assert set(states(lp).values()) == {st.COMPLETED}
    fw_states_consistent(lp)


def test_archive_workflow(gods):
    lp = gods
    run_fw(lp, 1)
    transitions.archive_wflows(lp, [1])
    assert set(states(lp).values()) == {st.ARCHIVED}
    assert run_all(lp) == []
    assert lp.get_fw_by_id(1).archived_launches == [1]
    assert lp.workflows.find_one({})["state"] == st.ARCHIVED
    fw_states_consistent(lp)
    res = transitions.archive_wflows(lp, [1])
    assert res.skipped[0].reason == "workflow already ARCHIVED"


def test_delete_workflow_keeps_or_removes_launch_dirs(gods):
    lp = gods
    run_fw(lp, 1)
    ldir = lp.get_launch_by_id(1).launch_dir
    plan = deletion.delete_wflows(lp, [1], dry_run=True)
    assert plan.extra["launches"] == [1] and lp.fireworks.count_documents({}) == 14
    deletion.delete_wflows(lp, [1])
    assert lp.fireworks.count_documents({}) == 0 and lp.workflows.count_documents({}) == 0
    assert lp.launches.count_documents({}) == 0 and os.path.isdir(ldir)
    lp.add_wf(greek_gods())
    run_fw(lp)
    ldir = lp.get_launch_by_id(2).launch_dir
    deletion.delete_wflows(lp, Selector(name="greek gods"), delete_launch_dirs=True)
    assert not os.path.exists(ldir)


def test_dry_runs_and_bad_ids_write_nothing(gods):
    lp = gods
    run_all(lp)
    before = list(lp.fireworks.find({}, {"_id": 0}).sort("fw_id", 1))
    res = transitions.defuse_fws(lp, [ZEUS], dry_run=True)
    assert res.dry_run and {c.fw_id for c in res.changes} >= {ZEUS}
    with pytest.raises(ValueError, match="FW with id: 99 not found!"):
        transitions.defuse_fws(lp, [3, 99])
    with pytest.raises(ValueError, match="not found"):
        transitions.archive_wflows(lp, [99])
    assert list(lp.fireworks.find({}, {"_id": 0}).sort("fw_id", 1)) == before


def test_detect_lostruns_finds_fizzles_and_reruns(gods):
    lp = gods
    run_fw(lp, 1)
    _fw, lid = start_fw(lp, ZEUS)
    assert lostruns.detect_lostruns(lp).lost_fw_ids == []
    lp.launches.update_one(
        {"launch_id": lid}, {"$set": {"state_history.0.updated_on": "2001-01-01T00:00:00+00:00"}}
    )
    # The heartbeat is older than the start: the run lasted less than the 1 s minimum.
    found = lostruns.detect_lostruns(lp, min_runtime=1)
    assert found.lost_fw_ids == [] and found.lost_launch_ids == []
    found = lostruns.detect_lostruns(lp, query={"fw_id": 3})
    assert found.lost_launch_ids == []
    found = lostruns.detect_lostruns(lp, rerun=True)
    assert (found.lost_launch_ids, found.lost_fw_ids, found.rerun) == ([lid], [ZEUS], [ZEUS])
    assert states(lp, [ZEUS])[ZEUS] == st.READY
    fw_states_consistent(lp)


def test_detect_lostruns_refreshes_inconsistent(gods):
    lp = gods
    _fw, lid = start_fw(lp, 1)
    # The final refresh did not happen (e.g. the lock was held): launch COMPLETED, FW RUNNING.
    lp.launches.update_one({"launch_id": lid}, {"$set": {"state": st.COMPLETED}})
    found = lostruns.detect_lostruns(lp, refresh=True)
    assert found.inconsistent_fw_ids == [1] and found.refreshed
    assert states(lp, [1, 2]) == {1: st.COMPLETED, 2: st.READY}
    fw_states_consistent(lp)


def test_admin_unlock_and_refresh(gods):
    lp = gods
    lp.workflows.update_one({"nodes": 1}, {"$set": {"locked": True, "locked_by": "dead"}})
    assert admin.unlock_wflows(lp, [5]) == [5]
    assert "locked" not in lp.workflows.find_one({})
    lp.fireworks.update_one({"fw_id": 1}, {"$set": {"state": st.WAITING}})
    admin.refresh_wflows(lp, [1])
    assert states(lp, [1])[1] == st.READY
    fw_states_consistent(lp)
