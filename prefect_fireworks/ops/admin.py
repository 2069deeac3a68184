"""``lpad admin``: unlock workflows, refresh their states, (re)create the indexes."""

from __future__ import annotations

from typing import TYPE_CHECKING, Any

from prefect_fireworks.ops.editor import Progress
from prefect_fireworks.ops.workflows import wf_ids_of

if TYPE_CHECKING:
    from prefect_fireworks.store.launchpad import LaunchPad


def unlock_wflows(lp: LaunchPad, selection: Any) -> list[int]:
    """``admin unlock``: remove the lock of the selected workflows, whoever holds it.

    Returns:
        The workflows (by fw_id) that were locked.
    """
    return [wid for wid in wf_ids_of(lp, selection) if lp.force_unlock(wid)]


def refresh_wflows(lp: LaunchPad, selection: Any, progress: Progress | None = None) -> list[int]:
    """``admin refresh``: recompute the states of the selected workflows from their roots."""
    wf_ids = wf_ids_of(lp, selection)
    changed: list[int] = []
    for wid in wf_ids:
        with lp.edit_workflow(wid) as ed:
            roots = [n for n in ed.links if not ed.parents.get(n)]
            ed.load_fws(roots)
            ed.refresh(roots)
            changed.extend(ed.changed)
        if progress is not None:
            progress(1)
    return changed


def tuneup(lp: LaunchPad) -> None:
    """``admin tuneup``: (re)create the indexes."""
    lp.tuneup()
