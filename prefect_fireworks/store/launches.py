"""Checkout and launch records: FWorker queries, the atomic claim, heartbeats and completion.

``checkout_fw`` claims one READY Firework with a conditional write and creates its launch;
``complete_launch`` records the end of a launch and refreshes the Fireworks that list it.
"""

from __future__ import annotations

import json
import os
import random
import socket
from collections.abc import Callable, Mapping
from datetime import datetime
from typing import TYPE_CHECKING, Any

import pymongo
from pydantic import BaseModel, Field
from pymongo import ASCENDING, DESCENDING

from prefect_fireworks.core import states as st
from prefect_fireworks.core.constants import GRIDFS_FALLBACK_COLLECTION
from prefect_fireworks.core.models import FWAction, isoformat, utcnow
from prefect_fireworks.store.intents import crash_point

if TYPE_CHECKING:
    from prefect_fireworks.store.db import FireworksDB


class FWorker(BaseModel):
    """Who runs Fireworks: name, category and an extra query (FireWorks' ``FWorker``)."""

    name: str = "Automatically generated Worker"
    category: str | list[str] = ""
    query: dict[str, Any] = Field(default_factory=dict)
    env: dict[str, Any] = Field(default_factory=dict)

    def checkout_query(self) -> dict[str, Any]:
        """FireWorks' ``FWorker.query``: the worker's query plus ``_fworker``/``_category``."""
        q = dict(self.query)
        fworker_check = [
            {"spec._fworker": {"$exists": False}},
            {"spec._fworker": None},
            {"spec._fworker": self.name},
        ]
        if "$or" in q:
            q["$and"] = [*q.get("$and", []), {"$or": q.pop("$or")}, {"$or": fworker_check}]
        else:
            q["$or"] = fworker_check
        if self.category and isinstance(self.category, str):
            if self.category == "__none__":
                q["spec._category"] = {"$exists": False}
            else:
                q["spec._category"] = self.category
        elif self.category:
            q["spec._category"] = {"$in": list(self.category)}
        return q

    def to_launch_dict(self) -> dict[str, Any]:
        """The launch document's ``fworker`` field (``query`` as a JSON string)."""
        return {
            "name": self.name,
            "category": self.category,
            "query": json.dumps(self.query),
            "env": self.env,
        }


def checkout_fw(
    lp: FireworksDB,
    fworker: FWorker,
    launch_dir: str,
    fw_id: int | None = None,
    *,
    state: str = st.RUNNING,
    host: str | None = None,
    ip: str | None = None,
    launch_extra: Mapping[str, Any] | None = None,
    dir_for: Callable[[dict[str, Any]], Any] | None = None,
    only_ready: bool = False,
) -> tuple[dict[str, Any] | None, int | None]:
    """Claim one READY Firework atomically and create its launch (see ``LaunchPad.checkout_fw``)."""
    while True:
        claimed = _claim(lp, fworker, fw_id, only_ready)
        if claimed is None:
            return None, None
        # A process killed here leaves a RESERVED Firework without a launch: `lpad admin
        # check` (orphan_claim) and `detect_lostruns` find and reset it.
        crash_point("checkout-claimed")
        fw = lp.fireworks.find_one({"fw_id": claimed})
        if fw is None:
            continue
        fw.pop("_id", None)
        if lp.task_validator is not None:
            try:
                lp.task_validator(fw["spec"].get("_tasks", []))
            except Exception as exc:
                _fizzle_undeserialisable(lp, fw, exc)
                if fw_id is not None:
                    return None, None
                continue
        if fw["spec"].get("_dupefinder") and _steal_launches(lp, fw):
            if fw_id is not None:
                return None, None
            continue
        ldir = fw["spec"].get("_launch_dir") or (dir_for(fw) if dir_for else launch_dir)
        launch_id = lp.get_new_launch_id()
        now = isoformat()
        entry: dict[str, Any] = {"state": state, "created_on": now, "updated_on": now}
        launch = {
            "fworker": fworker.to_launch_dict(),
            "fw_id": claimed,
            "launch_dir": os.path.abspath(str(ldir)),
            "host": host or socket.gethostname(),
            "ip": ip or _ip_address(),
            "trackers": [],
            "action": None,
            "state": state,
            "state_history": [entry],
            "launch_id": launch_id,
            "time_start": now if state == st.RUNNING else None,
            "time_end": None,
            "runtime_secs": None,
            **(launch_extra or {}),
        }
        lp.launches.insert_one(launch)
        lp.fireworks.update_one(
            {"fw_id": claimed},
            {"$push": {"launches": launch_id}, "$set": {"state": state, "updated_on": now}},
        )
        fw["launches"] = [*fw.get("launches", []), launch_id]
        fw["state"] = state
        _set_cached_state(lp, claimed, state)
        return fw, launch_id


def _claim(
    lp: FireworksDB, fworker: FWorker, fw_id: int | None, only_ready: bool = False
) -> int | None:
    if fw_id is not None:
        states = [st.READY] if only_ready else [st.READY, st.RESERVED]
        res = lp.fireworks.update_one(
            {"fw_id": fw_id, "state": {"$in": states}},
            {"$set": {"state": st.RESERVED, "updated_on": isoformat()}},
        )
        if res.matched_count == 1:
            return fw_id
        return None
    base = {"state": st.READY, **fworker.checkout_query()}
    bad: set[int] = set()
    for _ in range(100):
        query = {"$and": [base, {"fw_id": {"$nin": sorted(bad)}}]} if bad else base
        cands = [
            d["fw_id"]
            for d in lp.fireworks.find(query, {"fw_id": 1, "_id": 0})
            .sort([("spec._priority", DESCENDING), ("fw_id", ASCENDING)])
            .limit(16)
        ]
        if not cands:
            return None
        random_order = cands[:1] + random.sample(cands[1:], len(cands) - 1)
        for cand in random_order:
            try:
                res = lp.fireworks.update_one(
                    {"fw_id": cand, "state": st.READY},
                    {"$set": {"state": st.RESERVED, "updated_on": isoformat()}},
                )
            except pymongo.errors.OperationFailure:
                # the server cannot update this document (e.g. nested too deep, written by
                # something that did not check it): skip it, run the others
                bad.add(cand)
                continue
            if res.modified_count == 1:
                return cand
    return None


def _set_cached_state(lp: FireworksDB, fw_id: int, state: str) -> None:
    # The Firework document is already written: only the cached state changes. When the
    # workflow is READY/RESERVED/RUNNING and unlocked, a Firework starting makes it
    # RUNNING (RESERVED for a reservation) whatever the others are: one atomic write,
    # no lock cycle. Otherwise (DEFUSED, PAUSED, FIZZLED...) recompute under the lock.
    if state in st.ACTIVE_STATES:
        wf_state = st.RUNNING if state == st.RUNNING else None
        allowed = [st.READY, st.RESERVED, st.RUNNING] if wf_state else [st.READY, st.RESERVED]
        res = lp.workflows.update_one(
            {"nodes": fw_id, "locked": {"$exists": False}, "state": {"$in": allowed}},
            {
                "$set": {
                    f"fw_states.{fw_id}": state,
                    "state": wf_state or st.RESERVED,
                    "updated_on": utcnow(),
                }
            },
        )
        if res.modified_count == 1:
            return
    with lp.edit_workflow(fw_id) as ed:
        ed.fw_states[fw_id] = state


def _fizzle_undeserialisable(lp: FireworksDB, fw: Mapping[str, Any], exc: BaseException) -> None:
    import traceback

    details = {
        "_message": "FireWork failed to deserialize",
        "_stacktrace": "".join(traceback.format_exception(exc)),
    }
    with lp.edit_workflow(fw["fw_id"]) as ed:
        doc = ed.fw(fw["fw_id"])
        doc["spec"]["_exception_details"] = details
        ed.mark(fw["fw_id"], "spec")
        ed.set_state(fw["fw_id"], st.FIZZLED)
        ed.refresh(ed.children(fw["fw_id"]))


def _steal_launches(lp: FireworksDB, fw: Mapping[str, Any]) -> bool:
    """FireWorks' duplicate check: reuse the launches of an identical Firework."""
    finder = fw["spec"].get("_dupefinder") or {}
    if finder.get("_fw_name", "DupeFinderExact") != "DupeFinderExact":
        return False
    victim = lp.fireworks.find_one(
        {
            "fw_id": {"$ne": fw["fw_id"]},
            "state": {"$in": [st.RUNNING, st.COMPLETED]},
            "launches": {"$ne": []},
            "spec": fw["spec"],
        },
        {"fw_id": 1, "launches": 1, "_id": 0},
    )
    if victim is None:
        return False
    stolen = [lid for lid in victim["launches"] if lid not in fw.get("launches", [])]
    lp.fireworks.update_one(
        {"fw_id": fw["fw_id"]},
        {"$push": {"launches": {"$each": stolen}}, "$set": {"state": st.RESERVED}},
    )
    with lp.edit_workflow(fw["fw_id"]) as ed:
        ed.refresh([fw["fw_id"]])
    return True


def ping_launch(lp: FireworksDB, launch_id: int, checkpoint: Mapping[str, Any] | None) -> bool:
    """Stamp the RUNNING state-history entry of a RUNNING launch; False when not RUNNING."""
    # While a launch is RUNNING its last history entry is its (only) RUNNING entry, so the
    # positional operator stamps it in one round trip.
    sets: dict[str, Any] = {"state_history.$.updated_on": isoformat()}
    if checkpoint is not None:
        sets["state_history.$.checkpoint"] = dict(checkpoint)
    res = lp.launches.update_one(
        {"launch_id": launch_id, "state": st.RUNNING, "state_history.state": st.RUNNING},
        {"$set": sets},
    )
    return res.matched_count == 1


def complete_launch(
    lp: FireworksDB,
    launch_id: int,
    action: Mapping[str, Any] | None,
    state: str = st.COMPLETED,
    extra: Mapping[str, Any] | None = None,
) -> list[int]:
    """Record a launch's end and refresh every Firework that still lists it (see
    ``LaunchPad.complete_launch``)."""
    doc = lp.launches.find_one({"launch_id": launch_id}, {"_id": 0})
    if doc is None:
        raise ValueError(f"launch_id: {launch_id} does not exist")
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
    sets: dict[str, Any] = {
        "state": state,
        "state_history": history,
        # always the full FWAction shape: FireWorks' FWAction.from_dict needs every key
        "action": FWAction.from_dict(action).to_dict() if action is not None else None,
        "time_start": time_start,
        "time_end": time_end,
        "runtime_secs": runtime,
        **(extra or {}),
    }
    try:
        lp.launches.update_one({"launch_id": launch_id}, {"$set": sets})
    except pymongo.errors.DocumentTooLarge:
        import gridfs

        fs = gridfs.GridFS(lp.db, GRIDFS_FALLBACK_COLLECTION)
        gid = fs.put(json.dumps(sets["action"]).encode(), metadata={"launch_id": launch_id})
        sets["action"] = {"gridfs_id": str(gid)}
        lp.launches.update_one({"launch_id": launch_id}, {"$set": sets})
    fw_ids = [
        d["fw_id"] for d in lp.fireworks.find({"launches": launch_id}, {"fw_id": 1, "_id": 0})
    ]
    for fid in fw_ids:
        with lp.edit_workflow(fid) as ed:
            ed.refresh([fid])
    return fw_ids


def _ip_address() -> str:
    try:
        return socket.gethostbyname(socket.gethostname())
    except OSError:
        return "127.0.0.1"
