"""The ``detect-lostruns`` flow: ``lpad detect_lostruns`` as a Prefect flow (deployed on a
schedule), which fizzles or reruns launches whose heartbeat stopped and, after a rerun, triggers
``run-workflow`` for each affected workflow."""

from __future__ import annotations

from typing import Any

from prefect import flow, get_run_logger

from prefect_fireworks.ops.lostruns import detect_lostruns as detect
from prefect_fireworks.ops.selection import parse_query
from prefect_fireworks.ops.workflows import wf_ids_containing
from prefect_fireworks.prefect.blocks import load_launchpad
from prefect_fireworks.prefect.crashed_runs import mark_crashed
from prefect_fireworks.prefect.rerun_flow import run_workflows

__all__ = ["detect_lostruns"]


@flow(name="detect-lostruns", flow_run_name="detect-lostruns", persist_result=False)
def detect_lostruns(
    expiration_secs: float | None = None,
    fizzle: bool = False,
    rerun: bool = False,
    max_runtime: float | None = None,
    min_runtime: float | None = None,
    refresh: bool = False,
    query: dict[str, Any] | str | None = None,
    launchpad: str | None = None,
    run_after: bool = True,
) -> dict[str, Any]:
    """Find launches whose heartbeat stopped (``lpad detect_lostruns``); fizzle or rerun them.

    Args:
        expiration_secs: A RUNNING launch not pinged for this long is lost (FireWorks'
            default: 4 hours).
        fizzle: Mark the lost launches FIZZLED.
        rerun: Rerun the Fireworks of the lost launches (and run them, see ``run_after``).
        max_runtime: Only launches that ran at most this many seconds.
        min_runtime: Only launches that ran at least this many seconds.
        refresh: Also refresh Fireworks whose state is inconsistent with their launches.
        query: Restrict to Fireworks matching this MongoDB query.
        launchpad: FireworksLaunchPad block name (None: the default LaunchPad).
        run_after: With ``rerun``, trigger ``run-workflow`` for each affected workflow.

    Returns:
        The lost launch ids, their fw_ids, and the inconsistent fw_ids.
    """
    logger = get_run_logger()
    kwargs: dict[str, Any] = {
        "fizzle": fizzle,
        "rerun": rerun,
        "max_runtime": max_runtime,
        "min_runtime": min_runtime,
        "refresh": refresh,
        "query": parse_query(query),
    }
    if expiration_secs is not None:
        kwargs["expiration_secs"] = expiration_secs
    lp = load_launchpad(launchpad)
    try:
        data = detect(lp, **kwargs).to_dict()
        wf_ids = wf_ids_containing(lp, data.get("rerun") or [])
        if (fizzle or rerun) and data["lost_launch_ids"]:
            # Their worker is gone: nobody else will end their task and flow runs.
            data["crashed_prefect_runs"] = mark_crashed(lp, data["lost_launch_ids"])
    finally:
        lp.close()
    logger.info(
        "lost launches %s (Fireworks %s); inconsistent Fireworks %s%s",
        data["lost_launch_ids"],
        data["lost_fw_ids"],
        data["inconsistent_fw_ids"],
        f"; rerun {data['rerun']}" if data.get("rerun") else "",
    )
    data["run_workflow_flow_runs"] = run_workflows(wf_ids, launchpad) if run_after else []
    return data
