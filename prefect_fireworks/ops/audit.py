"""Who reran what, and why: the actor of an operation and the ``rerun_history`` records.

Every rerun appends one entry to ``rerun_history`` on each Firework it reran at top level (a
target, or a duplicate sharing its launch). FireWorks ignores the field. An entry records:

- who and why: ``at`` (UTC, ISO), ``by`` (``user@host``), ``actor`` (OS user and host, and when
  a Prefect flow run did it: the flow run, its deployment and the automation that created it),
  ``command`` (the ``lpad`` command line or the flow run's parameters) and ``reason``;
- what it did: ``role``, ``task_level``, ``recovery``, ``state_before``, ``state_after``,
  ``archived`` (launch ids moved to ``archived_launches``), ``spec_before``/``spec_unset`` (the
  top-level spec keys it changed, with their earlier values, and the keys it added), and
  ``descendants``: the same for every descendant it reset;
- ``rerun_id`` (to name it) and, once undone by ``lpad restore_launch``, ``restored`` (who, when,
  why).

That is exactly what :mod:`prefect_fireworks.ops.restore` needs to put things back. No Prefect
import: the Prefect layer fills the flow-run fields of :class:`Actor`.
"""

from __future__ import annotations

import getpass
import socket
import uuid
from collections.abc import Mapping
from dataclasses import asdict, dataclass
from typing import Any

__all__ = ["Actor", "new_rerun_id", "spec_diff"]


def _user() -> str:
    try:
        return getpass.getuser()
    except Exception:  # no login name (some containers): still record something
        return "unknown"


@dataclass
class Actor:
    """Who or what runs an operation, and why.

    Attributes:
        user: the OS user.
        host: the machine.
        command: the command line, or a description of the flow run's parameters.
        reason: free text given by the person (``--reason``), or None.
        flow_run_id: the Prefect flow run that did it, if any.
        flow_run_name: its name.
        deployment: its deployment's name.
        automation: the name of the Prefect automation that created the flow run, if any.
        automation_id: that automation's id.
        approved_by: who approved the plan in the Prefect UI (the approval input), if any.
        comment: the approver's comment, if any.
    """

    user: str = ""
    host: str = ""
    command: str | None = None
    reason: str | None = None
    flow_run_id: str | None = None
    flow_run_name: str | None = None
    deployment: str | None = None
    automation: str | None = None
    automation_id: str | None = None
    approved_by: str | None = None
    comment: str | None = None

    @classmethod
    def current(cls, command: str | None = None, reason: str | None = None) -> Actor:
        """The OS user and host of this process."""
        return cls(user=_user(), host=socket.gethostname(), command=command, reason=reason)

    @property
    def by(self) -> str:
        """``user@host`` (the ``by`` field FireWorks-era entries already had)."""
        return f"{self.user}@{self.host}"

    def describe(self) -> str:
        """One line for tables: the user, and the flow run / automation when there is one."""
        parts = [self.by]
        if self.flow_run_name or self.flow_run_id:
            parts.append(f"flow run {self.flow_run_name or self.flow_run_id}")
        if self.deployment:
            parts.append(f"deployment {self.deployment}")
        if self.automation:
            parts.append(f"automation {self.automation}")
        if self.approved_by:
            parts.append(f"approved by {self.approved_by}")
        return ", ".join(parts)

    def to_record(self) -> dict[str, Any]:
        """The ``actor`` sub-document (None fields left out)."""
        return {k: v for k, v in asdict(self).items() if v is not None and v != ""}


def new_rerun_id() -> str:
    """A fresh id for one rerun record."""
    return uuid.uuid4().hex


_MISSING = object()


def spec_diff(
    before: Mapping[str, Any], after: Mapping[str, Any]
) -> tuple[dict[str, Any], list[str]]:
    """The top-level spec keys that changed: (their earlier values, the keys that were absent).

    Example:
        ```python
        spec_diff({"a": 1, "_recovery": {}}, {"a": 1, "_launch_dir": "/x"})
        # ({'_recovery': {}}, ['_launch_dir'])
        ```
    """
    changed: dict[str, Any] = {}
    unset: list[str] = []
    for key in sorted(set(before) | set(after)):
        old, new = before.get(key, _MISSING), after.get(key, _MISSING)
        if old is _MISSING:
            unset.append(key)
        elif new is _MISSING or old != new:
            changed[key] = old
    return changed, unset
