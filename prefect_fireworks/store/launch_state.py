"""What one process keeps between launches: launch ids, READY hints, workflows, documents.

Part of the lean launch cycle (`prefect_fireworks.store.launch_cycle`). Each LaunchPad object
holds one of each, created on first use:

- `LaunchIdBlock`: launch ids reserved `LAUNCH_ID_BLOCK` at a time (one counter round trip per
  block), handed out one by one.
- `ReadyHints`: documents of Fireworks this process saw READY, so a claim needs no read.
- `WorkflowCache`: the workflows this process launches from, so a completion needs no read.
- `WaitingDocs`: documents of WAITING Fireworks read ahead with a completion's children, so the
  next completions need no read.

Everything here only saves reads: every write made from it is conditional on what was read,
so a document changed by anyone else is noticed and read again.
"""

from __future__ import annotations

import threading
from collections.abc import Iterable, Mapping
from datetime import datetime
from typing import TYPE_CHECKING, Any

from prefect_fireworks.store import ids

if TYPE_CHECKING:
    from prefect_fireworks.store.db import FireworksDB

#: Launch ids reserved per counter round trip (unused ids of a block are simply skipped).
LAUNCH_ID_BLOCK = 64
#: Projection of the Firework documents the launch cycle reads (whole, without ``_id``).
FW_DOC_FIELDS = {"_id": 0}
_HINTS_MAX = 10_000


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

    Every decision made from it is written conditional on the cached ``updated_on``, so a
    write by anyone else is noticed (the write fails, the entry is dropped and the workflow
    read again). The one write that leaves ``updated_on`` alone is another process's claim
    in a RUNNING workflow (`prefect_fireworks.store.checkout.set_cached_state`): an entry
    may show that Firework READY while it runs, which changes no decision taken here.
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
    `prefect_fireworks.store.completion.READ_AHEAD` documents in one ranged query), so the
    next completions find their children here instead of reading them. A document held here
    may be stale: a completion that uses one writes the child conditional on its ``state``,
    ``updated_on`` and ``spec`` as held (``update_fws`` and ``set_priority`` change a spec
    without touching ``updated_on``), so any change made meanwhile sends the completion to
    the locked path.
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


def give_back_launch_id(lp: FireworksDB, launch_id: int) -> None:
    """Return the launch id just taken by a claim that did not happen (see
    `LaunchIdBlock.give_back`)."""
    _state_of(lp)[0].give_back(launch_id)


def stored_time(dt: datetime) -> datetime:
    """A datetime as MongoDB stores it (milliseconds)."""
    return dt.replace(microsecond=dt.microsecond // 1000 * 1000)
