"""The Rocket: runs one checked-out Firework (FireWorks' ``Rocket.run``), without Prefect.

A launch goes: `checkout` (atomic claim + launch document + launch directory) → `Rocket.run`
(Firetasks in order in the launch directory, a checkpoint before each, a heartbeat thread,
FWActions merged) → ``LaunchPad.complete_launch`` (COMPLETED or FIZZLED, which refreshes the
workflow and applies the FWAction). `run_one` does the three for ``rlaunch singleshot``;
``prefect_fireworks.prefect.flows`` wraps `Rocket.run` in a Prefect task.

The working directory is process-global. Firetasks (ours and FireWorks') work in the current
directory, so a Rocket ``chdir``s into its launch directory and holds `CWD_LOCK` while it runs:
two Rockets in threads of one process run one after the other, never in each other's
directory. Fireworks run in parallel in separate processes (several ``rapidfire`` processes,
or Prefect's ``DaskTaskRunner``, whose workers are processes).

The Rocket orchestrates; the pieces are modules of their own: `launch_dirs` (where a launch
runs, ``_files_in``), `recovery` (checkpoints, ``--copy-data``/``--previous-dir``),
`heartbeat` (pings, trackers), `actions` (FWActions: action files, spec changes, FireWorks'
decoration), `fw_json` (``FW.json``). Their public names are importable from here too.

Example:
    ```python
    from prefect_fireworks.store.launchpad import FWorker, LaunchPad
    from prefect_fireworks.runtime.rocket import run_one

    lp = LaunchPad.auto_load()
    result = run_one(lp, FWorker())  # None when nothing is READY
    print(result.state if result else "nothing to run")
    ```
"""

from __future__ import annotations

import copy
import json
import logging
import os
import traceback
from collections.abc import Callable, Mapping
from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Any

from pymongo.errors import ConnectionFailure

from prefect_fireworks.core import states as st
from prefect_fireworks.core.models import FWAction
from prefect_fireworks.runtime import actions
from prefect_fireworks.runtime.background import BackgroundTask
from prefect_fireworks.runtime.background import stop_all as _stop_all
from prefect_fireworks.runtime.checkout import checkout, claim_launch
from prefect_fireworks.runtime.firetasks import Firetask, load_firetask
from prefect_fireworks.runtime.fw_json import write_fw_json
from prefect_fireworks.runtime.heartbeat import (
    MAX_TRACKER_LINES,
    PING_TIME_SECS,
    TRACKER_LINES,
    Heartbeat,
    parse_trackers,
)
from prefect_fireworks.runtime.launch_dirs import (
    CWD_LOCK,
    LAUNCHER_PREFIX,
    copy_files_in,
    make_launch_dir,
    prefect_temporary_folder,
    prepare_launch_dir,
    resolve_launch_root,
    working_dir,
)
from prefect_fireworks.runtime.recovery import Checkpoint, restore_previous_dir
from prefect_fireworks.runtime.task_launchpad import TaskLaunchPad
from prefect_fireworks.store import launch_cycle, retry
from prefect_fireworks.store.launchpad import FWorker

if TYPE_CHECKING:
    from prefect_fireworks.store.launchpad import LaunchPad

logger = logging.getLogger(__name__)

#: The store's transient failures, once retried until the deadline: they end the worker (one
#: line, exit 1), never a launch (see `Rocket._store`).
STORE_ERRORS = (ConnectionFailure, retry.StoreUnavailableError)

__all__ = [
    "CWD_LOCK",
    "LAUNCHER_PREFIX",
    "MAX_TRACKER_LINES",
    "PING_TIME_SECS",
    "TRACKER_LINES",
    "Rocket",
    "RocketResult",
    "checkout",
    "claim_launch",
    "make_launch_dir",
    "prefect_temporary_folder",
    "resolve_launch_root",
    "run_one",
]


@dataclass
class RocketResult:
    """What one launch ended with.

    Attributes:
        fw_id: the Firework.
        name: its name.
        launch_id: the launch.
        state: the launch's final state (COMPLETED or FIZZLED).
        launch_dir: where it ran.
        action: the FWAction recorded in the launch.
        fw_state: the Firework's state after completion (re-read from the database).
        message: a one-line summary (the exception for a FIZZLED launch).
        stacktrace: the formatted traceback of a FIZZLED launch.
        wf_fw_ids: the workflow's fw_ids when known.
    """

    fw_id: int
    name: str
    launch_id: int
    state: str
    launch_dir: str
    action: dict[str, Any] = field(default_factory=dict)
    fw_state: str | None = None
    message: str = ""
    stacktrace: str | None = None

    @property
    def fizzled(self) -> bool:
        """The launch failed."""
        return self.state == st.FIZZLED

    @property
    def defused(self) -> bool:
        """The Firework was defused, or its action defused its children or workflow."""
        return self.fw_state == st.DEFUSED or bool(
            self.action.get("defuse_children") or self.action.get("defuse_workflow")
        )

    def to_dict(self) -> dict[str, Any]:
        """A JSON-able summary (no stack trace)."""
        return {
            "fw_id": self.fw_id,
            "name": self.name,
            "launch_id": self.launch_id,
            "state": self.state,
            "fw_state": self.fw_state,
            "launch_dir": self.launch_dir,
            "message": self.message,
        }


# -- the Rocket -----------------------------------------------------------------------------


class Rocket:
    """Runs the Firetasks of one checked-out Firework and completes its launch.

    Args:
        lp: the LaunchPad.
        fw_doc: the Firework document returned by the checkout.
        launch_id: its launch.
        fworker: the worker (its ``env`` becomes ``spec._fw_env``); default: the launch's.
        ping_secs: heartbeat interval (FireWorks' ``PING_TIME_SECS``).
        launch_fields: extra fields ``$set`` on the launch when it starts (dotted keys
            allowed), e.g. ``{"prefect.task_run_id": "..."}``.
        launch_doc: the launch document from the checkout (`claim_launch`), so the Rocket
            never re-reads it and completes the launch without a lock.
        insert_launch: the launch document is not written yet: write it at the start, with
            ``launch_fields`` and the first checkpoint, in one insert.
        print_fw_json: write the Firework as ``FW.json`` into the launch directory before the
            Firetasks run (FireWorks' ``PRINT_FW_JSON``); default: the ``print_fw_json``
            setting, which is on.
    """

    def __init__(
        self,
        lp: LaunchPad,
        fw_doc: Mapping[str, Any],
        launch_id: int,
        *,
        fworker: FWorker | None = None,
        ping_secs: float = PING_TIME_SECS,
        launch_fields: Mapping[str, Any] | None = None,
        print_fw_json: bool | None = None,
        launch_doc: Mapping[str, Any] | None = None,
        insert_launch: bool = False,
    ) -> None:
        self.lp = lp
        #: The launch document as written (or, with ``insert_launch``, still to be written):
        #: with it the Rocket never re-reads its launch, and completes without locks.
        self._launch = copy.deepcopy(dict(launch_doc)) if launch_doc is not None else None
        self._insert = bool(insert_launch and launch_doc is not None)
        #: An insert of the launch was sent (it may have gone in even if it raised).
        self._insert_sent = False
        #: The task number whose checkpoint is already in the launch (written with it).
        self._checkpointed: int | None = None
        self._fw_state: str | None = None
        self.fw_doc = fw_doc
        self.launch_id = launch_id
        self.fworker = fworker
        self.ping_secs = ping_secs
        self.launch_fields = dict(launch_fields or {})
        self.print_fw_json = _print_fw_json_default() if print_fw_json is None else print_fw_json
        self.fw_id: int = fw_doc["fw_id"]
        self.spec: dict[str, Any] = copy.deepcopy(dict(fw_doc.get("spec") or {}))
        self.launch_dir = ""
        self.heartbeat = Heartbeat(lp, launch_id, self._launch, ping_secs)
        self._backgrounds: list[BackgroundTask] = []

    # -- start -----------------------------------------------------------------------------
    def _prepare(self) -> None:
        doc = self._launch
        if doc is None:
            doc = self.lp.launches.find_one(
                {"launch_id": self.launch_id}, {"launch_dir": 1, "fworker": 1, "_id": 0}
            )
        if doc is None:
            raise ValueError(f"launch_id: {self.launch_id} does not exist")
        if self.fworker is None:
            fwk = dict(doc.get("fworker") or {})
            query = fwk.get("query")
            fwk["query"] = json.loads(query) if isinstance(query, str) and query else {}
            self.fworker = FWorker(**{k: v for k, v in fwk.items() if v is not None})
        sets = dict(self.launch_fields)
        self.launch_dir, moved = prepare_launch_dir(self.spec, doc.get("launch_dir"))
        if moved:
            sets["launch_dir"] = self.launch_dir
        self.heartbeat.launch_dir = self.launch_dir
        self.heartbeat.trackers = parse_trackers(self.spec)
        if self.heartbeat.trackers:
            sets["trackers"] = self.heartbeat.tracker_docs()
        if self._launch is not None:
            for key, value in sets.items():
                launch_cycle.set_dotted(self._launch, key, value)
        if self._insert and self._launch is not None:
            first = Checkpoint.from_spec(self.spec)
            checkpoint = copy.deepcopy(first.at(first.task_n))
            self._launch["state_history"][-1]["checkpoint"] = checkpoint
            self._insert_sent = True
            launch_cycle.insert_launch(self.lp, self._launch)
            self._insert = False
            self._checkpointed = first.task_n
        elif sets:
            self.lp.update_launch(self.launch_id, sets)

    def ping(self, checkpoint: Mapping[str, Any] | None = None) -> None:
        """Heartbeat (and checkpoint): stamp the launch's last state-history entry."""
        self.heartbeat.ping(checkpoint)

    def _task_attributes(self, task: Firetask, my_spec: Mapping[str, Any]) -> None:
        # FireWorks' spec._add_launchpad_and_fw_id / spec._add_fworker.
        if my_spec.get("_add_launchpad_and_fw_id"):
            task.fw_id = self.fw_id
            task.launchpad = TaskLaunchPad(self.lp)
        if my_spec.get("_add_fworker"):
            task.fworker = self.fworker

    # -- run -------------------------------------------------------------------------------
    def run(self) -> RocketResult:
        """Run the Firetasks and complete the launch (COMPLETED, or FIZZLED on an exception).

        Returns:
            The outcome; exceptions of Firetasks are recorded, not raised (a
            ``KeyboardInterrupt`` is recorded and then re-raised).
        """
        try:
            self._prepare()
        except Exception as exc:
            # Nothing ran: record the failure so the launch does not stay RUNNING.
            self.launch_dir = self.launch_dir or os.getcwd()
            return self._fizzle(exc, None, traceback.format_exc())
        with working_dir(self.launch_dir):
            return self._run_in_dir()

    def _run_in_dir(self) -> RocketResult:
        task_dict: dict[str, Any] | None = None
        try:
            done, my_spec = self._start_in_dir()
            raw_tasks = list(self.spec.get("_tasks") or [])
            action = FWAction()
            for t_counter in range(done.task_n, len(raw_tasks)):
                task_dict = raw_tasks[t_counter]
                # The first checkpoint went in with the launch document.
                if t_counter != self._checkpointed or self.heartbeat.trackers:
                    self._store(self.ping, done.at(t_counter))
                try:
                    task = load_firetask(task_dict)
                    task_dict = task.to_dict()
                    self._task_attributes(task, my_spec)
                    result = task.run_task(my_spec)
                except BaseException as exc:
                    self._stop_helpers()
                    out = self._fizzle(exc, task_dict, traceback.format_exc())
                    if isinstance(exc, (KeyboardInterrupt, SystemExit)):
                        raise
                    return out
                action = actions.task_action(result)
                done.add(action)
                actions.apply_to_spec(action, my_spec)
                if action.skip_remaining_tasks:
                    break
            return self._finish_in_dir(action, done, my_spec)
        except (KeyboardInterrupt, SystemExit, *STORE_ERRORS):
            # A store still failing at the retry deadline: the launch stays RUNNING (its
            # tasks may have had their effects) for detect_lostruns, never FIZZLED for it.
            raise
        except Exception as exc:
            # Post-processing failed (malformed action, an error the database reported):
            # FireWorks records it as FIZZLED with no task.
            self._stop_helpers()
            return self._fizzle(exc, None, traceback.format_exc(), details=False)
        finally:
            _stop_all(self._backgrounds)
            self.heartbeat.stop(join=True)

    def _start_in_dir(self) -> tuple[Checkpoint, dict[str, Any]]:
        """Before the first task: the previous directory's data or ``_files_in``, FW.json, the
        heartbeat and the background tasks. Returns the checkpoint to start from and the spec
        the tasks see."""
        done = Checkpoint.from_spec(self.spec)
        if self.spec.get("_recovery"):
            restore_previous_dir(self.spec, self.launch_dir)
        else:
            copy_files_in(self.spec)
        if self.print_fw_json:
            write_fw_json(self.lp, self.fw_doc, self.launch_dir, self.launch_id, self._launch)
        my_spec = copy.deepcopy(self.spec)
        my_spec["_fw_env"] = self.fworker.env if self.fworker else {}
        self.heartbeat.start()
        self._backgrounds = [
            BackgroundTask.from_dict(b) for b in my_spec.get("_background_tasks") or []
        ]
        for bg in self._backgrounds:
            bg.start(copy.deepcopy(self.spec))
        return done, my_spec

    def _stop_helpers(self) -> None:
        self.heartbeat.stop()
        _stop_all(self._backgrounds)

    def _finish_in_dir(
        self, action: FWAction, done: Checkpoint, my_spec: Mapping[str, Any]
    ) -> RocketResult:
        """After the last task: background tasks' last runs, the merged and decorated
        FWAction, the launch COMPLETED."""
        self._stop_helpers()
        if self._launch is None or self.heartbeat.trackers:
            # the completion stamps the launch anyway; trackers need a tail
            self._store(self.ping)
        for bg in self._backgrounds:
            if bg.run_on_finish:
                bg.run_once(copy.deepcopy(self.spec))
        action.stored_data = done.stored_data
        action.update_spec = done.update_spec
        action.mod_spec = done.mod_spec
        action = self._decorate(action, my_spec)
        self._complete(action.to_dict(), st.COMPLETED)
        return self._result(st.COMPLETED, action, "", None)

    # -- end -------------------------------------------------------------------------------
    def _decorate(self, action: FWAction, my_spec: Mapping[str, Any]) -> FWAction:
        return actions.decorate(action, my_spec, self.fw_doc, self.launch_dir, self.fworker)

    def _fizzle(
        self,
        exc: BaseException,
        task: dict[str, Any] | None,
        tb: str,
        details: bool = True,
    ) -> RocketResult:
        action = actions.failure_action(exc, task, tb, details)
        try:
            if (self._launch is None or self.heartbeat.trackers) and not self._insert:
                self.ping()
            action = self._decorate(action, self.spec)
        except Exception:
            logger.exception("launch %s: recording the failure's details failed", self.launch_id)
        self._complete(action.to_dict(), st.FIZZLED)
        message = f"{type(exc).__name__}: {exc}".strip()
        return self._result(st.FIZZLED, action, message, tb)

    def _store(self, func: Callable[..., Any], *args: Any) -> Any:
        """Run one of the Rocket's own writes, again while the store fails transiently.

        A write cut off by a lost connection may or may not have been applied, so
        `store.retry` does not retry it by itself; the Rocket's writes can be redone (a ping
        ``$set``s the same values; a completion re-derives its writes from the launch and
        Firework documents it holds, and its conditional writes match what is already there),
        so they are retried with the one policy: back-off, then the deadline.

        Raises:
            StoreUnavailableError: still failing at the deadline.
        """
        return retry.call(func, *args, retry_on=ConnectionFailure, what="MongoDB")

    def _complete(self, action: dict[str, Any], state: str) -> None:
        """Record the launch's end (retried as `_store` says; a failure here never fizzles)."""
        self._store(self._complete_once, action, state)

    def _complete_once(self, action: dict[str, Any], state: str) -> None:
        if self._insert and self._launch is not None:
            # Failed before the launch was written: write it, so the failure is recorded (an
            # insert cut off by a lost connection may have gone in: then not again).
            sent, self._insert_sent = self._insert_sent, True
            if not sent or self.lp.launches.find_one({"launch_id": self.launch_id}) is None:
                launch_cycle.insert_launch(self.lp, self._launch)
            self._insert = False
        if self._launch is None:
            self.lp.complete_launch(self.launch_id, action, state)
            return
        states = launch_cycle.finish_launch(
            self.lp, self.launch_id, action, state, launch_doc=self._launch, fw_doc=self.fw_doc
        )
        self._fw_state = states.get(self.fw_id)

    def _result(self, state: str, action: FWAction, message: str, tb: str | None) -> RocketResult:
        if self._fw_state is not None:
            fw: Mapping[str, Any] | None = {"state": self._fw_state}
        else:
            fw = self.lp.fireworks.find_one({"fw_id": self.fw_id}, {"state": 1, "_id": 0})
        return RocketResult(
            fw_id=self.fw_id,
            name=self.fw_doc.get("name", "Unnamed FW"),
            launch_id=self.launch_id,
            state=state,
            launch_dir=self.launch_dir,
            action=action.to_dict(),
            fw_state=(fw or {}).get("state"),
            message=message,
            stacktrace=tb,
        )


def _print_fw_json_default() -> bool:
    from prefect_fireworks.core.settings import get_settings

    return get_settings().print_fw_json


def run_one(
    lp: LaunchPad,
    fworker: FWorker | None = None,
    fw_id: int | None = None,
    *,
    launch_root: str | os.PathLike[str] | None = None,
    ping_secs: float = PING_TIME_SECS,
) -> RocketResult | None:
    """Check out one Firework and run it (``rlaunch singleshot``).

    Returns:
        The outcome, or None when nothing was READY.
    """
    fworker = fworker or FWorker()
    got = claim_launch(lp, fworker, fw_id, launch_root=launch_root)
    if got is None:
        return None
    fw_doc, launch_doc = got
    return Rocket(
        lp,
        fw_doc,
        int(launch_doc["launch_id"]),
        fworker=fworker,
        ping_secs=ping_secs,
        launch_doc=launch_doc,
        insert_launch=True,
    ).run()
