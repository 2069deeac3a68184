"""What the Prefect UI shows about Fireworks: artifacts for launches, reruns and progress.

- `publish_launch`: on a launch's task run, a markdown artifact (launch id, host, directory,
  state, the end of the stack trace) and, for a rerun Firework, a table of its archived launches.
- `publish_rerun`: on a rerun flow run, the plan (or result) as a table.
- `publish_workflow_progress`: on a workflow run, the share of its Fireworks COMPLETED.

Artifacts are for people: publishing one never fails the run that publishes it (a failure is
logged and ignored). Artifact keys (lowercase, digits, dashes) version them in the UI:
``fw-<fw_id>-launch``, ``fw-<fw_id>-archived-launches``, ``wf-<wf_id>-progress``.
"""

from __future__ import annotations

import logging
from collections.abc import Iterable, Mapping, Sequence
from typing import TYPE_CHECKING, Any, cast
from uuid import UUID

from prefect_fireworks.core import states as st
from prefect_fireworks.store.queries import wf_id_of

if TYPE_CHECKING:
    from prefect_fireworks.ops.audit import Actor
    from prefect_fireworks.ops.rerun import RerunPlan
    from prefect_fireworks.ops.signatures import ErrorGroup
    from prefect_fireworks.runtime.rocket import RocketResult
    from prefect_fireworks.store.launchpad import LaunchPad

__all__ = [
    "STACKTRACE_TAIL_LINES",
    "archived_launches_table",
    "errors_table",
    "launch_markdown",
    "publish_errors",
    "publish_launch",
    "publish_rerun",
    "publish_workflow_progress",
    "rerun_table",
    "workflow_progress",
]

STACKTRACE_TAIL_LINES = 20
"""Lines of a FIZZLED launch's stack trace shown in its artifact."""

_log = logging.getLogger(__name__)


def _logger() -> logging.Logger | logging.LoggerAdapter[logging.Logger]:
    try:
        from prefect.logging import get_run_logger

        return get_run_logger()
    except Exception:
        return _log


def _safely(what: str, func: Any, *args: Any, **kwargs: Any) -> Any:
    try:
        return func(*args, **kwargs)
    except Exception as exc:  # an artifact must never fail the run
        _logger().warning("could not publish the %s artifact: %s", what, exc)
        return None


def stacktrace_of(launch: Mapping[str, Any]) -> str | None:
    """The stack trace FireWorks records in a FIZZLED launch, if any."""
    action = launch.get("action") or {}
    exc = (action.get("stored_data") or {}).get("_exception") or {}
    trace = exc.get("_stacktrace")
    return str(trace) if trace else None


def _tail(text: str, n: int) -> str:
    lines = text.rstrip().splitlines()
    return "\n".join(lines[-n:])


def _fence(text: str) -> str:
    fence = "~~~~" if "```" in text else "```"
    return f"{fence}text\n{text}\n{fence}"


def _cell(value: Any) -> str:
    return "" if value is None else str(value).replace("|", "\\|").replace("\n", " ")


def launch_markdown(
    fw: Mapping[str, Any],
    launch: Mapping[str, Any],
    tail_lines: int = STACKTRACE_TAIL_LINES,
) -> str:
    """The markdown shown for one launch.

    Args:
        fw: The Firework document (``fw_id``, ``name``, ``archived_launches``).
        launch: The launch document.
        tail_lines: Lines of the stack trace to show.

    Returns:
        Markdown: a heading, a table of the launch's facts and the end of its stack trace.
    """
    fw_id = fw.get("fw_id", launch.get("fw_id"))
    name = fw.get("name", "")
    state = launch.get("state", "")
    archived = len(fw.get("archived_launches") or [])
    rows = [
        ("Firework", f"{fw_id} ({name})" if name else fw_id),
        ("launch id", launch.get("launch_id")),
        ("state", state),
        ("host", f"{launch.get('host', '')} ({launch.get('ip', '')})"),
        ("directory", f"`{launch.get('launch_dir', '')}`"),
        ("started", launch.get("time_start")),
        ("ended", launch.get("time_end")),
        ("runtime (s)", launch.get("runtime_secs")),
        ("earlier launches (archived)", archived),
    ]
    parts = [
        f"### Firework {fw_id} · launch {launch.get('launch_id')} · {state}",
        "",
        "| | |",
        "|---|---|",
        *(f"| {key} | {_cell(value)} |" for key, value in rows),
    ]
    trace = stacktrace_of(launch)
    details = _exception_details(launch)
    if trace and (details.get("stdout_tail") or details.get("stderr_tail")):
        trace = trace.split("\n--- end of std", 1)[0]  # the tails are shown below
    if trace:
        parts += [
            "",
            f"**Stack trace** (last {tail_lines} lines)",
            "",
            _fence(_tail(trace, tail_lines)),
        ]
    for stream in ("stdout", "stderr"):
        text = str(details.get(f"{stream}_tail") or "")
        if text.strip():
            parts += ["", f"**End of {stream}**", "", _fence(text.rstrip())]
    return "\n".join(parts) + "\n"


def _exception_details(launch: Mapping[str, Any]) -> Mapping[str, Any]:
    action = launch.get("action") or {}
    exc = (action.get("stored_data") or {}).get("_exception") or {}
    details = exc.get("_details")
    return details if isinstance(details, Mapping) else {}


def archived_launches_table(launches: Iterable[Mapping[str, Any]]) -> list[dict[str, Any]]:
    """Rows for the table of a Firework's archived launches (oldest first)."""
    rows = []
    for doc in sorted(launches, key=lambda d: d.get("launch_id", 0)):
        trace = stacktrace_of(doc)
        rows.append(
            {
                "launch_id": doc.get("launch_id"),
                "state": doc.get("state"),
                "host": doc.get("host"),
                "launch_dir": doc.get("launch_dir"),
                "time_start": doc.get("time_start"),
                "time_end": doc.get("time_end"),
                "error": trace.rstrip().splitlines()[-1] if trace else None,
            }
        )
    return rows


def publish_launch(
    lp: LaunchPad,
    launch_id: int,
    fw: Mapping[str, Any] | None = None,
    result: RocketResult | None = None,
) -> None:
    """Attach a launch's artifacts to the current task run (call it after the launch ended).

    Publishes the markdown artifact ``fw-<fw_id>-launch`` and, when the Firework has archived
    launches (it was rerun), the table ``fw-<fw_id>-archived-launches``. Never raises.

    Args:
        lp: The LaunchPad.
        launch_id: The launch that just ended.
        fw: The Firework document, if at hand (re-read otherwise).
        result: The Rocket's result: its stack trace is used when the launch has none yet.
    """
    _safely("launch", _publish_launch, lp, launch_id, fw, result)


def _publish_launch(
    lp: LaunchPad,
    launch_id: int,
    fw: Mapping[str, Any] | None,
    result: RocketResult | None,
) -> None:
    from prefect.artifacts import create_markdown_artifact, create_table_artifact

    launch = lp.launches.find_one({"launch_id": launch_id}, {"_id": 0}) or {"launch_id": launch_id}
    fw_id = launch.get("fw_id") if fw is None else fw["fw_id"]
    fw_doc = lp.fireworks.find_one(
        {"fw_id": fw_id}, {"_id": 0, "fw_id": 1, "name": 1, "archived_launches": 1}
    )
    fw = fw_doc or dict(fw or {"fw_id": fw_id})
    if result is not None and result.stacktrace and not stacktrace_of(launch):
        launch = {
            **launch,
            "action": {"stored_data": {"_exception": {"_stacktrace": result.stacktrace}}},
        }
        launch.setdefault("state", result.state)
    create_markdown_artifact(
        markdown=launch_markdown(fw, launch),
        key=f"fw-{fw_id}-launch",
        description=f"Firework {fw_id}, launch {launch_id}: {launch.get('state', '')}",
    )
    archived = list(fw.get("archived_launches") or [])
    if archived:
        docs = lp.launches.find({"launch_id": {"$in": archived}}, {"_id": 0})
        create_table_artifact(
            table=archived_launches_table(docs),
            key=f"fw-{fw_id}-archived-launches",
            description=f"Firework {fw_id}: its {len(archived)} archived launch(es), before reruns",
        )


def rerun_table(plan: RerunPlan, refused: Sequence[Mapping[str, Any]] = ()) -> list[dict[str, Any]]:
    """Rows for a rerun's table: every Firework reset, every target skipped and why.

    Args:
        plan: A plan (`prefect_fireworks.ops.rerun.plan_rerun`) or a result (`apply_rerun`).
        refused: Targets the rerun flow refused before planning (``fw_id``, ``state``,
            ``reason``).
    """
    rows: list[dict[str, Any]] = []
    for e in plan.entries:
        rows.append(
            {
                "fw_id": e.fw_id,
                "name": e.name,
                "wf_id": e.wf_id,
                "role": e.role,
                "state_before": e.state_before,
                "state_after": e.state_after,
                "archived_launches": ", ".join(map(str, e.archived)),
                "recovery": e.recovery or "",
                "note": "",
            }
        )
    skipped = [{"fw_id": s.fw_id, "state": s.state, "reason": s.reason} for s in plan.skipped] + [
        dict(r) for r in refused
    ]
    for s in skipped:
        rows.append(
            {
                "fw_id": s["fw_id"],
                "name": s.get("name", ""),
                "wf_id": s.get("wf_id", ""),
                "role": "skipped",
                "state_before": s.get("state", ""),
                "state_after": s.get("state", ""),
                "archived_launches": "",
                "recovery": "",
                "note": s["reason"],
            }
        )
    return rows


def publish_rerun(
    plan: RerunPlan,
    refused: Sequence[Mapping[str, Any]] = (),
    *,
    applied: bool,
    dry_run: bool = True,
    key: str = "rerun-fws",
    actor: Actor | None = None,
) -> UUID | None:
    """Attach a rerun's plan (``applied=False``) or result to the current flow run as a table.

    The description says what happened: a dry run's plan ("dry run: nothing written"), the plan
    of a rerun that goes on to be applied, a plan with nothing to rerun, or the result.

    Args:
        plan: The plan or the result.
        refused: Targets the guards refused or skipped.
        applied: ``plan`` is the applied result (key ``<key>-result``), else the plan
            (``<key>-plan``).
        dry_run: For a plan: the run is a dry run (nothing will be written).
        key: Key prefix.
        actor: Who reran and why: adds ``by`` and ``reason`` columns (the result).

    Returns:
        The artifact id, or None when it could not be published. Never raises.
    """
    from prefect.artifacts import create_table_artifact

    n = len(plan.rerun_ids)
    n_skipped = len(plan.skipped) + len(refused)
    if applied:
        title = f"Rerun done: {n} Firework(s) rerun"
    elif dry_run:
        title = f"Rerun plan (dry run: nothing written): would rerun {n} Firework(s)"
    elif n:
        title = f"Rerun plan, applied (see {key}-result): {n} Firework(s) to rerun"
    else:
        title = "Rerun plan: nothing to rerun (every target refused or skipped)"
    description = (
        f"{title}, {len(plan.entries) - n} descendant(s) reset, "
        f"{plan.n_archived} launch(es) archived, {n_skipped} refused or skipped."
    )
    return _safely(
        "rerun",
        create_table_artifact,
        table=_with_actor(rerun_table(plan, refused), actor),
        key=f"{key}-{'result' if applied else 'plan'}",
        description=description,
    )


def _with_actor(rows: list[dict[str, Any]], actor: Actor | None) -> list[dict[str, Any]]:
    if actor is None:
        return rows
    by, why = actor.describe(), actor.reason or ""
    if actor.comment:
        why = f"{why}; approver: {actor.comment}" if why else f"approver: {actor.comment}"
    return [{**r, "by": by, "reason": why} for r in rows]


def errors_table(groups: Sequence[ErrorGroup], examples: int = 5) -> list[dict[str, Any]]:
    """Rows for the error-signature table (``lpad errors`` in the UI)."""
    return [
        {
            "signature": g.signature.sig_id,
            "count": g.count,
            "roots": len(g.roots),
            "error": g.signature.title,
            "innermost frames": " <- ".join(reversed(g.signature.frames)),
            "first seen": g.first_seen or "",
            "last seen": g.last_seen or "",
            "Fireworks (* root)": ", ".join(
                f"{i}*" if i in g.roots else str(i) for i in g.fw_ids[:examples]
            )
            + (" …" if g.count > examples else ""),
        }
        for g in groups
    ]


def publish_errors(groups: Sequence[ErrorGroup], key: str = "fw-errors") -> UUID | None:
    """Attach the failed Fireworks of a selection, grouped by error signature, as a table.

    Rerun one group with the ``signature`` parameter of ``rerun-fws``. Never raises; nothing is
    published when nothing failed.
    """
    from prefect.artifacts import create_table_artifact

    if not groups:
        return None
    n = sum(g.count for g in groups)
    return _safely(
        "errors",
        create_table_artifact,
        table=errors_table(groups),
        key=key,
        description=f"{n} failed Firework(s) by error signature ({len(groups)} signature(s)); "
        "rerun one group with the signature parameter of rerun-fws",
    )


def workflow_progress(fw_states: Mapping[Any, str]) -> float:
    """Percentage (0-100) of a workflow's Fireworks that are COMPLETED (ARCHIVED ones aside)."""
    counted = [s for s in fw_states.values() if s != st.ARCHIVED]
    if not counted:
        return 100.0
    return round(100.0 * sum(s == st.COMPLETED for s in counted) / len(counted), 1)


def publish_workflow_progress(
    lp: LaunchPad, wf_id: int, artifact_id: UUID | None = None
) -> UUID | None:
    """Create (first call) or update the progress artifact of a workflow run. Never raises.

    Call it once when ``run_workflow`` starts, keep the id, and call it again with the id after
    each launch ends.

    Args:
        lp: The LaunchPad.
        wf_id: Any fw_id of the workflow.
        artifact_id: The id returned by the first call.

    Returns:
        The artifact id (None when it could not be published).

    Example:
        ```python
        progress = publish_workflow_progress(lp, wf_id)
        ...  # a launch ended
        publish_workflow_progress(lp, wf_id, progress)
        ```
    """
    return _safely("progress", _publish_progress, lp, wf_id, artifact_id)


def _publish_progress(lp: LaunchPad, wf_id: int, artifact_id: UUID | None) -> UUID:
    from prefect.artifacts import create_progress_artifact, update_progress_artifact

    doc = lp.get_wf_doc(wf_id, {"fw_states": 1, "nodes": 1, "state": 1})
    states = doc.get("fw_states") or {}
    progress = workflow_progress(states)
    done = sum(s == st.COMPLETED for s in states.values())
    wf_id = wf_id_of(doc["nodes"])
    description = f"Workflow {wf_id}: {done}/{len(states)} Fireworks COMPLETED"
    if artifact_id is None:
        return cast(
            UUID,
            create_progress_artifact(
                progress=progress, key=f"wf-{wf_id}-progress", description=description
            ),
        )
    update_progress_artifact(artifact_id, progress=progress, description=description)
    return artifact_id
