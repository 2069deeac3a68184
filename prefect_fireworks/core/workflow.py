"""`Workflow`: a DAG of Fireworks with a name and metadata, and its files (YAML or JSON).

Loads and dumps FireWorks 2.x workflow dicts (``fws``, ``links``, ``metadata``, ``name``) and
workflow files; checks ids, links and cycles.
"""

from __future__ import annotations

import json
from collections.abc import Iterable, Mapping
from datetime import datetime
from pathlib import Path
from typing import Any

import yaml
from pydantic import BaseModel, ConfigDict, Field

from prefect_fireworks.core import states as st
from prefect_fireworks.core.dag import find_cycle, parent_links
from prefect_fireworks.core.firework import Firework, WorkflowError
from prefect_fireworks.core.safe_yaml import safe_load
from prefect_fireworks.core.times import utcnow

__all__ = ["Workflow"]


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
