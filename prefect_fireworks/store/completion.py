"""The end of a launch: record it, then refresh its Firework and the children it readies.

Part of the lean launch cycle (`prefect_fireworks.store.launch_cycle`). `finish_launch` writes
the launch's end (from the launch document in memory: no re-read, no final ping). When the
launch was its Firework's only one and its FWAction changes nothing but states, the refresh is
lock-free (`_refresh_lock_free`): the workflow comes from the process's cache, the children's
documents from `WaitingDocs` or one ranged query that also reads `READ_AHEAD` WAITING Fireworks
ahead, the Fireworks are written in one bulk write conditional on what was read, and the
workflow's ``fw_states`` with one compare-and-swap instead of a lock's two round trips.
Anything else takes the locked path (`LaunchPad.edit_workflow`).
"""

from __future__ import annotations

import copy
from collections import deque
from collections.abc import Mapping
from datetime import datetime
from typing import TYPE_CHECKING, Any

import pymongo
from pymongo import UpdateOne

from prefect_fireworks.core import states as st
from prefect_fireworks.core.models import FWAction, isoformat, utcnow
from prefect_fireworks.store.idranges import find_by_ids
from prefect_fireworks.store.launch_state import (
    FW_DOC_FIELDS,
    hints,
    stored_time,
    waiting_docs,
    workflow_cache,
)

if TYPE_CHECKING:
    from prefect_fireworks.store.db import FireworksDB
    from prefect_fireworks.store.workflow_editor import WorkflowEditor

#: Compare-and-swap attempts before the locked path.
CAS_ATTEMPTS = 3
#: Fireworks read per children's query at a completion: the children, and WAITING Fireworks
#: further down the workflow kept for the next completions (`WaitingDocs`).
READ_AHEAD = 64


def finish_launch(
    lp: FireworksDB,
    launch_id: int,
    action: Mapping[str, Any] | None,
    state: str = st.COMPLETED,
    extra: Mapping[str, Any] | None = None,
    *,
    launch_doc: Mapping[str, Any] | None = None,
    fw_doc: Mapping[str, Any] | None = None,
) -> dict[int, str]:
    """Record a launch's end and refresh the Fireworks that still list it.

    Args:
        launch_doc: the launch document as written at the start (saves a read).
        fw_doc: the Firework document as claimed (saves a read and enables the lock-free
            completion).

    Returns:
        fw_id -> its state after the refresh, for every Firework that listed the launch.
    """
    doc = dict(launch_doc) if launch_doc is not None else None
    if doc is None:
        doc = lp.launches.find_one({"launch_id": launch_id}, {"_id": 0})
        if doc is None:
            raise ValueError(f"launch_id: {launch_id} does not exist")
    sets = _end_fields(doc, action, state, extra)
    try:
        lp.launches.update_one({"launch_id": launch_id}, {"$set": sets})
    except pymongo.errors.DocumentTooLarge:
        import json

        import gridfs

        from prefect_fireworks.core.constants import GRIDFS_FALLBACK_COLLECTION

        fs = gridfs.GridFS(lp.db, GRIDFS_FALLBACK_COLLECTION)
        gid = fs.put(json.dumps(sets["action"]).encode(), metadata={"launch_id": launch_id})
        sets["action"] = {"gridfs_id": str(gid)}
        lp.launches.update_one({"launch_id": launch_id}, {"$set": sets})
    finished = {**doc, **sets, "launch_id": launch_id}
    if fw_doc is not None and _lean_ok(fw_doc, launch_id, sets["action"], state):
        new_state = _refresh_lock_free(lp, dict(fw_doc), finished)
        if new_state is not None:
            return {int(fw_doc["fw_id"]): new_state}
        fw_ids = [int(fw_doc["fw_id"])]
    else:
        fw_ids = [
            d["fw_id"] for d in lp.fireworks.find({"launches": launch_id}, {"fw_id": 1, "_id": 0})
        ]
    out: dict[int, str] = {}
    for fid in fw_ids:
        with lp.edit_workflow(fid) as ed:
            ed.refresh([fid])
            # Again for the children: a lock-free attempt may have written them.
            ed.refresh(ed.children(fid))
            out[fid] = ed.fw_states.get(fid, ed.fw(fid)["state"])
        waiting_docs(lp).drop(ed.children(fid))
        # What the locked path readied (FWActions, several parents) is hinted too, so the
        # next claim ranks it with the other hints (FireWorks' launch order); a stale hint
        # sends the claim to the database (see `claim`).
        ready = [
            ed.fws[c]
            for c in ed.children(fid)
            if ed.fw_states.get(c) == st.READY and isinstance(ed.fws.get(c), dict)
        ]
        hints(lp).put(ready)
    return out


def _end_fields(
    doc: Mapping[str, Any],
    action: Mapping[str, Any] | None,
    state: str,
    extra: Mapping[str, Any] | None,
) -> dict[str, Any]:
    history = list(doc.get("state_history", []))
    now = isoformat()
    if not history or history[-1]["state"] != state:
        entry: dict[str, Any] = {"state": state, "created_on": now}
        if state != st.COMPLETED and history and "checkpoint" in history[-1]:
            entry["checkpoint"] = history[-1]["checkpoint"]
        history.append(entry)
    time_start = doc.get("time_start") or next(
        (h["created_on"] for h in history if h["state"] == st.RUNNING), None
    )
    time_end = next((h["created_on"] for h in history if h["state"] in st.FINISHED_STATES), None)
    runtime = None
    if time_start and time_end:
        runtime = (
            datetime.fromisoformat(time_end) - datetime.fromisoformat(time_start)
        ).total_seconds()
    return {
        "state": state,
        "state_history": history,
        # always the full FWAction shape: FireWorks' FWAction.from_dict needs every key
        "action": FWAction.from_dict(action).to_dict() if action is not None else None,
        "time_start": time_start,
        "time_end": time_end,
        "runtime_secs": runtime,
        **(extra or {}),
    }


def _lean_ok(
    fw_doc: Mapping[str, Any], launch_id: int, action: Mapping[str, Any] | None, state: str
) -> bool:
    """Whether the lock-free completion applies: the Firework's only active launch, ended
    with an FWAction that changes nothing but the Fireworks' states."""
    if state != st.COMPLETED or list(fw_doc.get("launches") or []) != [launch_id]:
        return False
    act = action or {}
    changes = ("update_spec", "mod_spec", "additions", "detours", "append_wfs")
    if any(act.get(k) for k in changes):
        return False
    return not (act.get("defuse_children") or act.get("defuse_workflow"))


def _refresh_lock_free(
    lp: FireworksDB, fw_doc: dict[str, Any], launch: Mapping[str, Any]
) -> str | None:
    """Refresh a Firework after its launch ended with a compare-and-swap on the workflow.

    Returns:
        The Firework's new state, or None when the locked path must finish the job.
    """
    from prefect_fireworks.store.workflow_editor import WorkflowEditor

    fw_id = int(fw_doc["fw_id"])
    proj = {"links": 1, "nodes": 1, "fw_states": 1, "state": 1, "updated_on": 1, "locked": 1}
    cache = workflow_cache(lp)
    for _ in range(CAS_ATTEMPTS):
        wf = cache.get(fw_id) or lp.workflows.find_one({"nodes": fw_id}, proj)
        if wf is None:
            raise ValueError(f"FW with id: {fw_id} not found!")
        if wf.get("locked"):
            return None
        ed = WorkflowEditor(lp, wf)
        fw_doc.setdefault("archived_launches", [])
        ed.fws[fw_id] = fw_doc
        ed._launches[int(launch["launch_id"])] = {
            k: launch.get(k) for k in ("launch_id", "state", "time_end", "action", "launch_dir")
        }
        read_before = dict(ed.fw_states)
        kids = ed.children(fw_id)
        # One ranged query for the children not held (and WAITING Fireworks after them); the
        # children readied become the next claims' hints.
        held = _load_children(lp, ed, kids)
        doc_states = {c: ed.fws[c]["state"] for c in kids}
        ed.refresh([fw_id])
        # The children again: after a lost compare-and-swap the Firework is already
        # COMPLETED, and a child's other parents may have finished meanwhile.
        ed.refresh(kids)
        if (
            ed._new_fw_ids
            or ed._links_changed
            or any(f != fw_id and f not in ed.children(fw_id) for f in ed._dirty)
        ):
            waiting_docs(lp).drop(kids)
            return None
        if not _write_fireworks(lp, ed, fw_id, int(launch["launch_id"]), doc_states, held):
            waiting_docs(lp).clear()
            return None
        committed = _commit_cas(ed, wf, fw_id, read_before)
        if committed is not None:
            cache.put(
                {
                    **wf,
                    "fw_states": {str(k): v for k, v in ed.fw_states.items()},
                    **committed,
                }
            )
            ready = [ed.fws[c] for c in kids if ed.fw_states.get(c) == st.READY]
            hints(lp).put(ready)
            # The children still WAITING stay held, as just written (or read).
            waiting = [ed.fws[c] for c in kids if ed.fws[c]["state"] == st.WAITING]
            waiting_docs(lp).drop(kids)
            waiting_docs(lp).put(waiting)
            return ed.fw_states.get(fw_id, fw_doc["state"])
        # Lost to a concurrent writer: what this attempt wrote is recomputed by the next one
        # (or by the locked path).
        cache.forget(fw_id)
        waiting_docs(lp).clear()
        fw_doc = lp.fireworks.find_one({"fw_id": fw_id}, FW_DOC_FIELDS) or fw_doc
        if list(fw_doc.get("launches") or []) != [int(launch["launch_id"])]:
            return None
    return None


def _load_children(lp: FireworksDB, ed: WorkflowEditor, kids: list[int]) -> dict[int, Any]:
    """Put the children's documents in ``ed``: the held ones (`WaitingDocs`), the others read
    in one ranged query together with up to `READ_AHEAD` WAITING Fireworks after them.

    Returns:
        fw_id -> ``(updated_on, spec)`` of each child whose document was held: what its write
        must still find.
    """
    ahead = waiting_docs(lp)
    held = ahead.get(kids)
    for fid, doc in held.items():
        ed.fws[fid] = doc
    missing = [k for k in kids if k not in held and k not in ed.fws]
    if missing:
        extra: list[int] = []
        if len(missing) < READ_AHEAD:
            seen = set(kids)
            queue = deque(kids)
            while queue and len(missing) + len(extra) < READ_AHEAD:
                for c in ed.children(queue.popleft()):
                    if c in seen:
                        continue
                    seen.add(c)
                    queue.append(c)
                    if ed.fw_states.get(c) == st.WAITING and c not in ahead:
                        extra.append(c)
                        if len(missing) + len(extra) >= READ_AHEAD:
                            break
        wanted = set(extra)
        later = []
        for doc in find_by_ids(lp.fireworks, "fw_id", [*missing, *extra], FW_DOC_FIELDS):
            doc.setdefault("launches", [])
            doc.setdefault("archived_launches", [])
            if doc["fw_id"] in wanted:
                later.append(doc)
            else:
                ed.fws[doc["fw_id"]] = doc
        ahead.put(d for d in later if d.get("state") == st.WAITING)
        ed.load_fws(missing)  # raises for a child that does not exist
    return {
        fid: (doc.get("updated_on"), copy.deepcopy(doc.get("spec"))) for fid, doc in held.items()
    }


def _write_fireworks(
    lp: FireworksDB,
    ed: WorkflowEditor,
    fw_id: int,
    launch_id: int,
    doc_states: Mapping[int, str],
    held: Mapping[int, Any] | None = None,
) -> bool:
    """One bulk write of the changed Fireworks, each conditional on what was read (a held
    child also on its ``updated_on`` and ``spec``, see `WaitingDocs`).

    Returns:
        False when some Firework changed meanwhile (the launch is no longer the Firework's,
        or a child's state moved): the locked path takes over.
    """
    ops: list[UpdateOne] = []
    for fid, fields in ed._dirty.items():
        doc = ed.fws[fid]
        sets = {f: doc[f] for f in sorted(fields)}
        if fid == fw_id:
            filt: dict[str, Any] = {"fw_id": fid, "launches": launch_id}
        else:
            filt = {"fw_id": fid, "state": doc_states.get(fid, st.WAITING)}
            if held and fid in held:
                filt["updated_on"] = held[fid][0]
                filt["spec"] = {"$eq": held[fid][1]}  # $eq: a spec's keys are never operators
        ops.append(UpdateOne(filt, {"$set": sets}))
    if not ops:
        return True
    try:
        res = lp.fireworks.bulk_write(ops, ordered=True)
    except (pymongo.errors.OperationFailure, pymongo.errors.DocumentTooLarge):
        return False  # e.g. a held spec too large for a filter: the locked path
    return res.matched_count == len(ops)


def _commit_cas(
    ed: WorkflowEditor, wf: Mapping[str, Any], fw_id: int, read_before: Mapping[int, str]
) -> dict[str, Any] | None:
    """The workflow's ``fw_states`` and state, written if nothing they depend on changed.

    Returns:
        The workflow's new ``state`` and ``updated_on``, or None when the write lost.
    """
    changed = {k: v for k, v in ed.fw_states.items() if read_before.get(k) != v}
    wf_state = ed.workflow_state()
    sets: dict[str, Any] = {f"fw_states.{k}": v for k, v in changed.items()}
    if not sets and wf_state == wf.get("state"):
        return {"state": wf_state, "updated_on": wf.get("updated_on")}
    now = utcnow()
    sets["state"] = wf_state
    sets["updated_on"] = now
    # Every key the decision read: the Firework, its children and their parents.
    keys = {fw_id, *ed.children(fw_id)}
    for c in ed.children(fw_id):
        keys.update(ed.parents.get(c, []))
    filt: dict[str, Any] = {
        "_id": wf["_id"],
        "locked": {"$exists": False},
        "updated_on": wf.get("updated_on"),
    }
    for k in keys:
        v = read_before.get(k)
        filt[f"fw_states.{k}"] = v if v is not None else {"$exists": False}
    res = ed.lp.workflows.update_one(filt, {"$set": sets})
    if res.modified_count != 1:
        return None
    return {"state": wf_state, "updated_on": stored_time(now)}
