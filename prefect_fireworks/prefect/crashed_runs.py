"""Mark the Prefect runs of lost launches Crashed.

A worker killed with ``kill -9`` leaves its Prefect task run and flow run RUNNING for ever: no
process is left to report their end. Each launch run under Prefect keeps the ids of its task run
and flow run (``prefect.task_run_id``, ``prefect.flow_run_id``); once ``detect_lostruns`` has
found the launch lost and fizzled it, `mark_crashed` sets those runs, when still not final, to
``Crashed`` with a message naming the launch.

Example:
    ```python
    from prefect_fireworks.prefect.crashed_runs import mark_crashed

    mark_crashed(lp, [12, 13])  # {"task_runs": [...], "flow_runs": [...]}
    ```
"""

from __future__ import annotations

from typing import Any
from uuid import UUID

__all__ = ["mark_crashed"]


def _run_ids(lp: Any, launch_ids: list[int]) -> tuple[dict[UUID, int], dict[UUID, int]]:
    tasks: dict[UUID, int] = {}
    flows: dict[UUID, int] = {}
    projection = {"launch_id": 1, "prefect": 1, "_id": 0}
    for doc in lp.launches.find({"launch_id": {"$in": list(launch_ids)}}, projection):
        ids = doc.get("prefect") or {}
        for key, into in (("task_run_id", tasks), ("flow_run_id", flows)):
            try:
                into[UUID(str(ids[key]))] = doc["launch_id"]
            except (KeyError, ValueError, TypeError):
                continue
    return tasks, flows


def mark_crashed(lp: Any, launch_ids: list[int]) -> dict[str, list[str]]:
    """Set the Prefect task runs and flow runs of these (lost) launches to Crashed.

    Runs already in a final state are left alone. A flow run that ran other launches too (a
    ``rapidfire`` flow) is crashed as well: the process running it is gone.

    Args:
        lp: The LaunchPad holding the launches.
        launch_ids: The lost launches.

    Returns:
        The ids of the task runs and flow runs set to Crashed.

    Raises:
        Exception: The Prefect API cannot be reached (callers report it and go on).
    """
    tasks, flows = _run_ids(lp, launch_ids)
    done: dict[str, list[str]] = {"task_runs": [], "flow_runs": []}
    if not tasks and not flows:
        return done
    from prefect import get_client
    from prefect.exceptions import ObjectNotFound
    from prefect.states import Crashed

    with get_client(sync_client=True) as client:
        for run_id, launch_id in tasks.items():
            try:
                run = client.read_task_run(run_id)
            except ObjectNotFound:
                # Task runs reach the API through events, which a killed worker may not have
                # sent: then Prefect never knew the task run.
                continue
            if run.state is not None and run.state.is_final():
                continue
            message = f"launch {launch_id} lost: its worker stopped (detect_lostruns)"
            client.set_task_run_state(run_id, Crashed(message=message), force=True)
            done["task_runs"].append(str(run_id))
        for run_id, launch_id in flows.items():
            try:
                flow_run = client.read_flow_run(run_id)
            except ObjectNotFound:
                continue
            if flow_run.state is not None and flow_run.state.is_final():
                continue
            message = f"its worker stopped while running launch {launch_id} (detect_lostruns)"
            client.set_flow_run_state(run_id, Crashed(message=message), force=True)
            done["flow_runs"].append(str(run_id))
    return done
