"""Crash-consistent multi-document writes: record the intent, write, forget the intent.

MongoDB (and the embedded server) write one document atomically, not several. A rerun of 5,000
Fireworks is a handful of bulk writes to ``fireworks`` and one update of the workflow; a process
killed between them leaves the Fireworks reset and the workflow's ``fw_states`` stale, and the
re-issued command then sees nothing left to do. So every multi-document change of a workflow is
run through :func:`run_writes`:

1. the planned writes (each one idempotent: ``$set``, a pipeline update, an upsert, a ``$push``
   guarded by its filter) are stored, BSON-encoded, in an *intent* document of the
   ``fw_intents`` collection;
2. they are applied in order;
3. the intent is deleted.

An intent that is still there afterwards belongs to a process that died (or lost its lock). It is
*rolled forward* - the same writes applied again, which is harmless for the part already done - by
whoever takes over the workflow lock, by any mass operation (:func:`roll_forward`), and by
``lpad admin check --repair``. A process is known dead at once on its own host (its pid is gone);
on another host only when its lock has expired.

A fault-injection hook for the crash tests: ``PREFECT_INTEGRATIONS_FIREWORKS_CRASH_AT=<point>``
makes the process kill itself (SIGKILL) at that point (see :func:`crash_point`).
"""

from __future__ import annotations

import os
import re
import signal
import socket
from collections.abc import Iterator, Mapping, Sequence
from dataclasses import dataclass, field
from datetime import datetime, timedelta, timezone
from pathlib import Path
from typing import TYPE_CHECKING, Any

import bson
from pymongo import DeleteMany, ReplaceOne, UpdateMany, UpdateOne

from prefect_fireworks.core.constants import GRIDFS_FALLBACK_COLLECTION

if TYPE_CHECKING:
    from pymongo.database import Database

#: The collection of unfinished intents (absent or empty when nothing is in flight).
INTENTS_COLLECTION = "fw_intents"
#: Encoded writes per intent document; larger plans are split into chunk documents.
CHUNK_BYTES = 8 * 1024 * 1024
#: Environment variable naming a crash point (tests only; see :func:`crash_point`).
CRASH_ENV = "PREFECT_INTEGRATIONS_FIREWORKS_CRASH_AT"
#: Collections a write may target (the GridFS ones for ``delete_wflows``).
_COLLECTIONS = frozenset(
    {
        "fireworks",
        "workflows",
        "launches",
        "offline_runs",
        f"{GRIDFS_FALLBACK_COLLECTION}.files",
        f"{GRIDFS_FALLBACK_COLLECTION}.chunks",
    }
)
_KINDS = frozenset({"update_one", "update_many", "replace_one", "delete_many"})

_crash_hits: dict[str, int] = {}


def crash_point(name: str) -> None:
    """Kill this process with SIGKILL when ``$PREFECT_INTEGRATIONS_FIREWORKS_CRASH_AT`` names
    this point (``name``) or its n-th passage (``name:n``). A no-op otherwise.

    Used by the crash tests to stop a real ``lpad``/``rlaunch`` at an exact place.
    """
    want = os.environ.get(CRASH_ENV)
    if not want:
        return
    point, _, nth = want.partition(":")
    if point != name:
        return
    _crash_hits[name] = _crash_hits.get(name, 0) + 1
    if not nth or (nth.isdigit() and _crash_hits[name] == int(nth)):
        os.kill(os.getpid(), signal.SIGKILL)


# -- owners ----------------------------------------------------------------------------------------
def process_owner() -> str:
    """``host:pid``: who this process is, in intents and locks."""
    return f"{socket.gethostname()}:{os.getpid()}"


def owner_is_dead(owner: str | None) -> bool:
    """True when ``owner`` (``host:pid[:...]``, as in ``locked_by``) names a process of this host
    that no longer exists. A process of another host is never known dead here (its lock expires).
    """
    if not owner:
        return False
    parts = owner.split(":")
    if len(parts) < 2 or not parts[1].isdigit():
        return False
    host, pid = parts[0], int(parts[1])
    if host != socket.gethostname():
        return False
    if pid == os.getpid():
        return False
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return True
    except PermissionError:
        return False
    # A killed child its parent has not reaped yet is a zombie: dead for our purposes.
    try:
        stat = Path(f"/proc/{pid}/stat").read_text()
    except OSError:
        return False
    return stat.rsplit(")", 1)[-1].split()[:1] == ["Z"]


# -- writes --------------------------------------------------------------------------------------
@dataclass(frozen=True)
class Write:
    """One idempotent write of a plan.

    Attributes:
        coll: ``fireworks``, ``workflows``, ``launches``, ``offline_runs`` or a GridFS
            collection.
        kind: ``update_one``, ``update_many``, ``replace_one`` or ``delete_many``.
        filter: the filter.
        update: the update document, pipeline (a list) or replacement (``{}`` for a delete).
        upsert: insert when nothing matches (new Fireworks are upserted by ``fw_id``).
    """

    coll: str
    kind: str
    filter: Mapping[str, Any]
    update: Mapping[str, Any] | Sequence[Mapping[str, Any]]
    upsert: bool = False

    def __post_init__(self) -> None:
        if self.coll not in _COLLECTIONS or self.kind not in _KINDS:
            raise ValueError(f"unsupported write {self.kind} on {self.coll}")

    def encode(self) -> bytes:
        """BSON bytes (keys such as ``$set`` or ``fw_states.3`` cannot be stored as fields)."""
        return bson.encode(
            {
                "c": self.coll,
                "k": self.kind,
                "f": dict(self.filter),
                "u": {"v": list(self.update) if isinstance(self.update, list) else self.update},
                "up": self.upsert,
            }
        )

    @classmethod
    def decode(cls, raw: bytes) -> Write:
        """The inverse of :meth:`encode`."""
        d = bson.decode(raw)
        return cls(d["c"], d["k"], d["f"], d["u"]["v"], bool(d.get("up", False)))

    def pymongo_op(self) -> Any:
        """The pymongo bulk operation."""
        if self.kind == "update_one":
            return UpdateOne(dict(self.filter), self.update, upsert=self.upsert)  # type: ignore[arg-type]
        if self.kind == "update_many":
            return UpdateMany(dict(self.filter), self.update, upsert=self.upsert)  # type: ignore[arg-type]
        if self.kind == "delete_many":
            return DeleteMany(dict(self.filter))
        return ReplaceOne(dict(self.filter), dict(self.update), upsert=self.upsert)  # type: ignore[arg-type]


def apply_writes(db: Database, writes: Sequence[Write]) -> int:
    """Apply writes in order: consecutive writes on one collection go in one ordered bulk write.

    Returns:
        The number of bulk writes sent.
    """
    sent = 0
    i = 0
    while i < len(writes):
        j = i
        while j < len(writes) and writes[j].coll == writes[i].coll:
            j += 1
        db[writes[i].coll].bulk_write([w.pymongo_op() for w in writes[i:j]], ordered=True)
        sent += 1
        crash_point("intent-write")
        i = j
    return sent


@dataclass
class Intent:
    """An intent read back from ``fw_intents``."""

    id: Any
    kind: str
    wf_id: Any
    owner: str
    created_on: datetime
    writes: list[Write] = field(default_factory=list)

    @property
    def summary(self) -> str:
        """One line for reports."""
        return (
            f"intent {self.id} ({self.kind}, workflow {self.wf_id}, {len(self.writes)} writes, "
            f"by {self.owner} at {self.created_on.isoformat(timespec='seconds')})"
        )


def record(
    db: Database, kind: str, wf_id: Any, writes: Sequence[Write], owner: str | None = None
) -> Any:
    """Store the intent (chunks first, the header last: a header means a complete intent)."""
    encoded = [bson.Binary(w.encode()) for w in writes]
    chunks: list[list[bson.Binary]] = [[]]
    size = 0
    for raw in encoded:
        if chunks[-1] and size + len(raw) > CHUNK_BYTES:
            chunks.append([])
            size = 0
        chunks[-1].append(raw)
        size += len(raw)
    coll = db[INTENTS_COLLECTION]
    iid = bson.ObjectId()
    header: dict[str, Any] = {
        "_id": iid,
        "kind": kind,
        "wf_id": wf_id,
        "owner": owner or process_owner(),
        "created_on": datetime.now(timezone.utc),
        "n_writes": len(encoded),
    }
    if len(chunks) == 1:
        header["writes"] = chunks[0]
    else:
        coll.insert_many(
            [
                {"_id": f"{iid}.{k}", "chunk_of": iid, "seq": k, "writes": c}
                for k, c in enumerate(chunks)
            ]
        )
        header["chunks"] = len(chunks)
    coll.insert_one(header)
    return iid


def forget(db: Database, iid: Any) -> None:
    """Delete an intent (header first: chunks without a header are garbage)."""
    coll = db[INTENTS_COLLECTION]
    coll.delete_one({"_id": iid})
    coll.delete_many({"chunk_of": iid})


def run_writes(
    db: Database,
    kind: str,
    wf_id: Any,
    writes: Sequence[Write],
    *,
    journal: bool = True,
    owner: str | None = None,
) -> None:
    """Apply ``writes`` so that a crash at any point can be rolled forward.

    Args:
        db: the LaunchPad's database.
        kind: what the writes are (``rerun``, ``refresh``, ``defuse``...), for reports.
        wf_id: the workflow document's ``_id`` (the caller holds its lock).
        writes: idempotent writes, in order.
        journal: record an intent first; callers skip it for a single write (atomic anyway).
        owner: ``host:pid`` of the writer (default: this process).
    """
    if not writes:
        return
    if not journal or len(writes) == 1:
        apply_writes(db, writes)
        return
    iid = record(db, kind, wf_id, writes, owner)
    crash_point("intent-recorded")
    apply_writes(db, writes)
    crash_point("intent-applied")
    forget(db, iid)
    crash_point("intent-done")


# -- reading and rolling forward ----------------------------------------------------------------
def pending(db: Database, wf_id: Any = None, *, load: bool = True) -> Iterator[Intent]:
    """Unfinished intents (of one workflow when ``wf_id`` is given), oldest first."""
    coll = db[INTENTS_COLLECTION]
    q: dict[str, Any] = {"chunk_of": {"$exists": False}}
    if wf_id is not None:
        q["wf_id"] = wf_id
    for h in coll.find(q).sort("created_on", 1):
        writes: list[Write] = []
        if load:
            if "chunks" in h:
                parts = sorted(coll.find({"chunk_of": h["_id"]}), key=lambda d: d["seq"])
                raws = [r for p in parts for r in p["writes"]]
            else:
                raws = list(h.get("writes", []))
            writes = [Write.decode(bytes(r)) for r in raws]
        created = h.get("created_on") or datetime.now(timezone.utc)
        if created.tzinfo is None:
            created = created.replace(tzinfo=timezone.utc)
        yield Intent(
            h["_id"], h.get("kind", "?"), h.get("wf_id"), h.get("owner", ""), created, writes
        )


def orphan_chunks(db: Database) -> list[Any]:
    """Chunk documents whose header is gone (a crash while forgetting): safe to delete."""
    coll = db[INTENTS_COLLECTION]
    owners = set(coll.distinct("chunk_of"))
    if not owners:
        return []
    live = {d["_id"] for d in coll.find({"_id": {"$in": sorted(owners)}}, {"_id": 1})}
    return sorted(owners - live)


def is_abandoned(intent: Intent, expire_secs: float) -> bool:
    """Its writer is dead (same host) or it is older than ``expire_secs`` (any host)."""
    age = datetime.now(timezone.utc) - intent.created_on
    return owner_is_dead(intent.owner) or age > timedelta(seconds=expire_secs)


def roll_forward_workflow(db: Database, wf_id: Any) -> list[Intent]:
    """Apply and forget every pending intent of a workflow whose lock the caller now holds.

    Called after taking over a lock from a dead or expired owner: whatever that owner meant to
    write is finished before anyone reads the workflow.
    """
    done = []
    for intent in pending(db, wf_id):
        apply_writes(db, intent.writes)
        forget(db, intent.id)
        done.append(intent)
    return done


def lock_is_stale(wf_doc: Mapping[str, Any], expire_secs: float) -> bool:
    """The workflow is unlocked, or its lock's owner is dead, or the lock has expired (a lock
    FireWorks set, with no time, never expires)."""
    if not wf_doc.get("locked"):
        return True
    if owner_is_dead(wf_doc.get("locked_by")):
        return True
    at = wf_doc.get("locked_at")
    if not isinstance(at, datetime):
        # FireWorks' own lock (no owner, no time) is respected until `lpad admin unlock`
        return False
    if at.tzinfo is None:
        at = at.replace(tzinfo=timezone.utc)
    return datetime.now(timezone.utc) - at > timedelta(seconds=expire_secs)


def roll_forward(db: Database, expire_secs: float, me: str | None = None) -> list[Intent]:
    """Finish every abandoned intent: take its workflow's lock (free, dead owner or expired),
    apply the writes, forget the intent, release the lock.

    Intents of live processes are left alone, and so are workflows a live process holds (their
    holder took the lock over and rolls them forward itself).

    Returns:
        The intents finished.
    """
    me = me or f"{process_owner()}:rollforward"
    done: list[Intent] = []
    if db[INTENTS_COLLECTION].find_one({}, {"_id": 1}) is None:
        return done
    for intent in list(pending(db, load=False)):
        if not is_abandoned(intent, expire_secs):
            continue
        wf = db["workflows"].find_one(
            {"_id": intent.wf_id}, {"locked": 1, "locked_by": 1, "locked_at": 1}
        )
        if wf is None:
            # The workflow was deleted since: nothing left to finish.
            forget(db, intent.id)
            done.append(intent)
            continue
        if not lock_is_stale(wf, expire_secs):
            continue
        cas: dict[str, Any] = {"_id": intent.wf_id}
        if wf.get("locked"):
            cas["locked_by"] = wf.get("locked_by")
        else:
            cas["locked"] = {"$exists": False}
        now = datetime.now(timezone.utc)
        res = db["workflows"].update_one(
            cas, {"$set": {"locked": True, "locked_by": me, "locked_at": now}}
        )
        if res.modified_count != 1:
            continue
        try:
            done.extend(roll_forward_workflow(db, intent.wf_id))
        finally:
            db["workflows"].update_one(
                {"_id": intent.wf_id, "locked_by": me},
                {"$unset": {"locked": "", "locked_by": "", "locked_at": ""}},
            )
    for cid in orphan_chunks(db):
        db[INTENTS_COLLECTION].delete_many({"chunk_of": cid})
    return done


def release_dead_locks(db: Database) -> list[Any]:
    """Release workflow locks held by dead processes of this host (after :func:`roll_forward`
    has finished their intents), e.g. left by a process killed after its writes but before its
    unlock. Returns the workflow ``_id`` s released."""
    host = socket.gethostname()
    out = []
    for wf in db["workflows"].find(
        {"locked": True, "locked_by": {"$regex": f"^{re.escape(host)}:"}}, {"locked_by": 1}
    ):
        if not owner_is_dead(wf.get("locked_by")):
            continue
        if db[INTENTS_COLLECTION].find_one({"wf_id": wf["_id"]}, {"_id": 1}) is not None:
            continue  # roll_forward could not take it: leave it to the next lock taker
        res = db["workflows"].update_one(
            {"_id": wf["_id"], "locked_by": wf["locked_by"]},
            {"$unset": {"locked": "", "locked_by": "", "locked_at": ""}},
        )
        if res.modified_count:
            out.append(wf["_id"])
    return out
