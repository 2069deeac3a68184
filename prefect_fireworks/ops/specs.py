"""Edit the specs of selected Fireworks: ``lpad update_fws`` and ``lpad set_priority``.

Both act on the Fireworks a `prefect_fireworks.ops.selection.Selector` picks (the caller asks
for FireWorks' more-than-10 confirmation first) and write with one ``update_many``.

- `update_fws` is FireWorks' ``LaunchPad.update_spec``: ``{"_tasks.1.arg": 2}`` sets
  ``spec._tasks.1.arg``; with ``mongo=True`` the document is a MongoDB update of the Firework
  (every field it touches must be under ``spec``, unlike FireWorks, which lets it rewrite any
  field). Only Fireworks that have not run or failed (READY, WAITING, FIZZLED, DEFUSED, PAUSED)
  change; the others are reported, as FireWorks warns "Try rerunning first."
- `set_priority` sets ``spec._priority`` (FireWorks' ``set_priority``), whatever the state;
  with ``whole_workflows`` every Firework of the selected Fireworks' workflows.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Any

from prefect_fireworks.core import states as st

if TYPE_CHECKING:
    from prefect_fireworks.store.launchpad import LaunchPad

__all__ = ["UPDATE_SPEC_STATES", "SpecUpdate", "check_spec_update", "set_priority", "update_fws"]

#: FireWorks' ``update_spec`` changes only Fireworks in these states.
UPDATE_SPEC_STATES = (st.READY, st.WAITING, st.FIZZLED, st.DEFUSED, st.PAUSED)


@dataclass
class SpecUpdate:
    """What an update did: the Fireworks changed and those left alone (with their state)."""

    updated: list[int] = field(default_factory=list)
    refused: list[tuple[int, str]] = field(default_factory=list)

    def to_dict(self) -> dict[str, Any]:
        """JSON form (``--json``)."""
        return {
            "updated": self.updated,
            "refused": [{"fw_id": i, "state": s} for i, s in self.refused],
        }


def _fields(update: Mapping[str, Any]) -> list[str]:
    out: list[str] = []
    for op, body in update.items():
        if not isinstance(body, Mapping):
            raise ValueError(f"--mongo: {op} must map fields to values")
        out.extend(str(k) for k in body)
    return out


def check_spec_update(update: Any, mongo: bool = False) -> dict[str, Any]:
    """Validate an update before anything is written.

    Raises:
        ValueError: not a non-empty mapping; with ``mongo``, a key that is not an update operator
            or a field outside ``spec``; without it, a key starting with ``$``.
    """
    if not isinstance(update, Mapping) or not update:
        raise ValueError("the update must be a non-empty JSON object, e.g. '{\"_priority\": 5}'")
    if mongo:
        bad_ops = [k for k in update if not str(k).startswith("$")]
        if bad_ops:
            raise ValueError(
                f"--mongo: expected update operators ($set, $unset, ...), got {bad_ops}"
            )
        outside = [f for f in _fields(update) if f != "spec" and not f.startswith("spec.")]
        if outside:
            raise ValueError(f"--mongo: only fields under spec may change, not {outside}")
    else:
        dollars = [k for k in update if str(k).startswith("$")]
        if dollars:
            raise ValueError(f"{dollars[0]} is an update operator: add --mongo to use one")
    return dict(update)


def update_fws(
    lp: LaunchPad, fw_ids: Sequence[int], update: Mapping[str, Any], mongo: bool = False
) -> SpecUpdate:
    """Update the specs of ``fw_ids`` that may still change (FireWorks' ``update_spec``).

    Args:
        lp: the LaunchPad.
        fw_ids: the selected Fireworks.
        update: ``{spec key: value}``, or with ``mongo`` a MongoDB update document.
        mongo: ``update`` is a MongoDB update document (fields under ``spec`` only).

    Returns:
        The Fireworks updated and those refused because of their state.

    Raises:
        ValueError: a bad update (see `check_spec_update`); nothing is written.
    """
    doc = check_spec_update(update, mongo)
    mod = doc if mongo else {"$set": {f"spec.{k}": v for k, v in doc.items()}}
    ids = list(dict.fromkeys(int(i) for i in fw_ids))
    states = {
        d["fw_id"]: d["state"]
        for d in lp.fireworks.find({"fw_id": {"$in": ids}}, {"fw_id": 1, "state": 1})
    }
    allowed = [i for i in ids if states.get(i) in UPDATE_SPEC_STATES]
    if allowed:
        lp.fireworks.update_many(
            {"fw_id": {"$in": allowed}, "state": {"$in": list(UPDATE_SPEC_STATES)}}, mod
        )
    refused = [(i, states[i]) for i in ids if i in states and i not in allowed]
    return SpecUpdate(updated=allowed, refused=refused)


def set_priority(
    lp: LaunchPad, fw_ids: Sequence[int], priority: int, whole_workflows: bool = False
) -> list[int]:
    """Set ``spec._priority`` of ``fw_ids`` (or of all Fireworks of their workflows).

    Returns:
        The fw_ids whose priority was set, sorted.
    """
    ids = {int(i) for i in fw_ids}
    if whole_workflows and ids:
        for wf in lp.workflows.find({"nodes": {"$in": sorted(ids)}}, {"nodes": 1}):
            ids.update(wf["nodes"])
    targets = sorted(ids)
    if targets:
        lp.fireworks.update_many(
            {"fw_id": {"$in": targets}}, {"$set": {"spec._priority": priority}}
        )
    return targets
