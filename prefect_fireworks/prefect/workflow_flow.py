"""The ``run-workflow`` flow: one workflow as one Prefect flow run.

Every Firework runs as it becomes READY (one `launch_firework` task run per launch), until
nothing in the workflow is READY or RUNNING; Fireworks added by FWActions are picked up as
they appear, Fireworks another runner holds are waited for.
"""

from __future__ import annotations

import time
from typing import TYPE_CHECKING, Any

from prefect import flow, get_run_logger
from prefect.states import Cancelled, Completed, Failed, State

from prefect_fireworks.core import states as st
from prefect_fireworks.prefect.artifacts import publish_workflow_progress
from prefect_fireworks.prefect.flow_config import get_launchpad, resolve_flow_launch_root
from prefect_fireworks.prefect.launcher import (
    FireworksRunError,
    Launcher,
    launch_capacity,
    sequential_task_runner,
)
from prefect_fireworks.runtime.rocket import PING_TIME_SECS
from prefect_fireworks.store import launch_cycle
from prefect_fireworks.store.launchpad import FWorker
from prefect_fireworks.store.queries import wf_id_of

if TYPE_CHECKING:
    from prefect_fireworks.store.launchpad import LaunchPad

__all__ = ["run_workflow"]


@flow(
    name="run-workflow",
    flow_run_name="wf-{wf_id}",
    task_runner=sequential_task_runner(),
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
    runner = Launcher(
        lp,
        launchpad,
        fworker,
        root,
        ping_secs,
        launch_capacity(max_parallel),
        wf_key=wf_id_of(wf["nodes"]),
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
    message = f"workflow {wf_id_of(wf['nodes'])} ({final.get('name')}) {wf_state}: {summary.line()}"
    data = {"wf_id": wf_id_of(wf["nodes"]), "state": wf_state, **summary.to_dict()}
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
