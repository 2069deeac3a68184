"""`Launch`: one execution attempt of a Firework (a ``launches`` document)."""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

from pydantic import BaseModel, ConfigDict, Field

from prefect_fireworks.core import states as st

__all__ = ["Launch"]


class Launch(BaseModel):
    """One execution attempt of a Firework (a ``launches`` document)."""

    model_config = ConfigDict(extra="allow")

    launch_id: int
    fw_id: int
    fworker: dict[str, Any] = Field(default_factory=dict)
    host: str | None = None
    ip: str | None = None
    launch_dir: str | None = None
    state: str = st.RUNNING
    state_history: list[dict[str, Any]] = Field(default_factory=list)
    trackers: list[dict[str, Any]] = Field(default_factory=list)
    action: dict[str, Any] | None = None
    time_start: str | None = None
    time_end: str | None = None
    runtime_secs: float | None = None

    @property
    def last_checkpoint(self) -> dict[str, Any] | None:
        """The checkpoint of the last state-history entry (what task-level recovery reads)."""
        return self.state_history[-1].get("checkpoint") if self.state_history else None

    @property
    def stacktrace(self) -> str | None:
        """The stack trace of a FIZZLED launch, if recorded."""
        try:
            return (self.action or {})["stored_data"]["_exception"]["_stacktrace"]
        except (KeyError, TypeError):
            return None

    @classmethod
    def from_dict(cls, d: Mapping[str, Any]) -> Launch:
        """Load a ``launches`` document."""
        return cls(**{k: v for k, v in d.items() if k != "_id"})
