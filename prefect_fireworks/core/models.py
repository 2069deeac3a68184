"""Pydantic models of FireWorks' objects and their MongoDB documents.

``Firework``, ``Workflow``, ``Launch`` and ``FWAction`` load and dump FireWorks 2.x database
documents and workflow files (YAML or JSON with ``fws``, ``links``, ``metadata``, ``name``;
Firetasks in ``spec._tasks``). Dates are ISO-8601 strings where FireWorks writes strings.
"""

from __future__ import annotations

import itertools
import json
from collections import deque
from collections.abc import Iterable, Mapping
from datetime import datetime, timezone
from pathlib import Path
from typing import Any

import yaml
from pydantic import BaseModel, ConfigDict, Field, field_validator

from prefect_fireworks.core import states as st
from prefect_fireworks.core.safe_yaml import safe_load

#: Default fw_ids of new Fireworks: negative (not in a database yet) and *increasing*, so that
#: FireWorks' rule of numbering a workflow's Fireworks in fw_id order keeps the order in which
#: this package's Fireworks were made. (FireWorks' own counter goes -1, -2, ...: Fireworks made
#: with its classes are numbered last-made first, and ours do that to them too.)
NEW_FW_ID_BASE = -(10**12)
_negative_ids = itertools.count(NEW_FW_ID_BASE)


def utcnow() -> datetime:
    """Timezone-aware now in UTC."""
    return datetime.now(timezone.utc)


def isoformat(dt: datetime | None = None) -> str:
    """FireWorks' string form of a date (``recursive_dict`` turns datetimes into isoformat)."""
    return (dt or utcnow()).isoformat()


class WorkflowError(ValueError):
    """A workflow or Firework definition is invalid (cycle, unknown link, bad file)."""


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


class Workflow(BaseModel):
    """A DAG of Fireworks (``links``: parent fw_id -> children fw_ids) with a name and metadata.

    Example:
        ```python
        from prefect_fireworks import Firework, ScriptTask, Workflow

        a = Firework([ScriptTask(script="echo a")], name="a")
        b = Firework([ScriptTask(script="echo b")], name="b", parents=[a])
        wf = Workflow([a, b], name="two steps")
        ```
    """

    model_config = ConfigDict(arbitrary_types_allowed=True)

    fws: list[Firework]
    links: dict[int, list[int]] = Field(default_factory=dict)
    name: str = "unnamed WF"
    metadata: dict[str, Any] = Field(default_factory=dict)
    created_on: Any = Field(default_factory=utcnow)
    updated_on: Any = Field(default_factory=utcnow)

    def __init__(
        self,
        fireworks: Iterable[Firework] | None = None,
        /,
        links_dict: Mapping[Any, Iterable[Any]] | None = None,
        **data: Any,
    ) -> None:
        if fireworks is not None:
            data["fws"] = list(fireworks)
        fws: list[Firework] = data["fws"]
        links: dict[int, list[int]] = {}
        for fw in fws:
            links.setdefault(fw.fw_id, [])
        raw_links = links_dict if links_dict is not None else data.pop("links", None)
        for parent, children in (raw_links or {}).items():
            kids: list[Any] = list(children) if isinstance(children, (list, tuple)) else [children]
            links.setdefault(int(parent), [])
            for c in kids:
                cid = int(c.fw_id if isinstance(c, Firework) else c)
                if cid not in links[int(parent)]:
                    links[int(parent)].append(cid)
        for fw in fws:
            for p in fw.parents:
                pid = int(p.fw_id if isinstance(p, Firework) else p)
                links.setdefault(pid, [])
                if fw.fw_id not in links[pid]:
                    links[pid].append(fw.fw_id)
        if data.get("name") is None:
            data.pop("name", None)
            if len(fws) == 1:
                data["name"] = fws[0].name
        data["metadata"] = data.get("metadata") or {}
        super().__init__(links=links, **data)
        self.validate_dag()

    # -- structure ---------------------------------------------------------------------------
    @property
    def id_fw(self) -> dict[int, Firework]:
        """Fireworks by fw_id."""
        return {fw.fw_id: fw for fw in self.fws}

    @property
    def parent_links(self) -> dict[int, list[int]]:
        """Parents of each child (roots absent)."""
        return parent_links(self.links)

    @property
    def root_fw_ids(self) -> list[int]:
        """Fireworks without parents."""
        pl = self.parent_links
        return [fw.fw_id for fw in self.fws if fw.fw_id not in pl]

    @property
    def leaf_fw_ids(self) -> list[int]:
        """Fireworks without children."""
        return [fw.fw_id for fw in self.fws if not self.links.get(fw.fw_id)]

    @property
    def fw_states(self) -> dict[int, str]:
        """State of every Firework."""
        return {fw.fw_id: fw.state for fw in self.fws}

    @property
    def state(self) -> str:
        """The aggregated workflow state (FireWorks' rule)."""
        allow = {fw.fw_id: bool(fw.spec.get("_allow_fizzled_parents")) for fw in self.fws}
        return st.workflow_state(self.fw_states, self.links, allow)

    def validate_dag(self) -> None:
        """Check ids are unique, links name existing Fireworks and the graph has no cycle.

        Raises:
            WorkflowError: naming the first problem found.
        """
        ids = [fw.fw_id for fw in self.fws]
        if len(set(ids)) != len(ids):
            dupes = sorted({i for i in ids if ids.count(i) > 1})
            raise WorkflowError(f"duplicate fw_id(s) in workflow: {dupes}")
        known = set(ids)
        for parent, children in self.links.items():
            missing = [x for x in [parent, *children] if x not in known]
            if missing:
                raise WorkflowError(f"links name Firework(s) not in the workflow: {missing}")
        cycle = find_cycle(self.links)
        if cycle:
            raise WorkflowError(f"links form a cycle: {' -> '.join(map(str, cycle))}")

    # -- conversion ---------------------------------------------------------------------------
    @classmethod
    def from_firework(cls, fw: Firework, name: str | None = None, metadata: dict | None = None):
        """A one-Firework workflow (it takes the Firework's name)."""
        return cls([fw], name=name, metadata=metadata or {})

    def to_dict(self) -> dict[str, Any]:
        """FireWorks' file form (``fws``, ``links`` with string keys, ``name``, ``metadata``)."""
        return {
            "fws": [fw.to_dict() for fw in self.fws],
            "links": {str(k): list(v) for k, v in self.links.items()},
            "name": self.name,
            "metadata": self.metadata,
            "updated_on": _iso(self.updated_on),
            "created_on": _iso(self.created_on),
        }

    @classmethod
    def from_dict(cls, d: Mapping[str, Any]) -> Workflow:
        """Load a workflow dict, or a single Firework dict (made a one-Firework workflow)."""
        if not isinstance(d, Mapping):
            raise WorkflowError("a workflow file must hold a mapping (a Workflow or a Firework)")
        if "fws" not in d:
            if "spec" in d:
                return cls.from_firework(Firework.from_dict(d))
            raise WorkflowError("not a Workflow (no 'fws') nor a Firework (no 'spec')")
        if not isinstance(d["fws"], list):
            raise WorkflowError("'fws' must be a list of Fireworks")
        fws = [Firework.from_dict(f) for f in d["fws"]]
        links = d.get("links") or {}
        if not isinstance(links, Mapping):
            raise WorkflowError("'links' must be a mapping of parent id to child ids")
        kwargs: dict[str, Any] = {
            "name": d.get("name"),
            "metadata": d.get("metadata") or {},
        }
        for k in ("created_on", "updated_on"):
            if d.get(k):
                kwargs[k] = d[k]
        try:
            return cls(fws, links_dict={int(k): v for k, v in links.items()}, **kwargs)
        except (TypeError, ValueError) as exc:
            if isinstance(exc, WorkflowError):
                raise
            raise WorkflowError(f"invalid links: {exc}") from exc

    @classmethod
    def from_file(cls, path: str | Path) -> Workflow:
        """Read a FireWorks workflow or Firework file (``.yaml``/``.yml`` or ``.json``).

        Raises:
            WorkflowError: the file is missing, unreadable or not a valid workflow.
        """
        p = Path(path)
        try:
            text = p.read_text()
        except OSError as exc:
            raise WorkflowError(f"cannot read {p}: {exc.strerror or exc}") from exc
        try:
            data = json.loads(text) if p.suffix.lower() == ".json" else safe_load(text)
        except RecursionError:
            raise WorkflowError(f"{p}: nested too deeply") from None
        except (json.JSONDecodeError, yaml.YAMLError) as exc:
            first = str(exc).strip().splitlines()[0] if str(exc).strip() else type(exc).__name__
            raise WorkflowError(
                f"{p}: malformed {p.suffix.lstrip('.') or 'YAML'}: {first}"
            ) from exc
        try:
            return cls.from_dict(data)
        except WorkflowError as exc:
            raise WorkflowError(f"{p}: {exc}") from exc
        except (TypeError, ValueError) as exc:
            raise WorkflowError(f"{p}: invalid workflow: {_first_error(exc)}") from exc

    def to_file(self, path: str | Path) -> None:
        """Write the workflow as YAML or JSON (by suffix)."""
        p = Path(path)
        d = self.to_dict()
        if p.suffix.lower() == ".json":
            p.write_text(json.dumps(d, indent=2, default=str))
        else:
            p.write_text(yaml.safe_dump(d, sort_keys=False))


def _iso(v: Any) -> Any:
    return v.isoformat() if isinstance(v, datetime) else v


def _first_error(exc: Exception) -> str:
    text = str(exc).strip().splitlines()
    return " ".join(text[:3]) if text else type(exc).__name__


def parent_links(links: Mapping[int, Iterable[int]]) -> dict[int, list[int]]:
    """Invert parent -> children links into child -> parents."""
    out: dict[int, list[int]] = {}
    for parent, children in links.items():
        for c in children:
            out.setdefault(int(c), []).append(int(parent))
    return out


def find_cycle(links: Mapping[int, Iterable[int]]) -> list[int] | None:
    """A cycle in the links as a list of ids (first id repeated at the end), or None.

    Iterative (Kahn's algorithm, then a walk inside what remains), so deep chains are fine.
    """
    nodes = set(links)
    for ch in links.values():
        nodes.update(ch)
    indeg = dict.fromkeys(nodes, 0)
    for ch in links.values():
        for c in ch:
            indeg[c] += 1
    queue = deque(n for n, d in indeg.items() if d == 0)
    seen = 0
    while queue:
        n = queue.popleft()
        seen += 1
        for c in links.get(n, ()):
            indeg[c] -= 1
            if indeg[c] == 0:
                queue.append(c)
    if seen == len(nodes):
        return None
    remaining = {n for n, d in indeg.items() if d > 0}
    start = min(remaining)
    path, index = [start], {start: 0}
    cur = start
    while True:
        nxt = next(c for c in links.get(cur, ()) if c in remaining)
        if nxt in index:
            return [*path[index[nxt] :], nxt]
        index[nxt] = len(path)
        path.append(nxt)
        cur = nxt


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


#: The keys of FireWorks' ``Launch.to_dict()``, in its order (the times are database-only).
LAUNCH_DICT_KEYS = (
    "fworker",
    "fw_id",
    "launch_dir",
    "host",
    "ip",
    "trackers",
    "action",
    "state",
    "state_history",
    "launch_id",
)


def launch_to_dict(doc: Mapping[str, Any]) -> dict[str, Any]:
    """FireWorks' ``Launch.to_dict()`` of a ``launches`` document.

    This is the launch form FireWorks shows wherever a Firework carries its launches: FW.json,
    ``spec._fizzled_parents`` and ``lpad get_fws -d more|all``.
    """
    d = {k: doc.get(k) for k in LAUNCH_DICT_KEYS}
    d["trackers"] = d["trackers"] or []
    d["state_history"] = d["state_history"] or []
    action = d["action"]
    if isinstance(action, Mapping):
        # FireWorks' FWAction.from_dict turns every added Firework into a Workflow.
        action = dict(action)
        for key in ("additions", "detours"):
            if isinstance(action.get(key), list):
                action[key] = [_as_workflow_dict(w) for w in action[key]]
        if isinstance(action.get("append_wfs"), list):
            action["append_wfs"] = [
                {**a, "workflow": _as_workflow_dict(a["workflow"])}
                if isinstance(a, Mapping) and "workflow" in a
                else a
                for a in action["append_wfs"]
            ]
        d["action"] = action
    return d


def _as_workflow_dict(x: Any) -> Any:
    """A Firework dict as FireWorks' ``Workflow.from_firework(...).to_dict()``."""
    if not isinstance(x, Mapping) or "fws" in x or "spec" not in x:
        return x
    return {
        "fws": [dict(x)],
        "links": {str(x.get("fw_id")): []},
        "name": x.get("name", "Unnamed FW"),
        "metadata": {},
        "updated_on": x.get("updated_on"),
        "created_on": x.get("created_on"),
    }


def firework_to_dict(
    doc: Mapping[str, Any],
    launches: Iterable[Mapping[str, Any]] = (),
    archived_launches: Iterable[Mapping[str, Any]] = (),
) -> dict[str, Any]:
    """FireWorks' ``Firework.to_dict()`` of a ``fireworks`` document, launches expanded.

    Args:
        doc: the Firework document.
        launches: its launch documents, in launch_id order.
        archived_launches: its archived launch documents, in launch_id order.

    Returns:
        ``spec, fw_id, created_on, updated_on[, launches][, archived_launches][, state], name``
        with the launches in `launch_to_dict` form (FireWorks' key order).
    """
    out: dict[str, Any] = {
        "spec": doc.get("spec") or {},
        "fw_id": doc.get("fw_id"),
        "created_on": doc.get("created_on"),
        "updated_on": doc.get("updated_on"),
    }
    lchs = [launch_to_dict(lch) for lch in launches]
    if lchs:
        out["launches"] = lchs
    archived = [launch_to_dict(lch) for lch in archived_launches]
    if archived:
        out["archived_launches"] = archived
    state = doc.get("state", st.WAITING)
    if state != st.WAITING:
        out["state"] = state
    out["name"] = doc.get("name", "Unnamed FW")
    return out
