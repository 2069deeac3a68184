"""The LaunchPad: FireWorks' MongoDB store, with FireWorks' method names.

Documents follow FireWorks 2.x exactly (see ``docs/concepts.md``), so FireWorks' own ``lpad``
can read and rerun what this module writes and vice versa. The class is a façade: the work is
done in focused modules (``db`` connection and primitives, ``ids``, ``locks``, ``adding``,
``queries``, ``launches``, ``maintenance``), whose public names are re-exported here.

The store knows no Firetasks: ``task_validator`` (None here) is how the layer that owns them
(:mod:`prefect_fireworks.runtime`) makes ``add_wf`` reject unknown ones and ``checkout_fw``
fizzle Fireworks that cannot be loaded; ``prefect_fireworks.LaunchPad`` is that LaunchPad.
No Prefect import here.
"""

from __future__ import annotations

from collections.abc import Callable, Iterable, Mapping, Sequence
from typing import Any

import pymongo

from prefect_fireworks.core import states as st
from prefect_fireworks.core.constants import (
    FORBIDDEN_OPERATORS,
    GRIDFS_FALLBACK_COLLECTION,
    PW_CHECK_NUM,
    RUN_EXPIRATION_SECS,
    WFLOCK_EXPIRATION_SECS,
)
from prefect_fireworks.core.models import Firework, Launch, Workflow
from prefect_fireworks.store import (
    adding,
    checkout,
    completion,
    launches,
    maintenance,
    queries,
    validation,
)
from prefect_fireworks.store.db import FireworksDB
from prefect_fireworks.store.idranges import find_by_ids
from prefect_fireworks.store.launches import FWorker
from prefect_fireworks.store.locks import LockedWorkflowError, WorkflowLock
from prefect_fireworks.store.maintenance import check_password
from prefect_fireworks.store.queries import QueryError, check_query

__all__ = [
    "FORBIDDEN_OPERATORS",
    "GRIDFS_FALLBACK_COLLECTION",
    "PW_CHECK_NUM",
    "RUN_EXPIRATION_SECS",
    "WFLOCK_EXPIRATION_SECS",
    "FWorker",
    "LaunchPad",
    "LockedWorkflowError",
    "QueryError",
    "WorkflowLock",
    "check_password",
    "check_query",
]


class LaunchPad(FireworksDB):
    """FireWorks' LaunchPad over pymongo.

    Args:
        config: where MongoDB is; ``None`` resolves it (``-l`` file, environment, embedded).
        client: an existing ``MongoClient`` (then ``name`` names the database).
        name: database name override.
        task_validator: checks ``spec._tasks`` when adding and at checkout (see the module).

    Example:
        ```python
        from prefect_fireworks import LaunchPad

        lp = LaunchPad.auto_load()
        lp.get_fw_ids({"state": "FIZZLED"})
        ```
    """

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
        maintenance.reset(self, password, require_password, max_reset_wo_password)

    def tuneup(self) -> None:
        """Create FireWorks' indexes (and the ``archived_launches`` index reruns use)."""
        maintenance.tuneup(self)

    def ensure_initialized(self) -> None:
        """Create the id counter and indexes on a fresh database (never resets data)."""
        maintenance.ensure_initialized(self)

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
        """Add several workflows with one id reservation and two bulk inserts.

        Raises:
            ValueError: a bad DAG or (with a ``task_validator``) a Firetask that cannot load.
        """
        wfs2 = adding.as_workflows(wfs)
        for wf in wfs2:
            if not wf.fws:
                raise ValueError(f"workflow {wf.name!r} has no Fireworks")
        adding.validate_workflows(wfs2, self.task_validator)
        self.ensure_initialized()
        total = sum(len(wf.fws) for wf in wfs2)
        # Every document is built and checked (size, depth, keys) before an id is reserved,
        # with the ids it will most likely get: a refused write must leave nothing behind.
        peek = self.fw_id_assigner.find_one({"_id": -1}, {"next_fw_id": 1})
        guess = int(peek["next_fw_id"]) if peek else None
        pre = adding.build_documents(wfs2, guess or 1)
        validation.check_new_documents(pre.fireworks, pre.workflows)
        del pre
        # The counter just read is the first compare-and-swap's expected value (no second read).
        first = self.reserve_fw_ids(total, guess)
        docs = adding.build_documents(wfs2, first)
        try:
            if first != guess:
                validation.check_new_documents(docs.fireworks, docs.workflows)
            if docs.fireworks:
                self.fireworks.insert_many(docs.fireworks, ordered=False)
            if docs.workflows:
                self.workflows.insert_many(docs.workflows, ordered=False)
        except (pymongo.errors.PyMongoError, validation.DocumentError) as exc:
            self._undo_add(docs, first, total)
            if isinstance(exc, validation.DocumentError):
                raise
            raise validation.WriteUndoneError(
                f"could not add: {validation.short_reason(exc)}; nothing was added"
            ) from None
        return docs.id_maps

    def _undo_add(self, docs: adding.NewDocuments, first: int, total: int) -> None:
        # insert_many gave every document its _id: delete exactly those (never a document
        # that was there before), and move the counter back unless someone reserved since.
        for coll, batch in ((self.workflows, docs.workflows), (self.fireworks, docs.fireworks)):
            oids = [d["_id"] for d in batch if "_id" in d]
            if oids:
                coll.delete_many({"_id": {"$in": oids}})
        self.fw_id_assigner.update_one(
            {"_id": -1, "next_fw_id": first + total}, {"$set": {"next_fw_id": first}}
        )

    # -- reading ---------------------------------------------------------------------------
    def get_fw_by_id(self, fw_id: int) -> Firework:
        """The Firework as a model."""
        return Firework.from_dict(self.get_fw_dict_by_id(fw_id))

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

        With ``launches_mode`` only active launches (listed in some Firework's ``launches``)
        count. Raises ``QueryError`` for an unsafe or invalid query.
        """
        return queries.fw_ids(
            self.fireworks, self.launches, query, sort, limit, count_only, launches_mode
        )

    def get_wf_ids(
        self,
        query: Mapping[str, Any] | None = None,
        sort: Sequence[tuple[str, int]] | None = None,
        limit: int = 0,
        count_only: bool = False,
    ) -> list[int] | int:
        """Workflows matching a query on ``workflows``, each named by its lowest fw_id."""
        return queries.wf_ids(self.workflows, query, sort, limit, count_only)

    # -- refresh ---------------------------------------------------------------------------
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
        dir_for: Callable[[dict[str, Any]], Any] | None = None,
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
        got = checkout.checkout_launch(
            self,
            fworker,
            launch_dir,
            fw_id,
            state=state,
            host=host,
            ip=ip,
            extra=launch_extra,
            dir_for=dir_for,
            only_ready=only_ready,
        )
        return (None, None) if got is None else (got[0], int(got[1]["launch_id"]))

    def ping_launch(self, launch_id: int, checkpoint: Mapping[str, Any] | None = None) -> bool:
        """Heartbeat: stamp the last state-history entry (and its checkpoint) of a RUNNING launch.

        Returns:
            False when the launch is no longer RUNNING (it was rerun or completed).
        """
        return launches.ping_launch(self, launch_id, checkpoint)

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
        return list(completion.finish_launch(self, launch_id, action, state, extra))
