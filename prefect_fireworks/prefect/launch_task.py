"""`launch_firework`: one launch of a Firework as one Prefect task run.

The task runs the Rocket (`prefect_fireworks.runtime.rocket`) on a Firework the flow checked
out, and returns ``Completed``, ``Failed(name="Fizzled")`` or ``Cancelled(name="Defused")`` with
the launch summary as data. A FIZZLED launch also publishes its artifacts, logs one line (see
`prefect_fireworks.prefect.fizzles`) and emits the ``fireworks.firework.fizzled`` event.
"""

from __future__ import annotations

from typing import Any

from prefect import get_run_logger, task
from prefect.cache_policies import NO_CACHE
from prefect.runtime import flow_run as runtime_flow_run
from prefect.runtime import task_run as runtime_task_run
from prefect.states import Cancelled, Completed, Failed, State

from prefect_fireworks.core import states as st
from prefect_fireworks.prefect.artifacts import publish_launch
from prefect_fireworks.prefect.fizzles import (
    emit_fizzled,
    exception_line,
    failed_task_n,
    fizzle_line,
)
from prefect_fireworks.prefect.flow_config import get_launchpad
from prefect_fireworks.runtime.rocket import PING_TIME_SECS, Rocket
from prefect_fireworks.store.launchpad import FWorker

__all__ = ["CLAIMED", "launch_firework"]

#: Firework documents claimed by a flow, handed to its task runs in the same process (a task
#: run elsewhere, e.g. on a Dask worker, reads the document instead).
CLAIMED: dict[int, dict[str, Any]] = {}


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
    fw_doc = CLAIMED.pop(launch_id, None) or lp.get_fw_dict_by_id(fw_id)
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
        # with state" record is dropped, see FizzledStateFilter). The stack trace is in the
        # launch (action.stored_data._exception._stacktrace) and its artifact.
        get_run_logger().error("%s", fizzle_line(result, failed_task_n(lp, launch_id)))
        emit_fizzled(lp, result)
        return Failed(
            name="Fizzled",
            message=f"Firework {fw_id} fizzled (launch {launch_id}): {exception_line(result)}",
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
