"""The LaunchPad store on the real server: documents, ids, selectors, locks, checkout."""

from __future__ import annotations

import threading
from datetime import date

import pytest

from prefect_fireworks.core import states as st
from prefect_fireworks.core.models import Firework, Workflow
from prefect_fireworks.store.launchpad import FWorker, LockedWorkflowError, QueryError


def _fw(name: str, **kw):
    return Firework([{"_fw_name": "ScriptTask", "script": f"echo {name}"}], name=name, **kw)


def diamond():
    a = _fw("a")
    b = _fw("b", parents=[a])
    c = _fw("c", parents=[a])
    d = _fw("d", parents=[b, c])
    return Workflow([a, b, c, d], name="diamond")


def test_add_wf_writes_fireworks_documents(lp):
    id_map = lp.add_wf(diamond())
    assert sorted(id_map.values()) == [1, 2, 3, 4]
    fw = lp.fireworks.find_one({"fw_id": 1})
    assert fw["state"] == "READY" and fw["launches"] == [] and fw["archived_launches"] == []
    assert fw["spec"]["_tasks"] == [{"_fw_name": "ScriptTask", "script": "echo a"}]
    assert isinstance(fw["created_on"], str)
    wf = lp.workflows.find_one({"nodes": 1})
    assert wf["links"] == {"1": [2, 3], "2": [4], "3": [4], "4": []}
    assert wf["parent_links"] == {"2": [1], "3": [1], "4": [2, 3]}
    assert wf["fw_states"] == {"1": "READY", "2": "WAITING", "3": "WAITING", "4": "WAITING"}
    assert wf["state"] == "READY"
    assert lp.fw_id_assigner.find_one({"_id": -1})["next_fw_id"] == 5


def test_ids_are_reserved_in_blocks_without_collisions(lp):
    maps = []

    def add():
        maps.append(lp.add_wf(diamond()))

    threads = [threading.Thread(target=add) for _ in range(6)]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    ids = sorted(i for m in maps for i in m.values())
    assert ids == list(range(1, 25))


def test_reset_requires_todays_date(lp):
    lp.add_wf(diamond())
    with pytest.raises(ValueError, match="Invalid password"):
        lp.reset("2001-01-01")
    assert lp.fireworks.count_documents({}) == 4
    lp.reset(date.today().strftime("%Y-%m-%d"))
    assert lp.fireworks.count_documents({}) == 0


def test_selectors(lp):
    lp.add_wf(diamond())
    assert lp.get_fw_ids({"state": "READY"}) == [1]
    assert lp.get_fw_ids({"name": "c"}) == [3]
    assert lp.get_fw_ids(count_only=True) == 4
    assert lp.get_fw_ids(sort=[("created_on", -1)], limit=1) in ([4], [3], [2], [1])
    with pytest.raises(QueryError, match=r"\$where"):
        lp.get_fw_ids({"$where": "true"})
    with pytest.raises(QueryError, match=r"\$function"):
        lp.get_fw_ids({"$expr": {"$function": {"body": "x"}}})


def test_launches_mode_maps_active_launches_only(lp):
    lp.add_wf(diamond())
    fw, lid = lp.checkout_fw(FWorker(), "/tmp")
    assert fw is not None and lid is not None
    err = {"_exception": {"_stacktrace": "Traceback...\nMyCustomError: boom"}}
    lp.complete_launch(lid, {"stored_data": err}, st.FIZZLED)
    q = {"action.stored_data._exception._stacktrace": {"$regex": "MyCustomError"}}
    assert lp.get_fw_ids(q, launches_mode=True) == [1]
    with lp.edit_workflow(1) as ed:
        ed.rerun(1)
    # the launch is archived now: no longer active
    assert lp.get_fw_ids(q, launches_mode=True) == []


def test_checkout_is_atomic_across_threads(lp):
    fws = [_fw(f"f{i}") for i in range(30)]
    lp.add_wf(Workflow(fws, name="flat"))
    claimed: list[int] = []
    lock = threading.Lock()

    def worker():
        while True:
            fw, _ = lp.checkout_fw(FWorker(), "/tmp")
            if fw is None:
                return
            with lock:
                claimed.append(fw["fw_id"])

    threads = [threading.Thread(target=worker) for _ in range(4)]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    assert sorted(claimed) == list(range(1, 31))
    assert lp.launches.count_documents({}) == 30
    assert lp.fireworks.count_documents({"state": "RUNNING"}) == 30


def test_checkout_priority_and_fworker_routing(lp):
    low = _fw("low", spec={"_priority": 1})
    high = _fw("high", spec={"_priority": 5})
    other = _fw("other", spec={"_fworker": "elsewhere", "_priority": 9})
    cat = _fw("cat", spec={"_category": "gpu", "_priority": 8})
    lp.add_wf(Workflow([low, high, other, cat], name="prio"))
    fw, _ = lp.checkout_fw(FWorker(name="here"), "/tmp")
    assert fw["name"] == "cat"
    fw, _ = lp.checkout_fw(FWorker(name="here", category="__none__"), "/tmp")
    assert fw["name"] == "high"
    fw, _ = lp.checkout_fw(FWorker(name="elsewhere"), "/tmp")
    assert fw["name"] == "other"


def test_fworker_query_matches_fireworks_or_form(lp):
    """The flat ``$in`` check selects exactly what FireWorks' ``$or`` of three clauses does,
    also with the worker's own ``$or`` and a key that clashes with the check."""
    specs = [
        {},
        {"_fworker": None},
        {"_fworker": "here"},
        {"_fworker": "elsewhere"},
        {"_fworker": "here", "_category": "gpu"},
        {"_category": "cpu", "kind": "a"},
        {"_fworker": None, "_category": "gpu", "kind": "b"},
    ]
    lp.add_wf(Workflow([_fw(f"f{i}", spec=s) for i, s in enumerate(specs)], name="routing"))
    workers = [
        FWorker(name="here"),
        FWorker(name="here", category="gpu"),
        FWorker(name="here", category=["gpu", "cpu"]),
        FWorker(name="here", category="__none__"),
        FWorker(name="here", query={"$or": [{"spec.kind": "a"}, {"spec.kind": "b"}]}),
        FWorker(name="here", query={"spec._fworker": {"$exists": True}}),
    ]
    for w in workers:
        fireworks_form = dict(w.query)
        check = {
            "$or": [
                {"spec._fworker": {"$exists": False}},
                {"spec._fworker": None},
                {"spec._fworker": w.name},
            ]
        }
        cat = w.category
        if cat == "__none__":
            check["spec._category"] = {"$exists": False}
        elif isinstance(cat, str) and cat:
            check["spec._category"] = cat
        elif cat:
            check["spec._category"] = {"$in": list(cat)}
        expected = sorted(
            d["name"] for d in lp.fireworks.find({"$and": [fireworks_form, check]}, {"name": 1})
        )
        got = sorted(d["name"] for d in lp.fireworks.find(w.checkout_query(), {"name": 1}))
        assert got == expected, (w, got, expected)
        assert "$or" not in w.checkout_query() or "$or" in w.query


def test_complete_launch_applies_action_and_readies_children(lp):
    lp.add_wf(diamond())
    _, lid = lp.checkout_fw(FWorker(), "/tmp")
    lp.complete_launch(
        lid,
        {"update_spec": {"x": 1}, "mod_spec": [{"_push": {"seen": "a"}}], "stored_data": {}},
    )
    docs = {d["fw_id"]: d for d in lp.fireworks.find()}
    assert docs[1]["state"] == "COMPLETED"
    assert docs[2]["state"] == docs[3]["state"] == "READY"
    assert docs[2]["spec"]["x"] == 1 and docs[2]["spec"]["seen"] == ["a"]
    assert "x" not in docs[4]["spec"]
    launch = lp.launches.find_one({"launch_id": lid})
    assert [h["state"] for h in launch["state_history"]] == ["RUNNING", "COMPLETED"]
    assert launch["time_end"] and launch["runtime_secs"] is not None
    wf = lp.workflows.find_one({"nodes": 1})
    assert wf["fw_states"]["1"] == "COMPLETED" and wf["state"] == "RUNNING"


def test_stale_lock_expires_and_live_lock_blocks(lp):
    lp.add_wf(diamond())
    lp.workflows.update_one({"nodes": 1}, {"$set": {"locked": True}})
    with pytest.raises(LockedWorkflowError), lp.wf_lock(1, wait_secs=0.2):
        pass
    # a lock without a time (FireWorks') or older than the expiry is taken over
    from datetime import datetime, timedelta, timezone

    old = datetime.now(timezone.utc) - timedelta(hours=1)
    lp.workflows.update_one({"nodes": 1}, {"$set": {"locked_at": old, "locked_by": "dead"}})
    with lp.wf_lock(1, wait_secs=0.2):
        assert lp.workflows.find_one({"nodes": 1})["locked_by"] != "dead"
    assert "locked" not in lp.workflows.find_one({"nodes": 1})


def test_lock_whose_reply_was_cut_off_is_recognised_as_ours(lp):
    """A lock write that landed but whose reply was lost is ours at once, not after expiry."""
    from datetime import datetime, timezone

    from prefect_fireworks.store.locks import WorkflowLock

    lp.add_wf(diamond())
    lock = WorkflowLock(lp.workflows, 1, lp.lock_owner, wait_secs=0.5)
    # What the server holds after our cut-off write: the workflow locked by this acquisition.
    at = datetime.now(timezone.utc).replace(microsecond=0, tzinfo=None)
    lp.workflows.update_one(
        {"nodes": 1}, {"$set": {"locked": True, "locked_by": lock.owner, "locked_at": at}}
    )
    with lock:
        assert lock.acquired_at == at
    assert "locked" not in lp.workflows.find_one({"nodes": 1})
    # Another acquisition of the same process does not take it: only this one is the owner.
    lp.workflows.update_one(
        {"nodes": 1}, {"$set": {"locked": True, "locked_by": lock.owner, "locked_at": at}}
    )
    with pytest.raises(LockedWorkflowError), lp.wf_lock(1, wait_secs=0.2):
        pass


def test_unknown_firework_errors(lp):
    with pytest.raises(ValueError, match="FW with id: 99 not found!"):
        lp.get_fw_dict_by_id(99)
    with pytest.raises(ValueError, match="launch_id: 7 does not exist"):
        lp.get_launch_by_id(7)


def test_checkout_keeps_the_workflow_state_rule(lp):
    # a READY workflow becomes RUNNING when a Firework starts (one atomic write)...
    lp.add_wf(diamond())
    lp.checkout_fw(FWorker(), "/tmp")
    assert lp.workflows.find_one({"nodes": 1})["state"] == "RUNNING"
    # ...but a workflow with a DEFUSED Firework stays DEFUSED (recomputed under the lock)
    x = _fw("x")
    y = _fw("y")
    lp.add_wf(Workflow([x, y], name="two roots"))
    lp.fireworks.update_one({"fw_id": 6}, {"$set": {"state": "DEFUSED"}})
    lp.workflows.update_one({"nodes": 5}, {"$set": {"fw_states.6": "DEFUSED", "state": "DEFUSED"}})
    fw, _ = lp.checkout_fw(FWorker(), "/tmp", fw_id=5)
    assert fw["fw_id"] == 5
    wf = lp.workflows.find_one({"nodes": 5})
    assert wf["fw_states"] == {"5": "RUNNING", "6": "DEFUSED"} and wf["state"] == "DEFUSED"


def test_ping_stamps_the_running_entry_and_stops_after_completion(lp):
    lp.add_wf(diamond())
    _, lid = lp.checkout_fw(FWorker(), "/tmp")
    assert lp.ping_launch(lid, {"_task_n": 2, "_all_stored_data": {"a": 1}})
    (entry,) = lp.launches.find_one({"launch_id": lid})["state_history"]
    assert entry["state"] == "RUNNING" and entry["checkpoint"]["_task_n"] == 2
    assert entry["updated_on"] >= entry["created_on"]
    lp.complete_launch(lid, {"stored_data": {}}, st.FIZZLED)
    assert not lp.ping_launch(lid, {"_task_n": 3})
    history = lp.launches.find_one({"launch_id": lid})["state_history"]
    # the FIZZLED entry inherits the last checkpoint, as in FireWorks
    assert [h["state"] for h in history] == ["RUNNING", "FIZZLED"]
    assert history[-1]["checkpoint"]["_task_n"] == 2
