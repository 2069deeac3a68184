"""What a Firework's tasks return, as FireWorks turns it into the launch's FWAction.

After each Firetask the action is ``FWAction.json``/``FWAction.yaml`` in the launch directory
if the task wrote one, else what ``run_task`` returned (`task_action`); its spec changes apply
to the spec the next tasks see (`apply_to_spec`). The launch's action is then decorated as
FireWorks' ``decorate_fwaction`` does (`decorate`); a failed launch records `failure_action`.
"""

from __future__ import annotations

import copy
import glob
import json
import os
from collections.abc import Mapping
from typing import Any

import yaml

from prefect_fireworks.core import states as st
from prefect_fireworks.core.dictmods import apply_mod
from prefect_fireworks.core.models import FWAction
from prefect_fireworks.runtime.firetasks import to_fwaction

__all__ = ["apply_to_spec", "as_action", "decorate", "failure_action", "task_action"]


def as_action(result: Any) -> FWAction:
    """A Firetask's return value as an FWAction (ours or FireWorks', a dict, or None).

    Raises:
        TypeError: anything else.
    """
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


def task_action(result: Any) -> FWAction:
    """The action of the task that just ran: its action file in the cwd wins (FireWorks)."""
    return _read_action_file() or as_action(result)


def _read_action_file() -> FWAction | None:
    # FireWorks reads FWAction.json / FWAction.yaml from the cwd after every Firetask.
    if os.path.exists("FWAction.json"):
        with open("FWAction.json") as f:
            return FWAction.from_dict(json.load(f))
    if os.path.exists("FWAction.yaml"):
        with open("FWAction.yaml") as f:
            return FWAction.from_dict(yaml.safe_load(f))
    return None


def apply_to_spec(action: FWAction, spec: dict[str, Any]) -> None:
    """Apply a task's ``update_spec`` and ``mod_spec`` to the spec the next tasks see."""
    spec.update(copy.deepcopy(action.update_spec))
    for mod in action.mod_spec:
        apply_mod(mod, spec)


def decorate(
    action: FWAction,
    spec: Mapping[str, Any],
    fw_doc: Mapping[str, Any],
    launch_dir: str,
    fworker: Any,
) -> FWAction:
    """FireWorks' ``decorate_fwaction``: job info, the preserved FWorker, output files."""
    if spec.get("_pass_job_info"):
        job_info = list(spec.get("_job_info", []))
        this = {
            "fw_id": fw_doc["fw_id"],
            "name": fw_doc.get("name", "Unnamed FW"),
            "launch_dir": launch_dir,
            "state": fw_doc.get("state", st.RUNNING),
        }
        if this not in job_info:
            job_info.append(this)
        action.mod_spec.append({"_push_all": {"_job_info": job_info}})
    if spec.get("_preserve_fworker") and fworker is not None:
        action.update_spec["_fworker"] = fworker.name
    for key, pattern in (spec.get("_files_out") or {}).items():
        files = glob.glob(os.path.join(launch_dir, pattern))
        if files:
            action.mod_spec.append({"_set": {f"_files_prev->{key}": max(files)}})
    return action


def failure_action(
    exc: BaseException, task: dict[str, Any] | None, tb: str, details: bool = True
) -> FWAction:
    """The FWAction of a FIZZLED launch: the failed task, the stack trace and, with
    ``details``, the exception's ``to_dict()`` (e.g. a ScriptTask's output tails)."""
    exc_details = None
    if details and hasattr(exc, "to_dict"):
        try:
            exc_details = exc.to_dict()
        except Exception:
            exc_details = None
    return FWAction(
        stored_data={
            "_message": "runtime error during task",
            "_task": task,
            "_exception": {"_stacktrace": tb, "_details": exc_details},
        },
        exit=True,
    )
