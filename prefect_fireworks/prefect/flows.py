"""Prefect tasks and flows that run Fireworks: `launch_firework`, `run_workflow`, `rapidfire`.

One launch of a Firework is one task run of `launch_firework` (named ``fw-<id>-<name>``, tagged
``fw:<id>`` and ``wf:<id>``); its Firetasks run in order inside it
(`prefect_fireworks.runtime.rocket`).
The flow checks a Firework out (one conditional write, so no Firework ever runs twice however
many flows, workers or ``rlaunch`` processes share the LaunchPad) and submits the task to the
flow's task runner. The default runner runs one Firework at a time; pass prefect-dask's
``DaskTaskRunner`` (``run_workflow.with_options(task_runner=DaskTaskRunner(...))``) to run
independent Fireworks in parallel worker processes.

States: a COMPLETED launch is ``Completed``; a FIZZLED one ``Failed(name="Fizzled")`` and the
event ``fireworks.firework.fizzled``; a launch whose Firework ends DEFUSED, or whose FWAction
defuses its children or workflow, ``Cancelled(name="Defused")``.

Example:
    ```python
    from prefect_fireworks.prefect.flows import run_workflow

    state = run_workflow(1, return_state=True)  # the workflow holding Firework 1
    print(state.name)  # "Completed" or "Fizzled"
    ```
"""

from __future__ import annotations

import logging
import os
import re
import threading
import time
from collections.abc import Mapping
from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Any

from prefect import flow, get_run_logger, tags, task
from prefect.cache_policies import NO_CACHE
from prefect.context import FlowRunContext
from prefect.events import emit_event
from prefect.futures import as_completed
from prefect.runtime import flow_run as runtime_flow_run
from prefect.runtime import task_run as runtime_task_run
from prefect.states import Cancelled, Completed, Failed, State
from prefect.task_runners import ThreadPoolTaskRunner

from prefect_fireworks.core import states as st
from prefect_fireworks.core.constants import FIZZLED_EVENT
from prefect_fireworks.prefect.artifacts import publish_launch, publish_workflow_progress
from prefect_fireworks.runtime.rocket import (
    PING_TIME_SECS,
    Rocket,
    RocketResult,
    claim_launch,
    resolve_launch_root,
)
from prefect_fireworks.store import launch_cycle, queries
from prefect_fireworks.store.launchpad import FWorker
from prefect_fireworks.store.queries import wf_id_of

if TYPE_CHECKING:
    from prefect.futures import PrefectFuture

    from prefect_fireworks.store.launchpad import LaunchPad

__all__ = [
    "FIZZLED_EVENT",
    "RAPIDFIRE_SLEEP_SECS",
    "RunSummary",
    "get_launchpad",
    "launch_firework",
    "rapidfire",
    "resolve_flow_launch_root",
    "run_workflow",
]

#: FireWorks' ``RAPIDFIRE_SLEEP_SECS``: pause between rapidfire loops when nothing is READY.
RAPIDFIRE_SLEEP_SECS = 60.0
_STACK_TAIL = 2000
#: Longest exception text in a FIZZLED launch's log line.
_LINE_MAX = 400


def _sequential() -> Any:
    """The default task runner: one Firework at a time, in the flow's process."""
    return ThreadPoolTaskRunner(max_workers=1)


class FireworksRunError(RuntimeError):
    """A workflow or rapidfire run ended with FIZZLED (or unfinished) Fireworks.

    It is the data of the flow's Failed state, so calling the flow without
    ``return_state=True`` raises it; ``summary`` holds the run summary.
    """

    def __init__(self, message: str, summary: dict[str, Any]) -> None:
        super().__init__(message)
        self.summary = summary


_LP_CACHE: dict[tuple[Any, ...], LaunchPad] = {}
#: Firework documents claimed by a flow, handed to its task runs in the same process (a task
#: run elsewhere, e.g. on a Dask worker, reads the document instead).
_CLAIMED: dict[int, dict[str, Any]] = {}
_LP_LOCK = threading.Lock()


def get_launchpad(block_name: str | None = None) -> LaunchPad:
    """The LaunchPad flows and tasks use, one per process and configuration.

    Args:
        block_name: name of a saved ``FireworksLaunchPad`` block (or the path of a FireWorks
            ``my_launchpad.yaml``, as ``lpad -l`` gives); ``None`` resolves like
            ``lpad`` (``..._MONGODB_URI``/``..._DATABASE``, ``..._LAUNCHPAD_FILE``, else the
            embedded server).

    Returns:
        A connected LaunchPad (cached: Dask workers and threads reuse one client).
    """
    from prefect_fireworks.core.settings import get_settings

    s = get_settings()
    key = (block_name, s.mongodb_uri, s.database, str(s.launchpad_file), str(s.home))
    with _LP_LOCK:
        lp = _LP_CACHE.get(key)
        if lp is None:
            if block_name and os.path.isfile(block_name):
                from prefect_fireworks.runtime.launchpad import LaunchPad

                lp = LaunchPad.from_file(block_name)
            else:
                from prefect_fireworks.prefect.blocks import load_launchpad

                lp = load_launchpad(block_name)
            lp.ensure_initialized()
            _LP_CACHE[key] = lp
        return lp


def resolve_flow_launch_root(launch_root: str | None, launchpad: str | None) -> str:
    """The launch root of a flow run, checked: where its launch directories go.

    In order: the ``launch_root`` argument, ``PREFECT_INTEGRATIONS_FIREWORKS_LAUNCH_ROOT`` (the
    environment of the machine, worker or job that runs the flow), the ``launch_root`` of the
    ``launchpad`` block, else the current directory. The root is created if missing.

    Raises:
        ValueError: the root cannot be used: not a directory, cannot be created, or inside
            the temporary folder Prefect deletes after a deployment's flow run (a worker's
            working directory), see `prefect_fireworks.runtime.rocket.resolve_launch_root`.
    """
    from prefect_fireworks.core.settings import get_settings

    no_root = launch_root is None and get_settings().launch_root is None
    if no_root and launchpad and not os.path.isfile(launchpad):
        from prefect_fireworks.prefect.blocks import block_launch_root

        launch_root = block_launch_root(launchpad)
    return os.fspath(resolve_launch_root(launch_root))


def _wf_key(nodes: list[int]) -> int:
    return wf_id_of(nodes)


@task(
    name="launch_firework",
    task_run_name="fw-{fw_id}-{fw_name}",
    cache_policy=NO_CACHE,
    persist_result=False,
    log_prints=False,
)
def launch_firework(
    fw_id: int,
    launch_id: int,
    fw_name: str = "Unnamed FW",
    launchpad: str | None = None,
    fworker_name: str | None = None,
    ping_secs: float = PING_TIME_SECS,
    launch_doc: dict[str, Any] | None = None,
) -> State[Any]:
    """Run one checked-out Firework (its launch ``launch_id``) and complete the launch.

    Args:
        fw_id: the Firework.
        launch_id: its launch, created by the checkout.
        fw_name: its name (for the task-run name).
        launchpad: FireworksLaunchPad block name (None: the default LaunchPad).
        fworker_name: recorded worker name (the launch's own by default).
        ping_secs: heartbeat interval.
        launch_doc: the launch document of a Firework claimed by the flow and not written
            yet (`prefect_fireworks.runtime.rocket.claim_launch`): written at the start with
            this task run's ids and the first checkpoint, in one insert.

    Returns:
        ``Completed``, ``Failed(name="Fizzled")`` or ``Cancelled(name="Defused")``, with the
        launch summary as data.
    """
    lp = get_launchpad(launchpad)
    fw_doc = _CLAIMED.pop(launch_id, None) or lp.get_fw_dict_by_id(fw_id)
    fields: dict[str, Any] = {}
    if runtime_task_run.id:
        fields["prefect.task_run_id"] = str(runtime_task_run.id)
    if runtime_flow_run.id:
        fields["prefect.flow_run_id"] = str(runtime_flow_run.id)
    result = Rocket(
        lp,
        fw_doc,
        launch_id,
        fworker=FWorker(name=fworker_name) if fworker_name else None,
        ping_secs=ping_secs,
        launch_fields=fields,
        launch_doc=launch_doc,
        insert_launch=launch_doc is not None,
    ).run()
    summary = result.to_dict()
    if result.fizzled:
        # Only failures get an artifact: ~20 ms of Prefect API per launch otherwise.
        publish_launch(lp, result.launch_id, fw=fw_doc, result=result)
        # Why it failed, in one line of the task run's log (Prefect's own "Task run failed
        # with state" record is dropped, see _FizzledStateFilter). The stack trace is in the
        # launch (action.stored_data._exception._stacktrace) and its artifact.
        get_run_logger().error("%s", fizzle_line(result, _failed_task_n(lp, launch_id)))
        _emit_fizzled(lp, result)
        return Failed(
            name="Fizzled",
            message=f"Firework {fw_id} fizzled (launch {launch_id}): {_exception_line(result)}",
            data=summary,
        )
    if result.defused:
        why = (
            "was defused"
            if result.fw_state == st.DEFUSED
            else "completed and defused its children"
            if result.action.get("defuse_children")
            else "completed and defused its workflow"
        )
        return Cancelled(name="Defused", message=f"Firework {fw_id} {why}", data=summary)
    return Completed(message=f"Firework {fw_id} completed (launch {launch_id})", data=summary)


def fizzle_line(result: RocketResult, task_n: int | None) -> str:
    """One line saying why a launch fizzled: Firework, name, the Firetask, the exception.

    Example: ``Firework 2 (compute) fizzled in Firetask 1 (ScriptTask): ScriptTaskError:
    ScriptTask fizzled! Return code: [3] ... compute: input not fixed``.
    """
    task = ((result.action.get("stored_data") or {}).get("_task")) or {}
    where = ""
    if task or task_n is not None:
        where = " in Firetask" + (f" {task_n}" if task_n is not None else "")
        if task.get("_fw_name"):
            where += f" ({_firetask_name(str(task['_fw_name']))})"
    return f"Firework {result.fw_id} ({result.name}) fizzled{where}: {_exception_line(result)}"


def _exception_line(result: RocketResult) -> str:
    """The exception's first line and, when it has more, the last line of its stack trace
    (a failed ScriptTask's: the last line the script wrote to stderr)."""
    lines = [ln.strip() for ln in (result.message or "").splitlines() if ln.strip()]
    head = lines[0] if lines else "unknown error"
    trace = [ln.strip() for ln in (result.stacktrace or "").splitlines() if ln.strip()]
    last = trace[-1] if trace else lines[-1] if lines else head
    text = head if last == head or last in head else f"{head} ... {last}"
    return text if len(text) <= _LINE_MAX else text[: _LINE_MAX - 3] + "..."


def _firetask_name(fw_name: str) -> str:
    # "{{my.module.MyTask}}" -> "MyTask"; "ScriptTask" stays.
    return fw_name.strip("{}").rsplit(".", 1)[-1] or fw_name


def _failed_task_n(lp: LaunchPad, launch_id: int) -> int | None:
    """The Firetask a FIZZLED launch was running: its last checkpoint's ``_task_n``."""
    doc = lp.launches.find_one({"launch_id": launch_id}, {"state_history": 1, "_id": 0}) or {}
    for entry in reversed(doc.get("state_history") or []):
        n = (entry.get("checkpoint") or {}).get("_task_n")
        if n is not None:
            return int(n)
    return None


class _FizzledStateFilter(logging.Filter):
    """Drops Prefect's ``Task run failed with state: Fizzled(...)`` record of a FIZZLED launch.

    Prefect's task engine logs a task that returns a Failed state with the state's repr (the
    launch summary dict as ``result={...}``) and ``exc_info=True`` outside any exception (a
    stray ``NoneType: None`` line). `launch_firework` has already said why in one line; the
    task run's state stays Failed, and Prefect's ``Finished in state Fizzled(...)`` stays.
    """

    _PREFIX = re.compile(r"Task run failed with state: Fizzled\(message=['\"]Firework \d+ ")

    def filter(self, record: logging.LogRecord) -> bool:
        return not (isinstance(record.msg, str) and self._PREFIX.match(record.msg))


def _install_log_filter() -> None:
    task_logger = logging.getLogger("prefect.task_runs")
    if not any(isinstance(f, _FizzledStateFilter) for f in task_logger.filters):
        task_logger.addFilter(_FizzledStateFilter())


_install_log_filter()


def _emit_fizzled(lp: LaunchPad, result: RocketResult) -> None:
    wf = lp.workflows.find_one({"nodes": result.fw_id}, {"nodes": 1, "name": 1, "_id": 0}) or {}
    nodes = list(wf.get("nodes", []))
    emit_event(
        event=FIZZLED_EVENT,
        resource={
            "prefect.resource.id": f"fireworks.firework.{result.fw_id}",
            "prefect.resource.name": result.name,
            "fireworks.fw_id": str(result.fw_id),
            "fireworks.launch_id": str(result.launch_id),
        },
        related=[
            {
                "prefect.resource.id": f"fireworks.workflow.{_wf_key(nodes)}",
                "prefect.resource.role": "workflow",
                "prefect.resource.name": str(wf.get("name", "")),
            }
        ],
        payload={
            "fw_id": result.fw_id,
            "launch_id": result.launch_id,
            "name": result.name,
            "wf_id": _wf_key(nodes),
            "wf_fw_ids": nodes,
            "wf_name": wf.get("name"),
            "message": result.message,
            "launch_dir": result.launch_dir,
            "stacktrace_tail": (result.stacktrace or "")[-_STACK_TAIL:],
        },
    )


# -- running many ---------------------------------------------------------------------------


@dataclass
class RunSummary:
    """What a flow launched: fw_ids by outcome (Prefect state name)."""

    completed: list[int] = field(default_factory=list)
    fizzled: list[int] = field(default_factory=list)
    defused: list[int] = field(default_factory=list)
    crashed: list[int] = field(default_factory=list)
    launch_ids: list[int] = field(default_factory=list)

    @property
    def launches(self) -> int:
        """Launches made."""
        return len(self.launch_ids)

    def record(self, fw_id: int, launch_id: int, state: State[Any]) -> None:
        """File a finished task run under its outcome."""
        if launch_id not in self.launch_ids:
            self.launch_ids.append(launch_id)
        if state.is_completed():
            self.completed.append(fw_id)
        elif state.name == "Fizzled":
            self.fizzled.append(fw_id)
        elif state.name == "Defused":
            self.defused.append(fw_id)
        else:
            self.crashed.append(fw_id)

    def to_dict(self) -> dict[str, Any]:
        """JSON-able form."""
        return {
            "launches": self.launches,
            "completed": sorted(self.completed),
            "fizzled": sorted(self.fizzled),
            "defused": sorted(self.defused),
            "crashed": sorted(self.crashed),
        }

    def line(self) -> str:
        """One-line summary."""
        return (
            f"{self.launches} launches: {len(self.completed)} completed, "
            f"{len(self.fizzled)} fizzled, {len(self.defused)} defused"
            + (f", {len(self.crashed)} crashed" if self.crashed else "")
        )


def _capacity(max_parallel: int | None) -> int:
    """How many launches to keep in flight: the argument, else the task runner's width."""
    if max_parallel:
        return max(1, int(max_parallel))
    ctx = FlowRunContext.get()
    runner = ctx.task_runner if ctx else None
    if isinstance(runner, ThreadPoolTaskRunner):
        return max(1, min(int(runner._max_workers), 64))
    kwargs = getattr(runner, "cluster_kwargs", None)
    if isinstance(kwargs, Mapping) and kwargs.get("n_workers"):
        return int(kwargs["n_workers"]) * int(kwargs.get("threads_per_worker") or 1)
    client = getattr(runner, "_client", None)  # a DaskTaskRunner on an existing cluster
    if client is not None:
        try:
            return max(1, min(sum(client.nthreads().values()), 1024))
        except Exception:  # the cluster's size is only a hint
            pass
    return os.cpu_count() or 1


class _Launcher:
    """Checks Fireworks out in the flow and runs them as `launch_firework` task runs."""

    def __init__(
        self,
        lp: LaunchPad,
        launchpad: str | None,
        fworker: FWorker,
        launch_root: str | None,
        ping_secs: float,
        capacity: int,
        wf_key: int | None = None,
        tag_runs: bool = False,
    ) -> None:
        self.lp = lp
        self.tag_runs = tag_runs
        #: the workflow's id when every launch is of one workflow (saves a lookup per launch).
        self.wf_key = wf_key
        self.launchpad = launchpad
        self.fworker = fworker
        self.launch_root = launch_root
        self.ping_secs = ping_secs
        self.capacity = capacity
        self.pending: dict[int, tuple[int, PrefectFuture[Any]]] = {}
        self.summary = RunSummary()
        flow_run_id = runtime_flow_run.id
        self.extra = {"prefect": {"flow_run_id": str(flow_run_id)}} if flow_run_id else None

    @property
    def has_room(self) -> bool:
        return len(self.pending) < self.capacity

    def launch(self, fw_id: int | None, fworker: FWorker | None = None) -> bool:
        """Check out one Firework (this one, or any the worker may run) and start it."""
        # The claim is one write; the launch document is written by the task run, which
        # knows its own id (a claimed Firework whose task never starts is RUNNING with a
        # launch id that has no document: `lpad admin check` and detect_lostruns see it).
        got = claim_launch(
            self.lp,
            fworker or self.fworker,
            fw_id,
            launch_root=self.launch_root,
            launch_extra=self.extra,
        )
        if got is None:
            return False
        fw_doc, launch_doc = got
        fid = int(fw_doc["fw_id"])
        launch_id = int(launch_doc["launch_id"])
        _CLAIMED[launch_id] = fw_doc
        kwargs = {
            "fw_id": fid,
            "launch_id": launch_id,
            "fw_name": fw_doc.get("name", "Unnamed FW"),
            "launchpad": self.launchpad,
            "fworker_name": self.fworker.name,
            "ping_secs": self.ping_secs,
            "launch_doc": launch_doc,
        }
        run_tags: tuple[str, ...] = ()
        if self.tag_runs:
            wf_key = self.wf_key
            if wf_key is None:
                wf = self.lp.workflows.find_one({"nodes": fid}, {"nodes": 1, "_id": 0}) or {}
                wf_key = _wf_key(wf.get("nodes", []))
            run_tags = (f"fw:{fid}", f"wf:{wf_key}")
        with tags(*run_tags):
            if self.capacity == 1:
                # One at a time: run in the flow's thread (no executor hop).
                state = launch_firework(**kwargs, return_state=True)
                self.summary.record(fid, launch_id, state)
            else:
                self.pending[launch_id] = (fid, launch_firework.submit(**kwargs))
        return True

    def wait_one(self) -> None:
        """Wait until at least one launch in flight ends; file every ended one."""
        if not self.pending:
            return
        for _ in as_completed([f for _, f in self.pending.values()]):
            break
        for lid, (fid, fut) in list(self.pending.items()):
            wrapped = getattr(fut, "wrapped_future", None)
            if wrapped is not None and not wrapped.done():
                continue
            fut.wait()
            self.summary.record(fid, lid, fut.state)
            del self.pending[lid]

    def drain(self) -> None:
        """Wait for every launch in flight."""
        while self.pending:
            self.wait_one()


@flow(
    name="run-workflow",
    flow_run_name="wf-{wf_id}",
    task_runner=_sequential(),
    persist_result=False,
)
def run_workflow(
    wf_id: int,
    launchpad: str | None = None,
    fworker_name: str | None = None,
    launch_root: str | None = None,
    max_parallel: int | None = None,
    poll_secs: float = 0.5,
    ping_secs: float = PING_TIME_SECS,
    tag_task_runs: bool = False,
) -> State[Any]:
    """Run a workflow: every Firework as it becomes READY, until nothing is READY or RUNNING.

    Fireworks added by FWActions (additions, detours, append_wfs) are picked up as they appear;
    Fireworks another runner holds are waited for.

    Args:
        wf_id: any fw_id of the workflow (workflows are named by their first fw_id).
        launchpad: FireworksLaunchPad block name (None: the default LaunchPad).
        fworker_name: worker name recorded in the launches.
        launch_root: where launch directories go (default: ``..._LAUNCH_ROOT``, the block's
            ``launch_root``, else the cwd; see `resolve_flow_launch_root`).
        max_parallel: launches in flight at once (default: the task runner's width).
        poll_secs: how often to look again while another runner holds a Firework.
        ping_secs: heartbeat interval of each launch.
        tag_task_runs: tag each task run ``fw:<id>``/``wf:<id>`` (for Prefect's tag-based
            concurrency limits). Off by default: Prefect acquires a concurrency lease for
            every tag of every task run, measured at +50 ms per task run with repeated tags
            and ~0.9 s with a new tag per Firework (Prefect 3.9.1, local server). Task runs
            are named ``fw-<id>-<name>`` either way, and each launch stores its task-run id.

    Returns:
        ``Completed`` when the workflow is COMPLETED, ``Failed(name="Fizzled")`` when FIZZLED,
        ``Cancelled(name=...)`` when DEFUSED/PAUSED/ARCHIVED; the run summary as data.
    """
    try:
        root = resolve_flow_launch_root(launch_root, launchpad)
    except ValueError as exc:  # nothing was claimed: say why, without a traceback
        get_run_logger().error("%s", exc)
        return Failed(message=str(exc))
    lp = get_launchpad(launchpad)
    wf = lp.get_wf_doc(wf_id, {"nodes": 1, "name": 1})
    fworker = FWorker(name=fworker_name) if fworker_name else FWorker()
    runner = _Launcher(
        lp,
        launchpad,
        fworker,
        root,
        ping_secs,
        _capacity(max_parallel),
        wf_key=_wf_key(wf["nodes"]),
        tag_runs=tag_task_runs,
    )
    # READY Fireworks seen at the last read, best first. The workflow document is read again
    # only when this queue is empty, so a wide fan-out costs one read, not one per launch;
    # a queued Firework someone else took is simply not claimed.
    queue: list[int] = []
    nodes = set(wf["nodes"])
    progress = publish_workflow_progress(lp, wf_id)
    while True:
        if not queue:
            # Fireworks this process saw become READY (its completions) first: no read.
            queue = [d["fw_id"] for d in launch_cycle.hints(lp).ranked() if d["fw_id"] in nodes]
        if not queue:
            doc = lp.workflows.find_one({"_id": wf["_id"]}, {"fw_states": 1, "_id": 0}) or {}
            fw_states = {int(k): v for k, v in (doc.get("fw_states") or {}).items()}
            queue = _by_priority(lp, [i for i, s in fw_states.items() if s == st.READY])
            if not queue and not runner.pending:
                if not any(s in st.ACTIVE_STATES for s in fw_states.values()):
                    break
                time.sleep(poll_secs)  # another runner holds some Firework of this workflow
                continue
        while queue and runner.has_room:
            runner.launch(queue.pop(0))
        if runner.pending:
            runner.wait_one()
            publish_workflow_progress(lp, wf_id, progress)
    publish_workflow_progress(lp, wf_id, progress)
    final = lp.workflows.find_one({"_id": wf["_id"]}, {"state": 1, "name": 1, "_id": 0}) or {}
    wf_state = final.get("state", st.READY)
    summary = runner.summary
    message = f"workflow {_wf_key(wf['nodes'])} ({final.get('name')}) {wf_state}: {summary.line()}"
    data = {"wf_id": _wf_key(wf["nodes"]), "state": wf_state, **summary.to_dict()}
    if wf_state == st.COMPLETED:
        return Completed(message=message, data=data)
    if wf_state == st.FIZZLED:
        return Failed(name="Fizzled", message=message, data=FireworksRunError(message, data))
    if wf_state in (st.DEFUSED, st.PAUSED, st.ARCHIVED):
        return Cancelled(name=wf_state.title(), message=message, data=data)
    return Failed(message=message, data=FireworksRunError(message, data))


def _by_priority(lp: LaunchPad, fw_ids: list[int]) -> list[int]:
    if len(fw_ids) < 2:
        return fw_ids
    docs = lp.fireworks.find({"fw_id": {"$in": fw_ids}}, {"fw_id": 1, "spec._priority": 1})
    prio = {d["fw_id"]: (d.get("spec") or {}).get("_priority") or 0 for d in docs}
    return sorted(fw_ids, key=lambda i: (-_num(prio.get(i, 0)), i))


def _num(v: Any) -> float:
    try:
        return float(v)
    except (TypeError, ValueError):
        return 0.0


@flow(name="rapidfire", task_runner=_sequential(), persist_result=False)
def rapidfire(
    nlaunches: int = 0,
    max_loops: int = -1,
    sleep: float = RAPIDFIRE_SLEEP_SECS,
    fworker_name: str | None = None,
    category: str | list[str] | None = None,
    query: dict[str, Any] | None = None,
    wf_id: int | None = None,
    launchpad: str | None = None,
    launch_root: str | None = None,
    max_parallel: int | None = None,
    ping_secs: float = PING_TIME_SECS,
    tag_task_runs: bool = False,
) -> State[Any]:
    """Drain READY Fireworks of any workflow (FireWorks' ``rlaunch rapidfire``).

    Args:
        nlaunches: stop after this many launches; 0: until nothing is READY or will be; -1:
            keep looping until ``max_loops``.
        max_loops: sleep-and-look-again loops when nothing is READY (-1: no limit).
        sleep: seconds between those loops.
        fworker_name: the FWorker's name (Fireworks with another ``spec._fworker`` are left).
        category: FWorker category (``spec._category``; ``"__none__"``: only uncategorised).
        query: extra MongoDB query on the Fireworks.
        wf_id: only Fireworks of the workflow holding this fw_id.
        launchpad: FireworksLaunchPad block name (None: the default LaunchPad).
        launch_root: where launch directories go (see `resolve_flow_launch_root`).
        max_parallel: launches in flight at once (default: the task runner's width).
        ping_secs: heartbeat interval of each launch.
        tag_task_runs: tag each task run ``fw:<id>``/``wf:<id>`` (see `run_workflow`).

    Returns:
        ``Completed`` when no launch fizzled, else ``Failed(name="Fizzled")``; summary as data.
    """
    try:
        root = resolve_flow_launch_root(launch_root, launchpad)
    except ValueError as exc:
        get_run_logger().error("%s", exc)
        return Failed(message=str(exc))
    lp = get_launchpad(launchpad)
    base = FWorker(
        name=fworker_name or FWorker().name, category=category or "", query=dict(query or {})
    )
    runner = _Launcher(
        lp,
        launchpad,
        base,
        root,
        ping_secs,
        _capacity(max_parallel),
        tag_runs=tag_task_runs,
    )
    wf_oid = lp.get_wf_doc(wf_id, {"_id": 1})["_id"] if wf_id is not None else None
    launched = 0
    loops = 0

    def worker() -> FWorker:
        if wf_oid is None:
            return base
        nodes = (lp.workflows.find_one({"_id": wf_oid}, {"nodes": 1}) or {}).get("nodes", [])
        return base.model_copy(update={"query": {**base.query, "fw_id": {"$in": nodes}}})

    while True:
        while runner.has_room and (nlaunches <= 0 or launched < nlaunches):
            if not runner.launch(None, worker()):
                break
            launched += 1
        if runner.pending:
            runner.wait_one()
            continue
        if nlaunches > 0 and launched >= nlaunches:
            break
        if _run_exists(lp, worker()):
            continue
        if nlaunches == 0 and not _future_run_exists(lp, worker()):
            break
        loops += 1
        if max_loops >= 0 and loops >= max_loops:
            break
        time.sleep(sleep)
    summary = runner.summary
    data = summary.to_dict()
    if summary.fizzled:
        msg = f"rapidfire: {summary.line()}"
        return Failed(name="Fizzled", message=msg, data=FireworksRunError(msg, data))
    return Completed(message=f"rapidfire: {summary.line()}", data=data)


def _run_exists(lp: LaunchPad, fworker: FWorker) -> bool:
    return queries.run_exists(lp.fireworks, fworker.checkout_query())


def _future_run_exists(lp: LaunchPad, fworker: FWorker) -> bool:
    # FireWorks: something READY, or something running whose children may become READY.
    return queries.future_run_exists(lp.fireworks, fworker.checkout_query(), fworker.query)
