"""The LaunchPad's database: connection, collections and the primitives every store module
uses (id reservation, document reads, workflow locks, the workflow editor).

:class:`FireworksDB` is the base of :class:`~prefect_fireworks.store.launchpad.LaunchPad`; the
modules that implement the LaunchPad's methods (``adding``, ``queries``, ``launches``,
``maintenance``) take a ``FireworksDB``, so none of them imports the LaunchPad.
"""

from __future__ import annotations

import json
from collections.abc import Iterator, Mapping
from contextlib import contextmanager
from pathlib import Path
from typing import TYPE_CHECKING, Any

import pymongo

from prefect_fireworks.core.constants import GRIDFS_FALLBACK_COLLECTION, WFLOCK_EXPIRATION_SECS
from prefect_fireworks.store import ids, locks, retry
from prefect_fireworks.store.adding import TaskValidator
from prefect_fireworks.store.workflow_editor import WorkflowEditor

if TYPE_CHECKING:
    from pymongo.collection import Collection
    from pymongo.database import Database
    from typing_extensions import Self

    from prefect_fireworks.store.config import LaunchPadConfig


class FireworksDB:
    """Connection and primitives of a LaunchPad database (FireWorks 2.x schema).

    Args:
        config: where MongoDB is; ``None`` resolves it (``-l`` file, environment, embedded).
        client: an existing ``MongoClient`` (then ``name`` names the database).
        name: database name override.
        task_validator: checks a Firework's ``spec._tasks`` when adding and at checkout
            (default: :meth:`default_task_validator`: None in the store, the Firetask
            registry's check in ``prefect_fireworks.LaunchPad``).
    """

    def __init__(
        self,
        config: LaunchPadConfig | None = None,
        *,
        client: pymongo.MongoClient | None = None,
        name: str | None = None,
        task_validator: TaskValidator | None = None,
    ) -> None:
        if client is None:
            if config is None:
                from prefect_fireworks.store.config import resolve_config

                config = resolve_config()
            client = config.client()
            self._owns_client = True
        else:
            self._owns_client = False
        #: Checks ``spec._tasks``; None checks nothing (the store knows no Firetasks).
        self.task_validator: TaskValidator | None = (
            task_validator if task_validator is not None else self.default_task_validator()
        )
        self.config = config
        self.client: pymongo.MongoClient = client
        self.name = name or (config.name if config is not None else "fireworks")
        self.db: Database = client[self.name]
        # Every operation on these follows the one retry policy for transient errors
        # (store/retry.py); on the embedded server a retry first restarts it if it died.
        from prefect_fireworks.store.config import embedded_reconnect_hook

        reconnect = embedded_reconnect_hook(config)
        self.fireworks: Collection = retry.wrap(self.db["fireworks"], reconnect=reconnect)
        self.launches: Collection = retry.wrap(self.db["launches"], reconnect=reconnect)
        self.workflows: Collection = retry.wrap(self.db["workflows"], reconnect=reconnect)
        self.fw_id_assigner: Collection = retry.wrap(self.db["fw_id_assigner"], reconnect=reconnect)
        self.offline_runs: Collection = retry.wrap(self.db["offline_runs"], reconnect=reconnect)
        self.lock_owner = locks.process_owner()

    @classmethod
    def default_task_validator(cls) -> TaskValidator | None:
        """The ``spec._tasks`` check used when none is given: None (no Firetasks here)."""
        return None

    # -- construction ----------------------------------------------------------------------
    @classmethod
    def auto_load(cls, launchpad_file: str | Path | None = None) -> Self:
        """Connect as ``lpad`` does: ``-l`` file, then environment, then the embedded server."""
        from prefect_fireworks.store.config import resolve_config

        return cls(resolve_config(launchpad_file))

    @classmethod
    def from_file(cls, path: str | Path) -> Self:
        """Connect with a FireWorks ``my_launchpad.yaml``."""
        from prefect_fireworks.store.config import LaunchPadConfig

        return cls(LaunchPadConfig.from_file(path))

    @classmethod
    def from_uri(cls, uri: str, name: str = "fireworks", **client_kwargs: Any) -> Self:
        """Connect to a MongoDB URI."""
        client: pymongo.MongoClient = pymongo.MongoClient(uri, **client_kwargs)
        lp = cls(client=client, name=name)
        lp._owns_client = True
        return lp

    def close(self) -> None:
        """Close the client if this LaunchPad created it."""
        if self._owns_client:
            self.client.close()

    def __enter__(self) -> Self:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()

    # -- ids -------------------------------------------------------------------------------
    def reserve_fw_ids(self, n: int, current: int | None = None) -> int:
        """Reserve ``n`` consecutive fw_ids (``current``: the counter as just read); returns
        the first."""
        if n <= 0:
            return 0
        return ids.reserve(self.fw_id_assigner, ids.FW_ID_FIELD, n, current)

    def get_new_launch_id(self) -> int:
        """Reserve one launch id."""
        return ids.reserve(self.fw_id_assigner, ids.LAUNCH_ID_FIELD, 1)

    # -- documents -------------------------------------------------------------------------
    def get_fw_dict_by_id(self, fw_id: int) -> dict[str, Any]:
        """The Firework document.

        Raises:
            ValueError: ``FW with id: X not found!``
        """
        doc = self.fireworks.find_one({"fw_id": fw_id}, {"_id": 0})
        if doc is None:
            raise ValueError(f"FW with id: {fw_id} not found!")
        return doc

    def get_wf_doc(self, fw_id: int, projection: Mapping[str, Any] | None = None) -> dict:
        """The workflow document containing ``fw_id``.

        Raises:
            ValueError: no workflow contains it.
        """
        doc = self.workflows.find_one({"nodes": fw_id}, projection)
        if doc is None:
            raise ValueError(f"FW with id: {fw_id} not found!")
        return doc

    def load_action(self, launch_doc: Mapping[str, Any]) -> dict[str, Any] | None:
        """A launch's ``action``, read from GridFS when FireWorks stored it there."""
        action = launch_doc.get("action")
        if isinstance(action, Mapping) and "gridfs_id" in action:
            import gridfs
            from bson import ObjectId

            fs = gridfs.GridFS(self.db, GRIDFS_FALLBACK_COLLECTION)
            return json.loads(fs.get(ObjectId(action["gridfs_id"])).read())
        return dict(action) if action else None

    # -- locking ---------------------------------------------------------------------------
    @contextmanager
    def wf_lock(
        self,
        fw_id: int,
        expire_secs: float = WFLOCK_EXPIRATION_SECS,
        wait_secs: float | None = None,
    ) -> Iterator[locks.WorkflowLock]:
        """Hold the lock of the workflow containing ``fw_id`` (see :class:`WorkflowLock`).

        Raises:
            ValueError: no workflow contains ``fw_id``.
            LockedWorkflowError: still locked after ``wait_secs`` (default ``expire_secs``).
        """
        with locks.WorkflowLock(
            self.workflows, fw_id, self.lock_owner, expire_secs, wait_secs
        ) as lock:
            yield lock

    def force_unlock(self, fw_id: int) -> bool:
        """Remove a workflow lock whoever holds it (``lpad admin unlock``)."""
        return locks.force_unlock(self.workflows, fw_id)

    @contextmanager
    def edit_workflow(self, fw_id: int, **lock_kwargs: Any) -> Iterator[WorkflowEditor]:
        """Lock the workflow of ``fw_id``, yield an editor, commit it on success."""
        with self.wf_lock(fw_id, **lock_kwargs):
            doc = self.get_wf_doc(fw_id, {"nodes": 1, "links": 1, "fw_states": 1, "state": 1})
            editor = WorkflowEditor(self, doc)
            yield editor
            editor.commit()
