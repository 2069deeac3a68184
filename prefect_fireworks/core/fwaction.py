"""`FWAction`: what a Firetask asks FireWorks to do after it ran (the launch's ``action``)."""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

from pydantic import BaseModel, ConfigDict, Field, field_validator

from prefect_fireworks.core.firework import Firework
from prefect_fireworks.core.workflow import Workflow

__all__ = ["FWAction"]


class FWAction(BaseModel):
    """What a Firetask asks FireWorks to do after it ran (FireWorks' ``FWAction``).

    Example:
        ```python
        from prefect_fireworks import FWAction

        FWAction(stored_data={"energy": -1.2}, update_spec={"energy": -1.2})
        ```
    """

    model_config = ConfigDict(arbitrary_types_allowed=True)

    stored_data: dict[str, Any] = Field(default_factory=dict)
    exit: bool = False
    update_spec: dict[str, Any] = Field(default_factory=dict)
    mod_spec: list[dict[str, Any]] = Field(default_factory=list)
    additions: list[Any] = Field(default_factory=list)
    detours: list[Any] = Field(default_factory=list)
    append_wfs: list[dict[str, Any]] = Field(default_factory=list)
    defuse_children: bool = False
    defuse_workflow: bool = False
    propagate: bool = False

    @field_validator("mod_spec", "additions", "detours", mode="before")
    @classmethod
    def _listify(cls, v: Any) -> Any:
        if v is None:
            return []
        return list(v) if isinstance(v, (list, tuple)) else [v]

    @property
    def skip_remaining_tasks(self) -> bool:
        """FireWorks' ``skip_remaining_tasks``: any of these ends the Firework's task list."""
        return bool(
            self.exit
            or self.additions
            or self.detours
            or self.append_wfs
            or self.defuse_children
            or self.defuse_workflow
        )

    def to_dict(self) -> dict[str, Any]:
        """The launch document's ``action`` field."""

        def wf_dict(x: Any) -> dict[str, Any]:
            if isinstance(x, (Workflow, Firework)):
                return (
                    x.to_dict() if isinstance(x, Workflow) else Workflow.from_firework(x).to_dict()
                )
            return dict(x)

        return {
            "stored_data": self.stored_data,
            "exit": self.exit,
            "update_spec": self.update_spec,
            "mod_spec": self.mod_spec,
            "additions": [wf_dict(a) for a in self.additions],
            "detours": [wf_dict(d) for d in self.detours],
            "append_wfs": [
                {**a, "workflow": wf_dict(a["workflow"])}
                for a in self.append_wfs
                if "workflow" in a
            ],
            "defuse_children": self.defuse_children,
            "defuse_workflow": self.defuse_workflow,
            "propagate": self.propagate,
        }

    @classmethod
    def from_dict(cls, d: Mapping[str, Any] | None) -> FWAction:
        """Load an ``action`` dict (missing keys take their defaults)."""
        if not d:
            return cls()
        return cls(**{k: v for k, v in d.items() if k in cls.model_fields})
