"""What a Firetask sees as ``self.launchpad`` with ``spec._add_launchpad_and_fw_id``.

FireWorks' Rocket gives such a Firetask its LaunchPad object; Firetasks written for FireWorks
then call a handful of its methods. `TaskLaunchPad` offers that handful, over this package's
LaunchPad, with FireWorks' names, arguments and rules:

- ``host``, ``port``, ``name``, ``db`` and the collections ``fireworks``, ``launches``,
  ``workflows``, ``fw_id_assigner``;
- ``get_fw_by_id``, ``get_fw_dict_by_id``, ``get_wf_by_fw_id``, ``get_launch_by_id``,
  ``get_fw_ids``, ``get_wf_ids``;
- ``add_wf`` (a Workflow or Firework of this package *or of FireWorks*; returns old -> new ids),
  ``append_wf`` (FireWorks' detour/pull_spec_mods arguments);
- ``update_spec`` (FireWorks' states allowed: READY, WAITING, FIZZLED, DEFUSED, PAUSED; ``mongo``
  for raw update documents);
- ``rerun_fw`` (FireWorks' plain rerun: archive the launches of the Firework and its
  non-WAITING descendants, reset them; task-level recovery is ``lpad rerun_fws --task-level``),
  ``defuse_fw``, ``pause_fw``, ``resume_fw`` and ``set_priority`` (FireWorks' allowed states).

Objects come back as this package's models (`Firework`, `Workflow`, `Launch`), which have the
attributes FireWorks' have (``spec``, ``state``, ``name``, ``fw_id``, ``launches``...). Any other
FireWorks method raises ``AttributeError`` naming this module.

Example:
    ```python
    from prefect_fireworks.runtime.firetasks import Firetask


    class Spawn(Firetask):
        def run_task(self, fw_spec):
            parent = self.launchpad.get_fw_by_id(self.fw_id)
            return {"stored_data": {"parent_name": parent.name}}
    ```
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping, Sequence
from typing import TYPE_CHECKING, Any

from prefect_fireworks.core import states as st
from prefect_fireworks.core.models import Firework, Workflow
from prefect_fireworks.runtime.fw_json import expand_launches

if TYPE_CHECKING:
    from prefect_fireworks.store.launchpad import LaunchPad

__all__ = ["FORWARDED", "UPDATE_SPEC_STATES", "TaskLaunchPad"]

#: FireWorks' LaunchPad attributes and methods that are the same on this package's LaunchPad
#: (same names, arguments and results): a `TaskLaunchPad` hands them over as they are.
FORWARDED = frozenset(
    {
        "name",
        "db",
        "fireworks",
        "launches",
        "workflows",
        "fw_id_assigner",
        "get_fw_by_id",
        "get_wf_by_fw_id",
        "get_launch_by_id",
        "get_fw_ids",
        "get_wf_ids",
    }
)

#: FireWorks' ``LaunchPad.update_spec`` only touches Fireworks in these states.
UPDATE_SPEC_STATES = (st.READY, st.WAITING, st.FIZZLED, st.DEFUSED, st.PAUSED)


def _as_model(wf: Any) -> Workflow | Firework:
    """Our Workflow/Firework for ours or FireWorks' (through its ``to_dict``)."""
    if isinstance(wf, (Workflow, Firework)):
        return wf
    d = wf.to_dict() if hasattr(wf, "to_dict") else wf
    if not isinstance(d, Mapping):
        raise TypeError(f"expected a Workflow or Firework, not {type(wf).__name__}")
    if "fws" in d:
        return Workflow.from_dict(d)
    return Firework.from_dict(d)


class TaskLaunchPad:
    """FireWorks' LaunchPad methods a Firetask calls, over this package's LaunchPad.

    Args:
        lp: the LaunchPad the Rocket runs with.
    """

    def __init__(self, lp: LaunchPad) -> None:
        self._lp = lp

    def __getattr__(self, item: str) -> Any:
        # FireWorks' names that mean the same here are this package's LaunchPad's own.
        lp = self.__dict__.get("_lp")
        if lp is not None and item in FORWARDED:
            return getattr(lp, item)
        raise AttributeError(
            f"self.launchpad.{item}: not one of the FireWorks LaunchPad methods a Firetask can "
            "call here (see prefect_fireworks.runtime.task_launchpad)"
        )

    # -- connection ------------------------------------------------------------------------
    @property
    def host(self) -> str:
        """The MongoDB host (or URI), as FireWorks' ``LaunchPad.host``."""
        return str(self._address("host", 0, "localhost"))

    @property
    def port(self) -> int:
        """The MongoDB port."""
        return int(self._address("port", 1, 27017))

    def _address(self, field: str, index: int, default: Any) -> Any:
        # The LaunchPad's configuration says, else the connected server's address.
        config = getattr(self._lp, "config", None)
        if config is not None and getattr(config, field, None):
            return getattr(config, field)
        address = self._lp.client.address
        return address[index] if address else default

    # -- reading ---------------------------------------------------------------------------
    def get_fw_dict_by_id(self, fw_id: int) -> dict[str, Any]:
        """The Firework with its launches and archived launches as full launch documents."""
        doc = self._lp.get_fw_dict_by_id(fw_id)
        doc.update(expand_launches(self._lp, doc))
        return doc

    # -- writing ---------------------------------------------------------------------------
    def add_wf(self, wf: Any, reassign_all: bool = True) -> dict[int, int]:
        """Add a Workflow or Firework (this package's or FireWorks'); returns old -> new ids."""
        if not reassign_all:
            raise ValueError("add_wf(reassign_all=False) is not supported here")
        return self._lp.add_wf(_as_model(wf))

    def append_wf(
        self,
        new_wf: Any,
        fw_ids: Sequence[int],
        detour: bool | Sequence[bool] = False,
        pull_spec_mods: bool = True,
    ) -> None:
        """Append a workflow below ``fw_ids`` (FireWorks' ``append_wf``)."""
        model = _as_model(new_wf)
        wf = model if isinstance(model, Workflow) else Workflow.from_firework(model)
        ids = [int(i) for i in fw_ids]
        dets = [bool(detour)] * len(ids) if isinstance(detour, bool) else [bool(d) for d in detour]
        if len(dets) != len(ids):
            raise ValueError("len(detour) must be equal len(fw_ids)")
        with self._lp.edit_workflow(ids[0]) as ed:
            ed.load_fws(ids)
            ed.append_wf(wf, ids, detour=dets, pull_spec_mods=pull_spec_mods)

    def update_spec(
        self, fw_ids: Iterable[int], spec_document: Mapping[str, Any], mongo: bool = False
    ) -> None:
        """Update the specs of Fireworks that have not run (FireWorks' ``update_spec``).

        Args:
            fw_ids: the Fireworks.
            spec_document: ``{key: value}`` set in each spec, or with ``mongo`` a raw update.
            mongo: ``spec_document`` is a MongoDB update document.
        """
        update = (
            dict(spec_document)
            if mongo
            else {"$set": {f"spec.{k}": v for k, v in spec_document.items()}}
        )
        self._lp.fireworks.update_many(
            {"fw_id": {"$in": list(fw_ids)}, "state": {"$in": list(UPDATE_SPEC_STATES)}}, update
        )

    def rerun_fw(
        self,
        fw_id: int,
        rerun_duplicates: bool = True,
        recover_launch: Any = None,
        recover_mode: Any = None,
    ) -> list[int]:
        """Rerun a Firework and its descendants that ran (FireWorks' plain ``rerun_fw``).

        Returns:
            The fw_ids reset.

        Raises:
            ValueError: ``recover_launch``/``recover_mode`` were given (task-level recovery is
                ``lpad rerun_fws --task-level``).
        """
        if recover_launch is not None or recover_mode is not None:
            raise ValueError(
                "rerun_fw with recovery is not available inside a Firetask; "
                "use lpad rerun_fws --task-level"
            )
        ids = [fw_id]
        if rerun_duplicates:
            doc = self._lp.fireworks.find_one({"fw_id": fw_id}, {"launches": 1})
            lids = (doc or {}).get("launches") or []
            if lids:
                ids += [
                    d["fw_id"]
                    for d in self._lp.fireworks.find(
                        {"launches": {"$in": lids}, "fw_id": {"$ne": fw_id}}, {"fw_id": 1}
                    )
                ]
        reset: list[int] = []
        for fid in ids:
            with self._lp.edit_workflow(fid) as ed:
                reset += ed.rerun(fid)
        return reset

    def _set_state(self, fw_id: int, state: str, allowed: Iterable[str]) -> None:
        with self._lp.edit_workflow(fw_id) as ed:
            if ed.fw(fw_id)["state"] in set(allowed):
                ed.set_state(fw_id, state)
                if state in (st.WAITING, st.READY):
                    ed.refresh([fw_id])

    def defuse_fw(self, fw_id: int) -> None:
        """Defuse a Firework that has not finished."""
        self._set_state(
            fw_id, st.DEFUSED, [st.DEFUSED, st.WAITING, st.READY, st.FIZZLED, st.PAUSED]
        )

    def pause_fw(self, fw_id: int) -> None:
        """Pause a WAITING, READY or RESERVED Firework."""
        self._set_state(fw_id, st.PAUSED, [st.WAITING, st.READY, st.RESERVED])

    def resume_fw(self, fw_id: int) -> None:
        """Resume a PAUSED Firework."""
        self._set_state(fw_id, st.WAITING, [st.PAUSED])

    def set_priority(self, fw_id: int, priority: Any) -> None:
        """Set ``spec._priority``."""
        self._lp.fireworks.update_one({"fw_id": fw_id}, {"$set": {"spec._priority": priority}})
