"""The lean launch cycle: a Firework's life in few MongoDB commands, without locks.

On the embedded server a launch's time is the number of commands it sends, writes above all
(``docs/performance.md``). A life here is:

start
    1. **claim** - one conditional update ``{fw_id, state: READY}`` -> ``RUNNING`` that also
       pushes the launch id (launch ids are reserved in blocks, one counter round trip per
       `LAUNCH_ID_BLOCK` launches). Whoever gets ``modified_count == 1`` owns the Firework.
       The Firework document comes from the candidate query that found it (a batch of READY
       documents), or from the completion that readied it (`ReadyHints`), so no re-read.
    2. **launch insert** - the launch document already carries the Prefect run ids and the
       first checkpoint.
    3. **workflow cache** - ``fw_states.<id>: RUNNING`` (one conditional update, no lock).

completion
    4. **launch update** - state, history, action, times (built from the launch document in
       memory: no re-read, no final ping).
    5. **workflow read** and 6. the **children's documents** (one ranged query), then
    7. **Firework writes** - one bulk write, each update conditional on what was read, and
    8. **workflow commit** - a compare-and-swap on the ``fw_states`` keys the decision read,
       ``updated_on`` and the absence of a lock; instead of a lock's two round trips.

Anything unusual - the compare-and-swap lost to a concurrent writer, an FWAction that changes
the workflow (spec updates, additions, detours, defuses), several active launches - takes the
locked path (`LaunchPad.edit_workflow`), which recomputes every Firework this cycle wrote.

Crash consistency: a process killed between the claim and the launch insert leaves a RUNNING
Firework listing a launch id with no launch document (``lpad admin check``: ``missing_launch``;
``detect_lostruns`` reports it); killed between the Firework writes and the workflow commit, a
``fw_states`` cache that disagrees with the Fireworks (``lpad admin check``: repaired by
``--repair``); killed after the launch update, a RUNNING Firework whose launch is COMPLETED
(FireWorks' "inconsistent" Firework, which ``detect_lostruns --refresh`` fixes).
"""

from __future__ import annotations

import json
import os
import socket
import threading
from collections import deque
from collections.abc import Callable, Iterable, Mapping
from datetime import datetime
from typing import TYPE_CHECKING, Any

import pymongo
from pymongo import UpdateOne

from prefect_fireworks.core import states as st
from prefect_fireworks.core.models import FWAction, isoformat, utcnow
from prefect_fireworks.store import ids
from prefect_fireworks.store.idranges import find_by_ids
from prefect_fireworks.store.intents import crash_point

if TYPE_CHECKING:
    from prefect_fireworks.store.db import FireworksDB
    from prefect_fireworks.store.launches import FWorker
    from prefect_fireworks.store.workflow_editor import WorkflowEditor

#: Launch ids reserved per counter round trip (unused ids of a block are simply skipped).
LAUNCH_ID_BLOCK = 64
#: READY Firework documents read per candidate query.
CANDIDATE_BATCH = 16
#: Compare-and-swap attempts before the locked path.
CAS_ATTEMPTS = 3
#: Fireworks read per children's query at a completion: the children, and WAITING Fireworks
#: further down the workflow kept for the next completions (`WaitingDocs`).
READ_AHEAD = 64
_HINTS_MAX = 10_000
_FW_DOC_FIELDS = {"_id": 0}


class LaunchIdBlock:
    """Launch ids reserved in blocks, handed out one by one (thread-safe)."""

    def __init__(self, block: int = LAUNCH_ID_BLOCK) -> None:
        self.block = block
        self._next = 0
        self._end = 0
        self._lock = threading.Lock()

    def take(self, lp: FireworksDB) -> int:
        with self._lock:
            if self._next >= self._end:
                self._next = ids.reserve(lp.fw_id_assigner, ids.LAUNCH_ID_FIELD, self.block)
                self._end = self._next + self.block
            lid = self._next
            self._next += 1
            return lid

    def give_back(self, lid: int) -> None:
        """Return the id just taken by a claim that did not happen, so launch ids stay
        consecutive as in FireWorks (which takes one only for a claimed Firework)."""
        with self._lock:
            if lid == self._next - 1:
                self._next = lid


class ReadyHints:
    """Documents of Fireworks this process saw READY (from a completion or a candidate query).

    A hint only saves a read: the claim is conditional on the document's ``updated_on`` (and
    on the worker's query), so a Firework changed since, taken by another runner or not for
    this worker is simply not claimed from its hint. Documents left over from a candidate
    query are kept under that query's key: another worker's query may rank other Fireworks
    first.
    """

    def __init__(self) -> None:
        self._docs: dict[int, tuple[str | None, dict[str, Any]]] = {}
        self._lock = threading.Lock()

    def put(self, docs: Iterable[Mapping[str, Any]], key: str | None = None) -> None:
        with self._lock:
            for d in docs:
                if len(self._docs) >= _HINTS_MAX:
                    self._docs.pop(next(iter(self._docs)))
                self._docs[int(d["fw_id"])] = (key, dict(d))

    def pop(self, fw_id: int) -> dict[str, Any] | None:
        with self._lock:
            got = self._docs.pop(fw_id, None)
        return got[1] if got else None

    def drop(self, fw_id: int) -> None:
        with self._lock:
            self._docs.pop(fw_id, None)

    def clear(self) -> None:
        """Forget every hint: the next claim asks the database (FireWorks' launch order)."""
        with self._lock:
            self._docs.clear()

    def ranked(self, key: str | None = None) -> list[dict[str, Any]]:
        """Hinted documents (readied ones, and ``key``'s leftovers), best first (priority,
        then fw_id, as the candidate query)."""
        with self._lock:
            docs = [d for k, d in self._docs.values() if k is None or k == key]
        return sorted(docs, key=lambda d: (-_priority(d), d["fw_id"]))


class WorkflowCache:
    """The last known state of the workflows this process launches from.

    Valid as long as this process is the only writer: every write made through it is
    conditional on the cached ``updated_on``, so a write by anyone else is noticed (the write
    fails, the entry is dropped and the workflow read again).
    """

    def __init__(self, size: int = 64) -> None:
        self.size = size
        self._by_fw: dict[int, Any] = {}
        self._docs: dict[Any, dict[str, Any]] = {}
        self._lock = threading.Lock()

    def get(self, fw_id: int) -> dict[str, Any] | None:
        with self._lock:
            key = self._by_fw.get(fw_id)
            doc = self._docs.get(key) if key is not None else None
            if doc is None:
                return None
            return {**doc, "fw_states": dict(doc["fw_states"])}

    def put(self, doc: Mapping[str, Any]) -> None:
        with self._lock:
            if doc["_id"] not in self._docs and len(self._docs) >= self.size:
                self._drop(next(iter(self._docs)))
            self._docs[doc["_id"]] = dict(doc)
            for n in doc.get("nodes") or []:
                self._by_fw[int(n)] = doc["_id"]

    def forget(self, fw_id: int) -> None:
        with self._lock:
            key = self._by_fw.get(fw_id)
            if key is not None:
                self._drop(key)

    def _drop(self, key: Any) -> None:
        doc = self._docs.pop(key, None)
        for n in (doc or {}).get("nodes") or []:
            self._by_fw.pop(int(n), None)


class WaitingDocs:
    """Documents of WAITING Fireworks read ahead of need, with a completion's children.

    A chain's next Firework is read together with the WAITING Fireworks after it (up to
    `READ_AHEAD` documents in one ranged query), so the next completions find their
    children here instead of reading them. A document held here may be stale: a completion
    that uses one writes the child conditional on its ``state``, ``updated_on`` and ``spec``
    as held (``update_fws`` and ``set_priority`` change a spec without touching
    ``updated_on``), so any change made meanwhile sends the completion to the locked path.
    """

    def __init__(self, size: int = _HINTS_MAX) -> None:
        self.size = size
        self._docs: dict[int, dict[str, Any]] = {}
        self._lock = threading.Lock()

    def get(self, fw_ids: Iterable[int]) -> dict[int, dict[str, Any]]:
        """Copies of the held documents of ``fw_ids``."""
        with self._lock:
            return {i: dict(self._docs[i]) for i in fw_ids if i in self._docs}

    def __contains__(self, fw_id: object) -> bool:
        return fw_id in self._docs

    def put(self, docs: Iterable[Mapping[str, Any]]) -> None:
        with self._lock:
            for d in docs:
                if len(self._docs) >= self.size:
                    self._docs.pop(next(iter(self._docs)))
                self._docs[int(d["fw_id"])] = dict(d)

    def drop(self, fw_ids: Iterable[int]) -> None:
        with self._lock:
            for i in fw_ids:
                self._docs.pop(i, None)

    def clear(self) -> None:
        """Forget every document (after a write found one changed: others may be too)."""
        with self._lock:
            self._docs.clear()


def _priority(doc: Mapping[str, Any]) -> float:
    try:
        return float((doc.get("spec") or {}).get("_priority") or 0)
    except (TypeError, ValueError):
        return 0.0


def _state_of(
    lp: FireworksDB,
) -> tuple[LaunchIdBlock, ReadyHints, WorkflowCache, WaitingDocs]:
    state = lp.__dict__.get("_launch_cycle")
    if state is None:
        state = (LaunchIdBlock(), ReadyHints(), WorkflowCache(), WaitingDocs())
        lp.__dict__["_launch_cycle"] = state
    return state


def waiting_docs(lp: FireworksDB) -> WaitingDocs:
    """This LaunchPad's documents of WAITING Fireworks read ahead."""
    return _state_of(lp)[3]


def workflow_cache(lp: FireworksDB) -> WorkflowCache:
    """This LaunchPad's cache of workflow documents."""
    return _state_of(lp)[2]


def hints(lp: FireworksDB) -> ReadyHints:
    """This LaunchPad's READY hints."""
    return _state_of(lp)[1]


def new_launch_id(lp: FireworksDB) -> int:
    """One launch id from this LaunchPad's reserved block."""
    return _state_of(lp)[0].take(lp)


# -- start ----------------------------------------------------------------------------------


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
        doc = lp.fireworks.find_one({"fw_id": fw_id, "state": {"$in": states}}, _FW_DOC_FIELDS)
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
        # A stale hint: the others may be stale too, and a Firework readied elsewhere may
        # rank first. Ask the database (FireWorks' order: priority, then fw_id).
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
        import random

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
        return list(lp.fireworks.find(query, _FW_DOC_FIELDS).sort(order).limit(CANDIDATE_BATCH))
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
        filt["spec"] = doc["spec"]
    if check_worker:
        filt = {"$and": [filt, fworker.checkout_query()]}
    try:
        res = lp.fireworks.update_one(
            filt, {"$set": {"state": state, "updated_on": now}, "$push": {"launches": launch_id}}
        )
    except pymongo.errors.OperationFailure:
        # the server cannot update this document: leave it to `lpad admin check`, run others
        _unusable(lp).add(doc["fw_id"])
        _state_of(lp)[0].give_back(launch_id)
        return None
    if res.modified_count != 1:
        _state_of(lp)[0].give_back(launch_id)
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
    from prefect_fireworks.store import launches as _launches

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
                _launches._fizzle_undeserialisable(lp, fw, exc)
                if fw_id is not None:
                    return None
                continue
        if fw["spec"].get("_dupefinder"):
            before = {**fw, "launches": [i for i in fw["launches"] if i != launch_id]}
            if _launches._steal_launches(lp, before):
                lp.fireworks.update_one({"fw_id": fw["fw_id"]}, {"$pull": {"launches": launch_id}})
                _state_of(lp)[0].give_back(launch_id)  # FireWorks takes no launch id here
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


def _stored_time(dt: datetime) -> datetime:
    """A datetime as MongoDB stores it (milliseconds)."""
    return dt.replace(microsecond=dt.microsecond // 1000 * 1000)


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
    Otherwise (DEFUSED, PAUSED, FIZZLED, locked...) recompute under the lock.
    """
    if state in st.ACTIVE_STATES:
        wf_state = st.RUNNING if state == st.RUNNING else None
        allowed = [st.READY, st.RESERVED, st.RUNNING] if wf_state else [st.READY, st.RESERVED]
        now = utcnow()
        sets = {f"fw_states.{fw_id}": state, "state": wf_state or st.RESERVED, "updated_on": now}
        cache = workflow_cache(lp)
        cached = cache.get(fw_id)
        filt: dict[str, Any] = {
            "nodes": fw_id,
            "locked": {"$exists": False},
            "state": {"$in": allowed},
        }
        if cached is not None:
            filt = {**filt, "_id": cached["_id"], "updated_on": cached.get("updated_on")}
        res = lp.workflows.update_one(filt, {"$set": sets})
        if res.modified_count == 1:
            if cached is not None:
                cached["fw_states"][str(fw_id)] = state
                cached.update(state=sets["state"], updated_on=_stored_time(now))
                cache.put(cached)
            return
        cache.forget(fw_id)
        if cached is not None:  # someone else wrote the workflow: the plain write
            del filt["_id"], filt["updated_on"]
            if lp.workflows.update_one(filt, {"$set": sets}).modified_count == 1:
                return
    with lp.edit_workflow(fw_id) as ed:
        ed.fw_states[fw_id] = state


# -- completion -----------------------------------------------------------------------------


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
        fw_doc = lp.fireworks.find_one({"fw_id": fw_id}, _FW_DOC_FIELDS) or fw_doc
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
    import copy

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
        for doc in find_by_ids(lp.fireworks, "fw_id", [*missing, *extra], _FW_DOC_FIELDS):
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
                filt["updated_on"], filt["spec"] = held[fid]
        ops.append(UpdateOne(filt, {"$set": sets}))
    if not ops:
        return True
    res = lp.fireworks.bulk_write(ops, ordered=True)
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
    return {"state": wf_state, "updated_on": _stored_time(now)}


def ip_address() -> str:
    """This host's IP address (127.0.0.1 when it has none)."""
    try:
        return socket.gethostbyname(socket.gethostname())
    except OSError:
        return "127.0.0.1"
