"""Rerun on the real server: FireWorks' rules, task-level recovery, validation before writing.

Launches are driven by hand (checkout, checkpoint pings, completion), exactly as the rocket does.
"""

from __future__ import annotations

from datetime import date

import pytest
from fwhelpers import (
    ALL_IDS,
    LAPETUS_DESC,
    RECOVERY_KEYS,
    ZEUS,
    ZEUS_CHILDREN,
    ZEUS_SIBS,
    fw_states_consistent,
    run_all,
    run_fw,
    start_fw,
    states,
)

from prefect_fireworks.core import states as st
from prefect_fireworks.core.models import Firework, Workflow
from prefect_fireworks.ops.rerun import apply_rerun, plan_rerun, rerun_fws
from prefect_fireworks.ops.selection import Selector


def _fw(lp, fw_id):
    return lp.fireworks.find_one({"fw_id": fw_id}, {"_id": 0})


def _snapshot(lp):
    return (
        list(lp.fireworks.find({}, {"_id": 0}).sort("fw_id", 1)),
        list(lp.workflows.find({}, {"_id": 0, "locked": 0})),
        lp.launches.count_documents({}),
    )


def three_tasks(name="three", **kw):
    tasks = [{"_fw_name": "ScriptTask", "script": f"echo {i}"} for i in range(3)]
    return Firework(tasks, name=name, **kw)


# -- FireWorks' Greek-gods scenarios -------------------------------------------------------------
def test_rerun_completed_zeus_resets_its_children_only(gods):
    lp = gods
    run_all(lp)
    assert set(states(lp).values()) == {st.COMPLETED}
    result = rerun_fws(lp, [ZEUS])
    s = states(lp)
    assert s[ZEUS] == st.READY
    assert {s[i] for i in ZEUS_CHILDREN} == {st.WAITING}
    assert {s[i] for i in ZEUS_SIBS | LAPETUS_DESC | {1}} == {st.COMPLETED}
    assert result.rerun_ids == [ZEUS]
    assert {e.fw_id for e in result.entries} == {ZEUS} | ZEUS_CHILDREN
    for i in {ZEUS} | ZEUS_CHILDREN:
        doc = _fw(lp, i)
        assert doc["launches"] == [] and len(doc["archived_launches"]) == 1
    assert _fw(lp, 3)["archived_launches"] == [] and len(_fw(lp, 3)["launches"]) == 1
    hist = _fw(lp, ZEUS)["rerun_history"]
    assert hist[0]["archived"] == _fw(lp, ZEUS)["archived_launches"]
    assert hist[0]["state_before"] == st.COMPLETED and hist[0]["task_level"] is False
    assert "rerun_history" not in _fw(lp, 7)
    fw_states_consistent(lp)
    assert lp.workflows.find_one({})["state"] == st.RUNNING


def test_rerun_then_run_again_gives_new_launches(gods, tmp_path):
    lp = gods
    run_all(lp)
    first_dir = lp.get_launch_by_id(_fw(lp, ZEUS)["launches"][0]).launch_dir
    rerun_fws(lp, ZEUS)
    ran = run_all(lp)
    assert set(ran) == {ZEUS} | ZEUS_CHILDREN
    zeus = _fw(lp, ZEUS)
    assert lp.get_launch_by_id(zeus["launches"][0]).launch_dir != first_dir
    assert set(states(lp).values()) == {st.COMPLETED}
    for i in ZEUS_SIBS:
        assert len(_fw(lp, i)["launches"]) == 1 and _fw(lp, i)["archived_launches"] == []
    fw_states_consistent(lp)


@pytest.mark.no_admin_check  # the test corrupts the LaunchPad on purpose
def test_state_gate_archived_defused_untouched_waiting_skipped(gods):
    lp = gods
    run_fw(lp, 1)
    lp.fireworks.update_one({"fw_id": 3}, {"$set": {"state": st.DEFUSED}})
    plan = plan_rerun(lp, [3, 7])
    assert [(s.fw_id, s.state) for s in plan.skipped] == [(3, st.DEFUSED), (7, st.WAITING)]
    assert plan.entries == []
    before = _snapshot(lp)
    apply_rerun(lp, plan)
    assert _snapshot(lp)[0] == before[0]


def test_defused_descendant_is_reset_by_an_ancestor_rerun(gods):
    lp = gods
    run_all(lp)
    from prefect_fireworks.ops.transitions import defuse_fws

    defuse_fws(lp, [9])
    assert states(lp, [9])[9] == st.DEFUSED
    # rerunning the DEFUSED Firework itself is a no-op ...
    assert rerun_fws(lp, [9]).entries == []
    assert states(lp, [9])[9] == st.DEFUSED
    # ... but an ancestor's rerun reaches it through non-WAITING children (as FireWorks does).
    rerun_fws(lp, [ZEUS])
    assert states(lp, [9])[9] == st.WAITING
    fw_states_consistent(lp)


def test_rerun_of_a_running_firework_archives_its_live_launch(gods):
    lp = gods
    run_fw(lp, 1)
    _fw_doc, lid = start_fw(lp, ZEUS)
    assert states(lp, [ZEUS])[ZEUS] == st.RUNNING
    rerun_fws(lp, [ZEUS])
    assert _fw(lp, ZEUS)["archived_launches"] == [lid]
    assert states(lp, [ZEUS])[ZEUS] == st.READY
    # The old run finishing later changes its launch only.
    assert lp.ping_launch(lid) is True
    lp.complete_launch(lid, {}, st.COMPLETED)
    assert states(lp, [ZEUS])[ZEUS] == st.READY
    fw_states_consistent(lp)


def test_validate_everything_before_writing(gods):
    lp = gods
    run_all(lp)
    before = _snapshot(lp)
    with pytest.raises(ValueError, match="FW with id: 999 not found!"):
        rerun_fws(lp, [ZEUS, 999])
    with pytest.raises(ValueError, match="FW with id: 999 not found!"):
        plan_rerun(lp, [ZEUS, 999])
    assert _snapshot(lp) == before


def test_dry_run_writes_nothing(gods):
    lp = gods
    run_all(lp)
    before = _snapshot(lp)
    res = rerun_fws(lp, [1], dry_run=True)
    assert res.dry_run and {e.fw_id for e in res.entries} == ALL_IDS - {6, 10, 12, 13}
    assert {e.state_after for e in res.entries if e.fw_id != 1} == {st.WAITING}
    assert _snapshot(lp) == before


def test_mass_rerun_needs_password_or_yes(gods):
    lp = gods
    run_all(lp)
    before = _snapshot(lp)
    sel = Selector(state=st.COMPLETED)
    with pytest.raises(ValueError, match="requires setting the --password"):
        rerun_fws(lp, sel)
    with pytest.raises(ValueError, match="requires setting the --password"):
        rerun_fws(lp, sel, password="2001-01-01")
    with pytest.raises(ValueError, match="aborted"):
        rerun_fws(lp, sel, ask=lambda prompt: False)
    assert _snapshot(lp) == before
    asked = []
    rerun_fws(lp, sel, ask=lambda prompt: asked.append(prompt) or True)
    assert asked == ["Are you sure? This will modify 14 entries. (Y/N)"]
    assert states(lp)[1] == st.READY
    run_all(lp)
    rerun_fws(lp, sel, password=date.today().strftime("%Y-%m-%d"))
    assert states(lp)[6] == st.READY
    fw_states_consistent(lp)


def test_rerun_by_stacktrace_regex_in_launches_mode(lp):
    lp.add_wf(Workflow([three_tasks("a")]))
    lp.add_wf(Workflow([three_tasks("b")]))
    run_fw(lp, 1, fail_at=1)
    run_fw(lp, 2)
    sel = Selector.from_options(
        query='{"action.stored_data._exception._stacktrace": {"$regex": "My custom error"}}',
        launches_mode=True,
    )
    assert sel.resolve(lp) == [1]
    res = rerun_fws(lp, sel)
    assert res.rerun_ids == [1]
    assert states(lp) == {1: st.READY, 2: st.COMPLETED}


def test_except_details_on_rerun(lp):
    lp.add_wf(Workflow([three_tasks()]))
    run_fw(lp, 1, fail_at=0)
    rerun_fws(lp, [1], except_details=True)
    assert _fw(lp, 1)["spec"]["_exception_details"] == {"error": "description"}
    run_fw(lp, 1, fail_at=0)
    rerun_fws(lp, [1], except_details=False)
    assert "_exception_details" not in _fw(lp, 1)["spec"]


def test_except_details_from_environment(lp, monkeypatch):
    monkeypatch.setenv("PREFECT_INTEGRATIONS_FIREWORKS_EXCEPT_DETAILS_ON_RERUN", "true")
    lp.add_wf(Workflow([three_tasks()]))
    run_fw(lp, 1, fail_at=0)
    assert plan_rerun(lp, [1]).options.except_details is True
    rerun_fws(lp, [1])
    assert _fw(lp, 1)["spec"]["_exception_details"] == {"error": "description"}


# -- task-level recovery -------------------------------------------------------------------------
@pytest.fixture
def failed(lp, tmp_path, monkeypatch):
    """Firework 1 with three Firetasks failed in its third one (index 2)."""
    monkeypatch.chdir(tmp_path)
    lp.add_wf(Workflow([three_tasks(), three_tasks("child", parents=[])]))
    run_fw(lp, 1, fail_at=2, stored=[{"t0": 1}, {"t1": 2}])
    assert states(lp, [1])[1] == st.FIZZLED
    return lp


def test_task_level_rerun_recovers_last_launch(failed):
    lp = failed
    res = rerun_fws(lp, [1], task_level=True)
    rec = _fw(lp, 1)["spec"]["_recovery"]
    assert set(rec) == RECOVERY_KEYS
    assert rec["_task_n"] == 2 and rec["_launch_id"] == 1 and rec["_mode"] is None
    assert rec["_all_stored_data"] == {"t0": 1, "t1": 2}
    assert rec["_prev_dir"] == lp.get_launch_by_id(1).launch_dir
    assert res.recovery[1] == rec
    assert states(lp, [1])[1] == st.READY
    assert _fw(lp, 1)["rerun_history"][-1]["task_level"] is True
    # The rerun restarts at task 2 with the accumulated data.
    run_fw(lp, 1)
    launch = lp.get_launch_by_id(_fw(lp, 1)["launches"][0])
    assert launch.state == st.COMPLETED
    assert launch.action["stored_data"] == {"t0": 1, "t1": 2}
    assert [h.get("checkpoint", {}).get("_task_n") for h in launch.state_history][:1] == [2]


def test_plain_rerun_keeps_recovery_and_clear_recovery_removes_it(failed):
    lp = failed
    rerun_fws(lp, [1], task_level=True, recover_mode="prev_dir")
    spec = _fw(lp, 1)["spec"]
    assert spec["_launch_dir"] == spec["_recovery"]["_prev_dir"]
    run_fw(lp, 1, fail_at=2)
    assert lp.get_launch_by_id(2).launch_dir == spec["_launch_dir"]
    res = rerun_fws(lp, [1])
    assert res.entries[0].recovery == "kept"
    assert _fw(lp, 1)["spec"]["_recovery"]["_task_n"] == 2
    res = rerun_fws(lp, [1], clear_recovery=True)
    assert res.entries[0].recovery == "cleared"
    spec = _fw(lp, 1)["spec"]
    assert "_recovery" not in spec and "_launch_dir" not in spec


def test_clear_recovery_keeps_a_launch_dir_the_user_set(lp, tmp_path):
    lp.add_wf(Workflow([three_tasks(spec={"_launch_dir": str(tmp_path / "mine")})]))
    run_fw(lp, 1, fail_at=1)
    rerun_fws(lp, [1], task_level=True, recover_mode="cp")
    assert _fw(lp, 1)["spec"]["_recovery"]["_mode"] == "cp"
    run_fw(lp, 1, fail_at=1)
    rerun_fws(lp, [1], clear_recovery=True)
    spec = _fw(lp, 1)["spec"]
    assert "_recovery" not in spec and spec["_launch_dir"] == str(tmp_path / "mine")


def test_task_level_explicit_launch_id(failed):
    lp = failed
    rerun_fws(lp, [1], task_level=True)
    run_fw(lp, 1, fail_at=2)  # launch 2, restarted at task 2
    run_ids = _fw(lp, 1)["launches"]
    assert run_ids == [2]
    rerun_fws(lp, [1])  # plain rerun: launch 2 archived, recovery kept
    lp.fireworks.update_one({"fw_id": 1}, {"$set": {"launches": [1, 2]}})  # reactivate both
    plan = plan_rerun(lp, [1], task_level=True, launch_ids=[1])
    assert plan.recovery[1]["_launch_id"] == 1 and plan.recovery[1]["_task_n"] == 2


@pytest.mark.parametrize(
    ("kwargs", "message"),
    [
        ({"fw_ids": [999], "task_level": True}, "FW with id: 999 not found!"),
        ({"fw_ids": [1], "task_level": True, "launch_ids": [999]}, "launch_id: 999 is no launch"),
        ({"fw_ids": [2], "task_level": True}, "FW with id: 2 has no active launches"),
        ({"fw_ids": [1], "task_level": True, "launch_ids": [1, 2]}, "Specify the same number"),
        ({"fw_ids": [1], "task_level": True, "recover_mode": "zip"}, "recover_mode must be"),
        ({"fw_ids": [1], "recover_mode": "cp"}, "need --task-level"),
        ({"fw_ids": [1], "task_level": True, "clear_recovery": True}, "cannot be combined"),
    ],
)
def test_task_level_errors_write_nothing(failed, kwargs, message):
    lp = failed
    before = _snapshot(lp)
    with pytest.raises(ValueError, match=message):
        plan_rerun(lp, **kwargs)
    assert _snapshot(lp) == before


def test_no_recovery_info(lp):
    lp.add_wf(Workflow([Firework([{"_fw_name": "ScriptTask", "script": "echo"}])]))
    run_fw(lp, 1)  # a COMPLETED entry carries no checkpoint
    with pytest.raises(ValueError, match="No recovery info found in launch 1"):
        rerun_fws(lp, [1], task_level=True)


@pytest.mark.no_admin_check  # the test corrupts the LaunchPad on purpose
def test_launch_that_does_not_exist(failed):
    lp = failed
    lp.fireworks.update_one({"fw_id": 1}, {"$push": {"launches": 77}})
    with pytest.raises(ValueError, match="launch_id: 77 does not exist"):
        plan_rerun(lp, [1], task_level=True)


def test_task_level_bad_target_among_good_writes_nothing(failed):
    lp = failed
    before = _snapshot(lp)
    with pytest.raises(ValueError, match="FW with id: 2 has no active launches"):
        rerun_fws(lp, [1, 2], task_level=True)
    assert _snapshot(lp) == before


# -- what a rerun does not undo ------------------------------------------------------------------
def test_dynamic_actions_are_not_undone(lp):
    root = Firework([{"_fw_name": "ScriptTask", "script": "echo"}], name="root")
    child = Firework([{"_fw_name": "ScriptTask", "script": "echo"}], name="child", parents=[root])
    lp.add_wf(Workflow([root, child]))
    addition = Firework([{"_fw_name": "ScriptTask", "script": "echo"}], name="added").to_dict()
    action = {"additions": [addition], "mod_spec": [{"_push": {"pushed": 1}}]}
    run_fw(lp, 1, action=action)
    wf = lp.workflows.find_one({})
    assert wf["links"]["1"] == [2, 3] and _fw(lp, 2)["spec"]["pushed"] == [1]
    rerun_fws(lp, [1])
    wf = lp.workflows.find_one({})
    assert wf["links"]["1"] == [2, 3] and len(wf["nodes"]) == 3  # the addition stays
    assert _fw(lp, 2)["spec"]["pushed"] == [1]  # the spec change stays
    run_fw(lp, 1, action=action)
    wf = lp.workflows.find_one({})
    assert wf["links"]["1"] == [2, 3, 4] and len(wf["nodes"]) == 4  # added again
    assert _fw(lp, 2)["spec"]["pushed"] == [1, 1]  # _push accumulates
    fw_states_consistent(lp)


# -- duplicates ----------------------------------------------------------------------------------
def test_dupefinder_duplicates_rerun_together(lp):
    spec = {"_dupefinder": {"_fw_name": "DupeFinderExact"}, "x": 1}
    task = [{"_fw_name": "ScriptTask", "script": "echo same"}]
    lp.add_wf(Firework(task, spec=spec, name="one"))
    lp.add_wf(Firework(task, spec=spec, name="two"))
    run_fw(lp, 1)
    assert run_fw(lp, 2) is None  # the checkout finds the duplicate and steals its launch
    assert states(lp) == {1: st.COMPLETED, 2: st.COMPLETED}
    assert _fw(lp, 2)["launches"] == _fw(lp, 1)["launches"]
    res = rerun_fws(lp, [1])
    assert res.rerun_ids == [1, 2]
    assert [e.role for e in res.entries] == ["target", "duplicate"]
    assert states(lp) == {1: st.READY, 2: st.READY}
    res = rerun_fws(lp, [1], rerun_duplicates=False, dry_run=True)
    assert res.rerun_ids == [1]  # READY is rerun too; nothing shared any more
