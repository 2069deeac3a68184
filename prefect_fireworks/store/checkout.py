"""The start of a launch: claim a READY Firework, write its launch, mark it in the workflow.

Part of the lean launch cycle (`prefect_fireworks.store.launch_cycle`): `claim` is one
conditional update ``{fw_id, state: READY, updated_on}`` -> RUNNING (or RESERVED) that also
pushes the launch id; `insert_launch` writes the launch document and `set_cached_state` the
workflow's ``fw_states`` (one conditional update, no lock). `checkout_launch` puts them
together with FireWorks' checks: Firetasks that cannot be loaded fizzle the Firework, a
``_dupefinder`` Firework takes an identical Firework's launches instead of running.
"""

from __future__ import annotations

import json
import os
import random
import socket
import time
from collections.abc import Callable, Mapping
from typing import TYPE_CHECKING, Any

import pymongo

from prefect_fireworks.core import states as st
from prefect_fireworks.core.models import isoformat, utcnow
from prefect_fireworks.store.intents import crash_point
from prefect_fireworks.store.launch_state import (
    FW_DOC_FIELDS,
    give_back_launch_id,
    hints,
    new_launch_id,
    stored_time,
    waiting_docs,
    workflow_cache,
)
from prefect_fireworks.store.launches import merge_flat

if TYPE_CHECKING:
    from prefect_fireworks.store.db import FireworksDB
    from prefect_fireworks.store.launches import FWorker

#: READY Firework documents read per candidate query.
CANDIDATE_BATCH = 16


def claim(
    lp: FireworksDB,
    fworker: FWorker,
    fw_id: int | None = None,
    *,
    state: str = st.RUNNING,
    only_ready: bool = True,
) -> tuple[dict[str, Any], int] | None:
    """Claim a READY Firework (this one, or the best the worker may run) in one write.

    The Firework becomes ``state`` (RUNNING, or RESERVED for a reservation) and lists a new
    launch id; the launch document is written by `insert_launch`.

    Returns:
        ``(firework document as it is now, launch_id)``, or None when nothing was claimed.
    """
    hinted = hints(lp)
    if fw_id is not None:
        doc = hinted.pop(fw_id)
        if doc is not None:
            got = _claim_doc(lp, fworker, doc, state, held=True)
            if got is not None:
                return got
        states = [st.READY] if only_ready else [st.READY, st.RESERVED]
        doc = lp.fireworks.find_one({"fw_id": fw_id, "state": {"$in": states}}, FW_DOC_FIELDS)
        if doc is None:
            return None
        return _claim_doc(lp, fworker, doc, state, any_state=states)
    base = {"state": st.READY, **fworker.checkout_query()}
    key = json.dumps(base, sort_keys=True, default=str)
    for doc in hinted.ranked(key):
        hinted.drop(doc["fw_id"])
        got = _claim_doc(lp, fworker, doc, state, held=True)
        if got is not None:
            return got
        # A stale hint (another worker claimed it, or it changed): the others may be stale
        # too, and a Firework readied elsewhere may rank first. Ask the database (FireWorks'
        # order: priority, then fw_id). Measured with 8 workers on shared fan-outs: trying
        # more hints instead costs ~1.5 lost claims per Firework for ~0.2 queries saved.
        hinted.clear()
        break
    for _ in range(100):
        bad = _unusable(lp)
        query = {"$and": [base, {"fw_id": {"$nin": sorted(bad)}}]} if bad else base
        docs = _candidates(lp, query)
        if not docs:
            return None
        # The best first; the others are kept as hints for the next claims.
        first, rest = docs[0], docs[1:]
        got = _claim_doc(lp, fworker, first, state, check_worker=False)
        if got is not None:
            hinted.put(rest, key)
            return got
        for doc in random.sample(rest, len(rest)):
            got = _claim_doc(lp, fworker, doc, state, check_worker=False)
            if got is not None:
                return got
    return None


def _unusable(lp: FireworksDB) -> set[int]:
    # fw_ids of documents the server cannot update or project (e.g. nested deeper than it
    # handles, written by something that did not check): skipped by this process's claims.
    found: set[int] = lp.__dict__.setdefault("_unusable_fw_ids", set())
    return found


def _candidates(lp: FireworksDB, query: Mapping[str, Any]) -> list[dict[str, Any]]:
    """The best READY documents; one the server cannot return is skipped, not fatal."""
    order = [("spec._priority", pymongo.DESCENDING), ("fw_id", pymongo.ASCENDING)]
    try:
        return list(lp.fireworks.find(query, FW_DOC_FIELDS).sort(order).limit(CANDIDATE_BATCH))
    except pymongo.errors.OperationFailure:
        pass
    # Slow path: ids first (an inclusion projection always works), then each document whole.
    out = []
    for d in lp.fireworks.find(query, {"fw_id": 1}).sort(order).limit(CANDIDATE_BATCH):
        try:
            doc = lp.fireworks.find_one({"fw_id": d["fw_id"]})
        except pymongo.errors.OperationFailure:
            _unusable(lp).add(d["fw_id"])
            continue
        if doc is not None:
            doc.pop("_id", None)
            out.append(doc)
    return out


def _claim_doc(
    lp: FireworksDB,
    fworker: FWorker,
    doc: dict[str, Any],
    state: str,
    *,
    any_state: list[str] | None = None,
    check_worker: bool = True,
    held: bool = False,
) -> tuple[dict[str, Any], int] | None:
    """Claim ``doc``'s Firework if it is still as read (``held``: a document kept since an
    earlier command, whose spec may have been changed without ``updated_on``)."""
    launch_id = new_launch_id(lp)
    now = isoformat()
    filt: dict[str, Any] = {
        "fw_id": doc["fw_id"],
        "updated_on": doc.get("updated_on"),
        "state": {"$in": any_state} if any_state else st.READY,
    }
    if held and "spec" in doc:
        filt["spec"] = {"$eq": doc["spec"]}  # $eq: a spec's keys are never operators
    if check_worker:
        filt = merge_flat(filt, fworker.checkout_query())
    try:
        res = lp.fireworks.update_one(
            filt, {"$set": {"state": state, "updated_on": now}, "$push": {"launches": launch_id}}
        )
    except (pymongo.errors.OperationFailure, pymongo.errors.DocumentTooLarge):
        # The server cannot update this document: leave it to `lpad admin check`, run others.
        # (A held document's spec in the filter may be what it cannot take: the claim then
        # asks the database, see `claim`.)
        if not held:
            _unusable(lp).add(doc["fw_id"])
        give_back_launch_id(lp, launch_id)
        return None
    if res.modified_count != 1:
        give_back_launch_id(lp, launch_id)
        return None
    # A process killed here leaves a claimed Firework listing a launch id with no launch
    # document: ``lpad admin check`` (orphan_claim) and ``detect_lostruns`` find it.
    crash_point("checkout-claimed")
    waiting_docs(lp).drop([doc["fw_id"]])
    doc = dict(doc)
    doc["state"] = state
    doc["updated_on"] = now
    doc["launches"] = [*(doc.get("launches") or []), launch_id]
    doc.setdefault("archived_launches", [])
    return doc, launch_id


def checkout_launch(
    lp: FireworksDB,
    fworker: FWorker,
    launch_dir: str,
    fw_id: int | None = None,
    *,
    state: str = st.RUNNING,
    host: str | None = None,
    ip: str | None = None,
    extra: Mapping[str, Any] | None = None,
    dir_for: Callable[[dict[str, Any]], Any] | None = None,
    only_ready: bool = True,
    insert: bool = True,
) -> tuple[dict[str, Any], dict[str, Any]] | None:
    """Claim a READY Firework and make its launch document (written now, or by the caller
    with `insert_launch` once it knows more, e.g. its Prefect task run).

    Firetasks that cannot be loaded fizzle the Firework (``lp.task_validator``); a
    ``_dupefinder`` Firework takes an identical Firework's launches instead of running.

    Returns:
        ``(firework document, launch document)``, or None when nothing was claimed.
    """
    while True:
        got = claim(lp, fworker, fw_id, state=state, only_ready=only_ready)
        if got is None:
            return None
        fw, launch_id = got
        if lp.task_validator is not None:
            try:
                lp.task_validator(fw["spec"].get("_tasks", []))
            except Exception as exc:
                _unclaim(lp, fw, launch_id)
                fizzle_undeserialisable(lp, fw, exc)
                if fw_id is not None:
                    return None
                continue
        if fw["spec"].get("_dupefinder"):
            before = {**fw, "launches": [i for i in fw["launches"] if i != launch_id]}
            if steal_launches(lp, before):
                lp.fireworks.update_one({"fw_id": fw["fw_id"]}, {"$pull": {"launches": launch_id}})
                give_back_launch_id(lp, launch_id)  # FireWorks takes no launch id here
                if fw_id is not None:
                    return None
                continue
        ldir = fw["spec"].get("_launch_dir") or (dir_for(fw) if dir_for else launch_dir)
        doc = new_launch_doc(
            fw, launch_id, fworker, str(ldir), state=state, host=host, ip=ip, extra=extra
        )
        if insert:
            insert_launch(lp, doc)
        return fw, doc


def _unclaim(lp: FireworksDB, fw: Mapping[str, Any], launch_id: int) -> None:
    lp.fireworks.update_one(
        {"fw_id": fw["fw_id"]},
        {"$pull": {"launches": launch_id}, "$set": {"state": st.READY}},
    )


def fizzle_undeserialisable(lp: FireworksDB, fw: Mapping[str, Any], exc: BaseException) -> None:
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


def steal_launches(lp: FireworksDB, fw: Mapping[str, Any]) -> bool:
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
    own = list(fw.get("launches") or [])
    stolen = [lid for lid in victim["launches"] if lid not in own]
    # ``fw`` lists its launches without the claim's own id: setting them drops that id in the
    # same write, so the refresh below never sees a claim whose launch is still to come.
    lp.fireworks.update_one(
        {"fw_id": fw["fw_id"]},
        {"$set": {"launches": [*own, *stolen], "state": st.RESERVED}},
    )
    with lp.edit_workflow(fw["fw_id"]) as ed:
        ed.refresh([fw["fw_id"]])
    return True


def new_launch_doc(
    fw_doc: Mapping[str, Any],
    launch_id: int,
    fworker: FWorker,
    launch_dir: str,
    *,
    state: str = st.RUNNING,
    host: str | None = None,
    ip: str | None = None,
    extra: Mapping[str, Any] | None = None,
    checkpoint: Mapping[str, Any] | None = None,
) -> dict[str, Any]:
    """The launch document FireWorks writes at checkout (plus ``extra`` fields)."""
    now = isoformat()
    entry: dict[str, Any] = {"state": state, "created_on": now, "updated_on": now}
    if checkpoint is not None:
        entry["checkpoint"] = dict(checkpoint)
    doc: dict[str, Any] = {
        "fworker": fworker.to_launch_dict(),
        "fw_id": fw_doc["fw_id"],
        "launch_dir": os.path.abspath(str(launch_dir)),
        "host": host or socket.gethostname(),
        "ip": ip or ip_address(),
        "trackers": [],
        "action": None,
        "state": state,
        "state_history": [entry],
        "launch_id": launch_id,
        "time_start": now if state == st.RUNNING else None,
        "time_end": None,
        "runtime_secs": None,
    }
    for key, value in (extra or {}).items():
        set_dotted(doc, key, value)
    return doc


def set_dotted(doc: dict[str, Any], key: str, value: Any) -> None:
    """``doc[a][b] = value`` for the key ``a.b`` (MongoDB's dotted ``$set`` keys)."""
    parts = key.split(".")
    cur = doc
    for p in parts[:-1]:
        nxt = cur.get(p)
        if not isinstance(nxt, dict):
            nxt = {}
            cur[p] = nxt
        cur = nxt
    cur[parts[-1]] = value


def insert_launch(lp: FireworksDB, launch_doc: Mapping[str, Any]) -> None:
    """Write a claimed Firework's launch and mark it in the workflow's ``fw_states``."""
    lp.launches.insert_one(dict(launch_doc))
    set_cached_state(lp, int(launch_doc["fw_id"]), str(launch_doc["state"]))


def set_cached_state(lp: FireworksDB, fw_id: int, state: str) -> None:
    """``fw_states.<fw_id>`` of a Firework that just started (RUNNING/RESERVED).

    When the workflow is READY/RESERVED/RUNNING and unlocked, a Firework starting makes it
    RUNNING (RESERVED for a reservation) whatever the others are: one conditional write.
    When the workflow is in that state already, the write sets only ``fw_states.<fw_id>``
    and leaves the workflow's ``updated_on``: the lock-free completions pin ``updated_on``
    (`prefect_fireworks.store.completion`), and a Firework going from READY to RUNNING never
    changes their decision (the workflow state rule gives the same answer with one more
    COMPLETED Firework either way), so concurrent workers' claims do not make them lose.
    A workflow locked by a live holder is retried briefly before queueing for its lock.
    Otherwise (DEFUSED, PAUSED, FIZZLED...) recompute under the lock.
    """
    if state in st.ACTIVE_STATES:
        target = st.RUNNING if state == st.RUNNING else st.RESERVED
        allowed = [st.READY, st.RESERVED]
        if target == st.RUNNING:
            allowed.append(st.RUNNING)
        cache = workflow_cache(lp)
        cached = cache.get(fw_id)
        for attempt in range(LOCKED_RETRIES + 1):
            if _write_started(lp, cache, cached, fw_id, state, target, allowed):
                return
            cached = None
            # Why did it not match? A lock held for a few round trips is worth waiting for;
            # any other state needs the workflow recomputed under the lock.
            wf = lp.workflows.find_one({"nodes": fw_id}, {"locked": 1, "state": 1, "_id": 0})
            if wf is None or not wf.get("locked") or wf.get("state") not in allowed:
                break
            if attempt < LOCKED_RETRIES:
                time.sleep(0.005 * (attempt + 1) + random.random() / 200)
    with lp.edit_workflow(fw_id) as ed:
        ed.fw_states[fw_id] = state


#: Retries of a claim's ``fw_states`` write while the workflow is locked (about 0.3 s).
LOCKED_RETRIES = 10


def _write_started(
    lp: FireworksDB,
    cache: Any,
    cached: dict[str, Any] | None,
    fw_id: int,
    state: str,
    target: str,
    allowed: list[str],
) -> bool:
    """One or two conditional writes of a started Firework's ``fw_states`` entry."""
    key = f"fw_states.{fw_id}"
    unlocked: dict[str, Any] = {"nodes": fw_id, "locked": {"$exists": False}}
    if cached is None or cached.get("state") == target:
        # The workflow already has the state the claim gives it: the quiet write.
        res = lp.workflows.update_one({**unlocked, "state": target}, {"$set": {key: state}})
        if res.modified_count == 1 or res.matched_count == 1:
            if cached is not None:
                cached["fw_states"][str(fw_id)] = state
                cache.put(cached)
            return True
    now = utcnow()
    sets = {key: state, "state": target, "updated_on": now}
    filt: dict[str, Any] = {**unlocked, "state": {"$in": allowed}}
    if cached is not None:
        filt = {**filt, "_id": cached["_id"], "updated_on": cached.get("updated_on")}
    if lp.workflows.update_one(filt, {"$set": sets}).modified_count == 1:
        if cached is not None:
            cached["fw_states"][str(fw_id)] = state
            cached.update(state=target, updated_on=stored_time(now))
            cache.put(cached)
        return True
    cache.forget(fw_id)
    if cached is not None:  # someone else wrote the workflow: the plain write
        del filt["_id"], filt["updated_on"]
        return lp.workflows.update_one(filt, {"$set": sets}).modified_count == 1
    return False


def ip_address() -> str:
    """This host's IP address (127.0.0.1 when it has none)."""
    try:
        return socket.gethostbyname(socket.gethostname())
    except OSError:
        return "127.0.0.1"
