"""The LaunchPad: FireWorks' MongoDB store (collections, ids, selectors, locks, checkout).

Documents follow FireWorks 2.x exactly (see ``docs/concepts.md``), so FireWorks' own ``lpad``
can read and rerun what this module writes and vice versa. No Prefect import here.
"""

from __future__ import annotations

import functools
import json
import os
import random
import socket
import time
import uuid
from collections.abc import Iterable, Iterator, Mapping, Sequence
from contextlib import contextmanager, suppress
from datetime import date, datetime, timedelta, timezone
from pathlib import Path
from typing import TYPE_CHECKING, Any

import pymongo
from pydantic import BaseModel, Field
from pymongo import ASCENDING, DESCENDING

from prefect_fireworks.core import states as st
from prefect_fireworks.core.models import Firework, FWAction, Launch, Workflow, isoformat, utcnow
from prefect_fireworks.store.queries import find_by_ids, id_queries
from prefect_fireworks.store.workflow_editor import WorkflowEditor

if TYPE_CHECKING:
    from pymongo.collection import Collection
    from pymongo.database import Database

    from prefect_fireworks.store.config import LaunchPadConfig

#: FireWorks' ``WFLOCK_EXPIRATION_SECS``: a lock older than this is stale and may be broken.
WFLOCK_EXPIRATION_SECS = 300
#: FireWorks' ``PW_CHECK_NUM``: mass operations above this many Fireworks need confirmation.
PW_CHECK_NUM = 10
#: FireWorks' ``RUN_EXPIRATION_SECS`` (detect_lostruns default).
RUN_EXPIRATION_SECS = 4 * 3600
GRIDFS_FALLBACK_COLLECTION = "fw_gridfs"
#: Query operators that run server-side JavaScript: refused in every selector.
FORBIDDEN_OPERATORS = frozenset({"$where", "$function", "$accumulator"})


class LockedWorkflowError(RuntimeError):
    """The workflow lock could not be acquired in time."""


class QueryError(ValueError):
    """A selector query is malformed or unsafe."""


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


def check_query(query: Any, _path: str = "query") -> None:
    """Refuse queries that are not documents or that run JavaScript on the server.

    Raises:
        QueryError: naming the offending operator.
    """
    if not isinstance(query, Mapping):
        raise QueryError(f"{_path} must be a JSON object, not {type(query).__name__}")
    stack: list[Any] = [query]
    while stack:
        cur = stack.pop()
        if isinstance(cur, Mapping):
            for k, v in cur.items():
                if k in FORBIDDEN_OPERATORS:
                    raise QueryError(f"operator {k} is not allowed (it runs JavaScript)")
                stack.append(v)
        elif isinstance(cur, (list, tuple)):
            stack.extend(cur)


def _today_password() -> str:
    return date.today().strftime("%Y-%m-%d")


def check_password(password: str | None) -> None:
    """FireWorks' today's-date password.

    Raises:
        ValueError: the password is not today's date.
    """
    if password != _today_password():
        raise ValueError(
            f"Modifying more than {PW_CHECK_NUM} entries requires setting the --password "
            "parameter! (Today's date, e.g. 2012-02-25)"
        )


class LaunchPad:
    """FireWorks' LaunchPad over pymongo.

    Args:
        config: where MongoDB is; ``None`` resolves it (``-l`` file, environment, embedded).
        client: an existing ``MongoClient`` (then ``name`` names the database).
        name: database name override.

    Example:
        ```python
        from prefect_fireworks import LaunchPad

        lp = LaunchPad.auto_load()
        lp.get_fw_ids({"state": "FIZZLED"})
        ```
    """

    def __init__(
        self,
        config: LaunchPadConfig | None = None,
        *,
        client: pymongo.MongoClient | None = None,
        name: str | None = None,
    ) -> None:
        if client is None:
            if config is None:
                from prefect_fireworks.store.config import resolve_config

                config = resolve_config()
            client = config.client()
            self._owns_client = True
        else:
            self._owns_client = False
        self.config = config
        self.client: pymongo.MongoClient = client
        self.name = name or (config.name if config is not None else "fireworks")
        self.db: Database = client[self.name]
        self.fireworks: Collection = self.db["fireworks"]
        self.launches: Collection = self.db["launches"]
        self.workflows: Collection = self.db["workflows"]
        self.fw_id_assigner: Collection = self.db["fw_id_assigner"]
        self.offline_runs: Collection = self.db["offline_runs"]
        self.lock_owner = f"{socket.gethostname()}:{os.getpid()}:{uuid.uuid4().hex[:8]}"

    # -- construction ----------------------------------------------------------------------
    @classmethod
    def auto_load(cls, launchpad_file: str | Path | None = None) -> LaunchPad:
        """Connect as ``lpad`` does: ``-l`` file, then environment, then the embedded server."""
        from prefect_fireworks.store.config import resolve_config

        return cls(resolve_config(launchpad_file))

    @classmethod
    def from_file(cls, path: str | Path) -> LaunchPad:
        """Connect with a FireWorks ``my_launchpad.yaml``."""
        from prefect_fireworks.store.config import LaunchPadConfig

        return cls(LaunchPadConfig.from_file(path))

    @classmethod
    def from_uri(cls, uri: str, name: str = "fireworks", **client_kwargs: Any) -> LaunchPad:
        """Connect to a MongoDB URI."""
        client: pymongo.MongoClient = pymongo.MongoClient(uri, **client_kwargs)
        lp = cls(client=client, name=name)
        lp._owns_client = True
        return lp

    def close(self) -> None:
        """Close the client if this LaunchPad created it."""
        if self._owns_client:
            self.client.close()

    def __enter__(self) -> LaunchPad:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()

    # -- administration --------------------------------------------------------------------
    def reset(
        self,
        password: str | None,
        require_password: bool = True,
        max_reset_wo_password: int = 25,
    ) -> None:
        """Delete every Firework, launch and workflow and restart the id counters.

        Raises:
            ValueError: wrong password, or too many workflows to reset without one.
        """
        if require_password:
            if password != _today_password():
                raise ValueError(f"Invalid password! Password is today's date: {_today_password()}")
        elif self.workflows.count_documents({}) > max_reset_wo_password:
            raise ValueError(
                f"Password check cannot be overridden since the size of DB ("
                f"{self.workflows.count_documents({})} workflows) is greater than the "
                f"max_reset_wo_password parameter ({max_reset_wo_password})."
            )
        for coll in (self.fireworks, self.launches, self.workflows, self.offline_runs):
            coll.delete_many({})
        for suffix in ("files", "chunks"):
            self.db[f"{GRIDFS_FALLBACK_COLLECTION}.{suffix}"].delete_many({})
        self.fw_id_assigner.delete_many({})
        self.fw_id_assigner.insert_one({"_id": -1, "next_fw_id": 1, "next_launch_id": 1})
        self.tuneup()

    def tuneup(self) -> None:
        """Create FireWorks' indexes (same keys and options, so both tools can run ``tuneup`` on
        one database) plus the ``archived_launches`` index the rerun plan uses."""
        fw, lch, wf = self.fireworks, self.launches, self.workflows
        fw.create_index("fw_id", unique=True, background=True)
        for key in ("state", "spec._category", "created_on", "updated_on", "name", "launches"):
            fw.create_index(key, background=True)
        lch.create_index("launch_id", unique=True, background=True)
        lch.create_index("fw_id", background=True)
        lch.create_index("state_history.reservation_id", background=True)
        self.db[f"{GRIDFS_FALLBACK_COLLECTION}.files"].create_index(
            "metadata.launch_id", unique=True, background=True
        )
        for key in ("state", "time_start", "time_end", "host", "ip", "fworker.name"):
            lch.create_index(key, background=True)
        for key in ("name", "created_on", "updated_on", "nodes"):
            wf.create_index(key, background=True)
        user = self.config.user_indices if self.config is not None else None
        wf_user = self.config.wf_user_indices if self.config is not None else None
        for idx in user or []:
            fw.create_index(idx, background=True)
        for idx in wf_user or []:
            wf.create_index(idx, background=True)
        fw.create_index([("state", DESCENDING), ("_id", DESCENDING)], background=True)
        fw.create_index(
            [("state", DESCENDING), ("spec._priority", DESCENDING), ("created_on", DESCENDING)],
            background=True,
        )
        fw.create_index(
            [("state", DESCENDING), ("spec._priority", DESCENDING), ("created_on", ASCENDING)],
            background=True,
        )
        wf.create_index([("state", DESCENDING), ("_id", DESCENDING)], background=True)
        fw.create_index("archived_launches", background=True)

    def ensure_initialized(self) -> None:
        """Create the id counter and indexes on a fresh database (never resets data)."""
        if self.fw_id_assigner.count_documents({"_id": -1}, limit=1) == 0:
            with suppress(pymongo.errors.DuplicateKeyError):
                self.fw_id_assigner.insert_one({"_id": -1, "next_fw_id": 1, "next_launch_id": 1})
            self.tuneup()

    # -- ids -------------------------------------------------------------------------------
    def _reserve(self, field: str, n: int) -> int:
        # Compare-and-swap on the counter: two cheap round trips instead of one
        # find_one_and_update, which costs ~15x more on the embedded server.
        for attempt in range(1000):
            doc = self.fw_id_assigner.find_one({"_id": -1}, {field: 1})
            if doc is None:
                what = "FW id" if field == "next_fw_id" else "launch id"
                raise ValueError(f"Could not get next {what}! Initialize the database: lpad reset")
            cur = doc[field]
            res = self.fw_id_assigner.update_one(
                {"_id": -1, field: cur}, {"$set": {field: cur + n}}
            )
            if res.modified_count == 1:
                return int(cur)
            time.sleep(random.random() * 0.005 * min(attempt + 1, 10))
        raise RuntimeError(f"could not reserve {field} after 1000 attempts")

    def reserve_fw_ids(self, n: int) -> int:
        """Reserve ``n`` consecutive fw_ids; returns the first."""
        if n <= 0:
            return 0
        return self._reserve("next_fw_id", n)

    def get_new_launch_id(self) -> int:
        """Reserve one launch id."""
        return self._reserve("next_launch_id", 1)

    # -- adding ----------------------------------------------------------------------------
    def add_wf(self, wf: Workflow | Firework) -> dict[int, int]:
        """Add a workflow (or a single Firework); every fw_id is reassigned.

        Three round trips whatever the size: reserve the ids, insert the Fireworks, insert the
        workflow. Roots become READY.

        Returns:
            Old fw_id -> new fw_id.
        """
        return self.bulk_add_wfs([wf])[0]

    def bulk_add_wfs(self, wfs: Sequence[Workflow | Firework]) -> list[dict[int, int]]:
        """Add several workflows with one id reservation and two bulk inserts."""
        from prefect_fireworks.runtime.firetasks import validate_tasks

        wfs2 = [Workflow.from_firework(w) if isinstance(w, Firework) else w for w in wfs]
        for wf in wfs2:
            wf.validate_dag()
            for fw in wf.fws:
                validate_tasks(fw.spec.get("_tasks", []))
        self.ensure_initialized()
        total = sum(len(wf.fws) for wf in wfs2)
        first = self.reserve_fw_ids(total)
        now = isoformat()
        fw_docs: list[dict[str, Any]] = []
        wf_docs: list[dict[str, Any]] = []
        maps: list[dict[int, int]] = []
        nxt = first
        for wf in wfs2:
            id_map: dict[int, int] = {}
            for fw in wf.fws:
                id_map[fw.fw_id] = nxt
                nxt += 1
            links = {id_map[p]: [id_map[c] for c in ch] for p, ch in wf.links.items()}
            for new in id_map.values():
                links.setdefault(new, [])
            parents: dict[int, list[int]] = {}
            for p, ch in links.items():
                for c in ch:
                    parents.setdefault(c, []).append(p)
            fw_states: dict[str, str] = {}
            for fw in wf.fws:
                nid = id_map[fw.fw_id]
                doc = fw.to_db_dict()
                state = fw.state
                if state in (st.WAITING, st.READY):
                    state = st.WAITING if parents.get(nid) else st.READY
                doc.update(fw_id=nid, state=state, created_on=fw.created_on or now)
                doc["updated_on"] = now
                fw_docs.append(doc)
                fw_states[str(nid)] = state
            int_states = {int(k): v for k, v in fw_states.items()}
            allow = {
                id_map[fw.fw_id]: True for fw in wf.fws if fw.spec.get("_allow_fizzled_parents")
            }
            wf_docs.append(
                {
                    "nodes": list(id_map.values()),
                    "links": {str(k): v for k, v in links.items()},
                    "parent_links": {str(k): v for k, v in parents.items()},
                    "fw_states": fw_states,
                    "state": st.workflow_state(int_states, links, allow),
                    "name": wf.name,
                    "metadata": wf.metadata,
                    "created_on": utcnow(),
                    "updated_on": utcnow(),
                }
            )
            maps.append(id_map)
        if fw_docs:
            self.fireworks.insert_many(fw_docs, ordered=False)
        if wf_docs:
            self.workflows.insert_many(wf_docs, ordered=False)
        return maps

    # -- reading ---------------------------------------------------------------------------
    def get_fw_dict_by_id(self, fw_id: int) -> dict[str, Any]:
        """The Firework document.

        Raises:
            ValueError: ``FW with id: X not found!``
        """
        doc = self.fireworks.find_one({"fw_id": fw_id}, {"_id": 0})
        if doc is None:
            raise ValueError(f"FW with id: {fw_id} not found!")
        return doc

    def get_fw_by_id(self, fw_id: int) -> Firework:
        """The Firework as a model."""
        return Firework.from_dict(self.get_fw_dict_by_id(fw_id))

    def get_wf_doc(self, fw_id: int, projection: Mapping[str, Any] | None = None) -> dict:
        """The workflow document containing ``fw_id``.

        Raises:
            ValueError: no workflow contains it.
        """
        doc = self.workflows.find_one({"nodes": fw_id}, projection)
        if doc is None:
            raise ValueError(f"FW with id: {fw_id} not found!")
        return doc

    def get_wf_by_fw_id(self, fw_id: int) -> Workflow:
        """The whole workflow (all its Fireworks) as a model."""
        doc = self.get_wf_doc(fw_id)
        fws = [
            Firework.from_dict(d)
            for d in find_by_ids(self.fireworks, "fw_id", doc["nodes"], {"_id": 0})
        ]
        fws.sort(key=lambda f: f.fw_id)
        return Workflow(
            fws,
            links_dict={int(k): v for k, v in doc["links"].items()},
            name=doc.get("name"),
            metadata=doc.get("metadata") or {},
            created_on=doc.get("created_on"),
            updated_on=doc.get("updated_on"),
        )

    def get_launch_by_id(self, launch_id: int) -> Launch:
        """A launch as a model (with its action loaded from GridFS when stored there).

        Raises:
            ValueError: ``launch_id: L does not exist``
        """
        doc = self.launches.find_one({"launch_id": launch_id}, {"_id": 0})
        if doc is None:
            raise ValueError(f"launch_id: {launch_id} does not exist")
        doc["action"] = self.load_action(doc)
        return Launch.from_dict(doc)

    def load_action(self, launch_doc: Mapping[str, Any]) -> dict[str, Any] | None:
        """A launch's ``action``, read from GridFS when FireWorks stored it there."""
        action = launch_doc.get("action")
        if isinstance(action, Mapping) and "gridfs_id" in action:
            import gridfs
            from bson import ObjectId

            fs = gridfs.GridFS(self.db, GRIDFS_FALLBACK_COLLECTION)
            return json.loads(fs.get(ObjectId(action["gridfs_id"])).read())
        return dict(action) if action else None

    # -- selectors -------------------------------------------------------------------------
    def get_fw_ids(
        self,
        query: Mapping[str, Any] | None = None,
        sort: Sequence[tuple[str, int]] | None = None,
        limit: int = 0,
        count_only: bool = False,
        launches_mode: bool = False,
    ) -> list[int] | int:
        """fw_ids matching a query on ``fireworks`` (or on ``launches`` with launches_mode).

        With ``launches_mode`` the query runs on the launches collection and only active
        launches (listed in some Firework's ``launches``) count; the matching launch ids are
        mapped back through the ``launches`` index, never by scanning every Firework.
        """
        query = dict(query or {})
        check_query(query)
        if launches_mode:
            ids = self._fw_ids_from_launches(query)
            if sort and ids:
                id_filter = {"$or": id_queries("fw_id", ids)}
                ranked = self._sorted(self.fireworks, id_filter, sort, 0, "fw_id")
                order = {d["fw_id"]: i for i, d in enumerate(ranked)}
                ids.sort(key=lambda i: order.get(i, 0))
            if limit:
                ids = ids[:limit]
            return len(ids) if count_only else ids
        if count_only and not limit:
            return self.fireworks.count_documents(query)
        docs = self._sorted(self.fireworks, query, sort, limit, "fw_id")
        ids = [d["fw_id"] for d in docs]
        return len(ids) if count_only else ids

    def _fw_ids_from_launches(self, query: Mapping[str, Any]) -> list[int]:
        pairs = [
            (d["launch_id"], d.get("fw_id"))
            for d in self.launches.find(query, {"launch_id": 1, "fw_id": 1, "_id": 0})
        ]
        if not pairs:
            return []
        launch_ids = [p[0] for p in pairs]
        active: dict[int, list[int]] = {}
        for doc in self.fireworks.find(
            {"launches": {"$in": launch_ids}}, {"fw_id": 1, "launches": 1, "_id": 0}
        ):
            for lid in doc["launches"]:
                active.setdefault(lid, []).append(doc["fw_id"])
        out: list[int] = []
        for lid in launch_ids:
            for fid in active.get(lid, []):
                if fid not in out:
                    out.append(fid)
        return out

    def get_wf_ids(
        self,
        query: Mapping[str, Any] | None = None,
        sort: Sequence[tuple[str, int]] | None = None,
        limit: int = 0,
        count_only: bool = False,
    ) -> list[int] | int:
        """Workflows matching a query on ``workflows``, each named by its first fw_id."""
        query = dict(query or {})
        check_query(query)
        if count_only and not limit:
            return self.workflows.count_documents(query)
        docs = self._sorted(self.workflows, query, sort, limit, "nodes")
        ids = [min(d["nodes"]) if d.get("nodes") else -1 for d in docs]
        return len(ids) if count_only else ids

    def _sorted(
        self,
        coll: Collection,
        query: Mapping[str, Any],
        sort: Sequence[tuple[str, int]] | None,
        limit: int,
        field: str,
    ) -> list[dict[str, Any]]:
        if not sort:
            cur = coll.find(query, {field: 1, "_id": 0})
            if limit:
                cur = cur.limit(limit)
            try:
                return list(cur)
            except pymongo.errors.OperationFailure as exc:
                raise QueryError(f"invalid query: {_errmsg(exc)}") from exc
        # created_on/updated_on hold ISO strings or BSON dates (FireWorks writes both):
        # sort on a normalised key, as FireWorks does.
        proj = {field: 1, "_id": 0, **{k: 1 for k, _ in sort}}
        try:
            docs = list(coll.find(query, proj))
        except pymongo.errors.OperationFailure as exc:
            raise QueryError(f"invalid query: {_errmsg(exc)}") from exc
        for key, direction in reversed(list(sort)):
            docs.sort(key=functools.partial(_doc_sort_key, key), reverse=direction < 0)
        return docs[:limit] if limit else docs

    # -- locking ---------------------------------------------------------------------------
    @contextmanager
    def wf_lock(
        self,
        fw_id: int,
        expire_secs: float = WFLOCK_EXPIRATION_SECS,
        wait_secs: float | None = None,
    ) -> Iterator[None]:
        """Hold the lock of the workflow containing ``fw_id``.

        The lock records an owner and a time (``locked_by``, ``locked_at``) beside FireWorks'
        ``locked: true``; a lock older than ``expire_secs`` is stale and is taken over, so a
        killed process cannot leave a workflow locked for ever.

        Raises:
            ValueError: no workflow contains ``fw_id``.
            LockedWorkflowError: still locked after ``wait_secs`` (default ``expire_secs``).
        """
        wait = expire_secs if wait_secs is None else wait_secs
        owner = f"{self.lock_owner}:{uuid.uuid4().hex[:6]}"
        start = time.monotonic()
        ctr = 0
        while True:
            now = utcnow()
            res = self.workflows.update_one(
                {
                    "nodes": fw_id,
                    "$or": [
                        {"locked": {"$exists": False}},
                        {"locked_at": {"$lt": now - timedelta(seconds=expire_secs)}},
                    ],
                },
                {"$set": {"locked": True, "locked_by": owner, "locked_at": now}},
            )
            if res.modified_count == 1:
                break
            if (
                ctr == 0
                and res.matched_count == 0
                and self.workflows.count_documents({"nodes": fw_id}, limit=1) == 0
            ):
                raise ValueError(f"FW with id: {fw_id} not found!")
            if time.monotonic() - start > wait:
                raise LockedWorkflowError(f"Could not get workflow - LOCKED: {fw_id}")
            ctr += 1
            time.sleep(min(0.005 * ctr, 0.2) + random.random() / 100)
        try:
            yield
        finally:
            self.workflows.update_one(
                {"nodes": fw_id, "locked_by": owner},
                {"$unset": {"locked": "", "locked_by": "", "locked_at": ""}},
            )

    def force_unlock(self, fw_id: int) -> bool:
        """Remove a workflow lock whoever holds it (``lpad admin unlock``)."""
        res = self.workflows.update_one(
            {"nodes": fw_id, "locked": {"$exists": True}},
            {"$unset": {"locked": "", "locked_by": "", "locked_at": ""}},
        )
        return res.modified_count == 1

    @contextmanager
    def edit_workflow(self, fw_id: int, **lock_kwargs: Any) -> Iterator[WorkflowEditor]:
        """Lock the workflow of ``fw_id``, yield an editor, commit it on success."""
        with self.wf_lock(fw_id, **lock_kwargs):
            doc = self.get_wf_doc(fw_id, {"nodes": 1, "links": 1, "fw_states": 1, "state": 1})
            editor = WorkflowEditor(self, doc)
            yield editor
            editor.commit()

    def refresh_fws(self, fw_ids: Iterable[int]) -> None:
        """Recompute the state of these Fireworks (and what follows) from their launches."""
        by_wf: dict[Any, list[int]] = {}
        for fid in fw_ids:
            doc = self.get_wf_doc(fid, {"_id": 1})
            by_wf.setdefault(doc["_id"], []).append(fid)
        for ids in by_wf.values():
            with self.edit_workflow(ids[0]) as ed:
                ed.load_fws(ids)
                ed.refresh(ids)

    # -- checkout and launches -------------------------------------------------------------
    def checkout_fw(
        self,
        fworker: FWorker,
        launch_dir: str,
        fw_id: int | None = None,
        *,
        state: str = st.RUNNING,
        host: str | None = None,
        ip: str | None = None,
        launch_extra: Mapping[str, Any] | None = None,
        dir_for: Any = None,
        only_ready: bool = False,
    ) -> tuple[dict[str, Any] | None, int | None]:
        """Claim one READY Firework atomically and create its launch.

        The claim is one conditional write ``{fw_id, state: READY} -> RESERVED``: whoever gets
        ``modified_count == 1`` owns the Firework, so any number of runners can share a
        LaunchPad and no Firework runs twice.

        Args:
            fworker: the worker (its query, name and category filter the candidates).
            launch_dir: directory recorded in the launch (``spec._launch_dir`` wins).
            fw_id: claim this Firework only (it must be READY or RESERVED).
            state: the launch's first state (RUNNING, or RESERVED for a reservation).
            host: host name recorded in the launch.
            ip: IP address recorded in the launch.
            launch_extra: extra fields for the launch document (e.g. Prefect run ids).
            dir_for: optional callable ``fw_doc -> launch_dir`` used instead of ``launch_dir``.
            only_ready: with ``fw_id``, claim it only when READY (not RESERVED), so a runner
                that checks out by id never takes a Firework another runner is checking out.

        Returns:
            ``(firework document, launch_id)``, or ``(None, None)`` when nothing is READY.
        """
        from prefect_fireworks.runtime.firetasks import validate_tasks

        while True:
            claimed = self._claim(fworker, fw_id, only_ready)
            if claimed is None:
                return None, None
            fw = self.fireworks.find_one({"fw_id": claimed}, {"_id": 0})
            if fw is None:
                continue
            try:
                validate_tasks(fw["spec"].get("_tasks", []))
            except Exception as exc:
                self._fizzle_undeserialisable(fw, exc)
                if fw_id is not None:
                    return None, None
                continue
            if fw["spec"].get("_dupefinder") and self._steal_launches(fw):
                if fw_id is not None:
                    return None, None
                continue
            ldir = fw["spec"].get("_launch_dir") or (dir_for(fw) if dir_for else launch_dir)
            launch_id = self.get_new_launch_id()
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
            self.launches.insert_one(launch)
            self.fireworks.update_one(
                {"fw_id": claimed},
                {"$push": {"launches": launch_id}, "$set": {"state": state, "updated_on": now}},
            )
            fw["launches"] = [*fw.get("launches", []), launch_id]
            fw["state"] = state
            self._set_cached_state(claimed, state)
            return fw, launch_id

    def _claim(self, fworker: FWorker, fw_id: int | None, only_ready: bool = False) -> int | None:
        if fw_id is not None:
            states = [st.READY] if only_ready else [st.READY, st.RESERVED]
            res = self.fireworks.update_one(
                {"fw_id": fw_id, "state": {"$in": states}},
                {"$set": {"state": st.RESERVED, "updated_on": isoformat()}},
            )
            if res.matched_count == 1:
                return fw_id
            return None
        query = {"state": st.READY, **fworker.checkout_query()}
        for _ in range(100):
            cands = [
                d["fw_id"]
                for d in self.fireworks.find(query, {"fw_id": 1, "_id": 0})
                .sort([("spec._priority", DESCENDING), ("fw_id", ASCENDING)])
                .limit(16)
            ]
            if not cands:
                return None
            random_order = cands[:1] + random.sample(cands[1:], len(cands) - 1)
            for cand in random_order:
                res = self.fireworks.update_one(
                    {"fw_id": cand, "state": st.READY},
                    {"$set": {"state": st.RESERVED, "updated_on": isoformat()}},
                )
                if res.modified_count == 1:
                    return cand
        return None

    def _set_cached_state(self, fw_id: int, state: str) -> None:
        # The Firework document is already written: only the cached state changes. When the
        # workflow is READY/RESERVED/RUNNING and unlocked, a Firework starting makes it
        # RUNNING (RESERVED for a reservation) whatever the others are: one atomic write,
        # no lock cycle. Otherwise (DEFUSED, PAUSED, FIZZLED...) recompute under the lock.
        if state in st.ACTIVE_STATES:
            wf_state = st.RUNNING if state == st.RUNNING else None
            allowed = [st.READY, st.RESERVED, st.RUNNING] if wf_state else [st.READY, st.RESERVED]
            res = self.workflows.update_one(
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
        with self.edit_workflow(fw_id) as ed:
            ed.fw_states[fw_id] = state

    def _fizzle_undeserialisable(self, fw: Mapping[str, Any], exc: BaseException) -> None:
        import traceback

        details = {
            "_message": "FireWork failed to deserialize",
            "_stacktrace": "".join(traceback.format_exception(exc)),
        }
        with self.edit_workflow(fw["fw_id"]) as ed:
            doc = ed.fw(fw["fw_id"])
            doc["spec"]["_exception_details"] = details
            ed.mark(fw["fw_id"], "spec")
            ed.set_state(fw["fw_id"], st.FIZZLED)
            ed.refresh(ed.children(fw["fw_id"]))

    def _steal_launches(self, fw: Mapping[str, Any]) -> bool:
        """FireWorks' duplicate check: reuse the launches of an identical Firework."""
        finder = fw["spec"].get("_dupefinder") or {}
        if finder.get("_fw_name", "DupeFinderExact") != "DupeFinderExact":
            return False
        victim = self.fireworks.find_one(
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
        self.fireworks.update_one(
            {"fw_id": fw["fw_id"]},
            {"$push": {"launches": {"$each": stolen}}, "$set": {"state": st.RESERVED}},
        )
        with self.edit_workflow(fw["fw_id"]) as ed:
            ed.refresh([fw["fw_id"]])
        return True

    def ping_launch(self, launch_id: int, checkpoint: Mapping[str, Any] | None = None) -> bool:
        """Heartbeat: stamp the last state-history entry (and its checkpoint) of a RUNNING launch.

        Returns:
            False when the launch is no longer RUNNING (it was rerun or completed).
        """
        # While a launch is RUNNING its last history entry is its (only) RUNNING entry, so the
        # positional operator stamps it in one round trip.
        sets: dict[str, Any] = {"state_history.$.updated_on": isoformat()}
        if checkpoint is not None:
            sets["state_history.$.checkpoint"] = dict(checkpoint)
        res = self.launches.update_one(
            {"launch_id": launch_id, "state": st.RUNNING, "state_history.state": st.RUNNING},
            {"$set": sets},
        )
        return res.matched_count == 1

    def update_launch(self, launch_id: int, fields: Mapping[str, Any]) -> None:
        """``$set`` extra fields on a launch (trackers, Prefect ids, ...)."""
        self.launches.update_one({"launch_id": launch_id}, {"$set": dict(fields)})

    def complete_launch(
        self,
        launch_id: int,
        action: Mapping[str, Any] | None,
        state: str = st.COMPLETED,
        extra: Mapping[str, Any] | None = None,
    ) -> list[int]:
        """Record a launch's end and refresh every Firework that still lists it.

        A Firework that was rerun meanwhile no longer lists the launch, so a late result
        changes the launch document only.

        Returns:
            The fw_ids refreshed.
        """
        doc = self.launches.find_one({"launch_id": launch_id}, {"_id": 0})
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
        time_end = next(
            (h["created_on"] for h in history if h["state"] in st.FINISHED_STATES), None
        )
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
            self.launches.update_one({"launch_id": launch_id}, {"$set": sets})
        except pymongo.errors.DocumentTooLarge:
            import gridfs

            fs = gridfs.GridFS(self.db, GRIDFS_FALLBACK_COLLECTION)
            gid = fs.put(json.dumps(sets["action"]).encode(), metadata={"launch_id": launch_id})
            sets["action"] = {"gridfs_id": str(gid)}
            self.launches.update_one({"launch_id": launch_id}, {"$set": sets})
        fw_ids = [
            d["fw_id"] for d in self.fireworks.find({"launches": launch_id}, {"fw_id": 1, "_id": 0})
        ]
        for fid in fw_ids:
            with self.edit_workflow(fid) as ed:
                ed.refresh([fid])
        return fw_ids


def _errmsg(exc: pymongo.errors.OperationFailure) -> str:
    return str((exc.details or {}).get("errmsg", exc))


def _doc_sort_key(key: str, doc: Mapping[str, Any]) -> tuple[int, Any]:
    return _sort_key(doc.get(key))


def _sort_key(v: Any) -> tuple[int, Any]:
    if v is None:
        return (0, "")
    if isinstance(v, datetime):
        if v.tzinfo is None:
            v = v.replace(tzinfo=timezone.utc)
        return (1, v.timestamp())
    if isinstance(v, str):
        try:
            d = datetime.fromisoformat(v)
        except ValueError:
            return (2, v)
        if d.tzinfo is None:
            d = d.replace(tzinfo=timezone.utc)
        return (1, d.timestamp())
    return (2, str(v))


def _ip_address() -> str:
    try:
        return socket.gethostbyname(socket.gethostname())
    except OSError:
        return "127.0.0.1"
