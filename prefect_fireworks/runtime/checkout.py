"""Claiming a READY Firework for this runner: its launch document and launch directory.

`claim_launch` claims (one conditional write, `prefect_fireworks.store.launch_cycle`) and
builds the launch document, creating the launch directory only once something is claimed;
the Rocket writes that document with its first checkpoint. `checkout` also writes it at once.
"""

from __future__ import annotations

import os
from collections.abc import Mapping
from typing import TYPE_CHECKING, Any

from prefect_fireworks.runtime.launch_dirs import make_launch_dir, resolve_launch_root
from prefect_fireworks.store import launch_cycle
from prefect_fireworks.store.launchpad import FWorker

if TYPE_CHECKING:
    from prefect_fireworks.store.launchpad import LaunchPad

__all__ = ["checkout", "claim_launch"]


def checkout(
    lp: LaunchPad,
    fworker: FWorker | None = None,
    fw_id: int | None = None,
    *,
    launch_root: str | os.PathLike[str] | None = None,
    launch_extra: Mapping[str, Any] | None = None,
) -> tuple[dict[str, Any] | None, int | None]:
    """Claim a READY Firework (this one, or the best match for ``fworker``) and create its launch.

    The launch directory is created only once something is claimed (``spec._launch_dir``,
    when set, is used instead). With ``fw_id`` only a READY Firework is taken.

    Returns:
        ``(firework document, launch_id)``, or ``(None, None)``.
    """
    got = claim_launch(lp, fworker, fw_id, launch_root=launch_root, launch_extra=launch_extra)
    if got is None:
        return None, None
    fw_doc, launch_doc = got
    launch_cycle.insert_launch(lp, launch_doc)
    return fw_doc, int(launch_doc["launch_id"])


def claim_launch(
    lp: LaunchPad,
    fworker: FWorker | None = None,
    fw_id: int | None = None,
    *,
    launch_root: str | os.PathLike[str] | None = None,
    launch_extra: Mapping[str, Any] | None = None,
) -> tuple[dict[str, Any], dict[str, Any]] | None:
    """Claim a READY Firework and make its launch document, without writing it yet.

    Give both to ``Rocket(..., launch_doc=..., insert_launch=True)``: the Rocket writes the
    launch with its first checkpoint (and, in a Prefect task, the run ids) in one insert.

    Returns:
        ``(firework document, launch document)``, or None when nothing is READY.
    """
    root = resolve_launch_root(launch_root)
    return launch_cycle.checkout_launch(
        lp,
        fworker or FWorker(),
        os.fspath(root),
        fw_id,
        extra=launch_extra,
        dir_for=lambda _doc: make_launch_dir(root),
        only_ready=True,
        insert=False,
    )
