"""Undo a rerun (``restore_launch``) on the real server: exact, and refused when not possible."""

from __future__ import annotations

from typing import Any

import pytest
from fwhelpers import ZEUS, ZEUS_CHILDREN, fw_states_consistent, run_all, run_fw

from prefect_fireworks.core import states as st
from prefect_fireworks.core.models import Firework, Workflow
from prefect_fireworks.ops.audit import Actor
from prefect_fireworks.ops.rerun import rerun_fws
from prefect_fireworks.ops.restore import RestoreError, apply_restore, plan_restore


def snapshot(lp: Any) -> Any:
    """Everything a rerun changes and a restore must put back."""
    fws = {
        d["fw_id"]: (d["state"], d.get("launches", []), d.get("archived_launches", []), d["spec"])
        for d in lp.fireworks.find({}, {"_id": 0})
    }
    wf = lp.workflows.find_one({})
    return fws, wf["fw_states"], wf["state"]


def restore(lp: Any, fw_id: int, launch_id: int | None = None, reason: str | None = None) -> Any:
    return apply_restore(
        lp, plan_restore(lp, fw_id, launch_id), Actor.current("test restore", reason)
    )


def test_restore_puts_a_rerun_back_exactly(gods: Any) -> None:
    lp = gods
    run_all(lp)
    before = snapshot(lp)
    rerun_fws(lp, [ZEUS])
    assert lp.get_fw_dict_by_id(ZEUS)["state"] == st.READY
    plan = plan_restore(lp, ZEUS)
    assert plan.fw_id == ZEUS
    assert {f.fw_id for f in plan.fireworks} == {ZEUS, *ZEUS_CHILDREN}
    assert snapshot(lp) != before  # planning wrote nothing
    done = apply_restore(lp, plan, Actor.current("lpad restore_launch -i 2", "rerun by mistake"))
    assert done.n_launches == 1 + len(ZEUS_CHILDREN)
    assert snapshot(lp) == before
    fw_states_consistent(lp)
    entry = lp.get_fw_dict_by_id(ZEUS)["rerun_history"][-1]
    assert entry["restored"]["reason"] == "rerun by mistake"
    assert entry["restored"]["command"] == "lpad restore_launch -i 2"
    with pytest.raises(RestoreError, match="no rerun to undo"):
        plan_restore(lp, ZEUS)
    # the Fireworks run on as if never rerun: nothing is READY
    assert run_all(lp) == []


def test_restore_undoes_task_level_recovery(lp: Any, tmp_path: Any, monkeypatch: Any) -> None:
    monkeypatch.chdir(tmp_path)
    tasks = [{"_fw_name": "ScriptTask", "script": "echo a"}] * 3
    lp.add_wf(Workflow([Firework(tasks, name="three", fw_id=1)]))
    run_fw(lp, 1, fail_at=1)
    before = snapshot(lp)
    rerun_fws(lp, [1], task_level=True, recover_mode="cp")
    assert "_recovery" in lp.get_fw_dict_by_id(1)["spec"]
    restore(lp, 1)
    assert snapshot(lp) == before
    assert "_recovery" not in lp.get_fw_dict_by_id(1)["spec"]


def test_refused_when_the_firework_or_a_descendant_ran_since(gods: Any) -> None:
    lp = gods
    run_all(lp)
    rerun_fws(lp, [ZEUS])
    run_fw(lp, ZEUS)  # Zeus runs again: its children become READY
    after_run = snapshot(lp)
    with pytest.raises(RestoreError, match="it has run since the rerun"):
        plan_restore(lp, ZEUS)
    run_fw(lp, 7)
    with pytest.raises(RestoreError, match="has run since"):
        plan_restore(lp, ZEUS)
    assert snapshot(lp) != after_run  # run_fw(7) changed it, not the refusals


def test_refused_when_a_descendant_changed_state(gods: Any) -> None:
    from prefect_fireworks.ops import transitions

    lp = gods
    run_all(lp)
    rerun_fws(lp, [ZEUS])
    transitions.pause_fws(lp, [8])
    before = snapshot(lp)
    with pytest.raises(RestoreError, match="descendant fw_id 8 is PAUSED now, WAITING right after"):
        restore(lp, ZEUS)
    assert snapshot(lp) == before


def test_launch_id_of_a_descendant_undoes_the_ancestor_rerun(gods: Any) -> None:
    lp = gods
    run_all(lp)
    before = snapshot(lp)
    (lid,) = lp.get_fw_dict_by_id(7)["launches"]
    rerun_fws(lp, [ZEUS])
    plan = plan_restore(lp, 7, lid)
    assert (plan.fw_id, plan.asked, plan.launch_id) == (ZEUS, 7, lid)
    apply_restore(lp, plan)
    assert snapshot(lp) == before
    with pytest.raises(RestoreError, match="is an active launch of fw_id 7"):
        plan_restore(lp, 7, lid)


def test_reruns_are_undone_newest_first(gods: Any) -> None:
    lp = gods
    run_all(lp)
    original = snapshot(lp)
    (lid,) = lp.get_fw_dict_by_id(ZEUS)["launches"]
    rerun_fws(lp, [ZEUS])
    once = snapshot(lp)
    rerun_fws(lp, [ZEUS], task_level=False, clear_recovery=True)  # archives nothing new
    with pytest.raises(RestoreError, match=r"rerun again .* restore that rerun first"):
        plan_restore(lp, ZEUS, lid)
    restore(lp, ZEUS)
    assert snapshot(lp) == once
    restore(lp, ZEUS, lid)
    assert snapshot(lp) == original


def test_records_without_undo_data_are_refused(gods: Any) -> None:
    lp = gods
    run_all(lp)
    rerun_fws(lp, [ZEUS])
    old = [{"at": "2025-01-01T00:00:00", "by": "x@y", "role": "target", "archived": [2]}]
    lp.fireworks.update_one({"fw_id": ZEUS}, {"$set": {"rerun_history": old}})
    with pytest.raises(RestoreError, match="cannot be undone exactly"):
        plan_restore(lp, ZEUS)
    with pytest.raises(RestoreError, match="no launch of fw_id 2"):
        plan_restore(lp, ZEUS, 999)
