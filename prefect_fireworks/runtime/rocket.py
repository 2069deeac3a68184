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

import bz2
import copy
import errno
import glob
import gzip
import json
import logging
import lzma
import os
import shutil
import socket
import tempfile
import threading
import time
import traceback
from collections.abc import Iterator, Mapping
from contextlib import contextmanager
from dataclasses import dataclass, field
from datetime import datetime, timezone
from pathlib import Path
from typing import IO, TYPE_CHECKING, Any

import yaml

from prefect_fireworks.core import states as st
from prefect_fireworks.core.dictmods import apply_mod
from prefect_fireworks.core.models import FWAction, firework_to_dict
from prefect_fireworks.runtime.background import BackgroundTask
from prefect_fireworks.runtime.background import stop_all as _stop_all
from prefect_fireworks.runtime.firetasks import Firetask, load_firetask, to_fwaction
from prefect_fireworks.runtime.task_launchpad import TaskLaunchPad
from prefect_fireworks.store import launch_cycle
from prefect_fireworks.store.launchpad import FWorker

if TYPE_CHECKING:
    from prefect_fireworks.store.launchpad import LaunchPad

logger = logging.getLogger(__name__)

__all__ = [
    "CWD_LOCK",
    "LAUNCHER_PREFIX",
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

#: FireWorks' ``PING_TIME_SECS``: heartbeat interval of a running launch.
PING_TIME_SECS = 3600.0
#: FireWorks' ``TRACKER_LINES`` (default lines kept by a tracker) and its maximum.
TRACKER_LINES = 25
MAX_TRACKER_LINES = 1000
#: Launch directories are ``launcher_<UTC time>`` as in FireWorks' rapidfire.
LAUNCHER_PREFIX = "launcher_"
_BLOCK_FORMAT = "%Y-%m-%d-%H-%M-%S-%f"
#: Held by a Rocket while it runs in its launch directory (the cwd is process-global).
CWD_LOCK = threading.RLock()


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


# -- launch directories ---------------------------------------------------------------------


#: Folders Prefect creates for the code of one flow run and deletes after it: a process
#: worker's ``TemporaryDirectory(suffix="prefect")`` and a runner's ``runner_storage``.
_PREFECT_RUNNER_STORAGE = "runner_storage"


def prefect_temporary_folder(path: str | os.PathLike[str]) -> Path | None:
    """The temporary code folder of a Prefect flow run that ``path`` lies in, if any.

    A process worker runs each flow run in ``<tmp>/tmp…prefect`` and a served or pulled
    deployment in ``<tmp>/runner_storage/…``; Prefect deletes both when the run ends, so launch
    directories there would be lost.
    """
    tmp = Path(os.path.realpath(tempfile.gettempdir()))
    p = Path(os.path.realpath(os.fspath(path)))
    try:
        rel = p.relative_to(tmp)
    except ValueError:
        return None
    if not rel.parts:
        return None
    first = rel.parts[0]
    if first == _PREFECT_RUNNER_STORAGE or (first.startswith("tmp") and first.endswith("prefect")):
        return tmp / first
    return None


def resolve_launch_root(launch_root: str | os.PathLike[str] | None = None) -> Path:
    """Where launch directories go: the argument, ``..._LAUNCH_ROOT``, else the cwd.

    A missing root is created. A root inside the temporary code folder of a Prefect flow run
    (a deployment run on a worker, whose cwd Prefect deletes after the run) is refused.

    Raises:
        ValueError: the root exists and is not a directory, cannot be created, or is inside a
            Prefect temporary code folder.
    """
    from prefect_fireworks.core.settings import get_settings

    root = Path(launch_root) if launch_root is not None else get_settings().launch_root
    root = Path(os.path.abspath(os.path.expanduser(str(root or os.getcwd()))))
    temporary = prefect_temporary_folder(root)
    if temporary is not None:
        raise ValueError(
            f"launch root {root} is inside {temporary}, the temporary folder Prefect deletes "
            "after the flow run: set PREFECT_INTEGRATIONS_FIREWORKS_LAUNCH_ROOT on the worker "
            "(or in the deployment's job variables), the FireworksLaunchPad block's "
            "launch_root, or the flow's launch_root parameter"
        )
    if root.exists() and not root.is_dir():
        raise ValueError(f"launch root {root} exists and is not a directory")
    try:
        root.mkdir(parents=True, exist_ok=True)
    except OSError as exc:
        raise ValueError(f"cannot create launch root {root}: {exc.strerror or exc}") from exc
    return root


def make_launch_dir(root: str | os.PathLike[str]) -> str:
    """Create a fresh ``launcher_<YYYY-MM-DD-HH-MM-SS-ffffff>`` directory under ``root``.

    ``mkdir`` is the claim: concurrent processes that pick the same microsecond retry.
    """
    for _ in range(100):
        stamp = datetime.now(timezone.utc).strftime(_BLOCK_FORMAT)
        path = os.path.join(os.fspath(root), LAUNCHER_PREFIX + stamp)
        try:
            os.mkdir(path)
            return path
        except FileExistsError:
            time.sleep(0.001)
    raise RuntimeError(f"could not create a launch directory under {root}")


def checkout(
    lp: LaunchPad,
    fworker: FWorker | None = None,
    fw_id: int | None = None,
    *,
    launch_root: str | os.PathLike[str] | None = None,
    launch_extra: Mapping[str, Any] | None = None,
) -> tuple[dict[str, Any] | None, int | None]:
    """Claim a READY Firework (this one, or the best match for ``fworker``) and create its launch.

    The launch directory is created only once something is claimed (``spec._launch_dir``,
    when set, is used instead). With ``fw_id`` only a READY Firework is taken.

    Returns:
        ``(firework document, launch_id)``, or ``(None, None)``.
    """
    got = claim_launch(lp, fworker, fw_id, launch_root=launch_root, launch_extra=launch_extra)
    if got is None:
        return None, None
    fw_doc, launch_doc = got
    launch_cycle.insert_launch(lp, launch_doc)
    return fw_doc, int(launch_doc["launch_id"])


def claim_launch(
    lp: LaunchPad,
    fworker: FWorker | None = None,
    fw_id: int | None = None,
    *,
    launch_root: str | os.PathLike[str] | None = None,
    launch_extra: Mapping[str, Any] | None = None,
) -> tuple[dict[str, Any], dict[str, Any]] | None:
    """Claim a READY Firework and make its launch document, without writing it yet.

    Give both to ``Rocket(..., launch_doc=..., insert_launch=True)``: the Rocket writes the
    launch with its first checkpoint (and, in a Prefect task, the run ids) in one insert.

    Returns:
        ``(firework document, launch document)``, or None when nothing is READY.
    """
    root = resolve_launch_root(launch_root)
    return launch_cycle.checkout_launch(
        lp,
        fworker or FWorker(),
        os.fspath(root),
        fw_id,
        extra=launch_extra,
        dir_for=lambda _doc: make_launch_dir(root),
        only_ready=True,
        insert=False,
    )


@contextmanager
def _working_dir(path: str) -> Iterator[None]:
    with CWD_LOCK:
        old = os.getcwd()
        os.chdir(path)
        try:
            yield
        finally:
            os.chdir(old)


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
        self._trackers: list[dict[str, Any]] = []

    # -- helpers ---------------------------------------------------------------------------
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
        launch_dir = doc.get("launch_dir") or os.getcwd()
        sets = dict(self.launch_fields)
        if self.spec.get("_launch_dir"):
            wanted = os.path.abspath(os.path.expandvars(str(self.spec["_launch_dir"])))
            recovery = self.spec.get("_recovery") or {}
            if (
                recovery.get("_mode") == "prev_dir"
                and recovery.get("_prev_dir") == self.spec["_launch_dir"]
                and not os.path.isdir(wanted)
            ):
                raise FileNotFoundError(_missing_previous_dir("--previous-dir", wanted))
            if wanted != launch_dir:
                sets["launch_dir"] = wanted
            launch_dir = wanted
        try:
            os.makedirs(launch_dir, exist_ok=True)
        except OSError as exc:
            if exc.errno != errno.EEXIST:
                raise
        self.launch_dir = launch_dir
        for t in self.spec.get("_trackers") or []:
            nlines = int(t.get("nlines", TRACKER_LINES))
            if nlines > MAX_TRACKER_LINES:
                raise ValueError(
                    f"Tracker only supports a maximum of {MAX_TRACKER_LINES} lines; "
                    f"you put {nlines}."
                )
            self._trackers.append(
                {
                    "filename": t["filename"],
                    "nlines": nlines,
                    "allow_zipped": bool(t.get("allow_zipped", False)),
                }
            )
        if self._trackers:
            sets["trackers"] = self._tracker_docs()
        if self._launch is not None:
            for key, value in sets.items():
                launch_cycle.set_dotted(self._launch, key, value)
        if self._insert and self._launch is not None:
            starting, checkpoint = self._first_checkpoint()
            self._launch["state_history"][-1]["checkpoint"] = checkpoint
            launch_cycle.insert_launch(self.lp, self._launch)
            self._insert = False
            self._checkpointed = starting
        elif sets:
            self.lp.update_launch(self.launch_id, sets)

    def _first_checkpoint(self) -> tuple[int, dict[str, Any]]:
        recovery = self.spec.get("_recovery") or {}
        starting = int(recovery.get("_task_n") or 0) if recovery else 0
        return starting, {
            "_task_n": starting,
            "_all_stored_data": dict(recovery.get("_all_stored_data") or {}),
            "_all_update_spec": dict(recovery.get("_all_update_spec") or {}),
            "_all_mod_spec": list(recovery.get("_all_mod_spec") or []),
        }

    def _complete(self, action: dict[str, Any], state: str) -> None:
        if self._insert and self._launch is not None:
            # Failed before the launch was written: write it, so the failure is recorded.
            self._insert = False
            launch_cycle.insert_launch(self.lp, self._launch)
        if self._launch is None:
            self.lp.complete_launch(self.launch_id, action, state)
            return
        states = launch_cycle.finish_launch(
            self.lp, self.launch_id, action, state, launch_doc=self._launch, fw_doc=self.fw_doc
        )
        self._fw_state = states.get(self.fw_id)

    def _tracker_docs(self) -> list[dict[str, Any]]:
        out = []
        for t in self._trackers:
            d = dict(t)
            content = _tail(os.path.join(self.launch_dir, t["filename"]), t["nlines"])
            if content:
                d["content"] = content
            out.append(d)
        return out

    def ping(self, checkpoint: Mapping[str, Any] | None = None) -> None:
        """Heartbeat (and checkpoint): stamp the launch's last state-history entry."""
        self.lp.ping_launch(self.launch_id, checkpoint)
        if self._launch is not None and self._launch.get("state_history"):
            last = self._launch["state_history"][-1]
            last["updated_on"] = datetime.now(timezone.utc).isoformat()
            if checkpoint is not None:
                last["checkpoint"] = copy.deepcopy(dict(checkpoint))
        if self._trackers:
            self.lp.launches.update_one(
                {"launch_id": self.launch_id, "state": st.RUNNING},
                {"$set": {"trackers": self._tracker_docs()}},
            )

    def _heartbeat(self, stop: threading.Event) -> None:
        while not stop.wait(self.ping_secs):
            try:
                self.ping()
            except Exception:  # a failed heartbeat must never kill the launch
                logger.exception("launch %s: heartbeat failed", self.launch_id)

    def _copy_files_in(self) -> None:
        # FireWorks copies through a compression-aware open on both ends: a .gz source lands
        # decompressed at a destination without .gz, and a destination ending in .gz is
        # compressed.
        files_in = self.spec.get("_files_in") or {}
        prev = self.spec.get("_files_prev") or {}
        for key in set(files_in).intersection(prev):
            with _zopen(prev[key], "rb") as fin, _zopen(files_in[key], "wb") as fout:
                shutil.copyfileobj(fin, fout)

    def _write_fw_json(self) -> None:
        # FireWorks writes the checked-out Firework (state RUNNING, launches as full launch
        # documents) as FW.json into the launch directory.
        if self._launch is not None:
            fw = dict(self.fw_doc)  # as claimed: RUNNING, listing this launch (no re-read)
        else:
            doc = self.lp.fireworks.find_one({"fw_id": self.fw_id}, {"_id": 0})
            fw = dict(doc if doc is not None else self.fw_doc)
        known = {self.launch_id: self._launch} if self._launch is not None else {}
        expanded: dict[str, list[dict[str, Any]]] = {}
        for key in ("launches", "archived_launches"):
            ids = list(fw.get(key) or [])
            found = {i: d for i, d in known.items() if i in ids and d is not None}
            missing = [i for i in ids if i not in found]
            if missing:
                for d in self.lp.launches.find({"launch_id": {"$in": missing}}, {"_id": 0}):
                    d["action"] = self.lp.load_action(d)
                    found[d["launch_id"]] = d
            expanded[key] = [found[i] for i in sorted(found)]
        # FireWorks' Firework.to_dict(): its keys and order, launches as Launch.to_dict().
        out = firework_to_dict(fw, expanded["launches"], expanded["archived_launches"])
        with open(os.path.join(self.launch_dir, "FW.json"), "w") as f:
            json.dump(out, f, indent=4, default=_json_default)

    def _task_attributes(self, task: Firetask, my_spec: Mapping[str, Any]) -> None:
        # FireWorks' spec._add_launchpad_and_fw_id / spec._add_fworker.
        if my_spec.get("_add_launchpad_and_fw_id"):
            task.fw_id = self.fw_id
            task.launchpad = TaskLaunchPad(self.lp)
        if my_spec.get("_add_fworker"):
            task.fworker = self.fworker

    def _decorate(self, action: FWAction, my_spec: Mapping[str, Any]) -> FWAction:
        # FireWorks' decorate_fwaction: job info, preserved FWorker, output files.
        if my_spec.get("_pass_job_info"):
            job_info = list(my_spec.get("_job_info", []))
            this = {
                "fw_id": self.fw_id,
                "name": self.fw_doc.get("name", "Unnamed FW"),
                "launch_dir": self.launch_dir,
                "state": self.fw_doc.get("state", st.RUNNING),
            }
            if this not in job_info:
                job_info.append(this)
            action.mod_spec.append({"_push_all": {"_job_info": job_info}})
        if my_spec.get("_preserve_fworker") and self.fworker is not None:
            action.update_spec["_fworker"] = self.fworker.name
        for key, pattern in (my_spec.get("_files_out") or {}).items():
            files = glob.glob(os.path.join(self.launch_dir, pattern))
            if files:
                action.mod_spec.append({"_set": {f"_files_prev->{key}": max(files)}})
        return action

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
        with _working_dir(self.launch_dir):
            return self._run_in_dir()

    def _run_in_dir(self) -> RocketResult:
        all_stored_data: dict[str, Any] = {}
        all_update_spec: dict[str, Any] = {}
        all_mod_spec: list[dict[str, Any]] = []
        stop = threading.Event()
        beat: threading.Thread | None = None
        backgrounds: list[BackgroundTask] = []
        task_dict: dict[str, Any] | None = None
        try:
            recovery = self.spec.get("_recovery")
            if recovery:
                starting = int(recovery.get("_task_n") or 0)
                all_stored_data.update(recovery.get("_all_stored_data") or {})
                all_update_spec.update(recovery.get("_all_update_spec") or {})
                all_mod_spec.extend(recovery.get("_all_mod_spec") or [])
                prev_dir = recovery.get("_prev_dir")
                if (
                    recovery.get("_mode") == "cp"
                    and prev_dir
                    and os.path.abspath(prev_dir) != self.launch_dir
                ):
                    if not os.path.isdir(prev_dir):
                        raise FileNotFoundError(_missing_previous_dir("--copy-data", prev_dir))
                    shutil.copytree(prev_dir, self.launch_dir, dirs_exist_ok=True)
            else:
                starting = 0
                self._copy_files_in()
            if self.print_fw_json:
                self._write_fw_json()

            my_spec = copy.deepcopy(self.spec)
            my_spec["_fw_env"] = self.fworker.env if self.fworker else {}
            raw_tasks = list(self.spec.get("_tasks") or [])

            beat = threading.Thread(
                target=self._heartbeat, args=(stop,), name=f"ping-{self.launch_id}", daemon=True
            )
            beat.start()
            backgrounds = [
                BackgroundTask.from_dict(b) for b in my_spec.get("_background_tasks") or []
            ]
            for bg in backgrounds:
                bg.start(copy.deepcopy(self.spec))

            action = FWAction()
            for t_counter in range(starting, len(raw_tasks)):
                task_dict = raw_tasks[t_counter]
                # The first checkpoint went in with the launch document.
                if t_counter != self._checkpointed or self._trackers:
                    self.ping(
                        {
                            "_task_n": t_counter,
                            "_all_stored_data": all_stored_data,
                            "_all_update_spec": all_update_spec,
                            "_all_mod_spec": all_mod_spec,
                        }
                    )
                try:
                    task = load_firetask(task_dict)
                    task_dict = task.to_dict()
                    self._task_attributes(task, my_spec)
                    result = task.run_task(my_spec)
                except BaseException as exc:
                    stop.set()
                    _stop_all(backgrounds)
                    out = self._fizzle(exc, task_dict, traceback.format_exc())
                    if isinstance(exc, (KeyboardInterrupt, SystemExit)):
                        raise
                    return out
                action = _read_action_file() or _as_action(result)
                all_stored_data.update(action.stored_data)
                all_update_spec.update(action.update_spec)
                all_mod_spec.extend(action.mod_spec)
                my_spec.update(copy.deepcopy(action.update_spec))
                for mod in action.mod_spec:
                    apply_mod(mod, my_spec)
                if action.skip_remaining_tasks:
                    break

            stop.set()
            _stop_all(backgrounds)
            if self._launch is None or self._trackers:
                self.ping()  # the completion stamps the launch anyway; trackers need a tail
            for bg in backgrounds:
                if bg.run_on_finish:
                    bg.run_once(copy.deepcopy(self.spec))
            action.stored_data = all_stored_data
            action.update_spec = all_update_spec
            action.mod_spec = all_mod_spec
            action = self._decorate(action, my_spec)
            self._complete(action.to_dict(), st.COMPLETED)
            return self._result(st.COMPLETED, action, "", None)
        except (KeyboardInterrupt, SystemExit):
            raise
        except Exception as exc:
            # Post-processing failed (malformed action, database trouble): FireWorks records
            # it as FIZZLED with no task.
            stop.set()
            _stop_all(backgrounds)
            return self._fizzle(exc, None, traceback.format_exc(), details=False)
        finally:
            stop.set()
            _stop_all(backgrounds)
            if beat is not None:
                beat.join(timeout=5)

    def _fizzle(
        self,
        exc: BaseException,
        task: dict[str, Any] | None,
        tb: str,
        details: bool = True,
    ) -> RocketResult:
        exc_details = None
        if details and hasattr(exc, "to_dict"):
            try:
                exc_details = exc.to_dict()
            except Exception:
                exc_details = None
        action = FWAction(
            stored_data={
                "_message": "runtime error during task",
                "_task": task,
                "_exception": {"_stacktrace": tb, "_details": exc_details},
            },
            exit=True,
        )
        try:
            if (self._launch is None or self._trackers) and not self._insert:
                self.ping()
            action = self._decorate(action, self.spec)
        except Exception:
            logger.exception("launch %s: recording the failure's details failed", self.launch_id)
        self._complete(action.to_dict(), st.FIZZLED)
        message = f"{type(exc).__name__}: {exc}".strip()
        return self._result(st.FIZZLED, action, message, tb)


def _missing_previous_dir(flag: str, path: str) -> str:
    return (
        f"task-level rerun ({flag}): the previous launch directory {path} does not exist on "
        f"{socket.gethostname()}; it must be on a filesystem this worker sees (shared storage, "
        "or pin the Firework to the worker that ran it)"
    )


def _as_action(result: Any) -> FWAction:
    converted = to_fwaction(result)
    if converted is None:
        return FWAction()
    if isinstance(converted, FWAction):
        return converted
    if isinstance(converted, Mapping):
        return FWAction.from_dict(converted)
    raise TypeError(
        f"a Firetask must return an FWAction, an action dict or None, not {type(result).__name__}"
    )


def _read_action_file() -> FWAction | None:
    # FireWorks reads FWAction.json / FWAction.yaml from the cwd after every Firetask.
    if os.path.exists("FWAction.json"):
        with open("FWAction.json") as f:
            return FWAction.from_dict(json.load(f))
    if os.path.exists("FWAction.yaml"):
        with open("FWAction.yaml") as f:
            return FWAction.from_dict(yaml.safe_load(f))
    return None


def _zopen(path: str, mode: str) -> IO[bytes]:
    # The compression-aware open FireWorks uses (monty's zopen): by the file's extension.
    ext = os.path.splitext(path)[1].lower()
    if ext == ".bz2":
        return bz2.open(path, mode)  # type: ignore[return-value]
    if ext in (".gz", ".z"):
        return gzip.open(path, mode)  # type: ignore[return-value]
    if ext in (".xz", ".lzma"):
        return lzma.open(path, mode)  # type: ignore[return-value]
    return open(path, mode)  # type: ignore[return-value]


def _json_default(obj: Any) -> Any:
    if isinstance(obj, datetime):
        return obj.isoformat()
    return str(obj)


def _print_fw_json_default() -> bool:
    from prefect_fireworks.core.settings import get_settings

    return get_settings().print_fw_json


def _tail(path: str, nlines: int) -> str:
    if not os.path.exists(path):
        return ""
    with open(path, errors="surrogateescape") as f:
        lines = f.read().splitlines()
    return "\n".join(lines[-nlines:]) if nlines > 0 else ""


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
