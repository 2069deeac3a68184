"""Task-level recovery: checkpoints, and resuming a launch where a previous one stopped.

Before each Firetask the Rocket writes a checkpoint into its launch's RUNNING state-history
entry: the number of the next task and what the earlier tasks' FWActions accumulated
(`Checkpoint`). ``lpad rerun_fws --task-level`` puts the checkpoint of the failed launch into
``spec._recovery``; the next launch starts from it, in a copy of the previous directory
(``--copy-data``, `restore_previous_dir`) or in that directory itself (``--previous-dir``,
`require_previous_dir`).
"""

from __future__ import annotations

import os
import shutil
import socket
from collections.abc import Mapping
from dataclasses import dataclass, field
from typing import Any

from prefect_fireworks.core.models import FWAction

__all__ = [
    "Checkpoint",
    "missing_previous_dir",
    "require_previous_dir",
    "restore_previous_dir",
]


@dataclass
class Checkpoint:
    """Where a launch is: the next task's number and the FWActions accumulated so far.

    Attributes:
        task_n: the number of the next Firetask to run.
        stored_data: the merged ``stored_data`` of the tasks run.
        update_spec: the merged ``update_spec``.
        mod_spec: the ``mod_spec`` entries, in order.
    """

    task_n: int = 0
    stored_data: dict[str, Any] = field(default_factory=dict)
    update_spec: dict[str, Any] = field(default_factory=dict)
    mod_spec: list[dict[str, Any]] = field(default_factory=list)

    @classmethod
    def from_spec(cls, spec: Mapping[str, Any]) -> Checkpoint:
        """Where a launch of this spec starts: ``spec._recovery``, else the first task."""
        recovery = spec.get("_recovery") or {}
        if not recovery:
            return cls()
        return cls(
            int(recovery.get("_task_n") or 0),
            dict(recovery.get("_all_stored_data") or {}),
            dict(recovery.get("_all_update_spec") or {}),
            list(recovery.get("_all_mod_spec") or []),
        )

    def at(self, task_n: int) -> dict[str, Any]:
        """The checkpoint document before task ``task_n`` (FireWorks' keys)."""
        return {
            "_task_n": task_n,
            "_all_stored_data": self.stored_data,
            "_all_update_spec": self.update_spec,
            "_all_mod_spec": self.mod_spec,
        }

    def add(self, action: FWAction) -> None:
        """Accumulate a task's FWAction."""
        self.stored_data.update(action.stored_data)
        self.update_spec.update(action.update_spec)
        self.mod_spec.extend(action.mod_spec)


def missing_previous_dir(flag: str, path: str) -> str:
    """The error message for a previous launch directory this worker does not see."""
    return (
        f"task-level rerun ({flag}): the previous launch directory {path} does not exist on "
        f"{socket.gethostname()}; it must be on a filesystem this worker sees (shared storage, "
        "or pin the Firework to the worker that ran it)"
    )


def require_previous_dir(spec: Mapping[str, Any], launch_dir: str) -> None:
    """With ``--previous-dir`` the launch runs in the previous directory: it must exist.

    Raises:
        FileNotFoundError: ``spec._launch_dir`` is the previous directory and it is missing.
    """
    recovery = spec.get("_recovery") or {}
    if (
        recovery.get("_mode") == "prev_dir"
        and recovery.get("_prev_dir") == spec.get("_launch_dir")
        and not os.path.isdir(launch_dir)
    ):
        raise FileNotFoundError(missing_previous_dir("--previous-dir", launch_dir))


def restore_previous_dir(spec: Mapping[str, Any], launch_dir: str) -> None:
    """With ``--copy-data`` copy the previous launch directory into ``launch_dir``.

    Raises:
        FileNotFoundError: the previous directory does not exist here.
    """
    recovery = spec.get("_recovery") or {}
    prev_dir = recovery.get("_prev_dir")
    if recovery.get("_mode") == "cp" and prev_dir and os.path.abspath(prev_dir) != launch_dir:
        if not os.path.isdir(prev_dir):
            raise FileNotFoundError(missing_previous_dir("--copy-data", prev_dir))
        shutil.copytree(prev_dir, launch_dir, dirs_exist_ok=True)
