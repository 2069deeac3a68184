"""What a FIZZLED launch tells Prefect: one log line, and the ``fireworks.firework.fizzled`` event.

`fizzle_line` is the line `launch_firework` logs (the Firework, the Firetask that failed, the
exception's first and last lines). Importing this module installs `FizzledStateFilter` on
Prefect's ``prefect.task_runs`` logger, which drops the engine's own record of the returned
Failed state (its repr with the launch summary, and an empty traceback).
"""

from __future__ import annotations

import logging
import re
from typing import TYPE_CHECKING

from prefect.events import emit_event

from prefect_fireworks.core.constants import FIZZLED_EVENT
from prefect_fireworks.store.queries import wf_id_of

if TYPE_CHECKING:
    from prefect_fireworks.runtime.rocket import RocketResult
    from prefect_fireworks.store.launchpad import LaunchPad

__all__ = [
    "FizzledStateFilter",
    "emit_fizzled",
    "exception_line",
    "failed_task_n",
    "fizzle_line",
]

_STACK_TAIL = 2000
#: Longest exception text in a FIZZLED launch's log line.
_LINE_MAX = 400


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
    return f"Firework {result.fw_id} ({result.name}) fizzled{where}: {exception_line(result)}"


def exception_line(result: RocketResult) -> str:
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


def failed_task_n(lp: LaunchPad, launch_id: int) -> int | None:
    """The Firetask a FIZZLED launch was running: its last checkpoint's ``_task_n``."""
    doc = lp.launches.find_one({"launch_id": launch_id}, {"state_history": 1, "_id": 0}) or {}
    for entry in reversed(doc.get("state_history") or []):
        n = (entry.get("checkpoint") or {}).get("_task_n")
        if n is not None:
            return int(n)
    return None


class FizzledStateFilter(logging.Filter):
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
    if not any(isinstance(f, FizzledStateFilter) for f in task_logger.filters):
        task_logger.addFilter(FizzledStateFilter())


_install_log_filter()


def emit_fizzled(lp: LaunchPad, result: RocketResult) -> None:
    """Emit ``fireworks.firework.fizzled`` for a FIZZLED launch (what automations react to)."""
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
                "prefect.resource.id": f"fireworks.workflow.{wf_id_of(nodes)}",
                "prefect.resource.role": "workflow",
                "prefect.resource.name": str(wf.get("name", "")),
            }
        ],
        payload={
            "fw_id": result.fw_id,
            "launch_id": result.launch_id,
            "name": result.name,
            "wf_id": wf_id_of(nodes),
            "wf_fw_ids": nodes,
            "wf_name": wf.get("name"),
            "message": result.message,
            "launch_dir": result.launch_dir,
            "stacktrace_tail": (result.stacktrace or "")[-_STACK_TAIL:],
        },
    )
