"""`Firework`: one job, an ordered list of Firetasks (in ``spec._tasks``) plus a spec.

Loads and dumps FireWorks 2.x Firework dicts (files and the ``fireworks`` collection).
`WorkflowError` is what an invalid Firework or workflow definition raises.
"""

from __future__ import annotations

import itertools
from collections.abc import Iterable, Mapping
from typing import Any

from pydantic import BaseModel, ConfigDict, Field, field_validator

from prefect_fireworks.core import states as st
from prefect_fireworks.core.times import isoformat

__all__ = ["NEW_FW_ID_BASE", "Firework", "WorkflowError"]

#: Default fw_ids of new Fireworks: negative (not in a database yet) and *increasing*, so that
#: FireWorks' rule of numbering a workflow's Fireworks in fw_id order keeps the order in which
#: this package's Fireworks were made. (FireWorks' own counter goes -1, -2, ...: Fireworks made
#: with its classes are numbered last-made first, and ours do that to them too.)
NEW_FW_ID_BASE = -(10**12)
_negative_ids = itertools.count(NEW_FW_ID_BASE)


class WorkflowError(ValueError):
    """A workflow or Firework definition is invalid (cycle, unknown link, bad file)."""


def _tasks_to_dicts(tasks: Iterable[Any]) -> list[dict[str, Any]]:
    out = []
    for t in tasks:
        if hasattr(t, "to_dict"):
            out.append(t.to_dict())
        elif isinstance(t, Mapping):
            out.append(dict(t))
        else:
            raise WorkflowError(f"a Firetask must be a Firetask or a dict, not {type(t).__name__}")
    return out


class Firework(BaseModel):
    """One job: an ordered list of Firetasks (stored in ``spec._tasks``) plus a spec.

    ``Firework(tasks, spec=..., name=..., parents=[...])`` reads like FireWorks' constructor;
    ``parents`` only exists in memory and becomes workflow links when added.

    Example:
        ```python
        from prefect_fireworks import Firework, ScriptTask

        fw = Firework([ScriptTask(script="echo hi")], name="hello")
        ```
    """

    model_config = ConfigDict(extra="allow", arbitrary_types_allowed=True)

    fw_id: int = Field(default_factory=lambda: next(_negative_ids))
    name: str = "Unnamed FW"
    state: str = st.WAITING
    spec: dict[str, Any] = Field(default_factory=dict)
    launches: list[int] = Field(default_factory=list)
    archived_launches: list[int] = Field(default_factory=list)
    created_on: Any = Field(default_factory=isoformat)
    updated_on: Any = Field(default_factory=isoformat)
    parents: list[Any] = Field(default_factory=list, exclude=True)

    def __init__(self, tasks: Any = None, /, **data: Any) -> None:
        spec = dict(data.pop("spec", None) or {})
        if tasks is not None:
            if not isinstance(tasks, (list, tuple)):
                tasks = [tasks]
            spec["_tasks"] = _tasks_to_dicts(tasks)
        elif "_tasks" in spec:
            spec["_tasks"] = _tasks_to_dicts(spec["_tasks"])
        else:
            spec["_tasks"] = []
        parents = data.pop("parents", None) or []
        if not isinstance(parents, (list, tuple)):
            parents = [parents]
        if data.get("name") is None:
            data.pop("name", None)
        if data.get("fw_id") is None:
            data.pop("fw_id", None)
        super().__init__(spec=spec, parents=list(parents), **data)

    @field_validator("state")
    @classmethod
    def _check_state(cls, v: str) -> str:
        return st.validate_state(v)

    @property
    def tasks(self) -> list[dict[str, Any]]:
        """The Firetask dicts, in order."""
        return list(self.spec.get("_tasks", []))

    def to_dict(self) -> dict[str, Any]:
        """FireWorks' file form: ``state`` omitted when WAITING, empty launch lists omitted."""
        d: dict[str, Any] = {
            "spec": self.spec,
            "fw_id": self.fw_id,
            "created_on": self.created_on,
            "updated_on": self.updated_on,
        }
        if self.launches:
            d["launches"] = self.launches
        if self.archived_launches:
            d["archived_launches"] = self.archived_launches
        if self.state != st.WAITING:
            d["state"] = self.state
        d["name"] = self.name
        return d

    def to_db_dict(self) -> dict[str, Any]:
        """The ``fireworks`` collection document (every field written)."""
        d = self.to_dict()
        d["state"] = self.state
        d["launches"] = list(self.launches)
        d["archived_launches"] = list(self.archived_launches)
        extra = {k: v for k, v in (self.model_extra or {}).items() if k != "_id"}
        return {**extra, **d}

    @classmethod
    def from_dict(cls, d: Mapping[str, Any]) -> Firework:
        """Load a file or database Firework dict (``_id`` and unknown keys are kept as extras)."""
        data = {k: v for k, v in d.items() if k != "_id"}
        if "spec" not in data:
            raise WorkflowError("a Firework needs a 'spec'")
        if not isinstance(data["spec"], Mapping):
            raise WorkflowError("a Firework's 'spec' must be a mapping")
        if (
            isinstance(data.get("launches"), list)
            and data["launches"]
            and isinstance(data["launches"][0], Mapping)
        ):
            # FireWorks' 'all' display form expands launches; keep their ids.
            data["launches"] = [lch["launch_id"] for lch in data["launches"]]
        return cls(**data)
