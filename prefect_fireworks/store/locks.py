"""Workflow locks: FireWorks' ``WFLock`` with an owner and a time, so stale locks expire.

A workflow document is locked by setting FireWorks' ``locked: true`` plus ``locked_by`` (the
owner: ``host:pid:token``) and ``locked_at``. A lock older than its expiry is stale and is taken
over, so a killed process cannot leave a workflow locked for ever (jobflow-remote's MongoLock
works the same way).
"""

from __future__ import annotations

import os
import random
import socket
import time
import uuid
from dataclasses import dataclass
from datetime import datetime, timedelta
from types import TracebackType
from typing import TYPE_CHECKING, Any

from prefect_fireworks.core.constants import WFLOCK_EXPIRATION_SECS
from prefect_fireworks.core.models import utcnow
from prefect_fireworks.store.intents import owner_is_dead, roll_forward_workflow

if TYPE_CHECKING:
    from pymongo.collection import Collection

_LOCK_FIELDS = {"locked": "", "locked_by": "", "locked_at": ""}


class LockedWorkflowError(RuntimeError):
    """The workflow lock could not be acquired in time."""


def process_owner() -> str:
    """An owner name for this process: ``host:pid:token``."""
    return f"{socket.gethostname()}:{os.getpid()}:{uuid.uuid4().hex[:8]}"


@dataclass
class LockHolder:
    """Who holds a workflow lock (read from the workflow document)."""

    owner: str | None
    locked_at: datetime | None

    @property
    def host(self) -> str | None:
        """Host part of the owner (None for a FireWorks lock, which names no owner)."""
        return self.owner.split(":")[0] if self.owner else None

    @property
    def pid(self) -> int | None:
        """Process id part of the owner."""
        parts = (self.owner or "").split(":")
        return int(parts[1]) if len(parts) > 1 and parts[1].isdigit() else None


class WorkflowLock:
    """The lock of the workflow containing ``fw_id``, as a context manager.

    Args:
        workflows: the ``workflows`` collection.
        fw_id: any Firework of the workflow.
        owner: the process owner (``host:pid:token``); a per-acquisition suffix is added.
        expire_secs: a lock older than this is stale and taken over.
        wait_secs: give up after this long (default ``expire_secs``).

    Raises:
        ValueError: no workflow contains ``fw_id`` (on entering).
        LockedWorkflowError: still locked after ``wait_secs`` (on entering).
    """

    def __init__(
        self,
        workflows: Collection,
        fw_id: int,
        owner: str | None = None,
        expire_secs: float = WFLOCK_EXPIRATION_SECS,
        wait_secs: float | None = None,
    ) -> None:
        self.workflows = workflows
        self.fw_id = fw_id
        self.owner = f"{owner or process_owner()}:{uuid.uuid4().hex[:6]}"
        self.expire_secs = expire_secs
        self.wait_secs = expire_secs if wait_secs is None else wait_secs
        self.acquired_at: datetime | None = None
        #: The owner this lock was taken over from (dead or expired), if any.
        self.took_over: str | None = None

    @property
    def host(self) -> str:
        """Host that holds (or asks for) the lock."""
        return self.owner.split(":")[0]

    @property
    def pid(self) -> int:
        """Process id that holds (or asks for) the lock."""
        return int(self.owner.split(":")[1])

    @property
    def expires_at(self) -> datetime | None:
        """When the lock becomes stale (None until acquired)."""
        if self.acquired_at is None:
            return None
        return self.acquired_at + timedelta(seconds=self.expire_secs)

    def acquire(self) -> None:
        """Take the lock, waiting with back-off.

        A lock whose owner is a dead process of this host is taken over at once, an expired
        one (any host) after its expiry; either way the intent the previous holder left (see
        ``store/intents.py``) is rolled forward before the lock is returned.
        """
        start = time.monotonic()
        ctr = 0
        while True:
            now = utcnow()
            res = self.workflows.update_one(
                {"nodes": self.fw_id, "locked": {"$exists": False}},
                {"$set": {"locked": True, "locked_by": self.owner, "locked_at": now}},
            )
            if res.modified_count == 1:
                self.acquired_at = now
                return
            if (
                ctr == 0
                and res.matched_count == 0
                and self.workflows.count_documents({"nodes": self.fw_id}, limit=1) == 0
            ):
                raise ValueError(f"FW with id: {self.fw_id} not found!")
            if self._take_over_stale(now):
                return
            if time.monotonic() - start > self.wait_secs:
                raise LockedWorkflowError(f"Could not get workflow - LOCKED: {self.fw_id}")
            ctr += 1
            time.sleep(min(0.005 * ctr, 0.2) + random.random() / 100)

    def _take_over_stale(self, now: datetime) -> bool:
        holder = self.workflows.find_one(
            {"nodes": self.fw_id, "locked": {"$exists": True}},
            {"locked_by": 1, "locked_at": 1},
        )
        if holder is None:
            return False
        at = holder.get("locked_at")
        if holder.get("locked_by") == self.owner:
            # Our own write landed but its reply was cut off (the collection retried it and
            # found the workflow locked): the owner names this acquisition, so it is ours.
            self.acquired_at = at if isinstance(at, datetime) else now
            return True
        expired = isinstance(at, datetime) and _naive(at) < _naive(now) - timedelta(
            seconds=self.expire_secs
        )
        if not (expired or owner_is_dead(holder.get("locked_by"))):
            return False
        cas: dict[str, Any] = {"_id": holder["_id"], "locked_at": at}
        cas["locked_by"] = holder.get("locked_by") if "locked_by" in holder else {"$exists": False}
        res = self.workflows.update_one(
            cas, {"$set": {"locked": True, "locked_by": self.owner, "locked_at": now}}
        )
        if res.modified_count != 1:
            return False
        self.acquired_at = now
        self.took_over = holder.get("locked_by") or "unknown owner"
        roll_forward_workflow(self.workflows.database, holder["_id"])
        return True

    def release(self) -> None:
        """Release the lock if this owner still holds it."""
        self.workflows.update_one(
            {"nodes": self.fw_id, "locked_by": self.owner}, {"$unset": _LOCK_FIELDS}
        )
        self.acquired_at = None

    def __enter__(self) -> WorkflowLock:
        self.acquire()
        return self

    def __exit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        tb: TracebackType | None,
    ) -> None:
        self.release()


def _naive(dt: datetime) -> datetime:
    # pymongo returns naive UTC datetimes; utcnow() may be aware
    return dt.replace(tzinfo=None) if dt.tzinfo else dt


def lock_holder(workflows: Collection, fw_id: int) -> LockHolder | None:
    """Who holds the lock of the workflow of ``fw_id`` (None when it is not locked)."""
    doc: dict[str, Any] | None = workflows.find_one(
        {"nodes": fw_id, "locked": {"$exists": True}}, {"locked_by": 1, "locked_at": 1}
    )
    if doc is None:
        return None
    return LockHolder(doc.get("locked_by"), doc.get("locked_at"))


def force_unlock(workflows: Collection, fw_id: int) -> bool:
    """Remove a workflow lock whoever holds it (``lpad admin unlock``)."""
    res = workflows.update_one(
        {"nodes": fw_id, "locked": {"$exists": True}}, {"$unset": _LOCK_FIELDS}
    )
    return res.modified_count == 1
