"""The ``rapidfire`` flow: drain READY Fireworks of any workflow (``rlaunch rapidfire``)."""

from __future__ import annotations

import time
from typing import TYPE_CHECKING, Any

from prefect import flow, get_run_logger
from prefect.states import Completed, Failed, State

from prefect_fireworks.prefect.flow_config import get_launchpad, resolve_flow_launch_root
from prefect_fireworks.prefect.launcher import (
    FireworksRunError,
    Launcher,
    launch_capacity,
    sequential_task_runner,
)
from prefect_fireworks.runtime.rocket import PING_TIME_SECS
from prefect_fireworks.store import queries
from prefect_fireworks.store.launchpad import FWorker

if TYPE_CHECKING:
    from prefect_fireworks.store.launchpad import LaunchPad

__all__ = ["RAPIDFIRE_SLEEP_SECS", "rapidfire"]

#: FireWorks' ``RAPIDFIRE_SLEEP_SECS``: pause between rapidfire loops when nothing is READY.
RAPIDFIRE_SLEEP_SECS = 60.0


@flow(name="rapidfire", task_runner=sequential_task_runner(), persist_result=False)
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
    runner = Launcher(
        lp,
        launchpad,
        base,
        root,
        ping_secs,
        launch_capacity(max_parallel),
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
